"""The SynthTalk probe's network: a small CNN that reads head pose and mouth state from one face
image (`ProbeNet`), and the fixed label standardisation it is trained with.

Trained by `vasa_jax.trainers.synthtalk_probe` (which says why and how); read back with
`vasa_jax.runs.load_run(workdir, task="synthtalk_probe").predictor()`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.errors import UserError
from vasa_jax.models.face_latent import networks

# What the probe reads, by their names in `schema.LABEL_NAMES`: head rotation (radians) and the
# mouth, eye and brow state (SynthTalk's own units, mostly 0..1).
PROBE_LABELS = ("yaw", "pitch", "roll", "jaw_open", "lip_width", "blink", "brow_raise")

# Targets are standardised as (label - LABEL_MEAN) / LABEL_STD. Measured on every frame (4284) of
# SynthTalk tiny's train split (`vasa synthtalk build --config tiny`, seed 0): the mean and the
# population standard deviation of each label, rounded. Fixed here, so that a probe means the same
# whatever data it was trained on.
LABEL_MEAN = np.asarray([-0.026, -0.018, -0.001, 0.249, 0.526, 0.056, 0.114], np.float32)
LABEL_STD = np.asarray([0.194, 0.067, 0.039, 0.192, 0.112, 0.194, 0.625], np.float32)

# Sizes of `ProbeNet`: the whole-frame trunk's width and residual blocks per stage
# (`networks.ResNetTrunk`, basic blocks), and the widths of each region branch's stages.
VARIANTS = {
    "tiny": dict(width=16, blocks=(1, 1, 1), region_widths=(16, 32, 64)),
    "small": dict(width=32, blocks=(2, 2, 2, 2), region_widths=(32, 64, 128)),
}

# Fixed windows of the frame, (top, bottom, left, right) as fractions of its size, that hold the
# mouth, and the eyes and brows, in every SynthTalk frame: the renderer keeps the face in the image
# for the poses SynthTalk draws, and over SynthTalk tiny's frames the mouth centre stays within
# x 0.35..0.65, y 0.54..0.74 and the eyes within x 0.24..0.75, y 0.30..0.49 (landmarks / size).
# The windows are symmetric about the vertical midline, so a mirrored frame keeps them in place.
REGIONS = {"mouth": (0.45, 0.875, 0.25, 0.75), "eyes": (0.15, 0.55, 0.15, 0.85)}


def decode_variant(variant: str) -> dict:
  if variant not in VARIANTS:
    raise UserError(f"config.model.variant={variant!r} is unknown for the SynthTalk probe; use one "
                    f"of {sorted(VARIANTS)}")
  return dict(VARIANTS[variant])


def standardise(labels: jax.Array) -> jax.Array:
  """Labels [..., len(PROBE_LABELS)] in natural units -> standardised."""
  return (labels - LABEL_MEAN) / LABEL_STD


def natural(standardised: jax.Array) -> jax.Array:
  """Standardised predictions [..., len(PROBE_LABELS)] -> natural units."""
  return standardised * LABEL_STD + LABEL_MEAN


def region_slices(image_size: int) -> dict[str, tuple[slice, slice]]:
  """{region: (rows, columns)} of `REGIONS` in an image_size x image_size frame."""
  def span(start, stop):
    return slice(int(round(start * image_size)), int(round(stop * image_size)))

  return {name: (span(top, bottom), span(left, right))
          for name, (top, bottom, left, right) in REGIONS.items()}


class RegionNet(nn.Module):
  """A small plain CNN for one fixed window at full resolution: [batch, h, w, 3] -> [batch,
  widths[-1]]. Per width, a 3x3 convolution and a strided 3x3 convolution (ReLU after each); the
  output is the spatial mean."""

  widths: tuple[int, ...]
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for width in self.widths:
      for strides in (1, 2):
        x = nn.relu(nn.Conv(width, (3, 3), strides=strides, padding="SAME", dtype=self.dtype,
                            param_dtype=self.param_dtype)(x))
    return jnp.mean(x, axis=(1, 2))


class ProbeNet(nn.Module):
  """Images [batch, S, S, 3] in [-1, 1] -> standardised labels [batch, num_outputs] (float32).

  Head pose shows in the whole frame, the mouth and eyes in a few pixels of it: a ResNet trunk
  (GroupNorm, weight standardisation, global average pooling) reads the whole frame, and one
  `RegionNet` per window of `REGIONS` reads that window at full resolution. A dense layer maps the
  concatenated features to the labels.
  """

  width: int
  blocks: tuple[int, ...]
  region_widths: tuple[int, ...]
  num_outputs: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    images = images.astype(self.dtype)
    features = [networks.ResNetTrunk(self.width, tuple(self.blocks), bottleneck=False,
                                     name="trunk", **kw)(images)]
    for name, (rows, columns) in region_slices(images.shape[1]).items():
      features.append(RegionNet(tuple(self.region_widths), name=f"{name}_net", **kw)(
          images[:, rows, columns]))
    features = jnp.concatenate([f.astype(jnp.float32) for f in features], axis=-1)
    return nn.Dense(self.num_outputs, dtype=jnp.float32, param_dtype=self.param_dtype,
                    name="head")(features)
