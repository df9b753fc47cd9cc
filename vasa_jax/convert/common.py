"""What the weight converters share: reading torch state dicts, safetensors without pickle, trees.

A torch `.pth` state dict is a pickle, so reading one needs torch (imported only there, with
`torch.load(weights_only=True)`, which refuses arbitrary objects); a `.safetensors` state dict needs
no torch. Converted Flax parameters are written as safetensors with "a/b/kernel" keys and read back
with numpy only.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vasa_jax.errors import UserError

PyTree = Any


def read_state_dict(path: pathlib.Path, network: str) -> dict[str, np.ndarray]:
  """A state dict as float32/int numpy arrays, from a torch pickle or a safetensors file."""
  if not path.is_file():
    raise UserError(f"{network} state dict {path} does not exist; fix: pass the path of the "
                    "downloaded weights file")
  if path.suffix == ".safetensors":
    import safetensors.numpy

    try:
      return dict(safetensors.numpy.load_file(str(path)))
    except Exception as e:  # safetensors raises its own error types for damaged files.
      raise UserError(f"cannot read {path} as safetensors ({e}); fix: download it again") from None
  try:
    import torch
  except ImportError:
    raise UserError(f"{path} is a pickled torch file and reading it needs torch, which is not "
                    "installed; fix: `pip install torch` (CPU is enough) for the conversion, or "
                    "pass the state dict saved as .safetensors") from None
  try:
    loaded = torch.load(str(path), map_location="cpu", weights_only=True)
  except Exception as e:  # torch raises many error types for damaged or unsafe files.
    raise UserError(f"cannot read {path} as a torch state dict ({type(e).__name__}: {e}); fix: "
                    "pass a state dict saved with torch.save(model.state_dict()), not a whole "
                    "pickled model") from None
  if isinstance(loaded, Mapping) and "state_dict" in loaded and isinstance(
      loaded["state_dict"], Mapping):
    loaded = loaded["state_dict"]
  if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor)
                                                for v in loaded.values()):
    raise UserError(f"{path} does not hold a state dict of tensors; fix: pass the weights file "
                    f"of {network} as its project publishes it")
  # Weights trained with DataParallel carry a `module.` prefix.
  return {re.sub(r"^module\.", "", k): v.detach().cpu().float().numpy()
          if v.is_floating_point() else v.detach().cpu().numpy() for k, v in loaded.items()}


def refuse_unused(tensors: Mapping[str, np.ndarray], used: set[str], ignored: Sequence[str],
                  source: pathlib.Path, network: str) -> None:
  """Raises a UserError naming the tensors that were neither used nor known to be ignorable."""
  unused = sorted(k for k in set(tensors) - used
                  if not any(re.fullmatch(p, k) for p in ignored))
  if unused:
    shown = ", ".join(f"`{k}`" for k in unused[:8]) + (" ..." if len(unused) > 8 else "")
    raise UserError(f"{source} has {len(unused)} tensor(s) {network} does not use: {shown}; fix: "
                    "pass the weights of this exact architecture (check the depth or variant)")


def write_safetensors(flat: Mapping[str, np.ndarray], path: str | pathlib.Path, file_format: str,
                      metadata: Mapping[str, str], network: str) -> pathlib.Path:
  """Writes flat `"a/b/kernel"` arrays with `{"format": file_format, **metadata}`."""
  import safetensors.numpy

  path = pathlib.Path(path).expanduser()
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in flat.items()}, str(path),
                                metadata={"format": file_format, **metadata})
  except OSError as e:
    raise UserError(f"cannot write converted {network} weights to {path}: {e}; fix: choose a "
                    "writable path") from None
  return path


def read_safetensors(path: str | pathlib.Path, file_format: str, network: str,
                     how: str) -> tuple[dict[str, str], dict[str, np.ndarray]]:
  """(metadata, flat arrays) of a file `write_safetensors` wrote with `file_format`."""
  from safetensors import safe_open

  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise UserError(f"converted {network} weights {path} do not exist; fix: write them with "
                    f"vasa_jax.convert.{how}")
  try:
    with safe_open(str(path), framework="numpy") as f:
      metadata = dict(f.metadata() or {})
      flat = {key: f.get_tensor(key) for key in f.keys()}
  except Exception as e:  # safetensors raises its own error types for damaged files.
    raise UserError(f"cannot read {path} as safetensors ({e}); fix: convert the weights "
                    "again") from None
  if metadata.get("format") != file_format:
    raise UserError(f"{path} is not converted {network} weights (format "
                    f"{metadata.get('format')!r}); fix: write them with vasa_jax.convert.{how}")
  return metadata, flat


def flatten(tree: PyTree) -> dict[str, Any]:
  """{"a": {"b": x}} -> {"a/b": x}."""
  flat = {}

  def visit(node, prefix):
    if isinstance(node, Mapping):
      for key, value in node.items():
        visit(value, f"{prefix}/{key}" if prefix else str(key))
    else:
      flat[prefix] = node

  visit(tree, "")
  return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
  """{"a/b": x} -> {"a": {"b": x}}."""
  tree: dict[str, Any] = {}
  for path, value in flat.items():
    node = tree
    *parents, leaf = path.split("/")
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  return tree
