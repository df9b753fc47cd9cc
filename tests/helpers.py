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


def tone(seconds: float) -> np.ndarray:
  t = np.arange(int(seconds * 16000)) / 16000
  return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(
      np.float32)


def moving_photo(photo: np.ndarray, frames: int, fps: int, canvas=(480, 640), shift=40.0,
                 roll_degrees=12.0, scale=(0.9, 1.2)):
  """The photo on a grey canvas, moved, scaled and turned frame by frame; returns frames, rolls."""
  import cv2

  height, width = canvas
  out, rolls = [], []
  for t in range(frames):
    phase = 2 * np.pi * t / frames
    roll = roll_degrees * np.sin(phase)
    s = scale[0] + (scale[1] - scale[0]) * (0.5 + 0.5 * np.cos(phase))
    matrix = cv2.getRotationMatrix2D((photo.shape[1] / 2, photo.shape[0] / 2), roll, s)
    matrix[:, 2] += [width / 2 - photo.shape[1] / 2 + shift * np.sin(phase),
                     height / 2 - photo.shape[0] / 2 + 0.5 * shift * np.cos(phase)]
    out.append(cv2.warpAffine(photo, matrix, (width, height), borderValue=(128, 128, 128)))
    rolls.append(np.deg2rad(roll))
  return out, np.array(rolls)


def hide_distribution(monkeypatch, name: str) -> None:
  """Makes the installed distribution `name` look absent to `importlib.metadata` (what a fresh
  install without that package sees), for the rest of the test."""
  import importlib.metadata

  real = importlib.metadata.distribution

  def distribution(asked: str):
    if asked == name:
      raise importlib.metadata.PackageNotFoundError(asked)
    return real(asked)

  monkeypatch.setattr(importlib.metadata, "distribution", distribution)
