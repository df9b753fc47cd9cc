"""Training metrics: TensorBoard event files (tensorboardX) and `metrics.jsonl`, trimmed on resume."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping

import numpy as np

from vasa_jax import atomic


class MetricWriter:
  """Scalars to TensorBoard event files and to `metrics.jsonl` (one JSON object per logged step).

  On resume, entries past the restored step (written by the run that was stopped) are dropped from
  both, so the logs read as one uninterrupted run.
  """

  def __init__(self, workdir: pathlib.Path, start_step: int, enabled: bool = True):
    self.enabled = enabled
    self.path = workdir / "metrics.jsonl"
    self._file = None
    self._tb = None
    if not enabled:
      return
    if self.path.exists():
      kept = [line for line in self.path.read_text().splitlines()
              if line.strip() and json.loads(line)["step"] <= start_step]
      atomic.write_text(self.path, "".join(line + "\n" for line in kept))
    self._file = open(self.path, "a", buffering=1)
    from tensorboardX import SummaryWriter

    self._tb = SummaryWriter(str(workdir / "tensorboard"),
                             purge_step=start_step + 1 if start_step else None)

  def write(self, step: int, scalars: Mapping[str, float]) -> None:
    if not self.enabled:
      return
    record = {"step": step, **{k: float(v) for k, v in scalars.items()}}
    self._file.write(json.dumps(record) + "\n")
    for name, value in scalars.items():
      self._tb.add_scalar(name, float(value), step)

  def write_image(self, step: int, name: str, image: np.ndarray) -> None:
    """An image [H, W, 3] in [0, 1] to TensorBoard."""
    if self.enabled:
      self._tb.add_image(name, np.clip(image, 0, 1), step, dataformats="HWC")

  def close(self) -> None:
    if self._file:
      self._file.close()
      self._tb.close()
      self._file = self._tb = None
