"""Hugging Face Wav2Vec2/HuBERT checkpoints -> Flax parameters of `vasa_jax.models.audio.wav2vec2`.

Reads a local folder as `save_pretrained` or a hub snapshot leaves it: `config.json`, the weights as
`model.safetensors` (or shards listed in `model.safetensors.index.json`) and, if present,
`preprocessor_config.json` (for `do_normalize`). Only safetensors are read: pickled `.bin` files are
refused, nothing is downloaded and torch is not needed.

Any checkpoint class works (Wav2Vec2Model, Wav2Vec2ForCTC, Wav2Vec2ForPreTraining, HubertModel...):
the base model's tensors are found under their prefix ("wav2vec2.", "hubert." or none), and the task
heads' tensors listed in `IGNORED_HEAD_TENSORS` are skipped. Every other tensor must map to a Flax
parameter of the right shape and every Flax parameter must be filled, or a UserError says which.

Converted weights can be stored with `convert(folder, out_path)` / `save_flax_params` as safetensors
(with the config in the file's metadata) and read back with `load_converted` / `load_flax_params`.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from vasa_jax.convert.common import flatten, read_safetensors, unflatten
from vasa_jax.errors import UserError
from vasa_jax.models.audio import wav2vec2 as w2v

PyTree = Any

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
_FORMAT = "vasa_jax.wav2vec2"

# Tensors inside the base model that inference does not use.
IGNORED_BASE_TENSORS = {
    r"masked_spec_embed": "the SpecAugment mask vector, used only when masking during training",
    r"encoder\.pos_conv_embed\.batch_norm\.num_batches_tracked": "a batch-norm step counter",
}
# Task heads around the base model (tensors outside its prefix), by the class that has them.
IGNORED_HEAD_TENSORS = {
    r"lm_head\..*": "the CTC head of *ForCTC",
    r"quantizer\..*": "the Gumbel quantizer of Wav2Vec2ForPreTraining",
    r"project_q\..*": "the quantized-target projection of Wav2Vec2ForPreTraining",
    r"project_hid\..*": "the context projection of Wav2Vec2ForPreTraining",
    r"dropout_features\..*": "Wav2Vec2ForPreTraining (holds no weights in current versions)",
    r"projector\..*": "the pooling projection of *ForSequenceClassification",
    r"classifier\..*": "the classifier of *ForSequenceClassification, *ForAudioFrameClassification",
    r"layer_weights": "the hidden-state weights of use_weighted_layer_sum heads",
    r"tdnn\..*": "the TDNN layers of Wav2Vec2ForXVector",
    r"feature_extractor\..*": "the x-vector projection of Wav2Vec2ForXVector",
    r"objective\..*": "the AM-softmax loss of Wav2Vec2ForXVector",
}
_ANCHOR = "feature_extractor.conv_layers.0.conv.weight"
_POS_CONV = "encoder.pos_conv_embed.conv"


def load_hf_wav2vec2(folder: str | pathlib.Path,
                     dtype: Any = np.float32) -> tuple[w2v.Wav2Vec2Config, PyTree]:
  """Converts a Hugging Face Wav2Vec2/HuBERT checkpoint folder.

  Args:
    folder: the checkpoint folder (config.json + model.safetensors), or a `.safetensors` file that
      `convert` / `save_flax_params(..., config=...)` wrote.
    dtype: numpy dtype of the returned parameters.

  Returns:
    (config, params): use as `Wav2Vec2Model(config).apply({"params": params}, waveform)`.
  """
  folder = pathlib.Path(folder).expanduser()
  if folder.is_file() and folder.suffix == ".safetensors":
    config, params = load_converted(folder)
    return config, _cast(params, dtype)
  if not folder.is_dir():
    raise UserError(f"Wav2Vec2 checkpoint folder {folder} does not exist; fix: pass a local folder "
                    f"holding {CONFIG_FILE} and {WEIGHTS_FILE} (a hub snapshot or the output of "
                    "save_pretrained)")
  config = _read_config(folder)
  tensors, weights_name = _read_tensors(folder)
  params = _map_tensors(tensors, config, folder / weights_name, dtype)
  return config, params


def convert(folder: str | pathlib.Path, out_path: str | pathlib.Path) -> pathlib.Path:
  """Converts the checkpoint in `folder` and stores params and config as one safetensors file."""
  config, params = load_hf_wav2vec2(folder)
  return save_flax_params(params, out_path, config=config)


def save_flax_params(params: PyTree, path: str | pathlib.Path,
                     config: w2v.Wav2Vec2Config | None = None) -> pathlib.Path:
  """Writes a parameter tree as safetensors (keys "a/b/kernel"), `config` in the metadata."""
  import safetensors.numpy

  path = pathlib.Path(path).expanduser()
  flat = flatten(params)
  metadata = {"format": _FORMAT}
  if config is not None:
    metadata["config"] = config.to_json()
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in flat.items()}, str(path),
                                metadata=metadata)
  except OSError as e:
    raise UserError(f"cannot write converted Wav2Vec2 weights to {path}: {e}; fix: choose a "
                    "writable path") from None
  return path


def load_flax_params(path: str | pathlib.Path) -> PyTree:
  """Reads a parameter tree that `save_flax_params` wrote."""
  return _read_saved(path)[1]


def load_converted(path: str | pathlib.Path) -> tuple[w2v.Wav2Vec2Config, PyTree]:
  """(config, params) from a file that `convert` (or `save_flax_params` with a config) wrote."""
  metadata, params = _read_saved(path)
  if "config" not in metadata:
    raise UserError(f"{path} holds parameters without a Wav2Vec2 config; fix: write it with "
                    "convert(folder, out_path) or save_flax_params(params, path, config=config)")
  config = w2v.Wav2Vec2Config.from_dict(json.loads(metadata["config"]))
  _check_shapes(params, config, pathlib.Path(path))
  return config, params


# --------------------------------------------------------------------------------------------------
# Reading the folder.


def _read_json(path: pathlib.Path) -> Any:
  try:
    return json.loads(path.read_text(encoding="utf-8"))
  except json.JSONDecodeError as e:
    raise UserError(f"{path} is not valid JSON ({e}); fix: download it again") from None
  except OSError as e:
    raise UserError(f"cannot read {path}: {e}") from None


def _read_config(folder: pathlib.Path) -> w2v.Wav2Vec2Config:
  path = folder / CONFIG_FILE
  if not path.is_file():
    raise UserError(f"{folder} has no {CONFIG_FILE}; fix: pass the checkpoint folder itself (the "
                    f"one with {CONFIG_FILE} and {WEIGHTS_FILE}), as save_pretrained writes it")
  config = w2v.Wav2Vec2Config.from_hf_dict(_read_json(path), source=str(path))
  preprocessor = folder / PREPROCESSOR_FILE
  if preprocessor.is_file():
    do_normalize = _read_json(preprocessor).get("do_normalize")
    if isinstance(do_normalize, bool):
      config = dataclasses.replace(config, do_normalize=do_normalize)
  return config


def _read_tensors(folder: pathlib.Path) -> tuple[dict[str, np.ndarray], str]:
  """All tensors of the checkpoint and the weights file's name (for messages)."""
  import safetensors.numpy

  single, index = folder / WEIGHTS_FILE, folder / WEIGHTS_INDEX_FILE
  if single.is_file():
    files, name = [single], WEIGHTS_FILE
  elif index.is_file():
    weight_map = _read_json(index).get("weight_map", {})
    files, name = [folder / f for f in sorted(set(weight_map.values()))], WEIGHTS_INDEX_FILE
    missing = [f.name for f in files if not f.is_file()]
    if missing:
      raise UserError(f"{index} lists shards that are not in {folder}: {missing}; fix: download "
                      "every shard")
  else:
    pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
    if pickled:
      hint = (f" It has only pickled weights ({', '.join(sorted(pickled))}), which are not read "
              "(loading them can run code). Fix: download model.safetensors for this model (most "
              "hub repositories have one, some only under refs/pr/...), or re-save the model "
              "where torch is installed with transformers' save_pretrained (safetensors is its "
              "default).")
    else:
      hint = f" Fix: pass the folder that holds {WEIGHTS_FILE}."
    raise UserError(f"{folder} has no {WEIGHTS_FILE}.{hint}")
  tensors: dict[str, np.ndarray] = {}
  for path in files:
    try:
      tensors.update(safetensors.numpy.load_file(str(path)))
    except Exception as e:  # safetensors raises its own error types for damaged files.
      raise UserError(f"cannot read {path} as safetensors ({e}); fix: download it again") from None
  return tensors, name


# --------------------------------------------------------------------------------------------------
# Mapping tensors to the Flax tree.


def _map_tensors(tensors: Mapping[str, np.ndarray], config: w2v.Wav2Vec2Config,
                 weights_path: pathlib.Path, dtype: Any) -> PyTree:
  anchors = [k for k in tensors if k.endswith(_ANCHOR)]
  if len(anchors) != 1:
    raise UserError(f"{weights_path} has {'no' if not anchors else 'several'} `{_ANCHOR}` tensor "
                    f"(with any prefix), so it is not one Wav2Vec2/HuBERT model; fix: use a "
                    "Wav2Vec2 or HuBERT checkpoint saved by transformers")
  prefix = anchors[0][:-len(_ANCHOR)]
  used: set[str] = set()

  def take(name: str) -> np.ndarray | None:
    key = prefix + name
    if key in tensors:
      used.add(key)
      return np.asarray(tensors[key])
    return None

  def require(name: str, alternatives: tuple[str, ...] = ()) -> np.ndarray:
    for candidate in (name,) + alternatives:
      value = take(candidate)
      if value is not None:
        return value
    raise UserError(f"{weights_path} lacks the tensor `{prefix + name}` that config.json's "
                    f"architecture needs; fix: use the {CONFIG_FILE} saved with these weights, or "
                    "download the weights again if the file is incomplete")

  flat = {}
  for path, spec in flatten(w2v.init_shapes(config)).items():
    parts = path.split("/")
    module = ".".join(re.sub(r"_(\d+)$", r".\1", p) for p in parts[:-1])
    leaf = parts[-1]
    expected = tuple(spec.shape)
    if leaf == "kernel":
      source = f"{module}.weight"
      if module == _POS_CONV:
        value = _pos_conv_weight(take, require, module)
      else:
        value = require(source)
      # PyTorch stores Linear as [out, in] and Conv1d as [out, in / groups, width]: Flax reversed.
      expected = expected[::-1]
    elif leaf == "scale":
      source = f"{module}.weight"
      value = require(source, (f"{module}.gamma",))
    elif leaf == "bias":
      source = f"{module}.bias"
      value = require(source, (f"{module}.beta",))
    else:
      raise AssertionError(f"no checkpoint name for Flax parameter {path}")
    if tuple(value.shape) != expected:
      raise UserError(f"{weights_path}: tensor `{prefix}{source}` has shape {tuple(value.shape)} "
                      f"but config.json's architecture needs {expected}; fix: use the "
                      f"{CONFIG_FILE} saved with these weights")
    if leaf == "kernel":
      value = value.transpose(tuple(range(value.ndim))[::-1])
    flat[path] = value.astype(dtype)

  unused = []
  for key in sorted(set(tensors) - used):
    inside = key.startswith(prefix)
    name = key[len(prefix):] if inside else key
    known = IGNORED_BASE_TENSORS if inside else IGNORED_HEAD_TENSORS
    if not any(re.fullmatch(pattern, name) for pattern in known):
      unused.append(key)
  if unused:
    shown = ", ".join(f"`{k}`" for k in unused[:8]) + (" ..." if len(unused) > 8 else "")
    raise UserError(f"{weights_path} has {len(unused)} tensor(s) that config.json's architecture "
                    f"does not use: {shown}; fix: use the {CONFIG_FILE} saved with these weights "
                    "(another depth, adapters or a variant vasa_jax does not implement)")
  return unflatten(flat)


def _pos_conv_weight(take, require, module: str) -> np.ndarray:
  """The positional convolution's kernel in PyTorch layout [out, in / groups, width].

  transformers weight-normalises it along the width axis (dim=2): weight = g * v / |v|, the norm
  over the other two axes. Old checkpoints store `weight_g`/`weight_v`, newer ones the
  parametrization's `original0`/`original1`; a plain `weight` is taken as is.
  """
  plain = take(f"{module}.weight")
  if plain is None:
    g = take(f"{module}.parametrizations.weight.original0")
    if g is None:
      g = require(f"{module}.weight_g")
      v = require(f"{module}.weight_v")
    else:
      v = require(f"{module}.parametrizations.weight.original1")
    g, v = g.astype(np.float64), v.astype(np.float64)
    axes = tuple(i for i in range(v.ndim) if g.shape[i] == 1)
    plain = g * v / np.sqrt(np.sum(np.square(v), axis=axes, keepdims=True))
  return plain


# --------------------------------------------------------------------------------------------------
# Stored Flax parameters.


def _read_saved(path: str | pathlib.Path) -> tuple[dict[str, str], PyTree]:
  metadata, flat = read_safetensors(path, _FORMAT, "Wav2Vec2",
                                    "wav2vec2.convert(hf_folder, out_path)")
  return metadata, unflatten(flat)

def _check_shapes(params: PyTree, config: w2v.Wav2Vec2Config, path: pathlib.Path) -> None:
  expected = {k: tuple(v.shape) for k, v in flatten(w2v.init_shapes(config)).items()}
  found = {k: tuple(np.shape(v)) for k, v in flatten(params).items()}
  if expected != found:
    wrong = sorted(k for k in set(expected) | set(found) if expected.get(k) != found.get(k))
    raise UserError(f"{path}: parameters do not match the stored config at {wrong[:5]}; fix: "
                    "convert the checkpoint again")


def _cast(tree: PyTree, dtype: Any) -> PyTree:
  return unflatten({k: np.asarray(v).astype(dtype) for k, v in flatten(tree).items()})
