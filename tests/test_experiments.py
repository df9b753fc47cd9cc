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
