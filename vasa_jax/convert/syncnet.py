"""The public SyncNet's weights (`syncnet_v2.model`) -> Flax variables of `models.syncnet.SyncNet`.

syncnet_python releases `syncnet_v2.model`, a pickled torch state dict of its network `S` (the
evaluation of Wav2Lip ships the same file). Reading it needs torch (imported only for that, with
`weights_only=True`); a `.safetensors` state dict with the same keys needs no torch.
`convert_syncnet(path, out_path)` writes the parameters and BatchNorm statistics as safetensors
once; the S_C / S_D metric reads them with `load_syncnet(path)` (numpy only, no pickle).

Key mapping, by the torch `Sequential` indices: `netcnnaud.4.weight` <->
`params/audio/netcnnaud_4/kernel`, `netfclip.1.running_var` <-> `batch_stats/lip/netfclip_1/var`.
Conv weights [out, in, *kernel] become kernels [*kernel, in, out], linear weights [out, in] become
[in, out], BatchNorm weight/bias become scale/bias; `num_batches_tracked` counters are dropped.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from vasa_jax.convert import common as torch_io
from vasa_jax.errors import UserError
from vasa_jax.models import syncnet

PyTree = Any

_FORMAT = "vasa_jax.syncnet"
IGNORED_TENSORS = (r".*num_batches_tracked",)
_LEAF_TO_TORCH = {"kernel": "weight", "bias": "bias", "scale": "weight", "mean": "running_mean",
                  "var": "running_var"}
_HOW = "syncnet.convert_syncnet(syncnet_v2_model, out_path)"


def torch_key(flax_path: str) -> str:
  """"params/audio/netcnnaud_4/kernel" -> "netcnnaud.4.weight"."""
  _, _, module, leaf = flax_path.split("/")
  prefix, _, index = module.rpartition("_")
  return f"{prefix}.{index}.{_LEAF_TO_TORCH[leaf]}"


def convert_syncnet(state_dict_path: str | pathlib.Path,
                    out_path: str | pathlib.Path) -> pathlib.Path:
  """Converts the public SyncNet's state dict (`syncnet_v2.model` or the same keys as
  `.safetensors`) to a Flax safetensors file at `out_path`, which it returns."""
  source = pathlib.Path(state_dict_path).expanduser()
  tensors = torch_io.read_state_dict(source, "SyncNet")
  if "netcnnaud.0.weight" not in tensors or "netcnnlip.0.weight" not in tensors:
    raise UserError(f"{source} lacks `netcnnaud.0.weight`/`netcnnlip.0.weight`, so it is not the "
                    "state dict of syncnet_python's SyncNet; fix: pass syncnet_v2.model (from "
                    "syncnet_python's download_model.sh, or Wav2Lip's evaluation)")
  flat, used = {}, set()
  for path, shape in syncnet.variable_shapes().items():
    key = torch_key(path)
    if key not in tensors:
      raise UserError(f"{source} lacks `{key}` that SyncNet needs; fix: pass the complete "
                      "syncnet_v2.model")
    value = np.asarray(tensors[key], np.float32)
    used.add(key)
    if path.endswith("/kernel"):
      # torch: conv [out, in, *kernel], linear [out, in]; Flax: [*kernel, in, out], [in, out].
      value = value.transpose(*range(2, value.ndim), 1, 0) if value.ndim > 2 else value.T
    if value.shape != shape:
      raise UserError(f"{source}: `{key}` has shape {tuple(value.shape)} where SyncNet needs "
                      f"{shape} (after transposing); fix: pass syncnet_v2.model, not another "
                      "SyncNet variant")
    flat[path] = value
  torch_io.refuse_unused(tensors, used, IGNORED_TENSORS, source, "SyncNet")
  return torch_io.write_safetensors(flat, out_path, _FORMAT, {"source": source.name}, "SyncNet")


def load_syncnet(path: str | pathlib.Path) -> dict[str, PyTree]:
  """Variables {"params": ..., "batch_stats": ...} for `SyncNet().apply`, from `convert_syncnet`'s
  file."""
  _, flat = torch_io.read_safetensors(path, _FORMAT, "SyncNet", _HOW)
  if {k: tuple(v.shape) for k, v in flat.items()} != syncnet.variable_shapes():
    raise UserError(f"{path}: variables do not match SyncNet; fix: convert the weights again "
                    f"with vasa_jax.convert.{_HOW}")
  return torch_io.unflatten(flat)
