"""Trainers: the shared core (`common`) and one module per task, chosen by `config.task`."""

from __future__ import annotations

import importlib
from types import ModuleType

from vasa_jax.errors import UserError

# config.task -> module with `make_task(config)` (a `common.Task`) and `train(config, workdir)`.
TASKS = {
    "reference_autoencoder": "vasa_jax.trainers.reference",
    "face_latent": "vasa_jax.trainers.face_latent",
    "synthtalk_probe": "vasa_jax.trainers.synthtalk_probe",
    "motion": "vasa_jax.trainers.motion",
    "syncnet_expert": "vasa_jax.trainers.syncnet_expert",
    "capp": "vasa_jax.trainers.capp",
}


def get_trainer(task: str) -> ModuleType:
  if task not in TASKS:
    raise UserError(f"config.task={task!r} is unknown; known tasks: {', '.join(sorted(TASKS))}")
  return importlib.import_module(TASKS[task])
