"""CosFace (large-margin cosine) contrastive loss on motion descriptors.

For an anchor a, its positive p and negatives n_k (scale s, margin m; MegaPortraits: s = 5,
m = 0.2):

  L = -log( e^{s (cos(a, p) - m)} / (e^{s (cos(a, p) - m)} + sum_k e^{s cos(a, n_k)}) )

Pairing used by the face-model trainer (`cosface_in_batch`): the anchor is the motion descriptor
(z_pose, z_dyn) of the driving frame of batch element i, the positive is the descriptor re-encoded
from the image rendered with that motion (same motion, possibly another identity), and the negatives
are the positives of the other batch elements, which come from other videos. Pairs from the same
video can be excluded with `negative_mask`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_SCALE = 5.0
DEFAULT_MARGIN = 0.2
_EPS = 1e-12


def cosine_similarity(x: jax.Array, y: jax.Array) -> jax.Array:
  """Cosine along the last axis: `[..., d]`, `[..., d]` -> `[...]`."""
  x = x.astype(jnp.float32)
  y = y.astype(jnp.float32)
  # The clamp inside the square root keeps the gradient finite for an all-zero descriptor.
  x_norm = jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=-1), _EPS))
  y_norm = jnp.sqrt(jnp.maximum(jnp.sum(y * y, axis=-1), _EPS))
  return jnp.sum(x * y, axis=-1) / (x_norm * y_norm)


def _cosface_from_cosines(positive_cos: jax.Array, negative_cos: jax.Array,
                          negative_mask: jax.Array | None, scale: float,
                          margin: float) -> jax.Array:
  """positive_cos `[b]`, negative_cos `[b, k]` -> mean loss."""
  positive_logit = scale * (positive_cos - margin)
  negative_logits = scale * negative_cos
  if negative_mask is not None:
    negative_logits = jnp.where(negative_mask, negative_logits, -jnp.inf)
  # -log(e^p / (e^p + sum e^n)) = log(1 + sum e^(n - p)): exact in float32 even near zero loss,
  # and zero (with zero gradient) for an anchor without valid negatives.
  return jnp.mean(jax.nn.softplus(
      jax.nn.logsumexp(negative_logits - positive_logit[:, None], axis=1)))


def cosface(anchor: jax.Array, positive: jax.Array, negatives: jax.Array,
            scale: float = DEFAULT_SCALE, margin: float = DEFAULT_MARGIN) -> jax.Array:
  """CosFace loss with explicit negatives, averaged over the batch; float32 scalar.

  Args:
    anchor: `[batch, dims]`.
    positive: `[batch, dims]`, the positive of each anchor.
    negatives: `[batch, num_negatives, dims]`.
  """
  positive_cos = cosine_similarity(anchor, positive)
  negative_cos = cosine_similarity(anchor[:, None, :], negatives)
  return _cosface_from_cosines(positive_cos, negative_cos, None, scale, margin)


def cosface_in_batch(anchor: jax.Array, positive: jax.Array,
                     negative_mask: jax.Array | None = None, scale: float = DEFAULT_SCALE,
                     margin: float = DEFAULT_MARGIN) -> jax.Array:
  """CosFace loss where the other batch elements' positives are each anchor's negatives.

  Args:
    anchor, positive: `[batch, dims]`; row i of both comes from the same driving motion.
    negative_mask: optional `[batch, batch]` bool, True where positive j is a valid negative for
      anchor i (e.g. False for clips of the same video); the diagonal is ignored.

  Returns:
    float32 scalar, averaged over anchors.
  """
  batch = anchor.shape[0]
  cos = cosine_similarity(anchor[:, None, :], positive[None, :, :])
  # Row i lists every column but i: static indices, so this also traces under jit.
  others = np.array([[j for j in range(batch) if j != i] for i in range(batch)],
                    np.int32).reshape(batch, batch - 1)
  negative_cos = jnp.take_along_axis(cos, others, axis=1)
  if negative_mask is not None:
    negative_mask = jnp.take_along_axis(jnp.asarray(negative_mask, bool), others, axis=1)
  return _cosface_from_cosines(jnp.diagonal(cos), negative_cos, negative_mask, scale, margin)
