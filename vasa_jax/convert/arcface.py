"""insightface ArcFace (`arcface_torch` iresnet) weights -> Flax variables of `IResNet`.

Users have insightface's `backbone.pth` (e.g. ms1mv3_arcface_r50_fp16 or glint360k_cosface_r100), a
pickled state dict. Reading it needs torch (imported only for that, with `weights_only=True`); a
`.safetensors` state dict with the same keys needs no torch.
`convert_arcface(path, out_path, depth)` writes params and batch statistics as safetensors once,
with the stage block counts in the metadata; training reads them with `load_arcface(path)` (numpy
only, no pickle).

Key mapping: `layer2.0.downsample.1.running_mean` <-> `batch_stats/layer2_0/downsample_1/mean`,
conv weights [out, in, kh, kw] -> kernels [kh, kw, in, out], the fc weight [out, in] -> [in, out],
BN weight/bias -> scale/bias, PReLU weight unchanged; `num_batches_tracked` counters are dropped.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from vasa_jax.convert import common as torch_io
from vasa_jax.errors import UserError
from vasa_jax.models import arcface

PyTree = Any

_FORMAT = "vasa_jax.arcface"
IGNORED_TENSORS = (r".*num_batches_tracked",)
_LEAF_TO_TORCH = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var",
                  "weight": "weight", "kernel": "weight"}


def torch_key(flax_path: str) -> str:
  """"params/layer1_0/downsample_0/kernel" -> "layer1.0.downsample.0.weight"."""
  _, *modules, leaf = flax_path.split("/")
  name = ".".join(re.sub(r"^(layer\d|downsample)_(\d+)$", r"\1.\2", m) for m in modules)
  return f"{name}.{_LEAF_TO_TORCH[leaf]}"


def stage_blocks_in(tensors: dict[str, np.ndarray]) -> tuple[int, ...]:
  """The block count of each stage, read from the `layer{s}.{i}.` keys."""
  counts = []
  for stage in range(1, 5):
    indices = {int(m.group(1)) for k in tensors if (m := re.match(rf"layer{stage}\.(\d+)\.", k))}
    counts.append(max(indices) + 1 if indices else 0)
  return tuple(counts)


def convert_arcface(state_dict_path: str | pathlib.Path, out_path: str | pathlib.Path,
                    depth: int = 50, stage_blocks: Sequence[int] | None = None) -> pathlib.Path:
  """Converts an iresnet state dict (`.pth` or `.safetensors`) to a Flax safetensors file.

  Args:
    state_dict_path: insightface's `backbone.pth`, or the same keys as `.safetensors`.
    out_path: where to write the converted variables.
    depth: 50 (r50) or 100 (r100), ... (`models.arcface.STAGE_BLOCKS`).
    stage_blocks: block counts per stage, overriding `depth` (for non-standard variants).
  """
  source = pathlib.Path(state_dict_path).expanduser()
  blocks = (tuple(stage_blocks) if stage_blocks is not None
            else arcface.stage_blocks_for_depth(depth))
  tensors = torch_io.read_state_dict(source, "ArcFace")
  if "conv1.weight" not in tensors or "fc.weight" not in tensors:
    raise UserError(f"{source} lacks `conv1.weight`/`fc.weight`, so it is not an insightface "
                    "iresnet state dict; fix: pass arcface_torch's backbone.pth")
  found_blocks = stage_blocks_in(tensors)
  if found_blocks != blocks:
    known = {v: k for k, v in arcface.STAGE_BLOCKS.items()}
    hint = f"depth={known[found_blocks]}" if found_blocks in known else (
        f"stage_blocks={list(found_blocks)}")
    raise UserError(f"{source} has stage blocks {list(found_blocks)} but {list(blocks)} were asked "
                    f"for; fix: pass {hint}")
  flat, used = {}, set()
  for path, spec in torch_io.flatten(arcface.init_shapes(blocks)).items():
    key = torch_key(path)
    if key not in tensors:
      raise UserError(f"{source} lacks `{key}` that iresnet{list(blocks)} needs; fix: pass the "
                      "complete backbone.pth of an insightface iresnet")
    value = np.asarray(tensors[key], np.float32)
    used.add(key)
    if path.endswith("/kernel"):
      # torch stores conv weights as [out, in, kh, kw] and linear ones as [out, in].
      value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T
    if value.shape != tuple(spec.shape):
      raise UserError(f"{source}: `{key}` has shape {value.shape} where iresnet needs "
                      f"{tuple(spec.shape)}; fix: pass a 112x112, 512-d insightface iresnet")
    flat[path] = value
  torch_io.refuse_unused(tensors, used, IGNORED_TENSORS, source, "ArcFace")
  return torch_io.write_safetensors(flat, out_path, _FORMAT,
                                    {"stage_blocks": json.dumps(list(blocks))}, "ArcFace")


def load_arcface(path: str | pathlib.Path) -> tuple[arcface.IResNet, dict[str, PyTree]]:
  """(model, variables) for `model.apply(variables, faces)`, read from `convert_arcface`'s file."""
  metadata, flat = torch_io.read_safetensors(path, _FORMAT, "ArcFace",
                                             "arcface.convert_arcface(backbone_pth, out_path)")
  blocks = tuple(json.loads(metadata.get("stage_blocks", "[]")))
  if len(blocks) != 4:
    raise UserError(f"{path} does not record its stage blocks; fix: convert the weights again")
  expected = {k: tuple(v.shape) for k, v in torch_io.flatten(arcface.init_shapes(blocks)).items()}
  if {k: tuple(v.shape) for k, v in flat.items()} != expected:
    raise UserError(f"{path}: variables do not match iresnet{list(blocks)}; fix: convert the "
                    "weights again")
  return arcface.IResNet(blocks), torch_io.unflatten(flat)
