"""Two local processes joined by jax.distributed train like one process on the same global batch."""

import json
import pathlib
import socket
import subprocess

import jax
import numpy as np
import pytest

from tests.helpers import EXPERIMENTS, PYTHON, REPO, load_checkpoint_params, subprocess_env

pytestmark = pytest.mark.slow
HOOKS = pathlib.Path(__file__).with_name("train_with_hooks.py")
CONFIG = f"{EXPERIMENTS / 'reference_autoencoder.py'}:runlocal"
OVERRIDES = ["--config.total_steps=3", "--config.log_every=1", "--config.checkpoint.every=3"]


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def read_batches(path):
  return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_processes_agree_with_one(tmp_path):
  single = subprocess.run(
      [PYTHON, str(HOOKS), "train", "--config", CONFIG, "--workdir", str(tmp_path / "single"),
       *OVERRIDES], capture_output=True, text=True, cwd=REPO, timeout=300,
      env=subprocess_env(8, BATCH_LOG=str(tmp_path / "single.log")))
  assert single.returncode == 0, single.stderr

  address = f"127.0.0.1:{free_port()}"
  processes = [
      subprocess.Popen(
          [PYTHON, str(HOOKS), "train", "--config", CONFIG, "--workdir", str(tmp_path / "multi"),
           *OVERRIDES, "--coordinator_address", address, "--num_processes", "2",
           "--process_id", str(i)],
          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
          env=subprocess_env(4, BATCH_LOG=str(tmp_path / f"multi{i}.log")))
      for i in range(2)]
  outputs = [p.communicate(timeout=300) for p in processes]
  for process, (_, stderr) in zip(processes, outputs):
    assert process.returncode == 0, stderr
  assert "Process 1 of 2 joined; 4 local and 8 global devices" in outputs[1][1]

  # Each process read its half of every global batch, in order.
  global_batches = read_batches(tmp_path / "single.log")
  halves = [read_batches(tmp_path / f"multi{i}.log") for i in range(2)]
  assert [a + b for a, b in zip(*halves)] == global_batches

  single_metrics = [json.loads(x) for x in (tmp_path / "single/metrics.jsonl").read_text().splitlines()]
  multi_metrics = [json.loads(x) for x in (tmp_path / "multi/metrics.jsonl").read_text().splitlines()]
  np.testing.assert_allclose([m["loss"] for m in multi_metrics],
                             [m["loss"] for m in single_metrics], rtol=1e-5)
  step_a, params_a = load_checkpoint_params(tmp_path / "single")
  step_b, params_b = load_checkpoint_params(tmp_path / "multi")
  assert step_a == step_b == 3
  for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
