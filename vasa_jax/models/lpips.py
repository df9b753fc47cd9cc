"""LPIPS (Zhang et al. 2018), version 0.1 with VGG16 features and the learned "lin" layer.

The distance between two images x and y, both RGB in [-1, 1]:
  1. both are scaled with LPIPS's fixed per-channel shift (-0.030, -0.088, -0.188) and scale
     (0.458, 0.448, 0.450), the [-1, 1] form of ImageNet's normalisation that its VGG expects;
  2. VGG16 (torchvision's layout, configuration "D") is run up to relu5_3 and tapped after relu1_2,
     relu2_2, relu3_3, relu4_3 and relu5_3;
  3. each tap is unit-normalised over channels at every position, f / (||f|| + 1e-10);
  4. the squared difference of the two normalised taps is weighted per channel by the learned,
     non-negative "lin" weights (a 1x1 convolution to one channel, without bias), averaged over
     positions, and the five taps' values are summed.
Identical images give 0; the released weights were fitted to human judgements of which of two
distortions looks closer to a reference (the BAPPS data set).

Parameters: {"vgg16": {"features_{i}": {"kernel", "bias"}}, "lin{k}": [channels_k]} with i the
convolution's index in torchvision's `vgg16().features` Sequential (0, 2, 5, ..., 28) and k the tap
(0 = relu1_2 ... 4 = relu5_3), so the converter (`vasa_jax.convert.lpips`) is a transpose and a
reshape.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vasa_jax.models import vgg19

Dtype = Any

# Output channels of the convolutions of each block of VGG16; a 2x2 max-pool opens blocks 2 to 5.
BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512),
                                       (512, 512, 512))
TAPS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
TAP_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
NORM_EPS = 1e-10


def conv_indices() -> dict[str, int]:
  """`relu{block}_{k}` -> index of its convolution in torchvision's `vgg16().features`."""
  return vgg19.conv_indices(BLOCKS)


class VGG16Features(nn.Module):
  """VGG16 activations at LPIPS's five taps: `[b, h, w, 3]` (already scaled) -> a list of
  `[b, h / 2**k, w / 2**k, TAP_CHANNELS[k]]`."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    taps, index = [], 0
    for block, widths in enumerate(BLOCKS, start=1):
      if block > 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      for width in widths:
        x = nn.Conv(width, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype,
                    param_dtype=self.param_dtype, name=f"features_{index}")(x)
        x = nn.relu(x)
        index += 2
      taps.append(x)  # The last ReLU of every block is a tap.
      index += 1
    return taps


def unit_normalise(features: jax.Array) -> jax.Array:
  """Divides every position's channel vector by its L2 norm (+ 1e-10): `[b, h, w, c]`."""
  norm = jnp.sqrt(jnp.sum(jnp.square(features), axis=-1, keepdims=True))
  return features / (norm + NORM_EPS)


class LPIPS(nn.Module):
  """LPIPS distance: images `[b, h, w, 3]` and `[b, h, w, 3]` in [-1, 1] -> `[b]` (float32).

  Images need at least 16x16 pixels (relu5_3 is at 1/16 of the resolution)."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images_a: jax.Array, images_b: jax.Array) -> jax.Array:
    if images_a.shape != images_b.shape or images_a.shape[-1] != 3:
      raise ValueError(f"LPIPS compares images of one shape [b, h, w, 3], got {images_a.shape} "
                       f"and {images_b.shape}")
    if min(images_a.shape[1:3]) < 16:
      raise ValueError(f"LPIPS needs images of at least 16x16, got {images_a.shape}")
    shift = jnp.asarray(SHIFT, jnp.float32)
    scale = jnp.asarray(SCALE, jnp.float32)
    both = jnp.concatenate([images_a, images_b]).astype(jnp.float32)
    scaled = ((both - shift) / scale).astype(self.dtype)
    taps = VGG16Features(self.dtype, self.param_dtype, name="vgg16")(scaled)
    batch = images_a.shape[0]
    distance = jnp.zeros((batch,), jnp.float32)
    for k, (features, channels) in enumerate(zip(taps, TAP_CHANNELS)):
      weight = self.param(f"lin{k}", nn.initializers.ones, (channels,), self.param_dtype)
      features = unit_normalise(features.astype(jnp.float32))
      squared = jnp.square(features[:batch] - features[batch:])
      distance = distance + jnp.mean(squared @ weight.astype(jnp.float32), axis=(1, 2))
    return distance


def param_shapes() -> dict[str, Any]:
  """Flax parameter shapes of `LPIPS`: {"vgg16": {"features_i": {"kernel", "bias"}}, "lin{k}"}."""
  vgg, index, channels = {}, 0, 3
  for widths in BLOCKS:
    for width in widths:
      vgg[f"features_{index}"] = {"kernel": (3, 3, channels, width), "bias": (width,)}
      channels = width
      index += 2
    index += 1
  return {"vgg16": vgg, **{f"lin{k}": (c,) for k, c in enumerate(TAP_CHANNELS)}}
