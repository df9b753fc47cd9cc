"""Every experiment config loads, and the model it names has the shapes it claims (no memory used)."""

import math
import subprocess
import sys

import jax
import pytest

from tests.helpers import EXPERIMENTS, subprocess_env
from vasa_jax import configs, trainers
from vasa_jax.errors import UserError

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


def test_configs_load_without_jax():
  """Experiment files and the defaults they build on (`vasa_jax.configs`) import no jax, so a
  launcher or a sweep lister reads them in a blink."""
  script = ("import sys, pathlib\n"
            "from vasa_jax import configs\n"
            "for path in sorted(pathlib.Path(sys.argv[1]).rglob('*.py')):\n"
            "  configs.load_config(str(path))\n"
            "print(sorted(m for m in ('jax', 'flax', 'optax', 'orbax', 'tensorflow')"
            " if m in sys.modules))\n")
  out = subprocess.run([sys.executable, "-c", script, str(EXPERIMENTS)], env=subprocess_env(1),
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == "[]"


def test_the_synthtalk_sizes_are_one_file_with_an_argument():
  for size, name in ((64, "tiny"), (128, "128"), (256, "256")):
    one = configs.load_config(f"{EXPERIMENTS / 'face_latent' / 'synthtalk.py'}:size={size}")
    named = configs.load_config(str(EXPERIMENTS / "face_latent" / f"synthtalk_{name}.py"))
    assert configs.to_json(one) == configs.to_json(named)
  assert configs.load_config(f"{EXPERIMENTS / 'face_latent' / 'synthtalk.py'}:size=128"
                             ).data.dataset == "synthtalk/small"
  with pytest.raises(UserError, match="size=100 is unknown"):
    configs.load_config(f"{EXPERIMENTS / 'face_latent' / 'synthtalk.py'}:size=100")
