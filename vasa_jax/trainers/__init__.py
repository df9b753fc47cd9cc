"""Trainers: the shared core (`common`) and one module per task, chosen by `config.task` (the
registry is `vasa_jax.runs.TASKS`)."""

from __future__ import annotations

from types import ModuleType

from vasa_jax import runs

TASKS = runs.TASKS


def get_trainer(task: str) -> ModuleType:
  return runs.task_module(task)
