"""Layers shared by the models: weight-standardised convolutions, GroupNorm residual blocks,
linear upsampling, and the fused attention of the transformers.

Everything here works for 2D (`[batch, height, width, channels]`) and 3D
(`[batch, depth, height, width, channels]`) inputs alike: the number of spatial axes is the length
of `kernel_size`, or the `ndim` attribute of a block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any

# Weight standardisation divides by the kernel's std; this keeps an all-zero kernel finite.
_WS_EPS = 1e-8


def num_groups(channels: int, max_groups: int = 32, min_group_size: int = 1) -> int:
  """The most groups (at most `max_groups`, each of at least `min_group_size` channels where
  `channels` allows) that divide `channels`."""
  limit = max(1, min(max_groups, channels // max(1, min_group_size)))
  for groups in range(limit, 0, -1):
    if channels % groups == 0:
      return groups
  return 1


def group_norm(channels: int, dtype: Dtype, param_dtype: Dtype, name: str | None = None,
               min_group_size: int = 1) -> nn.GroupNorm:
  return nn.GroupNorm(num_groups=num_groups(channels, min_group_size=min_group_size),
                      dtype=dtype, param_dtype=param_dtype, name=name)


class WSConv(nn.Module):
  """Convolution with scaled weight standardisation (Qiao et al. 2019; the 1/sqrt(fan_in) gain of
  Brock et al. 2021): each output filter is scaled to zero mean and variance 1/fan_in over its
  fan-in before use, so a unit-variance input gives a unit-variance output whatever the width.
  It pairs with GroupNorm for small batches.

  Input `[batch, *spatial, in]`, output `[batch, *spatial / strides, features]`; 'SAME' padding.
  """

  features: int
  kernel_size: Sequence[int] = (3, 3)
  strides: Sequence[int] | None = None
  use_bias: bool = True
  standardize: bool = True
  kernel_init: Callable[..., jax.Array] = nn.initializers.lecun_normal()
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ndim = len(self.kernel_size)
    strides = tuple(self.strides) if self.strides is not None else (1,) * ndim
    kernel = self.param("kernel", self.kernel_init,
                        tuple(self.kernel_size) + (x.shape[-1], self.features), self.param_dtype)
    if self.standardize:
      # Statistics in float32: bf16 means over thousands of weights are too coarse.
      kernel32 = kernel.astype(jnp.float32)
      axes = tuple(range(kernel.ndim - 1))
      mean = jnp.mean(kernel32, axis=axes, keepdims=True)
      var = jnp.var(kernel32, axis=axes, keepdims=True)
      fan_in = 1
      for size in kernel.shape[:-1]:
        fan_in *= size
      kernel = (kernel32 - mean) * jax.lax.rsqrt((var + _WS_EPS) * fan_in)
    spatial = "DHW"[-ndim:] if ndim <= 3 else None
    numbers = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
    y = jax.lax.conv_general_dilated(
        x.astype(self.dtype), kernel.astype(self.dtype), window_strides=strides, padding="SAME",
        dimension_numbers=numbers)
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
      y = y + bias.astype(self.dtype)
    return y


def conv(features: int, kernel: int, ndim: int, *, strides: int = 1, standardize: bool = True,
         dtype: Dtype = jnp.float32, param_dtype: Dtype = jnp.float32, name: str | None = None,
         kernel_init: Callable[..., jax.Array] = nn.initializers.lecun_normal(),
         use_bias: bool = True) -> WSConv:
  """A square (cubic) `WSConv` of `ndim` spatial axes."""
  return WSConv(features=features, kernel_size=(kernel,) * ndim, strides=(strides,) * ndim,
                standardize=standardize, dtype=dtype, param_dtype=param_dtype, name=name,
                kernel_init=kernel_init, use_bias=use_bias)


class ResBlock(nn.Module):
  """Pre-activation residual block: (GroupNorm, ReLU, WS conv 3) x 2, plus a 1x1 WS conv skip when
  the width changes. `ndim` = 2 for images, 3 for volumes.

  The residual branch ends in a learned per-channel gain that starts at `branch_init` (0: the
  block starts as its skip path, so a deep stack starts near the identity). GroupNorms use groups
  of at least `min_group_size` channels (one group on narrow maps), so a norm does not erase
  per-channel statistics such as how far a mouth is open.

  With `cond` ([batch, dims]) the second GroupNorm is adaptive: its scale and shift come from a
  dense layer on `cond` (LeCun-normal init, so `cond` moves the features from the first step).
  """

  features: int
  ndim: int = 2
  min_group_size: int = 1
  branch_init: float | None = None
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    groups = dict(min_group_size=self.min_group_size)
    in_features = x.shape[-1]
    h = nn.relu(group_norm(in_features, **kw, **groups)(x))
    h = conv(self.features, 3, self.ndim, **kw)(h)
    if cond is None:
      h = group_norm(self.features, **kw, **groups)(h)
    else:
      h = nn.GroupNorm(num_groups=num_groups(self.features, **groups), use_scale=False,
                       use_bias=False, **kw)(h)
      style = nn.Dense(2 * self.features, name="adaptive_norm", **kw)(cond.astype(self.dtype))
      scale, shift = jnp.split(style, 2, axis=-1)
      expand = (slice(None),) + (None,) * self.ndim + (slice(None),)
      h = h * (1.0 + scale[expand]) + shift[expand]
    h = conv(self.features, 3, self.ndim, **kw)(nn.relu(h))
    if self.branch_init is not None:
      gain = self.param("branch_gain", nn.initializers.constant(self.branch_init),
                        (self.features,), self.param_dtype)
      h = h * gain.astype(h.dtype)
    if in_features != self.features:
      x = conv(self.features, 1, self.ndim, name="skip", **kw)(x)
    return x.astype(h.dtype) + h


class ResBlock2D(ResBlock):
  """`ResBlock` on `[batch, height, width, channels]`."""

  ndim: int = 2


class ResBlock3D(ResBlock):
  """`ResBlock` on `[batch, depth, height, width, channels]`."""

  ndim: int = 3


def avg_pool(x: jax.Array, factors: Sequence[int]) -> jax.Array:
  """Average pooling by integer `factors`, one per spatial axis of `[batch, *spatial, channels]`."""
  factors = tuple(factors)
  if all(f == 1 for f in factors):
    return x
  return nn.avg_pool(x, factors, strides=factors)


def upsample(x: jax.Array, factors: Sequence[int]) -> jax.Array:
  """Nearest-neighbour upsampling by integer `factors`, one per spatial axis."""
  for axis, factor in enumerate(factors, start=1):
    if factor > 1:
      x = jnp.repeat(x, factor, axis=axis)
  return x


def upsample_linear(x: jax.Array, factors: Sequence[int]) -> jax.Array:
  """(Bi/tri)linear upsampling by 1 or 2 per spatial axis of `[batch, *spatial, channels]`, with
  half-pixel centres and edges clamped (`jax.image.resize(..., "linear")` for a factor of 2, in a
  few shifted sums instead of a resize matrix): no blocks, unlike `upsample`."""
  for axis, factor in enumerate(factors, start=1):
    if factor == 1:
      continue
    if factor != 2:
      raise ValueError(f"upsample_linear doubles an axis or keeps it; got factor {factor}")
    size = x.shape[axis]
    before = jnp.concatenate([jax.lax.slice_in_dim(x, 0, 1, axis=axis),
                              jax.lax.slice_in_dim(x, 0, size - 1, axis=axis)], axis=axis)
    after = jnp.concatenate([jax.lax.slice_in_dim(x, 1, size, axis=axis),
                             jax.lax.slice_in_dim(x, size - 1, size, axis=axis)], axis=axis)
    even, odd = 0.75 * x + 0.25 * before, 0.75 * x + 0.25 * after
    x = jnp.stack([even, odd], axis=axis + 1)
    x = x.reshape(x.shape[:axis] + (2 * size,) + x.shape[axis + 2:])
  return x


def fused_attention(query: jax.Array, key: jax.Array, value: jax.Array,
                    bias: jax.Array | None = None, mask: jax.Array | None = None, *,
                    dropout_rate: float = 0.0, deterministic: bool = True, dtype: Dtype = None,
                    **unused: Any) -> jax.Array:
  """`attention_fn` for `nn.MultiHeadDotProductAttention` through `jax.nn.dot_product_attention`:
  one fused kernel (cuDNN flash attention for bfloat16/float16 on NVIDIA GPUs, XLA elsewhere)
  instead of separate logits, softmax and weighted-sum ops, with the same parameters and results.

  query `[batch, q_length, heads, head_dim]`, key/value `[batch, kv_length, heads, head_dim]`,
  mask broadcastable to `[batch, heads, q_length, kv_length]` (True: attend). No attention dropout.
  """
  del unused
  if dropout_rate > 0.0 and not deterministic:
    raise ValueError("fused_attention has no attention dropout; use flax's dot_product_attention")
  dtype = dtype or query.dtype
  query, key, value = (x.astype(dtype) for x in (query, key, value))
  if mask is not None:
    mask = mask.astype(bool)
  return jax.nn.dot_product_attention(query, key, value, bias=bias, mask=mask)
