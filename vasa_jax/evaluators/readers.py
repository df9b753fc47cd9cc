"""Reading head pose, gaze and distance back from video frames, for the metrics that need them.

dP, CAPP and the control errors judge motion that shows in pixels, so they read it from the frames
of every video, generated or real, with the same reader. A reader maps uint8 frames `[T, H, W, 3]`
(the training framing) to per-frame values `{label: float [T]}` named as in `schema.LABEL_NAMES`,
NaN where it cannot read a frame. Readers, by their spec string:

  "landmarks"    MediaPipe's face mesh and irises (`vasa_jax.data.faces`), as `vasa prepare` reads
                 real video: yaw, pitch, roll (PnP against a mean face), gaze_theta, gaze_phi,
                 jaw_open, and "face_share", the face's size over the frame's width (distance is its
                 inverse up to units; `control_errors` calibrates it). Works on real faces.
  "probe:DIR"    a SynthTalk probe (`vasa_jax.trainers.synthtalk_probe`) trained on SynthTalk's exact
  or DIR         labels: the labels it was trained to read (head angles, mouth, eyes). For SynthTalk's
                 stylised heads, where a detector for real faces is unreliable.
  "labels"       the video's own known labels (`Video.labels`: SynthTalk's ground truth); only for
                 real clips that carry them.

A generated video has no labels, so a metric asked to use "labels" reads its frames with the
fallback reader it was given.
"""

from __future__ import annotations

import functools
import logging
import pathlib
from collections.abc import Callable, Mapping

import numpy as np

from vasa_jax.errors import UserError

POSE = ("yaw", "pitch", "roll")
Reader = Callable[[np.ndarray], dict[str, np.ndarray]]


class LandmarkReader:
  """Per-frame labels from MediaPipe landmarks; the largest face of each frame."""

  spec = "landmarks"

  def __init__(self):
    self._analyzer = None

  def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
    from vasa_jax.data import faces

    if self._analyzer is None:
      self._analyzer = faces.FaceAnalyzer()
    names = (*POSE, "gaze_theta", "gaze_phi", "jaw_open", "face_share")
    out = {name: np.full(len(frames), np.nan, np.float32) for name in names}
    for t, frame in enumerate(frames):
      found = self._analyzer.analyze(np.ascontiguousarray(frame))
      if not found:
        continue
      _, landmarks = max(found, key=lambda f: faces.face_size(f[1].points))
      height, width = frame.shape[:2]
      pose = faces.head_pose(landmarks.points, (width, height))
      out["yaw"][t], out["pitch"][t], out["roll"][t] = pose
      out["gaze_theta"][t], out["gaze_phi"][t] = faces.gaze(landmarks, pose)
      out["jaw_open"][t] = faces.mouth_opening(landmarks.points)
      out["face_share"][t] = faces.face_size(landmarks.points) / width
    return out

  def describe(self) -> str:
    from vasa_jax.data import faces

    return f"MediaPipe face mesh and iris models in {faces.DEFAULT_MODEL_DIR}"


class ProbeReader:
  """Per-frame labels read by a trained SynthTalk probe."""

  def __init__(self, workdir: str | pathlib.Path, step: int | None = None,
               batch_size: int = 64):
    from vasa_jax import runs

    self.probe = runs.load_run(workdir, step, task="synthtalk_probe").predictor()
    self.batch_size = batch_size
    self.spec = f"probe:{workdir}"

  def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
    if frames.shape[1] != frames.shape[2]:
      raise UserError(f"the SynthTalk probe reads square frames; got {frames.shape[1:3]}")
    values = []
    for start in range(0, len(frames), self.batch_size):
      batch = frames[start:start + self.batch_size].astype(np.float32) / 127.5 - 1.0
      values.append(self.probe.predict(batch))
    values = np.concatenate(values) if values else np.zeros((0, len(self.probe.labels)))
    return {name: values[:, i].astype(np.float32) for i, name in enumerate(self.probe.labels)}

  def describe(self) -> str:
    return f"SynthTalk probe {self.probe.workdir} step {self.probe.step}"


@functools.lru_cache(maxsize=8)
def make_reader(spec: str) -> Reader:
  """The reader a spec names (see the module docstring); one instance per spec and process."""
  spec = str(spec).strip()
  if spec == "landmarks":
    return LandmarkReader()
  if spec == "labels":
    raise UserError("reader 'labels' reads only videos with known labels; a metric uses it through "
                    "`read`, with a frame reader for the others")
  path = spec.removeprefix("probe:")
  if not pathlib.Path(path).expanduser().is_dir():
    raise UserError(f"frame reader {spec!r} is neither 'landmarks' nor the workdir of a trained "
                    "SynthTalk probe; fix: pass 'landmarks' or probe:DIR (a run of "
                    "experiments/probes/synthtalk_probe.py)")
  return ProbeReader(pathlib.Path(path).expanduser())


def describe(spec: str) -> str:
  """What stands behind a reader spec, for the report."""
  if spec == "labels":
    return "the clips' own ground-truth labels"
  reader = make_reader(spec)
  return reader.describe()


def read(video, spec: str, fallback: str = "landmarks") -> dict[str, np.ndarray]:
  """Per-frame labels of a `videos.Video`: its own labels when `spec` is "labels" and it has
  them, otherwise its frames read by `spec` (or by `fallback` when `spec` is "labels")."""
  if spec == "labels":
    if video.labels is not None:
      return {k: np.asarray(v, np.float32) for k, v in video.labels.items()}
    spec = fallback
  return _read_cached(video, spec)


def _read_cached(video, spec: str) -> dict[str, np.ndarray]:
  # Several metrics read the same video with the same reader: read it once.
  cache = video.__dict__.setdefault("_readings", {})
  if spec not in cache:
    cache[spec] = make_reader(spec)(video.frames)
  return cache[spec]


def pose_of(values: Mapping[str, np.ndarray], where: str = "") -> np.ndarray:
  """float32 [T, 3] yaw, pitch, roll (radians) of a reading."""
  missing = [name for name in POSE if name not in values]
  if missing:
    raise UserError(f"the frame reader{where} does not read {missing}; use 'landmarks' or a probe "
                    "trained on head pose")
  return np.stack([np.asarray(values[name], np.float32) for name in POSE], axis=-1)


def log_unread(name: str, pose: np.ndarray) -> None:
  missing = int(np.isnan(pose).any(axis=-1).sum())
  if missing:
    logging.warning("%s: no face read in %d of %d frames", name, missing, len(pose))
