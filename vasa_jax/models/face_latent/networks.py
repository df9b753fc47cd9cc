"""The face latent networks (MegaPortraits-style 3D-warping autoencoder) and their discriminator.

An image becomes four latents (see `FaceLatentModel.encode`):
  v_app   `[batch, D, h, w, C]` canonical (pose-free) appearance volume;
  z_id    `[batch, id_dim]` identity code;
  z_pose  `[batch, 7]` head pose as in `warping`: [yaw, pitch, roll, tx, ty, tz, log_scale];
  z_dyn   `[batch, dyn_dim]` facial dynamics.
The appearance encoder lifts the image to a volume in the source pose; a warp generator
conditioned on (z_dyn, z_id) predicts a non-rigid flow, and the volume is taken to canonical space
by the inverse source pose and that flow. Decoding runs the other way with a second warp generator
(as in MegaPortraits, one for each direction): flow and target pose warp v_app out of canonical
space, a 3D U-Net refines the posed volume, and the renderer folds depth into channels and
upsamples to pixels.

Sizes come from named variants (`VARIANTS`, `face_latent_config`): "tiny" (64 px, trains on CPU in
tests), "small" (128 px, trains on a CPU in hours), "base" (256 px) and "paper" (512 px, MegaPortraits sizes, about 200M parameters).
The multi-scale patch discriminator used by the adversarial and feature-matching losses is here too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vasa_jax.errors import UserError
from vasa_jax.models import layers
from vasa_jax.models.face_latent import alignment, warping

Dtype = Any

VARIANTS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        image_size=64, volume_channels=16, volume_depth=4, volume_size=16,
        app_channels=(16, 32, 32), app_blocks_3d=1,
        id_dim=32, id_width=8, id_blocks=(1, 1, 1, 1), id_bottleneck=True,
        dyn_dim=32, motion_width=8, motion_blocks=(1, 1, 1, 1),
        warp_start=(1, 4, 4), warp_start_channels=32, warp_channels=(32, 16),
        unet_channels=(16, 32, 64), unet_blocks=1,
        render_channels=64, render_blocks=2, render_up_channels=(32, 16),
        disc_channels=(16, 32, 64, 64), disc_scales=2),
    "small": dict(
        image_size=128, volume_channels=16, volume_depth=8, volume_size=32,
        app_channels=(32, 64, 64), app_blocks_3d=1,
        id_dim=64, id_width=16, id_blocks=(1, 1, 1, 1), id_bottleneck=True,
        dyn_dim=64, motion_width=16, motion_blocks=(1, 1, 1, 1),
        warp_start=(1, 4, 4), warp_start_channels=64, warp_channels=(64, 32, 16),
        unet_channels=(16, 32, 64), unet_blocks=1,
        render_channels=64, render_blocks=2, render_up_channels=(32, 16),
        disc_channels=(32, 64, 128, 128), disc_scales=2),
    "base": dict(
        image_size=256, volume_channels=64, volume_depth=16, volume_size=32,
        app_channels=(64, 128, 256, 256), app_blocks_3d=2,
        id_dim=512, id_width=64, id_blocks=(3, 4, 6, 3), id_bottleneck=True,
        dyn_dim=256, motion_width=64, motion_blocks=(2, 2, 2, 2),
        warp_start=(4, 8, 8), warp_start_channels=256, warp_channels=(128, 64),
        unet_channels=(64, 128, 256, 512), unet_blocks=1,
        render_channels=256, render_blocks=6, render_up_channels=(128, 64, 32),
        disc_channels=(64, 128, 256, 512), disc_scales=2),
    "paper": dict(
        image_size=512, volume_channels=96, volume_depth=16, volume_size=64,
        app_channels=(64, 128, 256, 512), app_blocks_3d=6,
        id_dim=512, id_width=64, id_blocks=(3, 4, 6, 3), id_bottleneck=True,
        dyn_dim=512, motion_width=64, motion_blocks=(2, 2, 2, 2),
        warp_start=(4, 8, 8), warp_start_channels=512, warp_channels=(256, 128, 64),
        unet_channels=(96, 192, 384, 768), unet_blocks=1,
        render_channels=512, render_blocks=8, render_up_channels=(256, 128, 64),
        disc_channels=(64, 128, 256, 512), disc_scales=3),
}


@dataclasses.dataclass(frozen=True)
class FaceLatentConfig:
  """Sizes of the face latent networks; see `VARIANTS` for values.

  Geometry: image `image_size`^2; appearance volume `volume_channels` x `volume_depth` x
  `volume_size`^2. The appearance encoder pools by 2 after each 2D stage until `volume_size`; the
  renderer upsamples by 2 once per entry of `render_up_channels` back to `image_size`; the warp
  generators start from a learned `warp_start` (depth, height, width) volume and upsample by 2
  (per axis, until the volume's size) once per entry of `warp_channels`.
  """

  image_size: int
  volume_channels: int
  volume_depth: int
  volume_size: int
  app_channels: tuple[int, ...]
  app_blocks_3d: int
  id_dim: int
  id_width: int
  id_blocks: tuple[int, ...]
  id_bottleneck: bool
  dyn_dim: int
  motion_width: int
  motion_blocks: tuple[int, ...]
  warp_start: tuple[int, int, int]
  warp_start_channels: int
  warp_channels: tuple[int, ...]
  unet_channels: tuple[int, ...]
  unet_blocks: int
  render_channels: int
  render_blocks: int
  render_up_channels: tuple[int, ...]
  disc_channels: tuple[int, ...]
  disc_scales: int
  # Design choices that make the model learn (each can be turned off for an ablation; all ours
  # where the papers are silent):
  # the codes (z_dyn, z_id) enter each warp generator as its input, through a dense layer to a
  # `warp_start` volume of `warp_input_channels`; False: a learned constant volume, the codes only
  # modulating its norms.
  warp_input: bool = True
  warp_input_channels: int = 32
  # std of the final flow layer's output at initialisation, in grid units (about a tenth of a voxel
  # of a 16-wide volume for 1e-2).
  flow_init: float = 1e-2
  # The flow is predicted at the volume's size divided by this (per axis, never below 1) and
  # upsampled trilinearly: a smooth field at a fraction of the cost.
  flow_stride: int = 2
  # Bilinear / trilinear upsampling in the renderer, warp generators and U-Net (False: nearest
  # neighbour, which draws blocks).
  linear_upsampling: bool = True
  # GroupNorm groups hold at least this many channels (1: as many groups as channels up to 32).
  min_group_size: int = 8
  # Residual branches end in a per-channel gain initialised at 0, so blocks start as identities.
  zero_branches: bool = True
  # Separate ResNet trunks for head pose and for dynamics (False: one shared trunk).
  separate_motion_trunks: bool = True
  # The renderer also predicts an alpha mask; the frame is the rendered head composited over the
  # source image (an unwarped background path: shoulders and backdrop stay still while the head
  # moves). False: the whole frame comes out of the warped volume. Unwarped (`background_warp`
  # False), the source copied through an alpha near 0 is an easy minimum that the motion codes
  # never leave (`trainers.face_latent.foreground_loss`).
  background_path: bool = True
  # The 2D renderer's residual blocks are modulated by z_dyn (adaptive GroupNorm), a direct path
  # for what a warp cannot draw (a mouth opening over teeth, closing eyelids) beside the warps.
  # Ours: MegaPortraits' renderer is unconditioned.
  render_dynamics: bool = False
  # With the background path, the background is the source image carried to the target's pose and
  # dynamics by the model's own two 3D warps (source pose and flow into canonical space, target
  # flow and pose out), projected onto the image plane with per-pixel weights over the volume's
  # depth that the renderer predicts, and blended with the unwarped image by a per-pixel weight it
  # predicts too (a still backdrop and shoulders stay still); the rendered head is composited over
  # that. Ours (MegaPortraits
  # renders from the warped volume alone): the pixels keep the photo's detail, which a small model
  # trained briefly does not draw, and the motion codes move sharp edges from the first step.
  # False: the source image unwarped.
  background_warp: bool = False
  # With the background path, the renderer adds a correction to the (warped) background instead of
  # drawing a layer composited over it: the frame is the background plus the renderer's output
  # (its last layer initialised at zero, so training starts from the warped photo), clipped to
  # [-1, 1]; the alpha is not used. Ours: a warp moves the photo's pixels but cannot draw what the
  # photo does not show (teeth and the inside of an opening mouth, closing lids), and a layer drawn
  # from the volume is a blur for thousands of steps; a correction needs to draw only what changed.
  background_residual: bool = False
  # The warp generators add a linear flow per z_dyn entry to their convolutional output: a learned
  # basis of flows at the flow's size (zero at the start), weighted by z_dyn, so each dynamics
  # entry moves the volume directly (a jaw drop is one smooth flow of the lower face). Ours, after
  # LIA's linear motion directions; MegaPortraits' flow comes from the convolutions alone. False
  # here so that runs from before it load as they trained; the recipe
  # (`configs.face_latent.default_model`) sets True. It adds dyn_dim x the flow's cells x 3
  # parameters per warp generator: 25.2M over both at the paper's size (209M before), a few MFLOP.
  # Measured at 64 px (2000 steps of the first phase on the demo's data): z_dyn reads the jaw at
  # r 0.76 on held-out identities with the basis, 0.01 without, at the same PSNR (27.39 dB).
  flow_basis: bool = False
  # How much the dynamics trunk's stem downsamples its input: 4 is ResNet's (a stride-2 7x7
  # convolution and a stride-2 max pool), 2 keeps the pool out, 1 both. Ours: at 64 px a mouth is
  # about 6 pixels wide, under 2 after ResNet's stem.
  motion_stem_stride: int = 4
  # The dynamics trunk reads a face-aligned crop of this fraction of the image's side, cut at the
  # eye and mouth landmarks (`alignment`: translation, scale and roll taken out); it reaches
  # `dynamics_crop_extent` eye-to-mouth distances to each side of its centre. 0 (the default, so
  # that runs from before the switch load as they trained): the whole image, as MegaPortraits and
  # VASA-1. The recipe (`configs.face_latent.default_model`) sets 0.5. Ours: on the whole 64 px
  # frame the dynamics trunk did not learn the jaw even when told it.
  dynamics_crop: float = 0.0
  dynamics_crop_extent: float = 0.9
  # The pose head also reads the landmarks' geometry (`alignment.landmark_features`: where the
  # eyes, nose, mouth, chin and forehead sit, and their shape about the eyes) through a small MLP,
  # beside the pose trunk. Ours: at 64 px the tiny pose trunk alone read yaw on held-out
  # identities at r 0.66 after 500 steps of training on the label
  # (`benchmarks/motion_encoder_probe.py --label yaw --dynamics_crop 0`).
  pose_landmarks: bool = False
  # A linear map from the change of z_dyn (and of z_pose, without gradient) between two frames of
  # one face to the change of their face-aligned crops, trained by the `crop_difference` loss: what
  # varies most between a face's frames (the jaw, the lids) becomes z_dyn's, as in a principal
  # component analysis of the differences. Ours. Needs `dynamics_crop`. The crops are compared at
  # `crop_difference_size` pixels a side at most (the map has that squared x 3 x (dyn_dim + 7)
  # weights: 1.6M at the paper's size).
  crop_difference: bool = False
  crop_difference_size: int = 32

  @property
  def volume_shape(self) -> tuple[int, int, int]:
    """(depth, height, width) of the appearance volume."""
    return (self.volume_depth, self.volume_size, self.volume_size)


def face_latent_config(variant: str, **overrides: Any) -> dict[str, Any]:
  """The sizes of a named variant ("tiny", "base", "paper"), with `overrides` applied (sizes or the
  design switches of `FaceLatentConfig`)."""
  if variant not in VARIANTS:
    raise UserError(f"unknown face latent variant {variant!r}; known: {sorted(VARIANTS)}")
  config = dict(VARIANTS[variant])
  known = set(config) | {f.name for f in dataclasses.fields(FaceLatentConfig)}
  unknown = set(overrides) - known
  if unknown:
    raise UserError(f"unknown face latent config keys {sorted(unknown)}")
  config.update(overrides)
  return {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}


def make_config(variant: str | FaceLatentConfig, **overrides: Any) -> FaceLatentConfig:
  """A `FaceLatentConfig` from a variant name (or an existing config) and overrides."""
  if isinstance(variant, FaceLatentConfig):
    return dataclasses.replace(variant, **overrides)
  return FaceLatentConfig(**face_latent_config(variant, **overrides))


def _blocks(cfg: FaceLatentConfig) -> dict[str, Any]:
  """Keyword arguments of `layers.ResBlock` that follow the config's design switches."""
  return dict(min_group_size=cfg.min_group_size, branch_init=0.0 if cfg.zero_branches else None)


def _norm(cfg: FaceLatentConfig, channels: int, **kw) -> nn.GroupNorm:
  return layers.group_norm(channels, min_group_size=cfg.min_group_size, **kw)


def _upsample(cfg: FaceLatentConfig, x: jax.Array, factors: Sequence[int]) -> jax.Array:
  return (layers.upsample_linear if cfg.linear_upsampling else layers.upsample)(x, factors)


def face_crop(cfg: FaceLatentConfig, image: jax.Array, landmarks: jax.Array | None
              ) -> jax.Array:
  """The face-aligned crop of `image` the dynamics trunk reads: `dynamics_crop` of the image's side
  (at least 8 pixels), cut at `landmarks` (`alignment.aligned_crop`)."""
  return alignment.aligned_crop(image, landmarks, crop_size(cfg, image.shape[1]),
                                cfg.dynamics_crop_extent)


def crop_size(cfg: FaceLatentConfig, image_size: int | None = None) -> int:
  """The side of `face_crop`'s crop of an image of `image_size` (default: the config's)."""
  return max(8, int(round(cfg.dynamics_crop * (image_size or cfg.image_size))))


def crop_change(cfg: FaceLatentConfig, source: jax.Array, source_landmarks: jax.Array | None,
                driving: jax.Array, driving_landmarks: jax.Array | None) -> jax.Array:
  """How the face-aligned crop changes from `source` to `driving` (`[batch, s, s, 3]` float32,
  s = `crop_difference_size` at most): what `FaceLatentModel.predict_crop_difference` predicts."""
  change = (face_crop(cfg, driving, driving_landmarks).astype(jnp.float32)
            - face_crop(cfg, source, source_landmarks).astype(jnp.float32))
  side = _difference_size(cfg)
  if change.shape[1] != side:
    change = jax.image.resize(change, (change.shape[0], side, side, 3), "linear", antialias=True)
  return change


def _difference_size(cfg: FaceLatentConfig) -> int:
  return min(crop_size(cfg), cfg.crop_difference_size)


def _pool_factors(shape: Sequence[int]) -> tuple[int, ...]:
  # Axes already at size 1 (shallow depths of small volumes) stay as they are.
  return tuple(2 if s > 1 else 1 for s in shape)


class AppearanceEncoder(nn.Module):
  """Image `[batch, H, W, 3]` -> appearance volume in the source pose `[batch, D, h, w, C]`."""

  config: FaceLatentConfig
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, image: jax.Array) -> jax.Array:
    cfg, kw = self.config, dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = layers.conv(cfg.app_channels[0], 7, 2, standardize=False, name="stem", **kw)(image)
    for features in cfg.app_channels:
      x = layers.ResBlock2D(features, **_blocks(cfg), **kw)(x)
      if x.shape[1] > cfg.volume_size:
        x = layers.avg_pool(x, (2, 2))
    if x.shape[1:3] != (cfg.volume_size, cfg.volume_size):
      raise UserError(f"appearance encoder reached {x.shape[1:3]}, not the volume size "
                      f"{cfg.volume_size}: give app_channels more stages")
    x = nn.relu(_norm(cfg, x.shape[-1], **kw)(x))
    x = layers.conv(cfg.volume_channels * cfg.volume_depth, 1, 2, name="to_volume", **kw)(x)
    batch, height, width, _ = x.shape
    x = x.reshape(batch, height, width, cfg.volume_depth, cfg.volume_channels)
    x = jnp.transpose(x, (0, 3, 1, 2, 4))
    for _ in range(cfg.app_blocks_3d):
      x = layers.ResBlock3D(cfg.volume_channels, **_blocks(cfg), **kw)(x)
    return x


class _BasicBlock(nn.Module):
  """ResNet-18/34 block with GroupNorm; the last norm starts at zero, so the block starts as the
  identity."""

  features: int
  strides: int = 1
  min_group_size: int = 1
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    h = layers.conv(self.features, 3, 2, strides=self.strides, use_bias=False, **kw)(x)
    h = nn.relu(layers.group_norm(self.features, min_group_size=self.min_group_size, **kw)(h))
    h = layers.conv(self.features, 3, 2, use_bias=False, **kw)(h)
    h = nn.GroupNorm(layers.num_groups(self.features, min_group_size=self.min_group_size),
                     scale_init=nn.initializers.zeros, **kw)(h)
    if x.shape[-1] != self.features or self.strides != 1:
      x = layers.conv(self.features, 1, 2, strides=self.strides, use_bias=False, name="skip",
                      **kw)(x)
      x = layers.group_norm(self.features, min_group_size=self.min_group_size, **kw)(x)
    return nn.relu(x + h)


class _BottleneckBlock(nn.Module):
  """ResNet-50 bottleneck (1x1, 3x3 strided, 1x1 to 4x width) with GroupNorm."""

  features: int
  strides: int = 1
  min_group_size: int = 1
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    out = 4 * self.features
    h = layers.conv(self.features, 1, 2, use_bias=False, **kw)(x)
    h = nn.relu(layers.group_norm(self.features, min_group_size=self.min_group_size, **kw)(h))
    h = layers.conv(self.features, 3, 2, strides=self.strides, use_bias=False, **kw)(h)
    h = nn.relu(layers.group_norm(self.features, min_group_size=self.min_group_size, **kw)(h))
    h = layers.conv(out, 1, 2, use_bias=False, **kw)(h)
    h = nn.GroupNorm(layers.num_groups(out, min_group_size=self.min_group_size),
                     scale_init=nn.initializers.zeros, **kw)(h)
    if x.shape[-1] != out or self.strides != 1:
      x = layers.conv(out, 1, 2, strides=self.strides, use_bias=False, name="skip", **kw)(x)
      x = layers.group_norm(out, min_group_size=self.min_group_size, **kw)(x)
    return nn.relu(x + h)


class ResNetTrunk(nn.Module):
  """ResNet with GroupNorm and weight standardisation: image `[batch, H, W, 3]` ->
  `[batch, features]` (global average of the last stage). `blocks` per stage; stages double the
  width and halve the size."""

  width: int
  blocks: tuple[int, ...]
  bottleneck: bool
  min_group_size: int = 1
  stem_stride: int = 4  # 4: stride-2 convolution and stride-2 max pool; 2: no pool; 1: neither.
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, image: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    block = _BottleneckBlock if self.bottleneck else _BasicBlock
    if self.stem_stride not in (1, 2, 4):
      raise ValueError(f"stem_stride {self.stem_stride}: use 1, 2 or 4")
    x = layers.conv(self.width, 7, 2, strides=min(self.stem_stride, 2), standardize=False,
                    use_bias=False, name="stem", **kw)(image)
    x = nn.relu(layers.group_norm(self.width, min_group_size=self.min_group_size, **kw)(x))
    if self.stem_stride == 4:
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
    for stage, count in enumerate(self.blocks):
      for index in range(count):
        strides = 2 if stage > 0 and index == 0 else 1
        x = block(self.width * 2**stage, strides=strides, min_group_size=self.min_group_size,
                  **kw)(x)
    return jnp.mean(x, axis=(1, 2))


class IdentityEncoder(nn.Module):
  """Image `[batch, H, W, 3]` -> identity code z_id `[batch, id_dim]` (ResNet-50-like)."""

  config: FaceLatentConfig
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, image: jax.Array) -> jax.Array:
    cfg, kw = self.config, dict(dtype=self.dtype, param_dtype=self.param_dtype)
    trunk = ResNetTrunk(cfg.id_width, cfg.id_blocks, cfg.id_bottleneck, name="trunk",
                        min_group_size=cfg.min_group_size, **kw)
    features = trunk(image)
    return nn.Dense(cfg.id_dim, name="head", **kw)(features)


class MotionEncoder(nn.Module):
  """(image `[batch, H, W, 3]`, landmarks `[batch, 6, 2]` or None) -> (z_pose `[batch, 7]`,
  z_dyn `[batch, dyn_dim]`) (ResNet-18-like).

  Pose and dynamics have trunks of their own (`separate_motion_trunks`), so what one learns does
  not have to be shared with the other; with `dynamics_crop` the dynamics trunk reads the
  face-aligned crop cut at the landmarks (`alignment`; unknown landmarks: the canonical crop's
  positions) while the pose trunk reads the whole image. The pose head is float32 and starts near
  zero, i.e. near the identity pose, so training begins with the rigid warps off and the volumes
  aligned.
  """

  config: FaceLatentConfig
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, image: jax.Array, landmarks: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array]:
    cfg, kw = self.config, dict(dtype=self.dtype, param_dtype=self.param_dtype)
    trunk = dict(width=cfg.motion_width, blocks=cfg.motion_blocks, bottleneck=False,
                 min_group_size=cfg.min_group_size, **kw)
    dynamics_input = image
    if cfg.dynamics_crop:
      if not cfg.separate_motion_trunks:
        raise UserError("dynamics_crop needs separate_motion_trunks (the pose trunk reads the "
                        "whole image); fix: set dynamics_crop=0 with a shared trunk")
      dynamics_input = face_crop(cfg, image, landmarks)
    features = ResNetTrunk(name="trunk", stem_stride=cfg.motion_stem_stride, **trunk)(
        dynamics_input)
    pose_features = features
    if cfg.separate_motion_trunks:
      pose_features = ResNetTrunk(name="pose_trunk", **trunk)(image)
    if cfg.pose_landmarks:
      geometry = alignment.landmark_features(landmarks, image.shape[0]).astype(self.dtype)
      for index in range(2):
        geometry = nn.relu(nn.Dense(4 * cfg.motion_width, name=f"pose_geometry_{index}",
                                    **kw)(geometry))
      pose_features = jnp.concatenate([pose_features, geometry], axis=-1)
    z_pose = nn.Dense(warping.POSE_DIM, kernel_init=nn.initializers.normal(1e-3),
                      dtype=jnp.float32, param_dtype=self.param_dtype,
                      name="pose_head")(pose_features.astype(jnp.float32))
    z_dyn = nn.Dense(cfg.dyn_dim, name="dyn_head", **kw)(features)
    return z_pose, z_dyn


class WarpGenerator(nn.Module):
  """(z_dyn `[batch, dyn_dim]`, z_id `[batch, id_dim]`) -> non-rigid flow `[batch, D, h, w, 3]`.

  As in MegaPortraits and EMOPortraits, the concatenated codes are the generator's input: a dense
  layer makes a small `warp_start` volume, which 3D residual blocks (their GroupNorms modulated by
  the codes too) upsample towards the volume's size; the flow is predicted at `flow_stride` times
  less than the volume per axis and upsampled trilinearly. It is in grid units (`warping`) and
  starts small (`flow_init`) but not zero, so the codes reach the image from the first step.
  """

  config: FaceLatentConfig
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z_dyn: jax.Array, z_id: jax.Array) -> jax.Array:
    cfg, kw = self.config, dict(dtype=self.dtype, param_dtype=self.param_dtype)
    cond = jnp.concatenate([z_dyn, z_id], axis=-1).astype(self.dtype)
    batch = cond.shape[0]
    if cfg.warp_input:
      size = cfg.warp_start[0] * cfg.warp_start[1] * cfg.warp_start[2]
      x = nn.Dense(size * cfg.warp_input_channels, name="input", **kw)(cond)
      x = x.reshape((batch,) + tuple(cfg.warp_start) + (cfg.warp_input_channels,))
    else:
      start = self.param("start", nn.initializers.normal(1.0),
                         tuple(cfg.warp_start) + (cfg.warp_start_channels,), self.param_dtype)
      x = jnp.broadcast_to(start.astype(self.dtype), (batch,) + start.shape)
    x = layers.ResBlock3D(cfg.warp_start_channels, **_blocks(cfg), **kw)(x, cond)
    target = tuple(max(1, s // cfg.flow_stride) for s in cfg.volume_shape)
    for features in cfg.warp_channels:
      factors = tuple(2 if s < t else 1 for s, t in zip(x.shape[1:4], target))
      x = layers.ResBlock3D(features, **_blocks(cfg), **kw)(_upsample(cfg, x, factors), cond)
    if x.shape[1:4] != target:
      raise UserError(f"warp generator reached {x.shape[1:4]}, not {target} (the volume "
                      f"{cfg.volume_shape} / flow_stride {cfg.flow_stride}): check warp_start and "
                      "warp_channels")
    x = nn.relu(_norm(cfg, x.shape[-1], **kw)(x))
    flow_init = nn.initializers.variance_scaling(cfg.flow_init ** 2, "fan_in", "normal")
    flow = layers.conv(3, 3, 3, standardize=False, kernel_init=flow_init, name="to_flow",
                       **kw)(x).astype(jnp.float32)
    if cfg.flow_basis:
      basis = self.param("flow_basis", nn.initializers.zeros,
                         (z_dyn.shape[-1],) + target + (3,), self.param_dtype)
      flow = flow + jnp.einsum("bk,kdhwc->bdhwc", z_dyn.astype(jnp.float32),
                               basis.astype(jnp.float32))
    while flow.shape[1:4] != cfg.volume_shape:
      factors = tuple(2 if s < t else 1 for s, t in zip(flow.shape[1:4], cfg.volume_shape))
      flow = layers.upsample_linear(flow, factors)
    return flow


class CanonicalVolumeNet(nn.Module):
  """3D U-Net `[batch, D, h, w, C]` -> `[batch, D, h, w, C]`, one level per `unet_channels` entry.

  Each level halves height and width (and depth while it is above 1); the output adds to the input,
  so an untrained net passes the warped volume through.
  """

  config: FaceLatentConfig
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, volume: jax.Array) -> jax.Array:
    cfg, kw = self.config, dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = volume.astype(self.dtype)
    skips, factors = [], []
    for level, features in enumerate(cfg.unet_channels):
      for _ in range(cfg.unet_blocks):
        x = layers.ResBlock3D(features, **_blocks(cfg), **kw)(x)
      if level < len(cfg.unet_channels) - 1:
        skips.append(x)
        factors.append(_pool_factors(x.shape[1:4]))
        x = layers.avg_pool(x, factors[-1])
    for features in reversed(cfg.unet_channels[:-1]):
      x = jnp.concatenate([_upsample(cfg, x, factors.pop()), skips.pop()], axis=-1)
      for _ in range(cfg.unet_blocks):
        x = layers.ResBlock3D(features, **_blocks(cfg), **kw)(x)
    x = nn.relu(_norm(cfg, x.shape[-1], **kw)(x))
    x = layers.conv(volume.shape[-1], 1, 3, standardize=False, kernel_init=nn.initializers.zeros,
                    name="out", **kw)(x)
    return volume.astype(self.dtype) + x


class Renderer(nn.Module):
  """Posed volume `[batch, D, h, w, C]` -> (image `[batch, H, W, 3]` in [-1, 1], alpha
  `[batch, H, W, 1]` in (0, 1), background logits `[batch, H, W, D + 1]` or None), all float32.

  Depth is folded into channels and projected by a 1x1 convolution, then 2D residual blocks and one
  x2 upsampling (bilinear with `linear_upsampling`) + residual block per `render_up_channels`
  entry; with `render_dynamics` the blocks' norms are modulated by z_dyn. The alpha (where the
  rendered head covers the background) starts at 0.5 everywhere. With `background_warp` the
  depth logits weigh the volume's depth slices where the warped background is read (uniform at
  initialisation) and, last, where the background moves with the head rather than stays (even
  at initialisation); else they are None. With `background_residual` the image is the correction
  added to the background, unbounded and zero at initialisation.
  """

  config: FaceLatentConfig
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, volume: jax.Array, z_dyn: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    cfg, kw = self.config, dict(dtype=self.dtype, param_dtype=self.param_dtype)
    cond = z_dyn.astype(self.dtype) if cfg.render_dynamics and z_dyn is not None else None
    batch, depth, height, width, channels = volume.shape
    x = jnp.transpose(volume, (0, 2, 3, 1, 4)).reshape(batch, height, width, depth * channels)
    x = layers.conv(cfg.render_channels, 1, 2, name="project", **kw)(x.astype(self.dtype))
    for _ in range(cfg.render_blocks):
      x = layers.ResBlock2D(cfg.render_channels, **_blocks(cfg), **kw)(x, cond)
    for features in cfg.render_up_channels:
      x = layers.ResBlock2D(features, **_blocks(cfg), **kw)(_upsample(cfg, x, (2, 2)), cond)
    x = nn.relu(_norm(cfg, x.shape[-1], **kw)(x))
    residual = cfg.background_path and cfg.background_residual
    rgba = layers.conv(4, 3, 2, standardize=False, name="to_rgba",
                       kernel_init=(nn.initializers.zeros if residual
                                    else nn.initializers.lecun_normal()),
                       **kw)(x).astype(jnp.float32)
    depth_logits = None
    if cfg.background_path and cfg.background_warp:
      depth_logits = layers.conv(cfg.volume_depth + 1, 3, 2, standardize=False,
                                 kernel_init=nn.initializers.zeros, name="to_depth",
                                 **kw)(x).astype(jnp.float32)
    rgb = rgba[..., :3] if residual else jnp.tanh(rgba[..., :3])
    return rgb, jax.nn.sigmoid(rgba[..., 3:]), depth_logits


class FaceLatentModel(nn.Module):
  """The face autoencoder: `encode` an image into latents, `decode` latents into an image.

  Methods (all usable through `model.apply(params, ..., method=...)`):
    encode(image, landmarks=None) -> dict(v_app, z_id, z_pose, z_dyn, background,
      background_flow)
    encode_motion(image, landmarks=None) -> (z_pose, z_dyn)
    decode(v_app, z_id, z_pose, z_dyn, background=None, background_flow=None,
      background_pose=None, return_alpha=False) -> image
      `[batch, H, W, 3]` in [-1, 1] (and the alpha `[batch, H, W, 1]` with `return_alpha`)
    __call__(source, driving, source_landmarks=None, driving_landmarks=None) -> dict(image, v_app,
      z_id, z_pose, z_dyn, background, z_pose_driving, z_dyn_driving, and with
      `config.crop_difference` crop_difference): the source's appearance and identity driven by
      the driving frame's motion.
    predict_crop_difference(dyn_change, pose_change) -> `[batch, s, s, 3]`
  Images are `[batch, image_size, image_size, 3]` in [-1, 1]; latents as in the module docstring;
  landmarks `[batch, 6, 2]` ((x, y) / size, `schema.LANDMARK_NAMES`) place the dynamics crop
  (`alignment`; None or NaN rows: the canonical crop's positions).
  With `config.background_path`, `background` is the encoded image itself (the unwarped path) and
  `decode` composites the rendered head over it with the renderer's alpha (with
  `config.background_warp`, over it carried by the warps: the source's `background_flow` and
  `z_pose`, `warp_background`);
  without a background (or without the path) `decode` returns the rendering alone.
  """

  config: FaceLatentConfig
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  # Rematerialise each sub-network in the backward pass: only the sub-networks' inputs are kept
  # from the forward pass, for about one more forward pass of compute.
  remat: bool = False

  @classmethod
  def from_variant(cls, variant: str, dtype: Dtype = jnp.float32,
                   param_dtype: Dtype = jnp.float32, remat: bool = False,
                   **overrides: Any) -> FaceLatentModel:
    return cls(make_config(variant, **overrides), dtype=dtype, param_dtype=param_dtype,
               remat=remat)

  def setup(self):
    kw = dict(config=self.config, dtype=self.dtype, param_dtype=self.param_dtype)
    wrap = nn.remat if self.remat else (lambda module: module)
    self.appearance_encoder = wrap(AppearanceEncoder)(**kw)
    self.identity_encoder = wrap(IdentityEncoder)(**kw)
    self.motion_encoder = wrap(MotionEncoder)(**kw)
    self.warp_to_canonical_net = wrap(WarpGenerator)(**kw)
    self.warp_from_canonical_net = wrap(WarpGenerator)(**kw)
    self.canonical_net = wrap(CanonicalVolumeNet)(**kw)
    self.renderer = wrap(Renderer)(**kw)
    if self.config.crop_difference:
      if not self.config.dynamics_crop:
        raise UserError("crop_difference predicts how the face-aligned crop changes: it needs "
                        "dynamics_crop > 0; fix: set dynamics_crop=0.5 or crop_difference=False")
      self.crop_difference_net = nn.Dense(_difference_size(self.config) ** 2 * 3, use_bias=False,
                                          kernel_init=nn.initializers.normal(1e-2),
                                          dtype=jnp.float32, param_dtype=self.param_dtype)

  def encode_motion(self, image: jax.Array, landmarks: jax.Array | None = None
                    ) -> tuple[jax.Array, jax.Array]:
    return self.motion_encoder(image, landmarks)

  def encode(self, image: jax.Array, landmarks: jax.Array | None = None
             ) -> dict[str, jax.Array]:
    posed = self.appearance_encoder(image)
    z_id = self.identity_encoder(image)
    z_pose, z_dyn = self.motion_encoder(image, landmarks)
    flow = self.warp_to_canonical_net(z_dyn, z_id)
    v_app = warping.warp_to_canonical(posed, z_pose, flow)
    latents = dict(v_app=v_app, z_id=z_id, z_pose=z_pose, z_dyn=z_dyn)
    if self.config.background_path:
      latents["background"] = image.astype(jnp.float32)
      if self.config.background_warp:
        latents["background_flow"] = flow  # With z_pose, how `decode` reads the background.
    return latents

  def decode(self, v_app: jax.Array, z_id: jax.Array, z_pose: jax.Array, z_dyn: jax.Array,
             background: jax.Array | None = None, background_flow: jax.Array | None = None,
             background_pose: jax.Array | None = None, return_alpha: bool = False
             ) -> jax.Array | tuple[jax.Array, jax.Array]:
    """The image; with `return_alpha`, (image, the renderer's alpha `[batch, H, W, 1]`).

    `background` and `background_flow` are `encode`'s and `background_pose` its `z_pose` (None:
    the rendering alone); with `background_warp` the background is read through both warps
    (`warp_background`).
    """
    if self.config.background_path and self.config.background_residual and background is None:
      raise ValueError("decode: with background_residual the image is a correction added to the "
                       "background; pass encode's background (and background_flow)")
    rgb, alpha, flow, depth_logits = self._render(v_app, z_id, z_pose, z_dyn)
    image = rgb
    if background is not None and self.config.background_path:
      background = background.astype(jnp.float32)
      if self.config.background_warp and background_flow is not None:
        moving = jax.nn.sigmoid(depth_logits[..., -1:])
        warped = warp_background(background, background_pose, background_flow, z_pose, flow,
                                 depth_logits[..., :-1], self.config.volume_size)
        background = moving * warped + (1.0 - moving) * background
      if self.config.background_residual:
        image = jnp.clip(background + rgb, -1.0, 1.0)
      else:
        image = alpha * rgb + (1.0 - alpha) * background
    return (image, alpha) if return_alpha else image

  def decode_layers(self, v_app: jax.Array, z_id: jax.Array, z_pose: jax.Array,
                    z_dyn: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(rendered head `[batch, H, W, 3]`, alpha `[batch, H, W, 1]`) before compositing."""
    rgb, alpha, _, _ = self._render(v_app, z_id, z_pose, z_dyn)
    return rgb, alpha

  def _render(self, v_app, z_id, z_pose, z_dyn):
    flow = self.warp_from_canonical_net(z_dyn, z_id)
    posed = warping.warp_from_canonical(v_app, z_pose, flow)
    rgb, alpha, depth_logits = self.renderer(self.canonical_net(posed), z_dyn)
    return rgb, alpha, flow, depth_logits

  def predict_crop_difference(self, dyn_change: jax.Array, pose_change: jax.Array) -> jax.Array:
    """`crop_difference`'s prediction of how the face-aligned crop changes (`crop_change`) from
    the changes of z_dyn and z_pose."""
    size = _difference_size(self.config)
    codes = jnp.concatenate([dyn_change, pose_change], axis=-1).astype(jnp.float32)
    return self.crop_difference_net(codes).reshape(codes.shape[0], size, size, 3)

  def __call__(self, source: jax.Array, driving: jax.Array,
               source_landmarks: jax.Array | None = None,
               driving_landmarks: jax.Array | None = None) -> dict[str, jax.Array]:
    latents = self.encode(source, source_landmarks)
    z_pose_driving, z_dyn_driving = self.encode_motion(driving, driving_landmarks)
    image = self.decode(latents["v_app"], latents["z_id"], z_pose_driving, z_dyn_driving,
                        latents.get("background"), latents.get("background_flow"),
                        latents["z_pose"])
    out = dict(image=image, z_pose_driving=z_pose_driving, z_dyn_driving=z_dyn_driving, **latents)
    if self.config.crop_difference:
      out["crop_difference"] = self.predict_crop_difference(
          z_dyn_driving - latents["z_dyn"], z_pose_driving - latents["z_pose"])
    return out


def warp_background(background: jax.Array, source_pose: jax.Array, source_flow: jax.Array | None,
                    z_pose: jax.Array, flow: jax.Array | None, depth_logits: jax.Array,
                    volume_size: int) -> jax.Array:
  """The source image `[batch, H, W, 3]` carried to a target pose and flow through the volume's
  warps: each pixel's column of points through the posed volume is taken to canonical space
  (`warping.posed_to_canonical` with the target's `z_pose` and `flow`) and on to the source
  (`warping.canonical_to_source`, the source's pose and flow), and the positions are averaged over the
  column with the softmax of `depth_logits` `[batch, H, W, D]`; the image is read there
  bilinearly. With the source's pose as the target's and no flows, this is the source image."""
  batch, size = background.shape[0], background.shape[1]
  depth = depth_logits.shape[-1]
  points = jnp.broadcast_to(warping.pixel_grid(depth, size, volume_size),
                            (batch, depth, size, size, 3))
  canonical = warping.posed_to_canonical(z_pose, flow, points)
  source = warping.canonical_to_source(source_pose, source_flow, canonical)
  weights = jax.nn.softmax(depth_logits, axis=-1)  # [batch, H, W, D]
  source_xy = jnp.einsum("bhwd,bdhwc->bhwc", weights, source[..., :2])
  return alignment.bilinear_sample(background, warping.grid_to_image(source_xy, volume_size))


class _PatchGAN(nn.Module):
  """One scale of the patch discriminator: image -> (logits `[batch, h, w, 1]`, features)."""

  channels: tuple[int, ...]
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, image: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    features = []
    x = image.astype(self.dtype)
    for index, width in enumerate(self.channels):
      strides = 1 if index == len(self.channels) - 1 else 2
      x = layers.conv(width, 4, 2, strides=strides, standardize=index > 0, **kw)(x)
      if index > 0:
        x = layers.group_norm(width, **kw)(x)
      x = nn.leaky_relu(x, 0.2)
      features.append(x)
    logits = layers.conv(1, 4, 2, standardize=False, name="logits", **kw)(x)
    return logits.astype(jnp.float32), features


class PatchDiscriminator(nn.Module):
  """Multi-scale PatchGAN: image `[batch, H, W, 3]` -> one (logits, features) pair per scale.

  Scale k sees the image average-pooled k times by 2. Logits `[batch, h_k, w_k, 1]` are raw scores
  for the hinge loss; features (one per layer) serve feature matching.
  """

  channels: tuple[int, ...] = (64, 128, 256, 512)
  num_scales: int = 3
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @classmethod
  def from_variant(cls, variant: str | FaceLatentConfig, dtype: Dtype = jnp.float32,
                   param_dtype: Dtype = jnp.float32) -> PatchDiscriminator:
    cfg = make_config(variant)
    return cls(tuple(cfg.disc_channels), cfg.disc_scales, dtype=dtype, param_dtype=param_dtype)

  @nn.compact
  def __call__(self, image: jax.Array) -> list[tuple[jax.Array, list[jax.Array]]]:
    outputs = []
    for scale in range(self.num_scales):
      if scale > 0:
        image = layers.avg_pool(image, (2, 2))
      outputs.append(_PatchGAN(tuple(self.channels), dtype=self.dtype,
                               param_dtype=self.param_dtype, name=f"scale_{scale}")(image))
    return outputs


def count_params(params: Any) -> int:
  """Number of scalars in a parameter tree (works on `jax.eval_shape` results too)."""
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))
