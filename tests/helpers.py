"""Helpers shared by tests that start child processes or read checkpoints."""

import os
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
PYTHON = sys.executable


def subprocess_env(device_count: int = 8, **extra: str) -> dict:
  """Environment for a child Python: CPU jax with `device_count` devices, this checkout importable."""
  env = dict(os.environ)
  env.update(JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={device_count}",
             PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
  env.update(extra)
  return env


def load_checkpoint_params(workdir: pathlib.Path, step: int | None = None):
  """(step, params as numpy) of a workdir's checkpoint (the latest by default)."""
  import jax
  import orbax.checkpoint as ocp

  # Onto this process's first device, whatever topology wrote the checkpoint.
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  directory = pathlib.Path(workdir).absolute() / "checkpoints"
  if step is None:
    step = max(int(p.name) for p in directory.iterdir() if p.name.isdigit())
  with ocp.StandardCheckpointer() as checkpointer:
    metadata = checkpointer.metadata(directory / str(step) / "state").item_metadata
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                          metadata)
    state = checkpointer.restore(directory / str(step) / "state", target)
  return step, jax.tree.map(np.asarray, state["params"])
