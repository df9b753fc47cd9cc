"""Evaluators: one module per metric, chosen from the config.

`config.evals` maps a name to one evaluator's settings: `type` picks the module (`EVALUATORS`),
`every` says how often training runs it (0: only after the last step; -1: never during training, only
by `vasa evaluate`, e.g. the sampling settings of a sweep), and the
remaining keys go to the module's `Evaluator(task, **settings)`. An evaluator's `run(params)` returns
an `EvalResult`: scalars, logged as `<name>/<metric>`, images, written to TensorBoard and to
`<workdir>/eval/<name>_<image>_<step>.png`, and optionally a report (nested JSON: curves, per-clip
values), written to `<workdir>/eval/<name>_<step>.json`. Every step's scalars of all evaluators go
to `<workdir>/eval/step_<step>.json`. `vasa evaluate --workdir RUN` runs them again on any
checkpoint.

  config.evals.heldout = dict(type="reconstruction", split="validation", num_examples=64, every=500)

Stage 1's evaluators read parameters (reconstruction, reenactment_grid, synthtalk_transfer,
identity, latent_readout), stage 2's sample motion (motion_controls), and the evaluation networks
score themselves on held-out data (probe_errors, sync_accuracy, capp_retrieval).

The paper's metrics score videos rather than parameters (`vasa_jax.evaluators.videos`:
syncnet, capp, delta_p, fvd, gaze_error, distance_error): they live in the same `config.evals`, and
`vasa evaluate --config ... --checkpoint ...` (`vasa_jax.protocol.scoring`) generates the videos
once and runs them all; training skips them.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import logging
import os
import pathlib
from typing import Any, Protocol

import ml_collections
import numpy as np

from vasa_jax import atomic
from vasa_jax.errors import UserError
from vasa_jax.evaluators.videos import VIDEO_METRICS, Unavailable

# config.evals.<name>.type -> module with an `Evaluator` class.
EVALUATORS = {
    "reconstruction": "vasa_jax.evaluators.reconstruction",
    "reenactment_grid": "vasa_jax.evaluators.reenactment",
    "synthtalk_transfer": "vasa_jax.evaluators.synthtalk_transfer",
    "motion_controls": "vasa_jax.evaluators.motion_controls",
    "identity": "vasa_jax.evaluators.identity",
    "latent_readout": "vasa_jax.evaluators.latent_readout",
    "probe_errors": "vasa_jax.evaluators.probe_errors",
    "sync_accuracy": "vasa_jax.evaluators.sync_accuracy",
    "capp_retrieval": "vasa_jax.evaluators.capp",
}


@dataclasses.dataclass
class EvalResult:
  scalars: dict[str, float]
  images: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # [H, W, 3] in [0, 1]
  report: dict[str, Any] | None = None  # JSON-ready; written to eval/<name>_<step>.json


def numeric_leaves(report: dict[str, Any], prefix: str = "") -> dict[str, float]:
  """The numbers of a nested report as flat scalars (`{"mae": {"yaw": 1}}` -> `{"mae/yaw": 1.0}`);
  lists and strings are left to the report."""
  out = {}
  for key, value in report.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(numeric_leaves(value, name + "/"))
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
      out[name] = float(value)
  return out


def host_params(params: Any) -> Any:
  """`params` whole on this host, as numpy arrays (gathered over processes when sharded across
  hosts: every process must call this)."""
  import jax

  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    params = multihost_utils.process_allgather(params, tiled=True)
  return jax.device_get(params)


# The key of the post-training reports this registry replaced, and what took its place.
_OLD_EVAL_KEY = ("config.eval (the report at the end of training) is now an evaluator in "
                 "config.evals: e.g. config.evals.heldout = dict(type=\"probe_errors\" | "
                 "\"sync_accuracy\" | \"capp_retrieval\", split=..., every=0) with the same keys; "
                 "see experiments/probes/synthtalk_probe.py, experiments/evals/syncnet_expert.py and "
                 "experiments/evals/capp.py")


class Evaluator(Protocol):
  def run(self, params: Any) -> EvalResult:
    ...


@dataclasses.dataclass
class Scheduled:
  name: str
  every: int
  evaluator: Evaluator

  def due(self, step: int, last_step: int) -> bool:
    if self.every < 0:
      return False
    return step == last_step or (self.every > 0 and step % self.every == 0)


def make_evaluators(config: ml_collections.ConfigDict, task: Any,
                    only: list[str] | None = None, training: bool = False) -> list[Scheduled]:
  """The evaluators `config.evals` names (or only those in `only`), built for `task`; with
  `training`, those that never run during training (`every` -1) are not built."""
  if config.get("eval") is not None:
    if training:
      raise UserError(_OLD_EVAL_KEY)
    logging.warning("Ignored: %s", _OLD_EVAL_KEY)
  evals = config.get("evals") or {}
  if only:
    unknown = sorted(set(only) - set(evals))
    if unknown:
      raise UserError(f"no evaluator named {unknown} in config.evals; it has {sorted(evals)}")
  scheduled = []
  for name, settings in evals.items():
    if only and name not in only:
      continue
    settings = dict(settings.to_dict() if hasattr(settings, "to_dict") else settings)
    kind = settings.pop("type", None)
    every = int(settings.pop("every", 0))
    if training and every < 0:
      continue
    if kind in VIDEO_METRICS:
      continue  # Scores of videos: `vasa evaluate --config ... --checkpoint ...` runs them.
    if kind not in EVALUATORS:
      raise UserError(f"config.evals.{name}.type={kind!r} is unknown; known: "
                      f"{', '.join(sorted(EVALUATORS) + sorted(VIDEO_METRICS))}")
    cls = importlib.import_module(EVALUATORS[kind]).Evaluator
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
      raise UserError(f"config.evals.{name} has unknown keys {unknown} for type {kind!r}; it takes "
                      f"{', '.join(k for k in accepted if k != 'task')}")
    try:
      evaluator = cls(task, **settings)
    except Unavailable as e:  # Its pretrained network was not given: reported, never faked.
      logging.warning("Evaluator %s is unavailable: %s", name, e)
      continue
    scheduled.append(Scheduled(name, every, evaluator))
  return scheduled


def run_evaluators(evaluators: list[Scheduled], params: Any, step: int,
                   workdir: str | os.PathLike, writer: Any = None, write_files: bool = True
                   ) -> dict[str, float]:
  """Runs `evaluators` on `params`; logs their scalars (`writer.write`) and images
  (`writer.write_image`, and PNGs under `<workdir>/eval/`). Returns all scalars by full name."""
  from vasa_jax.data import video_io

  scalars = {}
  out_dir = pathlib.Path(workdir) / "eval"
  for scheduled in evaluators:
    result = scheduled.evaluator.run(params)
    named = {f"{scheduled.name}/{k}": float(v) for k, v in result.scalars.items()}
    scalars.update(named)
    logging.info("Eval %s at step %d: %s", scheduled.name, step,
                 ", ".join(f"{k} {v:.4g}" for k, v in result.scalars.items()))
    if writer is not None:
      writer.write(step, named)
    for image_name, image in result.images.items():
      tag = f"{scheduled.name}/{image_name}"
      if writer is not None:
        writer.write_image(step, tag, image)
      if write_files:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{scheduled.name}_{image_name}_{step:07d}.png"
        video_io.write_image_grid([image[None]], path)
    if write_files and result.report is not None:
      out_dir.mkdir(parents=True, exist_ok=True)
      path = atomic.write_json(out_dir / f"{scheduled.name}_{step:07d}.json",
                               {"step": step, **result.report})
      logging.info("Eval %s report: %s", scheduled.name, path)
  if write_files and scalars:  # Adds to what other evaluators of this step wrote.
    path = out_dir / f"step_{step:07d}.json"
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    atomic.write_json(path, {**earlier, "step": step, **scalars})
  return scalars


