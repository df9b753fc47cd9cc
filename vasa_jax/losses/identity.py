"""VASA-1's cross-identity loss on face-recognition embeddings, and the networks that give them.

Source s driven by the motion of another person d gives D(V_app_s, z_id_s, z_pose_d, z_dyn_d); the
loss 1 - cos(f(result), f(source)) keeps the source's identity whatever drives it. f is frozen:
  "dlib"     dlib's ResNet face recogniser (`vasa_jax.models.dlib_resnet`), shipped in the
             `face-recognition-models` package: the default, so the loss and CSIM work on a fresh
             install. Its 150x150 chip is cut out of the canonical face crops the way dlib aligns
             faces.
  "arcface"  an ArcFace IResNet (`vasa_jax.models.arcface`) from weights the user converts; it
             expects aligned 112x112 faces: `frozen.arcface_input` cuts that region out of the crops.
`vasa_jax.convert.frozen.load_identity_network` builds either as (embedding_fn, variables,
source) for the loss and the identity evaluators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from vasa_jax.losses.contrastive import cosine_similarity

PyTree = Any
EmbeddingFn = Callable[[PyTree, jax.Array], jax.Array]

def cross_identity(embedding_fn: EmbeddingFn, params: PyTree, result: jax.Array,
                   source: jax.Array) -> jax.Array:
  """mean over the batch of 1 - cos(f(result), f(source)); float32 scalar in [0, 2].

  Args:
    embedding_fn: (variables, images `[b, h, w, 3]`) -> `[b, dims]`, frozen.
    params: its variables; no gradient flows into them.
    result: the source re-enacted with another person's motion, `[b, h, w, 3]`.
    source: the source images, `[b, h, w, 3]` (a fixed target).
  """
  params = jax.lax.stop_gradient(params)
  result_embedding = embedding_fn(params, result)
  source_embedding = embedding_fn(params, jax.lax.stop_gradient(source))
  return jnp.mean(1.0 - cosine_similarity(result_embedding, source_embedding))


