"""Classifier-free guidance over several conditions (VASA-1's formula):

  x0_hat = (1 + sum_c l_c) H(x_t, t, C) - sum_c l_c H(x_t, t, C with c dropped)

Dropping a condition means what it means in training: its entry of `keep` is set to False, and the
model substitutes its learned "absent" embedding (`vasa_jax.models.motion_dit`). Training drops
conditions through `drop_conditions` and guidance through `without`, both on the same `keep`
masks, so what the sampler removes is exactly what the model learned to do without. All variants
run as one batch through the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

Keep = dict[str, jax.Array]  # condition -> bool [batch] (or [batch, frames] for per-frame ones)


def without(keep: Mapping[str, jax.Array], condition: str) -> Keep:
  """`keep` with `condition` dropped for every example (and every frame)."""
  out = dict(keep)
  out[condition] = jnp.zeros_like(keep[condition])
  return out


def drop_conditions(rng: jax.Array, keep: Mapping[str, jax.Array],
                    probabilities: Mapping[str, float]) -> Keep:
  """Training's condition dropout: each example loses each condition with its probability.

  A per-frame condition (e.g. audio `[batch, frames]`) is dropped for all its frames at once.
  """
  out = dict(keep)
  for index, (name, p) in enumerate(sorted(probabilities.items())):
    if not p:
      continue
    mask = keep[name]
    kept = jax.random.bernoulli(jax.random.fold_in(rng, index), 1.0 - p, mask.shape[:1])
    out[name] = mask & kept.reshape(kept.shape + (1,) * (mask.ndim - 1))
  return out


def guided_x0(predict: Callable[..., jax.Array], x_t: jax.Array, t: jax.Array, conditions,
              keep: Mapping[str, jax.Array], scales: Mapping[str, float]) -> jax.Array:
  """The guided x0 prediction; `predict(x_t, t, conditions, keep) -> x0_hat` is the model.

  Args:
    x_t: `[batch, ...]` noisy input; t: `[batch]` steps.
    conditions: a pytree whose leaves have a leading batch axis.
    keep: which conditions each example has (see `Keep`).
    scales: guidance scale per condition; conditions with scale 0 are not guided.
  """
  guided = [name for name, scale in sorted(scales.items()) if scale]
  if not guided:
    return predict(x_t, t, conditions, dict(keep))
  variants = [dict(keep)] + [without(keep, name) for name in guided]
  n = len(variants)
  tile = lambda x: jnp.concatenate([x] * n, axis=0)  # noqa: E731
  stacked_keep = {name: jnp.concatenate([v[name] for v in variants], axis=0) for name in keep}
  out = predict(tile(x_t), tile(t), jax.tree.map(tile, conditions), stacked_keep)
  parts = jnp.split(out, n, axis=0)
  total = sum(float(scales[name]) for name in guided)
  x0 = (1.0 + total) * parts[0]
  for name, part in zip(guided, parts[1:]):
    x0 = x0 - float(scales[name]) * part
  return x0
