"""Real training processes stopped with SIGKILL and SIGTERM, then resumed."""

import json
import pathlib
import signal
import subprocess
import time

import jax
import numpy as np
import pytest

from tests.helpers import EXPERIMENTS, PYTHON, REPO, load_checkpoint_params, subprocess_env

pytestmark = pytest.mark.slow
HOOKS = pathlib.Path(__file__).with_name("train_with_hooks.py")
CONFIG = f"{EXPERIMENTS / 'reference_autoencoder.py'}:runlocal"


def train_command(workdir, *overrides):
  return [PYTHON, str(HOOKS), "train", "--config", CONFIG, "--workdir", str(workdir), *overrides]


def run(workdir, *overrides, **env):
  return subprocess.run(train_command(workdir, *overrides), capture_output=True, text=True,
                        cwd=REPO, env=subprocess_env(4, **env), timeout=300)


def test_killed_run_resumes_to_identical_parameters_and_data_order(tmp_path):
  overrides = ("--config.total_steps=6", "--config.checkpoint.every=3", "--config.log_every=1")
  straight = run(tmp_path / "straight", *overrides, BATCH_LOG=str(tmp_path / "straight.log"))
  assert straight.returncode == 0, straight.stderr

  resumed_dir, resumed_log = tmp_path / "resumed", tmp_path / "resumed.log"
  killed = run(resumed_dir, *overrides, BATCH_LOG=str(resumed_log), KILL_AFTER_CHECKPOINT="3")
  assert killed.returncode == -signal.SIGKILL, killed.stderr
  assert load_checkpoint_params(resumed_dir)[0] == 3
  assert len(resumed_log.read_text().splitlines()) == 3

  resumed = run(resumed_dir, *overrides, BATCH_LOG=str(resumed_log))
  assert resumed.returncode == 0, resumed.stderr
  assert "Resumed from the checkpoint at step 3" in resumed.stderr

  straight_batches = (tmp_path / "straight.log").read_text().splitlines()
  assert len(straight_batches) == 6 and len(set(straight_batches)) == 6
  assert resumed_log.read_text().splitlines() == straight_batches
  step_a, params_a = load_checkpoint_params(tmp_path / "straight")
  step_b, params_b = load_checkpoint_params(resumed_dir)
  assert step_a == step_b == 6
  for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
    np.testing.assert_array_equal(a, b)
  metrics = [json.loads(line)["step"] for line in
             (resumed_dir / "metrics.jsonl").read_text().splitlines()]
  assert metrics == [1, 2, 3, 4, 5, 6]


def test_sigterm_saves_a_checkpoint_at_the_current_step(tmp_path):
  workdir = tmp_path / "run"
  process = subprocess.Popen(
      train_command(workdir, "--config.total_steps=100000", "--config.log_every=1",
                    "--config.checkpoint.every=100000"),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
      env=subprocess_env(4))
  metrics = workdir / "metrics.jsonl"
  deadline = time.monotonic() + 240
  while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
    assert process.poll() is None and time.monotonic() < deadline, process.communicate()
    time.sleep(0.2)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 128 + signal.SIGTERM, stderr
  last_step = json.loads(metrics.read_text().splitlines()[-1])["step"]
  assert f"stopped by SIGTERM at step {last_step}; checkpoint saved" in stderr
  assert load_checkpoint_params(workdir)[0] == last_step >= 3

