"""Hinge GAN losses and discriminator feature matching for a multi-scale patch discriminator.

Logits come as one array per scale (`[batch, h_s, w_s, 1]` patch logits); features as one list of
layer activations per scale. Every loss averages over patches, layers and scales, so its config
weight does not change with the discriminator's depth or number of scales.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp


def _mean_over(values: Sequence[jax.Array]) -> jax.Array:
  return jnp.mean(jnp.stack([v.astype(jnp.float32) for v in values]))


def d_hinge(real_logits: Sequence[jax.Array], fake_logits: Sequence[jax.Array]) -> jax.Array:
  """mean over scales of E[relu(1 - D(real))] + E[relu(1 + D(fake))]; float32 scalar."""
  if len(real_logits) != len(fake_logits):
    raise ValueError(f"{len(real_logits)} real and {len(fake_logits)} fake logit scales")
  return _mean_over([
      jnp.mean(jax.nn.relu(1.0 - r.astype(jnp.float32)))
      + jnp.mean(jax.nn.relu(1.0 + f.astype(jnp.float32)))
      for r, f in zip(real_logits, fake_logits)])


def g_hinge(fake_logits: Sequence[jax.Array]) -> jax.Array:
  """mean over scales of -E[D(fake)]; float32 scalar."""
  return _mean_over([-jnp.mean(f.astype(jnp.float32)) for f in fake_logits])


def feature_matching(real_features: Sequence[Sequence[jax.Array]],
                     fake_features: Sequence[Sequence[jax.Array]]) -> jax.Array:
  """Mean L1 between the discriminator's activations on real and fake images; float32 scalar.

  Args:
    real_features, fake_features: per scale, a list of `[batch, h, w, c]` layer activations.
      The real side is a fixed target: no gradient flows through it.
  """
  if len(real_features) != len(fake_features):
    raise ValueError(f"{len(real_features)} real and {len(fake_features)} fake feature scales")
  per_layer = []
  for real_scale, fake_scale in zip(real_features, fake_features):
    if len(real_scale) != len(fake_scale):
      raise ValueError(f"{len(real_scale)} real and {len(fake_scale)} fake feature layers")
    for real, fake in zip(real_scale, fake_scale):
      real = jax.lax.stop_gradient(real.astype(jnp.float32))
      per_layer.append(jnp.mean(jnp.abs(fake.astype(jnp.float32) - real)))
  return _mean_over(per_layer)
