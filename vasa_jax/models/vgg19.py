"""VGG19 feature taps for perceptual losses, with the layout of torchvision's `vgg19().features`.

torchvision's `features` is a Sequential of 16 conv3x3 (padding 1) + ReLU pairs in five blocks of
2, 2, 4, 4, 4 convolutions, each block closed by a 2x2 max-pool. Its state-dict keys are
`features.{i}.weight/bias` with i the conv's index in that Sequential (0, 2, 5, 7, 10, ...); the
Flax parameters here are named `features_{i}` with the same i, so the converter is a transpose.

Taps are named `relu{block}_{k}` (the output of the k-th ReLU of a block). The usual perceptual-loss
taps are relu1_1 ... relu5_1 (`DEFAULT_TAPS`); only the convolutions up to the deepest requested tap
are run.

Inputs are images `[batch, height, width, 3]` in RGB with values in `input_range` ((-1, 1) by
default, the range the face model renders in); they are mapped to [0, 1] and then normalised with
ImageNet's mean and std, as torchvision's weights expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vasa_jax.errors import UserError

Dtype = Any

# Output channels of the convolutions of each block; a 2x2 max-pool follows every block.
BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256, 256),
                                       (512, 512, 512, 512), (512, 512, 512, 512))
DEFAULT_TAPS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_indices(blocks: tuple[tuple[int, ...], ...] = BLOCKS) -> dict[str, int]:
  """Tap name -> index of its convolution in torchvision's `features` Sequential (of VGG19, or of
  the VGG whose block widths `blocks` gives)."""
  indices, i = {}, 0
  for block, widths in enumerate(blocks, start=1):
    for k in range(1, len(widths) + 1):
      indices[f"relu{block}_{k}"] = i
      i += 2  # conv, relu
    i += 1  # max-pool
  return indices


class VGG19Features(nn.Module):
  """VGG19 activations at the requested taps.

  Attributes:
    taps: tap names (`relu{block}_{k}`), returned in this order.
    input_range: (low, high) of the input values; mapped to [0, 1] before ImageNet normalisation.
  """
  taps: Sequence[str] = DEFAULT_TAPS
  input_range: tuple[float, float] = (-1.0, 1.0)
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> list[jax.Array]:
    """images `[batch, height, width, 3]` -> one `[batch, h_tap, w_tap, channels_tap]` per tap."""
    known = conv_indices()
    unknown = [t for t in self.taps if t not in known]
    if unknown or not self.taps:
      raise UserError(f"VGG19 taps {list(self.taps)}: unknown {unknown}; fix: choose non-empty "
                      f"taps among {list(known)}")
    low, high = self.input_range
    mean = jnp.asarray(IMAGENET_MEAN, self.dtype)
    std = jnp.asarray(IMAGENET_STD, self.dtype)
    x = ((images.astype(self.dtype) - low) / (high - low) - mean) / std
    deepest = max(known[t] for t in self.taps)
    found: dict[str, jax.Array] = {}
    index = 0
    for block, widths in enumerate(BLOCKS, start=1):
      if block > 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      for k, width in enumerate(widths, start=1):
        x = nn.Conv(width, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype,
                    param_dtype=self.param_dtype, name=f"features_{index}")(x)
        x = nn.relu(x)
        found[f"relu{block}_{k}"] = x
        if index == deepest:
          return [found[t] for t in self.taps]
        index += 2
      index += 1
    raise AssertionError("unreachable: the deepest tap is inside the network")


def param_shapes() -> dict[str, dict[str, tuple[int, ...]]]:
  """Flax parameter shapes of the whole `features` stack: {"features_i": {"kernel", "bias"}}."""
  shapes, index, channels = {}, 0, 3
  for widths in BLOCKS:
    for width in widths:
      shapes[f"features_{index}"] = {"kernel": (3, 3, channels, width), "bias": (width,)}
      channels = width
      index += 2
    index += 1
  return shapes
