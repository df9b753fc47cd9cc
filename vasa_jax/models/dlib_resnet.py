"""dlib's ResNet face recogniser (`dlib_face_recognition_resnet_model_v1`) in Flax.

dlib's metric-learning network maps an aligned 150x150 RGB face chip to a 128-d descriptor; two
photos of one person lie within 0.6 of each other (Euclidean), other people farther. It is a second,
independently trained identity network next to ArcFace (`vasa_jax.models.arcface`), so that an
identity score is not judged only by the network a loss was trained against. Layers, in
`[batch, height, width, channels]` (NHWC), for a `[b, 150, 150, 3]` chip:

  input      (pixel - avg_rgb) / 256 per channel (dlib's input_rgb_image)   [b, 150, 150, 3]
  conv       7x7 conv, 32, stride 2, no padding, bias; affine; relu          [b, 72, 72, 32]
  max_pool   3x3 window, stride 2, no padding                                [b, 35, 35, 32]
  alevel4    ares 32 x3                                                      [b, 35, 35, 32]
  alevel3    ares_down 64, ares 64 x3                                        [b, 17, 17, 64]
  alevel2    ares_down 128, ares 128 x2                                      [b, 8, 8, 128]
  alevel1    ares_down 256, ares 256 x2                                      [b, 4, 4, 256]
  alevel0    ares_down 256                                                   [b, 2, 2, 256]
  avg_pool   mean over all positions (avg_pool_everything)                   [b, 256]
  fc         fully connected without bias (fc_no_bias)                       [b, 128]

`ares` is relu(x + block(x)); `ares_down` is relu(avg_pool_2x2(x) + block(x)) with `block` = con1
(3x3, stride 1 or 2), affine1, relu, con2 (3x3, stride 1), affine2. The `affine` layers are the
batch norms of training frozen into a per-channel scale `gamma` and shift `beta`. dlib's padding
rule is that a strided window has no padding and a stride-1 window pads k // 2; so the two paths of
a down-sampling block may disagree in size (8 -> 3 by the strided conv, 8 -> 4 by the pool), and
dlib's add_prev then adds them zero-padded at the bottom/right to the larger size (and zero-pads
channels, 32 -> 64 etc.). The descriptor is the raw fc output (dlib does not normalise it).

Parameter names follow the layers: `avg_rgb` [3], `conv/kernel` [7, 7, 3, 32], `conv/bias`,
`affine/gamma`, `affine/beta`, `alevel3_ares0/con1/kernel` ..., `fc/kernel` [256, 128]; 5.6M
parameters. `vasa_jax.convert.dlib_resnet` reads them from dlib's own file format, and
`vasa_jax.models.dlib_align` cuts the chips as dlib does.

Cost: 0.49 GFLOPs per chip by XLA's cost analysis; about 9-17 ms per chip on two shared CPU cores
(batch 8, jitted, float32).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any

CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
STEM_FEATURES = 32
# Level -> (width, blocks, whether the first block down-samples), from input to output.
LEVELS: tuple[tuple[str, int, int, bool], ...] = (
    ("alevel4", 32, 3, False),
    ("alevel3", 64, 4, True),
    ("alevel2", 128, 3, True),
    ("alevel1", 256, 3, True),
    ("alevel0", 256, 1, True),
)


def _add_prev(a: jax.Array, b: jax.Array) -> jax.Array:
  """dlib's add_prev: the sum over the larger of the two shapes, each zero-padded at the end of
  the height, width and channel axes (dlib keeps both operands at their top-left corner)."""
  shape = [max(x, y) for x, y in zip(a.shape, b.shape)]

  def pad(x):
    return jnp.pad(x, [(0, s - d) for s, d in zip(shape, x.shape)])

  return pad(a) + pad(b)


class Affine(nn.Module):
  """Per-channel `gamma * x + beta` (a frozen batch norm): `[..., c]` -> `[..., c]`."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    gamma = self.param("gamma", nn.initializers.ones, (channels,), self.param_dtype)
    beta = self.param("beta", nn.initializers.zeros, (channels,), self.param_dtype)
    return x * gamma.astype(self.dtype) + beta.astype(self.dtype)


def con(features: int, kernel: int, stride: int, name: str, **kw) -> nn.Conv:
  """dlib's con_ (with bias): a strided window has no padding, a stride-1 one pads k // 2."""
  pad = 0 if stride != 1 else kernel // 2
  return nn.Conv(features, (kernel, kernel), (stride, stride), padding=((pad, pad), (pad, pad)),
                 name=name, **kw)


class Ares(nn.Module):
  """One residual block, `ares` or (down=True) `ares_down`: `[b, h, w, c]` -> `[b, h', w', n]`."""
  features: int
  down: bool = False
  precision: Any = jax.lax.Precision.HIGHEST
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kw = dict(precision=self.precision, dtype=self.dtype, param_dtype=self.param_dtype)
    akw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    y = con(self.features, 3, 2 if self.down else 1, "con1", **kw)(x)
    y = nn.relu(Affine(name="affine1", **akw)(y))
    y = con(self.features, 3, 1, "con2", **kw)(y)
    y = Affine(name="affine2", **akw)(y)
    skip = nn.avg_pool(x, (2, 2), (2, 2), padding="VALID") if self.down else x
    return nn.relu(_add_prev(y, skip))


class DlibResNet(nn.Module):
  """dlib's face recogniser: chips `[batch, 150, 150, 3]` RGB in 0..255 -> `[batch, 128]` float32.

  `dtype` is the compute dtype; weights are `param_dtype` (float32); the descriptor is float32.
  """
  precision: Any = jax.lax.Precision.HIGHEST
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, chips: jax.Array) -> jax.Array:
    kw = dict(precision=self.precision, dtype=self.dtype, param_dtype=self.param_dtype)
    akw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    avg_rgb = self.param("avg_rgb", nn.initializers.constant(122.0), (3,), self.param_dtype)
    x = ((chips.astype(jnp.float32) - avg_rgb.astype(jnp.float32)) / 256.0).astype(self.dtype)
    x = con(STEM_FEATURES, 7, 2, "conv", **kw)(x)
    x = nn.relu(Affine(name="affine", **akw)(x))
    x = nn.max_pool(x, (3, 3), (2, 2), padding="VALID")
    for level, features, blocks, down in LEVELS:
      for k in range(blocks):
        x = Ares(features, down and k == 0, name=f"{level}_ares{k}", **kw)(x)
    x = jnp.mean(x.astype(jnp.float32), axis=(1, 2)).astype(self.dtype)
    x = nn.Dense(DESCRIPTOR_SIZE, use_bias=False, precision=self.precision, dtype=self.dtype,
                 param_dtype=self.param_dtype, name="fc")(x)
    return x.astype(jnp.float32)


def param_shapes() -> dict[str, Any]:
  """The parameter tree's shapes, `{"conv": {"kernel": (7, 7, 3, 32), ...}, ...}`."""
  shapes = jax.eval_shape(DlibResNet().init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, CHIP_SIZE, CHIP_SIZE, 3), jnp.float32))
  return jax.tree.map(lambda s: tuple(s.shape), shapes["params"])
