"""ArcFace face-recognition backbone: the IResNet of insightface's `arcface_torch` (eval mode).

Architecture (`iresnet50`: stage blocks [3, 4, 14, 3]; `iresnet100`: [3, 13, 30, 3]):
  stem      conv3x3(3 -> 64, no bias) + BN + PReLU, stride 1;
  4 stages  of IBasicBlocks with widths 64, 128, 256, 512, the first block of every stage strided 2
            and with a conv1x1(stride 2, no bias) + BN shortcut;
  block     BN -> conv3x3 -> BN -> PReLU -> conv3x3 (stride) -> BN, plus the shortcut (no activation
            after the sum);
  head      BN -> flatten (channel-major, as torch flattens NCHW) -> dropout (p = 0 in the released
            models) -> Linear(512 * 7 * 7 -> 512) -> BatchNorm1d = the embedding.
All batch norms use eps 1e-5 and their running statistics: the network is a frozen feature
extractor.

Parameter names mirror the state-dict keys (`layer3_5/conv1`, `layer1_0/downsample_0`, `features`),
so the converter is a rename and transpose. Input: aligned faces `[batch, 112, 112, 3]`, RGB in
[-1, 1] (insightface feeds (pixel / 255 - 0.5) / 0.5). Output: `[batch, 512]`, not normalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vasa_jax.errors import UserError

Dtype = Any

STAGE_BLOCKS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
    200: (6, 26, 60, 6),
}
STAGE_WIDTHS = (64, 128, 256, 512)
INPUT_SIZE = 112
EMBEDDING_DIM = 512
_BN_EPS = 1e-5


def stage_blocks_for_depth(depth: int) -> tuple[int, int, int, int]:
  if depth not in STAGE_BLOCKS:
    raise UserError(f"ArcFace depth {depth} is not an insightface iresnet; fix: use one of "
                    f"{sorted(STAGE_BLOCKS)} (50 for r50, 100 for r100)")
  return STAGE_BLOCKS[depth]


class PReLU(nn.Module):
  """Per-channel PReLU; the slope starts at 0.25 like torch's."""
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    slope = self.param("weight", nn.initializers.constant(0.25), (x.shape[-1],), self.param_dtype)
    return jnp.where(x >= 0, x, slope.astype(x.dtype) * x)


def _batch_norm(name: str, dtype: Dtype, param_dtype: Dtype) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=True, epsilon=_BN_EPS, dtype=dtype,
                      param_dtype=param_dtype, name=name)


class IBasicBlock(nn.Module):
  """BN-conv-BN-PReLU-conv-BN residual block: `[b, h, w, c_in]` -> `[b, h/s, w/s, width]`."""
  width: int
  stride: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = lambda features, kernel, stride, padding, name: nn.Conv(
        features, (kernel, kernel), strides=(stride, stride), padding=padding, use_bias=False,
        dtype=self.dtype, param_dtype=self.param_dtype, name=name)
    out = _batch_norm("bn1", self.dtype, self.param_dtype)(x)
    out = conv(self.width, 3, 1, ((1, 1), (1, 1)), "conv1")(out)
    out = _batch_norm("bn2", self.dtype, self.param_dtype)(out)
    out = PReLU(self.param_dtype, name="prelu")(out)
    out = conv(self.width, 3, self.stride, ((1, 1), (1, 1)), "conv2")(out)
    out = _batch_norm("bn3", self.dtype, self.param_dtype)(out)
    if self.stride != 1 or x.shape[-1] != self.width:
      x = conv(self.width, 1, self.stride, "VALID", "downsample_0")(x)
      x = _batch_norm("downsample_1", self.dtype, self.param_dtype)(x)
    return out + x


class IResNet(nn.Module):
  """ArcFace IResNet: faces `[batch, 112, 112, 3]` in [-1, 1] -> embeddings `[batch, 512]`."""
  stage_blocks: Sequence[int] = STAGE_BLOCKS[50]
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, faces: jax.Array) -> jax.Array:
    if faces.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
      raise UserError(f"ArcFace takes faces [batch, {INPUT_SIZE}, {INPUT_SIZE}, 3], got "
                      f"{faces.shape}; fix: crop and resize with "
                      "vasa_jax.convert.frozen.arcface_input")
    x = nn.Conv(STAGE_WIDTHS[0], (3, 3), padding=((1, 1), (1, 1)), use_bias=False,
                dtype=self.dtype, param_dtype=self.param_dtype, name="conv1")(
                    faces.astype(self.dtype))
    x = _batch_norm("bn1", self.dtype, self.param_dtype)(x)
    x = PReLU(self.param_dtype, name="prelu")(x)
    for stage, (blocks, width) in enumerate(zip(self.stage_blocks, STAGE_WIDTHS), start=1):
      for i in range(blocks):
        x = IBasicBlock(width, 2 if i == 0 else 1, self.dtype, self.param_dtype,
                        name=f"layer{stage}_{i}")(x)
    x = _batch_norm("bn2", self.dtype, self.param_dtype)(x)
    # The fc weights were trained on torch's NCHW flattening (channel-major).
    x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)
    x = nn.Dense(EMBEDDING_DIM, dtype=self.dtype, param_dtype=self.param_dtype, name="fc")(x)
    return _batch_norm("features", self.dtype, self.param_dtype)(x)


def init_shapes(stage_blocks: Sequence[int]) -> dict[str, Any]:
  """Variable shapes ({"params", "batch_stats"}) of an IResNet, without allocating memory."""
  model = IResNet(tuple(stage_blocks))
  return jax.eval_shape(model.init, jax.random.key(0),
                        jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
