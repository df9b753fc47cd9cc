"""LPIPS (Zhang et al. 2018), version 0.1 on VGG16 or AlexNet features with the learned "lin" layer.

The distance between two images x and y, both RGB in [-1, 1]:
  1. both are scaled with LPIPS's fixed per-channel shift (-0.030, -0.088, -0.188) and scale
     (0.458, 0.448, 0.450), the [-1, 1] form of ImageNet's normalisation that its backbones expect;
  2. the ImageNet backbone is run and tapped five times:
     - `net="vgg16"`: VGG16 (torchvision's layout, configuration "D") after relu1_2, relu2_2,
       relu3_3, relu4_3 and relu5_3 (64, 128, 256, 512, 512 channels);
     - `net="alexnet"`: torchvision's AlexNet `features` after each of its five ReLUs (64, 192, 384,
       256, 256 channels), LPIPS's default "alex" network;
  3. each tap is unit-normalised over channels at every position, f / (||f|| + 1e-10);
  4. the squared difference of the two normalised taps is weighted per channel by the learned,
     non-negative "lin" weights (a 1x1 convolution to one channel, without bias), averaged over
     positions, and the five taps' values are summed.
Identical images give 0; the released weights were fitted to human judgements of which of two
distortions looks closer to a reference (the BAPPS data set).

Parameters: {net: {"features_{i}": {"kernel", "bias"}}, "lin{k}": [channels_k]} with net "vgg16" or
"alexnet", i the convolution's index in torchvision's `vgg16().features` (0, 2, 5, ..., 28) or
`alexnet().features` (0, 3, 6, 8, 10) Sequential and k the tap, so converters
(`vasa_jax.convert.lpips`) are a transpose and a reshape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vasa_jax.errors import UserError
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

# AlexNet's `features`: (torchvision index, output channels, kernel, stride, padding) of every
# convolution; a 3x3 stride-2 max-pool (no padding) follows the first two.
ALEXNET_CONVS: tuple[tuple[int, int, int, int, int], ...] = (
    (0, 64, 11, 4, 2), (3, 192, 5, 1, 2), (6, 384, 3, 1, 1), (8, 256, 3, 1, 1), (10, 256, 3, 1, 1))
ALEXNET_TAP_CHANNELS: tuple[int, ...] = tuple(c[1] for c in ALEXNET_CONVS)
NETS: tuple[str, ...] = ("vgg16", "alexnet")
# The smallest image side each backbone takes: relu5_3 is at 1/16 of VGG16's input; AlexNet's
# second max-pool needs 3 positions, which its stride-4 first layer and pool leave from 31 pixels.
MIN_SIZE = {"vgg16": 16, "alexnet": 31}


def conv_indices() -> dict[str, int]:
  """`relu{block}_{k}` -> index of its convolution in torchvision's `vgg16().features`."""
  return vgg19.conv_indices(BLOCKS)


def check_net(net: str) -> None:
  if net not in NETS:
    raise UserError(f"LPIPS network {net!r} is unknown; fix: choose one of {list(NETS)}")


def tap_channels(net: str = "vgg16") -> tuple[int, ...]:
  """Channels of the five taps of `net`."""
  check_net(net)
  return TAP_CHANNELS if net == "vgg16" else ALEXNET_TAP_CHANNELS


class VGG16Features(nn.Module):
  """VGG16 activations at LPIPS's five taps: `[b, h, w, 3]` (already scaled) -> a list of
  `[b, h / 2**k, w / 2**k, TAP_CHANNELS[k]]`, the first `blocks` of them (the later blocks are
  not run, so a perceptual loss on shallow taps pays for those only)."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  blocks: int = len(BLOCKS)

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    taps, index = [], 0
    for block, widths in enumerate(BLOCKS[:self.blocks], start=1):
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


class AlexNetFeatures(nn.Module):
  """torchvision's AlexNet `features` at its five ReLUs: `[b, h, w, 3]` (already scaled) -> a list
  of `[b, h_k, w_k, ALEXNET_TAP_CHANNELS[k]]` (h_0 = (h - 7) // 4 + 1, then halved, rounding
  down, by each of the two 3x3 stride-2 max-pools)."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    taps = []
    for k, (index, width, size, stride, pad) in enumerate(ALEXNET_CONVS):
      if k in (1, 2):
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")  # torch's floor mode.
      x = nn.Conv(width, (size, size), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                  dtype=self.dtype, param_dtype=self.param_dtype, name=f"features_{index}")(x)
      x = nn.relu(x)
      taps.append(x)
    return taps


def unit_normalise(features: jax.Array) -> jax.Array:
  """Divides every position's channel vector by its L2 norm (+ 1e-10): `[b, h, w, c]`."""
  norm = jnp.sqrt(jnp.sum(jnp.square(features), axis=-1, keepdims=True))
  return features / (norm + NORM_EPS)


class LPIPS(nn.Module):
  """LPIPS distance: images `[b, h, w, 3]` and `[b, h, w, 3]` in [-1, 1] -> `[b]` (float32).

  Attributes:
    net: the backbone, "vgg16" (parameters under "vgg16") or "alexnet" (under "alexnet").
  Images need at least MIN_SIZE[net] pixels a side (16 for VGG16, 31 for AlexNet)."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  net: str = "vgg16"

  @nn.compact
  def __call__(self, images_a: jax.Array, images_b: jax.Array) -> jax.Array:
    if images_a.shape != images_b.shape or images_a.shape[-1] != 3:
      raise ValueError(f"LPIPS compares images of one shape [b, h, w, 3], got {images_a.shape} "
                       f"and {images_b.shape}")
    check_net(self.net)
    if min(images_a.shape[1:3]) < MIN_SIZE[self.net]:
      raise ValueError(f"LPIPS-{self.net} needs images of at least {MIN_SIZE[self.net]}x"
                       f"{MIN_SIZE[self.net]}, got {images_a.shape}")
    shift = jnp.asarray(SHIFT, jnp.float32)
    scale = jnp.asarray(SCALE, jnp.float32)
    both = jnp.concatenate([images_a, images_b]).astype(jnp.float32)
    scaled = ((both - shift) / scale).astype(self.dtype)
    backbone: Callable[..., nn.Module] = (VGG16Features if self.net == "vgg16" else
                                          AlexNetFeatures)
    taps = backbone(dtype=self.dtype, param_dtype=self.param_dtype, name=self.net)(scaled)
    batch = images_a.shape[0]
    distance = jnp.zeros((batch,), jnp.float32)
    for k, (features, channels) in enumerate(zip(taps, tap_channels(self.net))):
      weight = self.param(f"lin{k}", nn.initializers.ones, (channels,), self.param_dtype)
      features = unit_normalise(features.astype(jnp.float32))
      squared = jnp.square(features[:batch] - features[batch:])
      distance = distance + jnp.mean(squared @ weight.astype(jnp.float32), axis=(1, 2))
    return distance


def param_shapes(net: str = "vgg16") -> dict[str, Any]:
  """Flax parameter shapes of `LPIPS(net=net)`: {net: {"features_i": {"kernel", "bias"}},
  "lin{k}": (channels,)}."""
  check_net(net)
  backbone, channels = {}, 3
  if net == "vgg16":
    index = 0
    for widths in BLOCKS:
      for width in widths:
        backbone[f"features_{index}"] = {"kernel": (3, 3, channels, width), "bias": (width,)}
        channels = width
        index += 2
      index += 1
  else:
    for index, width, size, _, _ in ALEXNET_CONVS:
      backbone[f"features_{index}"] = {"kernel": (size, size, channels, width), "bias": (width,)}
      channels = width
  return {net: backbone, **{f"lin{k}": (c,) for k, c in enumerate(tap_channels(net))}}
