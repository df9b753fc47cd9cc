"""The motion generator: a diffusion transformer over time that predicts a window of clean motion.

Input sequence, one token per video frame, previous window first (K + W tokens):
  previous K frames: the last K frames of motion X_pre (clean) and their audio A_pre;
  current W frames:  the noisy motion x_t and the window's audio A.
Each token is Dense(motion) + Dense(audio) + a learned position embedding, so audio enters frame by
frame and the previous window is concatenated with the noisy one along time (VASA-1's C = [X_pre,
A_pre; A, ...]). Whole-window conditions, the diffusion step t, gaze g (theta, phi), head distance d
and emotion e, enter by `conditioning`:
  "adaln_zero" (default): their summed embeddings modulate every block through adaptive LayerNorm
    with zero-initialised gates (DiT, Peebles & Xie 2023). Chosen because DiT's own comparison
    found it better than in-context tokens at lower cost, every block sees the diffusion step
    directly, and zero gates make each block the identity at initialisation.
  "tokens" (the ablation): each becomes one extra token in front of the sequence, and the blocks
    are plain pre-LayerNorm transformer blocks.
The output head reads the W current tokens and is zero-initialised, so an untrained model predicts
x0 = 0 (the data mean, as motion is normalised).

Conditions can be absent (`keep` masks; classifier-free guidance, `vasa_jax.diffusion.guidance`):
an absent one is replaced by a learned "absent" embedding: per frame for audio (so the tail of a
window can lack audio), per example for gaze, distance and emotion, and the whole previous window
(motion and audio) for "previous".

Sizes are named variants (`VARIANTS`): "tiny" for tests on a CPU, "small", "paper" (8 layers,
width 512, 8 heads, MLP 1024: 29.4M parameters in the 8 blocks, 32.0M in all with 519-dim motion
and 1024-dim audio features; `tests/models/test_motion_dit.py` checks the count).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vasa_jax.errors import UserError
from vasa_jax.models import layers

Dtype = Any

VARIANTS: dict[str, dict[str, int]] = {
    "tiny": dict(num_layers=2, width=64, num_heads=4, mlp_dim=128),
    "small": dict(num_layers=4, width=256, num_heads=4, mlp_dim=512),
    "base": dict(num_layers=8, width=384, num_heads=6, mlp_dim=768),
    "paper": dict(num_layers=8, width=512, num_heads=8, mlp_dim=1024),
}
CONDITIONINGS = ("adaln_zero", "tokens")
# Conditions with a `keep` mask: audio is per frame [batch, W], the others per example [batch].
CONDITIONS = ("audio", "gaze", "distance", "emotion", "previous")


@dataclasses.dataclass(frozen=True)
class MotionDiTConfig:
  """Sizes of the motion transformer; `motion_dim` and `audio_dim` come from the latent cache."""

  motion_dim: int
  audio_dim: int
  window: int  # W: frames generated at once.
  context: int  # K: frames of the previous window conditioned on.
  num_layers: int = 2
  width: int = 64
  num_heads: int = 4
  mlp_dim: int = 128
  num_emotions: int = 4
  conditioning: str = "adaln_zero"
  audio_filter: int = 0  # Frames of a learned per-channel temporal filter on audio; 0: none.


def make_config(variant: str, *, motion_dim: int, audio_dim: int, window: int, context: int,
                num_emotions: int, conditioning: str = "adaln_zero",
                audio_filter: int = 0) -> MotionDiTConfig:
  if variant not in VARIANTS:
    raise UserError(f"motion model variant {variant!r} is unknown; use one of {sorted(VARIANTS)}")
  if conditioning not in CONDITIONINGS:
    raise UserError(f"conditioning {conditioning!r} is unknown; use one of {CONDITIONINGS}")
  if window < 1 or context < 0:
    raise UserError(f"window W={window} and context K={context}: W must be >= 1 and K >= 0")
  sizes = VARIANTS[variant]
  if sizes["width"] % sizes["num_heads"]:
    raise UserError(f"variant {variant}: width must divide into heads")
  if audio_filter < 0 or (audio_filter and audio_filter % 2 == 0):
    raise UserError(f"audio_filter={audio_filter}: use 0 (none) or an odd number of frames")
  return MotionDiTConfig(motion_dim=motion_dim, audio_dim=audio_dim, window=window, context=context,
                         num_emotions=num_emotions, conditioning=conditioning,
                         audio_filter=audio_filter, **sizes)


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10000.0) -> jax.Array:
  """Sinusoidal embedding `[batch, dim]` of integer steps `[batch]`."""
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
  args = t.astype(jnp.float32)[:, None] * freqs[None]
  return jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)


class Mlp(nn.Module):
  hidden: int
  out: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = nn.gelu(nn.Dense(self.hidden, name="fc1", **kw)(x))
    return nn.Dense(self.out, name="fc2", **kw)(x)


class Block(nn.Module):
  """Pre-LayerNorm transformer block; with `cond` `[batch, width]`, adaLN-Zero modulated."""

  num_heads: int
  mlp_dim: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    width = x.shape[-1]
    attention = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, name="attention",
                                                attention_fn=layers.fused_attention, **kw)
    mlp = Mlp(self.mlp_dim, width, name="mlp", **kw)
    if cond is None:
      x = x + attention(nn.LayerNorm(name="norm1", **kw)(x))
      return x + mlp(nn.LayerNorm(name="norm2", **kw)(x))
    modulation = nn.Dense(6 * width, kernel_init=nn.initializers.zeros, name="modulation",
                          **kw)(nn.silu(cond))
    shift1, scale1, gate1, shift2, scale2, gate2 = jnp.split(modulation[:, None], 6, axis=-1)
    norm = lambda name: nn.LayerNorm(use_scale=False, use_bias=False, name=name, **kw)  # noqa: E731
    x = x + gate1 * attention(norm("norm1")(x) * (1 + scale1) + shift1)
    return x + gate2 * mlp(norm("norm2")(x) * (1 + scale2) + shift2)


class MotionDiT(nn.Module):
  """x0 prediction for a window of motion; see the module docstring."""

  config: MotionDiTConfig
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_t: jax.Array, t: jax.Array, conditions: dict[str, jax.Array],
               keep: dict[str, jax.Array]) -> jax.Array:
    """Predicts x0.

    Args:
      x_t: `[batch, W, motion_dim]` noisy motion of the current window.
      t: `[batch]` integer diffusion steps.
      conditions: "previous_motion" `[batch, K, motion_dim]`, "previous_audio" `[batch, K,
        audio_dim]`, "audio" `[batch, W, audio_dim]`, "gaze" `[batch, 2]`, "distance" `[batch]`,
        "emotion" int `[batch]`.
      keep: bool masks: "audio" `[batch, W]`, "gaze", "distance", "emotion", "previous"
        `[batch]`; False replaces that condition by its learned "absent" embedding.

    Returns:
      x0_hat `[batch, W, motion_dim]` float32.
    """
    c = self.config
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    embed_init = nn.initializers.normal(0.02)
    absent = lambda name: self.param(name, embed_init, (c.width,), self.param_dtype)  # noqa: E731
    motion_in = nn.Dense(c.width, name="motion_in", **kw)
    audio_in = nn.Dense(c.width, name="audio_in", **kw)

    # Per-frame tokens, previous window first. Absent audio is replaced before the temporal
    # filter, so nothing of it reaches the output.
    audio_absent = absent("audio_absent")
    audio_tokens = audio_in(conditions["audio"])
    audio_tokens = jnp.where(keep["audio"][..., None], audio_tokens,
                             audio_absent.astype(audio_tokens.dtype))
    if c.context:
      previous_audio = audio_in(conditions["previous_audio"])
      previous_audio = jnp.where(keep["previous"][:, None, None], previous_audio,
                                 audio_absent.astype(previous_audio.dtype))
      audio_tokens = jnp.concatenate([previous_audio, audio_tokens], axis=1)
    if c.audio_filter > 1:
      # Starts as a moving average over `audio_filter` frames: frame-level audio features jitter
      # from frame to frame, and so would the motion generated from them.
      audio_tokens = nn.Conv(
          c.width, (c.audio_filter,), padding="SAME", feature_group_count=c.width,
          use_bias=False, kernel_init=nn.initializers.constant(1.0 / c.audio_filter),
          name="audio_filter", **kw)(audio_tokens)
    tokens = audio_tokens[:, c.context:] + motion_in(x_t)
    if c.context:
      previous = motion_in(conditions["previous_motion"]) + audio_tokens[:, :c.context]
      previous = jnp.where(keep["previous"][:, None, None], previous,
                           absent("previous_absent").astype(previous.dtype))
      tokens = jnp.concatenate([previous, tokens], axis=1)
    positions = self.param("position_embedding", embed_init, (c.context + c.window, c.width),
                           self.param_dtype)
    tokens = tokens + positions.astype(tokens.dtype)[None]

    # Whole-window conditions.
    step = Mlp(c.width, c.width, name="step_embedding", **kw)(timestep_embedding(t, 256))
    gaze = Mlp(c.width, c.width, name="gaze_embedding", **kw)(conditions["gaze"])
    gaze = jnp.where(keep["gaze"][:, None], gaze, absent("gaze_absent").astype(gaze.dtype))
    distance = Mlp(c.width, c.width, name="distance_embedding", **kw)(
        conditions["distance"][:, None])
    distance = jnp.where(keep["distance"][:, None], distance,
                         absent("distance_absent").astype(distance.dtype))
    # The last row of the table is "no emotion given".
    emotion_index = jnp.where(keep["emotion"], conditions["emotion"], c.num_emotions)
    emotion = nn.Embed(c.num_emotions + 1, c.width, embedding_init=embed_init,
                       name="emotion_embedding", **kw)(emotion_index)

    if c.conditioning == "adaln_zero":
      cond = step + gaze + distance + emotion
      x = tokens
    else:
      cond = None
      globals_ = jnp.stack([step, gaze, distance, emotion], axis=1)
      x = jnp.concatenate([globals_.astype(tokens.dtype), tokens], axis=1)
    for index in range(c.num_layers):
      x = Block(c.num_heads, c.mlp_dim, name=f"block_{index}", **kw)(x, cond)
    x = x[:, -c.window:]

    if cond is None:
      x = nn.LayerNorm(name="out_norm", **kw)(x)
    else:
      shift, scale = jnp.split(nn.Dense(2 * c.width, kernel_init=nn.initializers.zeros,
                                        name="out_modulation", **kw)(nn.silu(cond))[:, None], 2, -1)
      x = nn.LayerNorm(use_scale=False, use_bias=False, name="out_norm", **kw)(x)
      x = x * (1 + scale) + shift
    out = nn.Dense(c.motion_dim, kernel_init=nn.initializers.zeros, name="out", **kw)(x)
    return out.astype(jnp.float32)


def all_kept(batch: int, window: int) -> dict[str, jax.Array]:
  """`keep` with every condition present."""
  keep = {name: jnp.ones((batch,), bool) for name in CONDITIONS}
  keep["audio"] = jnp.ones((batch, window), bool)
  return keep


def dummy_inputs(config: MotionDiTConfig, batch: int = 1):
  """Zero inputs of the right shapes: (x_t, t, conditions, keep), for init and shape checks."""
  conditions = {
      "previous_motion": jnp.zeros((batch, config.context, config.motion_dim), jnp.float32),
      "previous_audio": jnp.zeros((batch, config.context, config.audio_dim), jnp.float32),
      "audio": jnp.zeros((batch, config.window, config.audio_dim), jnp.float32),
      "gaze": jnp.zeros((batch, 2), jnp.float32),
      "distance": jnp.zeros((batch,), jnp.float32),
      "emotion": jnp.zeros((batch,), jnp.int32),
  }
  return (jnp.zeros((batch, config.window, config.motion_dim), jnp.float32),
          jnp.zeros((batch,), jnp.int32), conditions, all_kept(batch, config.window))
