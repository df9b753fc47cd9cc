"""VASA-1's pose/dynamics transfer consistency.

Frames i, j of one video: A = D(V_app_j, z_id_j, z_pose_i, z_dyn_j) and B = D(V_app_i, z_id_i,
z_pose_i, z_dyn_j) show the same face in the same pose and expression by construction, so any
difference between them is appearance or identity leaking into the motion latents (or motion into
the appearance). Both renderings receive gradients.
"""

from __future__ import annotations

from typing import Any

import jax

from vasa_jax.losses.perceptual import FeaturesFn, l1

PyTree = Any


def transfer_consistency(render_a: jax.Array, render_b: jax.Array,
                         features_fn: FeaturesFn | None = None, feature_params: PyTree = None,
                         feature_weights: Any = None,
                         perceptual_weight: float = 1.0) -> jax.Array:
  """L1(A, B) (+ perceptual_weight * perceptual L1 through `features_fn` if given); float32 scalar.

  Args:
    render_a, render_b: the two renderings `[batch, h, w, 3]`.
    features_fn, feature_params, feature_weights: an optional frozen feature network and its
      per-tap weights (see `perceptual.perceptual_l1`).
  """
  loss = l1(render_a, render_b)
  if features_fn is not None:
    pred_features = features_fn(jax.lax.stop_gradient(feature_params), render_a)
    other_features = features_fn(jax.lax.stop_gradient(feature_params), render_b)
    weights = feature_weights if feature_weights is not None else [1.0] * len(pred_features)
    for weight, a, b in zip(weights, pred_features, other_features):
      loss = loss + perceptual_weight * weight * l1(a, b)
  return loss
