"""torchvision VGG19 weights -> Flax parameters of `vasa_jax.models.vgg19.VGG19Features`.

Users have torchvision's `vgg19-dcbb9e9d.pth`, a pickled state dict. Reading it needs torch
(imported here only, `torch.load(weights_only=True)`, which refuses arbitrary objects); a
`.safetensors` state dict with the same keys needs no torch. `convert_vgg19(state_dict_path,
out_path)` writes the Flax parameters as safetensors once; training reads them with
`load_vgg19(path)` (numpy only, no pickle).

The `features.{i}.weight/bias` tensors map to `features_{i}/kernel/bias`; the classifier is dropped
(perceptual losses use the convolutional taps only).
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from vasa_jax.convert.common import (read_safetensors, read_state_dict, refuse_unused, unflatten,
                                      write_safetensors)
from vasa_jax.errors import UserError
from vasa_jax.models import vgg19 as vgg

PyTree = Any

_FORMAT = "vasa_jax.vgg19"
IGNORED_TENSORS = (r"classifier\..*",)


def convert_vgg19(state_dict_path: str | pathlib.Path,
                  out_path: str | pathlib.Path) -> pathlib.Path:
  """Converts torchvision's VGG19 state dict (`.pth` or `.safetensors`) to Flax safetensors."""
  source = pathlib.Path(state_dict_path).expanduser()
  flat = torchvision_features(source, vgg.param_shapes(), "VGG19", "vgg19-*.pth")
  return write_safetensors(flat, out_path, _FORMAT, {}, "VGG19")


def torchvision_features(source: pathlib.Path, shapes: dict[str, dict[str, tuple[int, ...]]],
                         network: str, file_hint: str) -> dict[str, np.ndarray]:
  """Flat `"features_{i}/kernel|bias"` arrays from a torchvision VGG state dict (`features.{i}.
  weight/bias`), checked against `shapes` ({module: {leaf: shape}}); the classifier is ignored,
  any other unused tensor refused."""
  tensors = read_state_dict(source, network)
  flat, used = {}, set()
  for module, leaves in shapes.items():
    index = module.split("_")[1]
    for leaf, shape in leaves.items():
      key = f"features.{index}.{'weight' if leaf == 'kernel' else 'bias'}"
      if key not in tensors:
        raise UserError(f"{source} lacks `{key}`, so it is not torchvision's {network} state "
                        f"dict; fix: pass {file_hint} from torchvision (not the _bn variant, not "
                        "another depth, not a whole pickled model)")
      value = np.asarray(tensors[key], np.float32)
      used.add(key)
      if leaf == "kernel":
        # torch conv weights are [out, in, kh, kw]; Flax wants [kh, kw, in, out].
        value = value.transpose(2, 3, 1, 0)
      if value.shape != shape:
        raise UserError(f"{source}: `{key}` has shape {value.shape}, {network} needs {shape} "
                        f"(after transposing); fix: pass torchvision's {network.lower()} weights, "
                        "not another VGG")
      flat[f"{module}/{leaf}"] = value
  refuse_unused(tensors, used, IGNORED_TENSORS, source, network)
  return flat


def load_vgg19(path: str | pathlib.Path) -> dict[str, PyTree]:
  """Variables `{"params": ...}` for `VGG19Features(...).apply` from `convert_vgg19`'s file."""
  _, flat = read_safetensors(path, _FORMAT, "VGG19", "vgg19.convert_vgg19(vgg19_pth, out_path)")
  found = {k: tuple(v.shape) for k, v in flat.items()}
  expected = {f"{m}/{leaf}": s for m, leaves in vgg.param_shapes().items()
              for leaf, s in leaves.items()}
  if found != expected:
    raise UserError(f"{path}: parameters do not match VGG19; fix: convert the weights again")
  return {"params": unflatten(flat)}


# --------------------------------------------------------------------------------------------------
# Shared by the torch-checkpoint converters.
