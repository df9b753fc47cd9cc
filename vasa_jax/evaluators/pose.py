"""Head pose of a video: yaw, pitch, roll per frame (radians), read from frames or known labels.

  reader = pose.make_reader("landmarks")       # or "probe:RUN" (a SynthTalk probe workdir)
  angles = reader(frames)                      # uint8 [T, H, W, 3] -> float32 [T, 3], NaN: no face
  angles = pose.from_labels(video.labels)      # SynthTalk's exact pose

The readers themselves are in `vasa_jax.evaluators.readers`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from vasa_jax.evaluators import readers

PoseReader = Callable[[np.ndarray], np.ndarray]


def make_reader(spec: str) -> PoseReader:
  frame_reader = readers.make_reader(spec)

  def read(frames: np.ndarray) -> np.ndarray:
    return readers.pose_of(frame_reader(np.asarray(frames)), f" {spec!r}")

  return read


def from_labels(labels: Mapping[str, np.ndarray]) -> np.ndarray:
  return readers.pose_of(labels, " (labels)")


def of_video(video, spec: str, fallback: str = "landmarks") -> np.ndarray:
  """[T, 3] of a `videos.Video`: its labels when `spec` is "labels" and it has them, else read
  from its frames (cached on the video, so metrics sharing a reader read each video once)."""
  return readers.pose_of(readers.read(video, spec, fallback), f" {spec!r}")


def intensity(angles: np.ndarray) -> float:
  """dP of one clip: the mean |change| of yaw, pitch and roll between adjacent frames, in degrees;
  pairs with an unread frame are left out (NaN when none is left)."""
  angles = np.asarray(angles, np.float64)
  if len(angles) < 2:
    return float("nan")
  steps = np.abs(np.diff(angles, axis=0))
  steps = steps[np.isfinite(steps).all(axis=-1)]
  return float(np.degrees(steps.mean())) if len(steps) else float("nan")
