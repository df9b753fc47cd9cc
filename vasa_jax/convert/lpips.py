"""LPIPS weights (torchvision VGG16 + the lpips package's "lin" layers) -> `models.lpips.LPIPS`.

LPIPS v0.1 (VGG) is two published files: torchvision's ImageNet VGG16 (`vgg16-397923af.pth`, keys
`features.{i}.weight/bias`; the classifier is not used) and the lpips package's
`lpips/weights/v0.1/vgg.pth` (keys `lin{k}.model.1.weight`, shape [1, channels, 1, 1]: a dropout,
then a 1x1 convolution without bias). Reading the `.pth` pickles needs torch (imported only for
that, `torch.load(weights_only=True)`); `.safetensors` state dicts with the same keys need no
torch. `convert_lpips(vgg16_state_dict_path, lpips_lin_path, out_path)` writes one safetensors file;
evaluation reads it with `load_lpips(path)` (numpy only, no pickle).

Mapping: `features.{i}.weight` [out, in, 3, 3] -> `vgg16/features_{i}/kernel` [3, 3, in, out],
`features.{i}.bias` -> `vgg16/features_{i}/bias`, `lin{k}.model.1.weight` -> `lin{k}` [channels].
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from vasa_jax.convert import vgg19
from vasa_jax.convert.common import (flatten, read_safetensors, read_state_dict, refuse_unused,
                                      unflatten, write_safetensors)
from vasa_jax.errors import UserError
from vasa_jax.models import lpips

PyTree = Any

_FORMAT = "vasa_jax.lpips"
_HOW = "lpips.convert_lpips(vgg16_pth, lpips_vgg_lin_pth, out_path)"


def _vgg16_params(source: pathlib.Path) -> dict[str, np.ndarray]:
  flat = vgg19.torchvision_features(source, lpips.param_shapes()["vgg16"], "VGG16",
                                    "vgg16-397923af.pth")
  return {f"vgg16/{k}": v for k, v in flat.items()}


def _lin_params(source: pathlib.Path) -> dict[str, np.ndarray]:
  tensors = read_state_dict(source, "LPIPS lin layers")
  flat, used = {}, set()
  for k, channels in enumerate(lpips.TAP_CHANNELS):
    key = f"lin{k}.model.1.weight"
    if key not in tensors:
      raise UserError(f"{source} lacks `{key}`, so it is not the lpips package's "
                      "weights/v0.1/vgg.pth; fix: pass that file (the VGG one, not alex.pth or "
                      "squeeze.pth, and not the VGG16 backbone)")
    value = np.asarray(tensors[key], np.float32)
    used.add(key)
    if value.shape != (1, channels, 1, 1):
      raise UserError(f"{source}: `{key}` has shape {value.shape}, LPIPS-VGG needs "
                      f"{(1, channels, 1, 1)}; fix: pass weights/v0.1/vgg.pth, not alex or squeeze")
    if np.any(value < 0):
      raise UserError(f"{source}: `{key}` has negative weights, which LPIPS's training never "
                      "leaves; fix: pass the published weights/v0.1/vgg.pth")
    flat[f"lin{k}"] = value.reshape(channels)
  refuse_unused(tensors, used, (), source, "LPIPS lin layers")
  return flat


def convert_lpips(vgg16_state_dict_path: str | pathlib.Path,
                  lpips_lin_path: str | pathlib.Path,
                  out_path: str | pathlib.Path) -> pathlib.Path:
  """Converts torchvision's VGG16 and lpips's v0.1 `vgg.pth` (`.pth` or `.safetensors` each) into
  one Flax safetensors file for `load_lpips`."""
  vgg_source = pathlib.Path(vgg16_state_dict_path).expanduser()
  lin_source = pathlib.Path(lpips_lin_path).expanduser()
  flat = _vgg16_params(vgg_source)
  flat.update(_lin_params(lin_source))
  return write_safetensors(flat, out_path, _FORMAT, {"version": "0.1", "net": "vgg16"}, "LPIPS")


def load_lpips(path: str | pathlib.Path) -> dict[str, PyTree]:
  """Variables `{"params": ...}` for `models.lpips.LPIPS().apply` from `convert_lpips`'s file."""
  _, flat = read_safetensors(path, _FORMAT, "LPIPS", _HOW)
  found = {k: tuple(v.shape) for k, v in flat.items()}
  if found != flatten(lpips.param_shapes()):
    raise UserError(f"{path}: parameters do not match LPIPS-VGG; fix: convert the weights again "
                    f"with vasa_jax.convert.{_HOW}")
  return {"params": unflatten(flat)}
