"""Trained runs read back: one `load_run` for every consumer.

  run = runs.load_run("runs/probe")                # config.json and the latest checkpoint
  run = runs.load_run("runs/probe", step=2000, task="synthtalk_probe")
  probe = run.predictor()                          # what the run's task predicts with

A run's workdir holds `config.json` (written by `vasa train`) and `checkpoints/<step>/`, Orbax
items: `state` (the train state), `data` (the data iterators' positions) and `meta` (the task, a
model summary and the parameter shapes). `load_run` rebuilds the run's task from its config through
the task registry (`TASKS`: task name -> module, imported by name, so this module depends on no
trainer), checks the checkpoint is one of that task's model, and restores the parameters (the EMA
ones when the run kept them) on this process's first device, reading the checkpoint's own metadata
through Orbax. The checks here are shared with resuming a run (`check_same_model`).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import pathlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import ml_collections

from vasa_jax import configs
from vasa_jax.errors import UserError

# config.task -> module with `make_task(config)` (a `trainers.common.Task`) and `train(config,
# workdir)`.
TASKS = {
    "reference_autoencoder": "vasa_jax.trainers.reference",
    "face_latent": "vasa_jax.trainers.face_latent",
    "synthtalk_probe": "vasa_jax.trainers.synthtalk_probe",
    "motion": "vasa_jax.trainers.motion",
    "syncnet_expert": "vasa_jax.trainers.syncnet_expert",
    "capp": "vasa_jax.trainers.capp",
}
# What a run of each task is, for the messages of a wrong or missing workdir.
RUN_KINDS = {
    "reference_autoencoder": "a reference run (experiments/reference_autoencoder.py)",
    "face_latent": "a stage-1 (face_latent) run (experiments/face_latent/...)",
    "synthtalk_probe": "a SynthTalk probe (a run of experiments/probes/synthtalk_probe.py)",
    "motion": "a stage-2 (motion) run (vasa train --config experiments/motion/...)",
    "syncnet_expert": "a sync expert (a run of experiments/evals/syncnet_expert.py)",
    "capp": "a CAPP run (vasa train --config experiments/evals/capp.py --workdir DIR)",
}


def task_module(task: str) -> ModuleType:
  """The module of `config.task == task` (its `make_task`, `train`)."""
  if task not in TASKS:
    raise UserError(f"config.task={task!r} is unknown; known tasks: {', '.join(sorted(TASKS))}")
  return importlib.import_module(TASKS[task])


@dataclasses.dataclass
class Run:
  """A trained run read back by `load_run`."""

  workdir: pathlib.Path
  config: ml_collections.ConfigDict
  task: Any  # The task `config.task` names, built from `config`.
  params: Any  # EMA parameters when the run kept them.
  step: int

  def predictor(self, **kwargs) -> Any:
    """What the run's task predicts with, built from this run (`task.predictor(run, **kwargs)`):
    a `Probe`, a sync `Expert`, a CAPP scorer's parts, the stage-1 `Stage1`, ..."""
    if not hasattr(self.task, "predictor"):
      raise UserError(f"{self.workdir} is a {self.config.task!r} run, which has no predictor")
    return self.task.predictor(self, **kwargs)


def load_run(workdir: str | os.PathLike, step: int | None = -1, *, task: str | None = None,
             kind: str | None = None,
             adjust: Callable[[ml_collections.ConfigDict], None] | None = None,
             quiet: bool = False) -> Run:
  """The run in `workdir` at checkpoint `step` (-1 or None: the latest).

  Args:
    workdir: the folder `vasa train --workdir` wrote.
    step: the checkpoint's step.
    task: the task the run must be of (None: any).
    kind: what the caller wants, for the messages (default: `RUN_KINDS[task]`).
    adjust: changes the run's config before its task is built (e.g. leaves off loss networks that
      reading a model does not need).
    quiet: hides the warnings building the task logs (they concern training).
  """
  workdir = pathlib.Path(workdir).expanduser().absolute()
  config_path = workdir / "config.json"
  wanted = kind or RUN_KINDS.get(task, f"a {task!r} run" if task else "a training run")
  if not config_path.is_file():
    raise UserError(f"{workdir} is not a training run (no config.json); give the workdir of "
                    f"{wanted}")
  config = configs.read_json(config_path)
  if task is not None and config.get("task") != task:
    raise UserError(f"{config_path} is a run of task {config.get('task')!r}, not {wanted}; give "
                    "the workdir of one")
  if adjust is not None:
    with config.unlocked():
      adjust(config)
  if quiet:
    logging.disable(logging.WARNING)
  try:
    built = task_module(config.task).make_task(config)
  finally:
    if quiet:
      logging.disable(logging.NOTSET)
  params, step = restore_params(workdir, built, step)
  return Run(workdir=workdir, config=config, task=built, params=params, step=step)


def restore_params(workdir: pathlib.Path, task: Any, step: int | None = -1) -> tuple[Any, int]:
  """(parameters, step) of `workdir`'s checkpoint at `step` (-1 or None: the latest) on this
  process's first device; the checkpoint must be one of `task` with the parameter layout
  `task.init_params` gives, otherwise the error names the first difference."""
  import grain
  import jax
  import orbax.checkpoint as ocp

  directory = workdir / "checkpoints"
  train_first = (f"no checkpoint in {directory}: train first (vasa train --config ... "
                 f"--workdir {workdir})")
  if not directory.is_dir():
    raise UserError(train_first)
  # A manager that only reads (it creates, cleans and saves nothing), with the handlers of every
  # item the trainer writes, so Orbax reads the run's own metadata and warns of nothing.
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(
          create=False, cleanup_tmp_directories=False, enable_async_checkpointing=False),
      item_handlers={"state": ocp.StandardCheckpointHandler(),
                     "meta": ocp.JsonCheckpointHandler(),
                     "data": grain.checkpoint.CheckpointHandler()})
  try:
    steps = sorted(manager.all_steps())
    if not steps:
      raise UserError(train_first)
    step = steps[-1] if step is None or int(step) < 0 else int(step)
    if step not in steps:
      raise UserError(f"no checkpoint of step {step} in {directory}; it has steps {steps}")
    items = manager.item_metadata(step)
    if "meta" in items.keys():  # Its metadata is None: JSON items have none.
      meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
      abstract_params = jax.eval_shape(task.init_params, jax.random.key(0))
      expected = {"task": task.name, "model": task.model_summary(),
                  "param_shapes": param_shapes(abstract_params),
                  "state_shapes": meta.get("state_shapes", {})}
      check_same_model(dict(meta), expected, workdir)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                          items["state"])
    state = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target)))["state"]
  finally:
    manager.close()
  return state.get("ema_params") or state["params"], step


def param_shapes(tree: Any) -> dict[str, list[int]]:
  """{"path/to/array": shape}: what a checkpoint must match."""
  import jax

  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {"/".join(_key_name(k) for k in path): list(leaf.shape) for path, leaf in flat}


def _key_name(key) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def check_same_model(meta: dict, expected: dict, workdir: pathlib.Path) -> None:
  """Refuses a checkpoint of another task, model or optimizer state layout (reading or resuming)."""
  fix = (f"use a new --workdir, or train with the config that wrote it "
         f"({workdir / 'config.json'})")
  if meta.get("task") != expected["task"]:
    raise UserError(f"{workdir} holds a checkpoint of task {meta.get('task')!r}, not "
                    f"{expected['task']!r}; {fix}")
  difference = _first_difference(meta.get("param_shapes", {}), expected["param_shapes"])
  if difference:
    raise UserError(f"{workdir} holds a checkpoint of another model ({meta.get('model')} vs "
                    f"{expected['model']}: parameter {difference}); {fix}")
  difference = _first_difference(meta.get("state_shapes", {}), expected["state_shapes"])
  if difference:
    raise UserError(f"{workdir} holds a checkpoint written with another optimizer or EMA setting "
                    f"(train state entry {difference}); {fix}")


def _first_difference(have: dict, want: dict) -> str | None:
  for key in sorted(set(have) | set(want)):
    if key not in have:
      return f"{key} is missing there"
    if key not in want:
      return f"{key} is not in this config's"
    if have[key] != want[key]:
      return f"{key} is {have[key]} there, {want[key]} here"
  return None
