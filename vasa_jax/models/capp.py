"""CAPP (contrastive audio and pose pretraining): two towers that embed a window of audio and a
window of head pose into one space, where paired windows point the same way.

VASA-1 scores how well generated head motion fits the speech with such a model, trained CLIP-style
on real pairs: the score of a pair is the cosine of its two embeddings. A window is `window`
consecutive video frames (25 fps; the paper's 3 s is 75 frames).

  audio tower: per-frame audio features `[batch, W, audio_dim]` (the project's frame-synchronous
    log-mel or Wav2Vec2 features, `vasa_jax.models.audio.features`, already normalised by the
    training data's statistics) -> a temporal convolution over `stem_kernel` frames + learned
    position embedding -> `audio_layers` pre-LayerNorm transformer blocks -> per-frame projection
    to `frame_dim` numbers, read as one vector over the window -> Dense -> L2 norm.
  pose tower: yaw, pitch, roll `[batch, W, 3]` in radians -> per frame the pose minus its mean over
    the window, divided by `pose_scale`, and the change from the previous frame, divided by
    `velocity_scale` (6 inputs) -> the same stem, 6 transformer blocks (the paper's depth) and
    head.

The head keeps time: a mean over frames would forget when the nods and turns happen, and the score
must fall when the pose is a frame or two late (the paper's sanity check). On SynthTalk tiny, mean
pooling learned no sensitivity to a delay of one or two frames in 300 training steps; the
per-frame projection read as one vector learned it in 100 (`frame_dim` 0 restores the mean). The
convolution stem gives every frame its neighbours, so that onsets are seen before attention.

Taking the window's mean pose out makes the score blind to where the head points on average, which
depends on the camera and the person rather than the speech; the frame-to-frame change makes nods
and turns stand out. Both divisors are fixed constants stored in the run's config, so a trained
model means the same whatever data it is later applied to. Frames marked invalid (padding after a
short clip's end, frames where no face was read) are left out of attention, of the head (zeroed)
and of the mean pose. A learnable temperature (CLIP's `logit_scale`, initialised to 1 / 0.07 and
capped at 100) scales the cosines for the contrastive loss.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# The pose tower's default input divisors, which experiments read too.
from vasa_jax.configs.capp import POSE_SCALE, VELOCITY_SCALE
from vasa_jax.errors import UserError
from vasa_jax.models import layers
from vasa_jax.models.motion_dit import Mlp

Dtype = Any

POSE_DIM = 3  # yaw, pitch, roll.
POSE_LAYERS = 6  # The paper's pose encoder depth.

# Sizes of both towers: transformer width, heads, MLP width, audio-tower depth, embedding size.
VARIANTS: dict[str, dict[str, int]] = {
    "tiny": dict(width=64, num_heads=4, mlp_dim=128, audio_layers=2, embed_dim=64),
    "small": dict(width=128, num_heads=4, mlp_dim=256, audio_layers=4, embed_dim=128),
    "base": dict(width=256, num_heads=8, mlp_dim=512, audio_layers=6, embed_dim=256),
}


INITIAL_LOGIT_SCALE = math.log(1 / 0.07)
MAX_LOGIT_SCALE = math.log(100.0)


@dataclasses.dataclass(frozen=True)
class CappConfig:
  audio_dim: int
  window: int  # Frames per window.
  width: int = 64
  num_heads: int = 4
  mlp_dim: int = 128
  audio_layers: int = 2
  pose_layers: int = POSE_LAYERS
  embed_dim: int = 64
  stem_kernel: int = 5  # Frames the input convolution sees.
  frame_dim: int = 8  # Numbers per frame the head reads (0: the mean over frames).
  pose_scale: tuple[float, ...] = POSE_SCALE
  velocity_scale: tuple[float, ...] = VELOCITY_SCALE


def make_config(variant: str, *, audio_dim: int, window: int,
                pose_scale=POSE_SCALE, velocity_scale=VELOCITY_SCALE) -> CappConfig:
  if variant not in VARIANTS:
    raise UserError(f"CAPP model variant {variant!r} is unknown; use one of {sorted(VARIANTS)}")
  if window < 2:
    raise UserError(f"a CAPP window of {window} frames is too short; use at least 2 frames "
                    "(config.model.window_seconds)")
  pose_scale, velocity_scale = tuple(map(float, pose_scale)), tuple(map(float, velocity_scale))
  if (len(pose_scale) != POSE_DIM or len(velocity_scale) != POSE_DIM
      or min(pose_scale + velocity_scale) <= 0):
    raise UserError(f"config.pose.scale={pose_scale} and velocity_scale={velocity_scale} must "
                    "each be 3 positive numbers (yaw, pitch, roll)")
  return CappConfig(audio_dim=int(audio_dim), window=int(window), pose_scale=pose_scale,
                    velocity_scale=velocity_scale, **VARIANTS[variant])


class MaskedBlock(nn.Module):
  """Pre-LayerNorm transformer block whose attention sees only valid frames."""

  num_heads: int
  mlp_dim: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, valid: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    mask = nn.make_attention_mask(jnp.ones_like(valid), valid)  # Any query, valid keys.
    h = nn.LayerNorm(name="norm1", **kw)(x)
    x = x + nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, name="attention", attention_fn=layers.fused_attention,
        **kw)(h, h, mask=mask)
    return x + Mlp(self.mlp_dim, x.shape[-1], name="mlp", **kw)(nn.LayerNorm(name="norm2",
                                                                             **kw)(x))


def masked_mean(x: jax.Array, valid: jax.Array, axis: int = 1) -> jax.Array:
  """Mean of `x` `[batch, W, ...]` over the frames where `valid` `[batch, W]` is true."""
  weights = valid.astype(x.dtype).reshape(valid.shape + (1,) * (x.ndim - valid.ndim))
  return jnp.sum(x * weights, axis=axis) / jnp.maximum(jnp.sum(weights, axis=axis), 1.0)


class Tower(nn.Module):
  """Frames `[batch, W, inputs]` (and valid `[batch, W]`) -> unit embeddings `[batch, embed_dim]`
  (float32): convolution stem ("embed") and position embedding, transformer blocks, and a head
  that reads `frame_dim` numbers per frame as one vector (or, with `frame_dim` 0, the mean)."""

  window: int
  width: int
  num_heads: int
  mlp_dim: int
  num_layers: int
  embed_dim: int
  stem_kernel: int = 1
  frame_dim: int = 0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, valid: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    if x.shape[1] != self.window:
      raise ValueError(f"CAPP windows are {self.window} frames; got {x.shape[1]}")
    x = x.astype(self.dtype) * valid[..., None].astype(self.dtype)
    x = nn.Conv(self.width, (self.stem_kernel,), padding="SAME", name="embed", **kw)(x)
    position = self.param("position", nn.initializers.normal(0.02), (self.window, self.width),
                          self.param_dtype)
    x = x + position.astype(self.dtype)[None]
    for i in range(self.num_layers):
      x = MaskedBlock(self.num_heads, self.mlp_dim, name=f"block{i}", **kw)(x, valid)
    x = nn.LayerNorm(name="norm", **kw)(x)
    if self.frame_dim:
      frames = nn.Dense(self.frame_dim, dtype=jnp.float32, param_dtype=self.param_dtype,
                        name="frame_projection")(x.astype(jnp.float32))
      pooled = (frames * valid[..., None]).reshape(x.shape[0], -1)
    else:
      pooled = masked_mean(x.astype(jnp.float32), valid)
    out = nn.Dense(self.embed_dim, dtype=jnp.float32, param_dtype=self.param_dtype,
                   name="projection")(pooled)
    return out / jnp.maximum(jnp.linalg.norm(out, axis=-1, keepdims=True), 1e-6)


def pose_inputs(pose: jax.Array, valid: jax.Array, pose_scale, velocity_scale) -> jax.Array:
  """Pose `[batch, W, 3]` radians -> the pose tower's inputs `[batch, W, 6]`: the pose about its
  mean over the window's valid frames over `pose_scale`, and its change from the previous frame
  over `velocity_scale` (0 at the first frame and next to invalid frames). Invalid frames are 0."""
  valid_f = valid[..., None].astype(jnp.float32)
  pose = jnp.where(valid[..., None], pose.astype(jnp.float32), 0.0)
  centred = (pose - masked_mean(pose, valid)[:, None]) * valid_f
  step = jnp.diff(pose, axis=1) * (valid_f[:, 1:] * valid_f[:, :-1])
  velocity = jnp.concatenate([jnp.zeros_like(step[:, :1]), step], axis=1)
  return jnp.concatenate([centred / jnp.asarray(pose_scale, jnp.float32),
                          velocity / jnp.asarray(velocity_scale, jnp.float32)], axis=-1)


class CappModel(nn.Module):
  """(audio features `[batch, W, audio_dim]`, pose `[batch, W, 3]` radians, valid `[batch, W]`) ->
  (audio embeddings, pose embeddings) `[batch, embed_dim]` of unit length, and the logit scale."""

  config: CappConfig
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def setup(self):
    c = self.config
    kw = dict(window=c.window, width=c.width, num_heads=c.num_heads, mlp_dim=c.mlp_dim,
              embed_dim=c.embed_dim, stem_kernel=c.stem_kernel, frame_dim=c.frame_dim,
              dtype=self.dtype, param_dtype=self.param_dtype)
    self.audio_tower = Tower(num_layers=c.audio_layers, **kw)
    self.pose_tower = Tower(num_layers=c.pose_layers, **kw)
    self.logit_scale = self.param("logit_scale", nn.initializers.constant(INITIAL_LOGIT_SCALE),
                                  (), jnp.float32)

  def embed_audio(self, audio: jax.Array, valid: jax.Array) -> jax.Array:
    return self.audio_tower(audio, valid)

  def embed_pose(self, pose: jax.Array, valid: jax.Array) -> jax.Array:
    c = self.config
    return self.pose_tower(pose_inputs(pose, valid, c.pose_scale, c.velocity_scale), valid)

  def temperature_scale(self) -> jax.Array:
    """exp(logit_scale), capped at 100."""
    return jnp.exp(jnp.minimum(self.logit_scale, MAX_LOGIT_SCALE))

  def __call__(self, audio: jax.Array, pose: jax.Array, valid: jax.Array):
    return (self.embed_audio(audio, valid), self.embed_pose(pose, valid),
            self.temperature_scale())


def dummy_inputs(config: CappConfig, batch: int = 1):
  return (jnp.zeros((batch, config.window, config.audio_dim), jnp.float32),
          jnp.zeros((batch, config.window, POSE_DIM), jnp.float32),
          jnp.ones((batch, config.window), bool))
