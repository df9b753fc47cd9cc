"""Every experiment config loads, and the model it names has the shapes it claims (no memory used)."""

import math

import jax
import pytest

from tests.helpers import EXPERIMENTS
from vasa_jax import configs, trainers

CONFIG_FILES = sorted(p for p in EXPERIMENTS.rglob("*.py") if not p.name.startswith("_"))


def test_there_are_experiments():
  assert CONFIG_FILES


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_config_loads_and_full_size_model_evaluates_shapes(path):
  config = configs.load_config(str(path))
  assert config.task in trainers.TASKS
  task = trainers.get_trainer(config.task).make_task(config)
  abstract_params = jax.eval_shape(task.init_params, jax.random.key(0))
  count = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(abstract_params))
  print(f"{path.name}: {config.task} {task.model_summary()} {count:,} parameters")
  assert count > 0
  assert config.batch_size % config.get("grad_accum_steps", 1) == 0


def _sweeps():
  for path in CONFIG_FILES:
    module = configs.load_module(str(path))
    if hasattr(module, "sweep"):
      yield path


@pytest.mark.parametrize("path", list(_sweeps()), ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_sweep_members_are_valid_overrides(path):
  members = configs.sweep_overrides(str(path))
  assert len(members) == len({tuple(m) for m in members}) > 1  # Distinct members.
  for overrides in members:
    config = configs.load_config(str(path), overrides)
    for override in overrides:
      key, _, value = override[len("--config."):].partition("=")
      node = config
      for part in key.split("."):
        node = node[part]
      assert str(node) == value or float(node) == float(value)


def test_stage1_sweep_ablates_the_two_vasa_losses():
  members = configs.sweep_overrides(str(EXPERIMENTS / "face_latent" / "synthtalk_128.py"))
  weights = [configs.load_config(str(EXPERIMENTS / "face_latent" / "synthtalk_128.py"),
                                 m).losses.weights for m in members]
  assert {(w.consistency > 0, w.cross_identity > 0) for w in weights} == {
      (True, True), (False, True), (True, False), (False, False)}
