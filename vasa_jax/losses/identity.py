"""VASA-1's cross-identity loss on face-recognition embeddings, and the networks that give them.

Source s driven by the motion of another person d gives D(V_app_s, z_id_s, z_pose_d, z_dyn_d); the
loss 1 - cos(f(result), f(source)) keeps the source's identity whatever drives it. f is frozen:
  "dlib"     dlib's ResNet face recogniser (`vasa_jax.models.dlib_resnet`), shipped in the
             `face-recognition-models` package: the default, so the loss and CSIM work on a fresh
             install. Its 150x150 chip is cut out of the canonical face crops the way dlib aligns
             faces.
  "arcface"  an ArcFace IResNet (`vasa_jax.models.arcface`) from weights the user converts; it
             expects aligned 112x112 faces: `arcface_input` cuts that region out of the crops.
`load_identity_network` builds either as (embedding_fn, variables, source) for the loss and the
identity evaluators.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from vasa_jax.errors import UserError
from vasa_jax.losses.contrastive import cosine_similarity

PyTree = Any
EmbeddingFn = Callable[[PyTree, jax.Array], jax.Array]

ARCFACE_SIZE = 112
# insightface's 112x112 alignment template puts the eye midpoint at y = 51.6 px and the mouth centre
# at y = 92.3 px; the canonical crop of `vasa_jax.data.faces` puts them at 41% and 63.2% of its
# height. The box below maps one onto the other: (top, left, bottom, right) as fractions.
_EYE_Y, _MOUTH_Y = 51.6 / ARCFACE_SIZE, 92.3 / ARCFACE_SIZE
_CANONICAL_EYE_Y, _CANONICAL_MOUTH_Y = 0.41, 0.632
_SIDE = (_CANONICAL_MOUTH_Y - _CANONICAL_EYE_Y) / (_MOUTH_Y - _EYE_Y)
CANONICAL_CROP_BOX: tuple[float, float, float, float] = (
    _CANONICAL_EYE_Y - _EYE_Y * _SIDE, 0.5 - _SIDE / 2,
    _CANONICAL_EYE_Y + (1 - _EYE_Y) * _SIDE, 0.5 + _SIDE / 2)


def arcface_input(images: jax.Array,
                  crop_box: tuple[float, float, float, float] = CANONICAL_CROP_BOX,
                  input_range: tuple[float, float] = (-1.0, 1.0)) -> jax.Array:
  """Crops the ArcFace region and resizes it: `[b, h, w, 3]` -> `[b, 112, 112, 3]` in [-1, 1].

  Args:
    images: face crops, RGB in `input_range`.
    crop_box: (top, left, bottom, right) as fractions of the height/width; (0, 0, 1, 1) keeps
      the whole image (for inputs already aligned like insightface's).
  """
  _, height, width, _ = images.shape
  top, left, bottom, right = crop_box
  rows = slice(max(0, round(top * height)), min(height, round(bottom * height)))
  cols = slice(max(0, round(left * width)), min(width, round(right * width)))
  faces = images[:, rows, cols, :].astype(jnp.float32)
  faces = jax.image.resize(faces, (faces.shape[0], ARCFACE_SIZE, ARCFACE_SIZE, faces.shape[-1]),
                           method="linear", antialias=True)
  low, high = input_range
  return (faces - low) / (high - low) * 2.0 - 1.0


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


def load_arcface_or_none(path: str | pathlib.Path | None,
                         crop_box: tuple[float, float, float, float] = CANONICAL_CROP_BOX,
                         input_range: tuple[float, float] = (-1.0, 1.0),
                         dtype: Any = jnp.float32) -> tuple[EmbeddingFn, PyTree] | None:
  """(embedding_fn, variables) of converted ArcFace weights, or None (logged) without a path.

  `dtype` is the network's compute dtype (the weights stay float32; the embedding is float32).

  The returned function crops and resizes with `arcface_input` first, so it takes the face model's
  renders directly. A path that is set but wrong raises a UserError.
  """
  if not path:
    logging.warning("identity loss off: no ArcFace weights configured "
                    "(set config.losses.arcface_path)")
    return None
  from vasa_jax.convert.arcface import load_arcface

  model, variables = load_arcface(path)
  return arcface_embedding(model.clone(dtype=dtype), crop_box, input_range), variables


def arcface_embedding(model, crop_box: tuple[float, float, float, float] = CANONICAL_CROP_BOX,
                      input_range: tuple[float, float] = (-1.0, 1.0)) -> EmbeddingFn:
  """(variables, face-model renders `[b, h, w, 3]`) -> float32 embeddings of an ArcFace module:
  the ArcFace region is cropped and resized first (`arcface_input`)."""

  def embedding_fn(variables: PyTree, images: jax.Array) -> jax.Array:
    return model.apply(variables, arcface_input(images, crop_box, input_range)).astype(jnp.float32)

  return embedding_fn


IDENTITY_NETWORKS = ("dlib", "arcface")


class IdentityNetworkMissing(UserError):
  """The configured identity network cannot be built: its package or weights file is missing."""


def load_identity_network(network: str = "dlib", arcface_path: str | pathlib.Path = "",
                          input_range: tuple[float, float] = (-1.0, 1.0),
                          dtype: Any = jnp.float32) -> tuple[EmbeddingFn, PyTree, str]:
  """(embedding_fn, variables, source) of a frozen face-recognition network.

  `embedding_fn(variables, faces)` maps face crops in the training framing `[b, h, w, 3]` (in
  `input_range`) to float32 embeddings `[b, d]`; `source` names the weights (package, version and
  file, or the path). `dtype` is the network's compute dtype; the weights stay float32.

  Raises IdentityNetworkMissing when the network's package or file is missing (the message says
  what to install or set), and a UserError for an unknown network.
  """
  from vasa_jax.convert import packaged

  if network == "dlib":
    from vasa_jax.convert import dlib_resnet as convert_dlib
    from vasa_jax.models import dlib_align

    try:
      path = convert_dlib.packaged_dlib_resnet_path()
    except packaged.MissingPackage as e:
      raise IdentityNetworkMissing(str(e)) from None
    model, variables = convert_dlib.load_dlib_resnet(path)
    model = model.clone(dtype=dtype)

    def embedding_fn(variables: PyTree, faces: jax.Array) -> jax.Array:
      chips = dlib_align.canonical_chip(faces, input_range=input_range)
      return model.apply(variables, chips).astype(jnp.float32)

    return embedding_fn, variables, packaged.source_of(path)
  if network == "arcface":
    if not arcface_path:
      raise IdentityNetworkMissing(
          "the ArcFace identity network needs converted weights; fix: set the ArcFace weights "
          "path to the file vasa_jax.convert.arcface.convert_arcface(backbone_pth, out_path) "
          "writes from insightface's arcface_torch backbone.pth, or use the dlib network")
    from vasa_jax.convert.arcface import load_arcface

    model, variables = load_arcface(arcface_path)
    return (arcface_embedding(model.clone(dtype=dtype), CANONICAL_CROP_BOX, input_range),
            variables, str(pathlib.Path(arcface_path).expanduser().resolve()))
  raise UserError(f"identity network {network!r} is unknown; fix: use one of "
                  f"{', '.join(IDENTITY_NETWORKS)}")
