"""Video metrics: scores of a set of talking-face videos, whoever made them.

The paper's metrics (lip sync, CAPP, dP, FVD, the control errors) read videos, not a model's
parameters, so one interface serves our checkpoints (`vasa evaluate --config`), real clips and other
systems' outputs (`vasa evaluate --videos DIR`) alike. A metric module (`VIDEO_METRICS`) defines

  class Metric:
    def __init__(self, **settings): ...                       # from config.evals.<name>
    def score(self, videos: Sequence[Video], real: Sequence[Video] | None = None) -> dict[str, float]
    weights: dict[str, str]                                    # network -> the file or run behind it

`score` averages over the videos as the paper's protocol does and returns named scalars (e.g.
{"S_C": 8.1, "S_D": 6.9}); `real` is the set of real clips of the same split, which only
distribution metrics (FVD) need. `weights` names every pretrained or trained network the scores
depend on, for the report. A metric whose network was not provided raises `Unavailable` from its
constructor: the report then says so, and nothing is computed with random weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from vasa_jax.errors import UserError
from vasa_jax.rates import FPS, SAMPLE_RATE  # noqa: F401 (re-exported)


# config.evals.<name>.type -> module with a `Metric` class.
VIDEO_METRICS = {
    "syncnet": "vasa_jax.evaluators.syncnet",
    "capp": "vasa_jax.evaluators.capp",
    "delta_p": "vasa_jax.evaluators.delta_p",
    "fvd": "vasa_jax.evaluators.fvd",
    "csim": "vasa_jax.evaluators.csim",
    "gaze_error": "vasa_jax.evaluators.control_errors:GazeError",
    "distance_error": "vasa_jax.evaluators.control_errors:DistanceError",
}
# A value "module:Class" names the class; a bare module means its `Metric`.


class Unavailable(UserError):
  """A metric cannot be computed: its pretrained network (or trained run) was not provided. The
  message says which file or setting is missing and how to provide it."""


@dataclasses.dataclass
class Video:
  """One talking-face video as the metrics see it.

  `frames` are RGB uint8 `[T, H, W, 3]` in the training data's framing (the face crop of
  `vasa_jax.data.faces.crop_box`, or SynthTalk's frames), at `fps`; `audio` is mono float32 at
  `SAMPLE_RATE`, aligned with the first frame. `clip` names the real clip (the audio) a video was
  made from: the samples of one audio share it. `gaze` (theta, phi radians) and `distance` are the
  controls asked for at generation, when there were any (`emotion` too, an index of
  `schema.EMOTIONS`). `labels` holds known per-frame truth
  (SynthTalk's exact labels, `schema.LABEL_NAMES` -> `[T]` arrays), when there is any;
  `landmarks` the face's `schema.LANDMARK_NAMES` points `[T, 6, 2]` ((x, y) / size), when known.
  """
  name: str
  frames: np.ndarray
  audio: np.ndarray
  fps: float = FPS
  clip: str = ""
  gaze: tuple[float, float] | None = None
  distance: float | None = None
  labels: Mapping[str, np.ndarray] | None = None
  emotion: int | None = None
  landmarks: np.ndarray | None = None

  def __post_init__(self):
    frames = np.asarray(self.frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
      raise ValueError(f"video {self.name}: frames must be uint8 [T, H, W, 3], got "
                       f"{frames.dtype} {frames.shape}")
    self.frames = frames
    self.audio = np.asarray(self.audio, np.float32).reshape(-1)
    if not self.clip:
      self.clip = self.name

  @property
  def num_frames(self) -> int:
    return int(self.frames.shape[0])

  @property
  def seconds(self) -> float:
    return self.num_frames / self.fps


class Metric(Protocol):
  weights: dict[str, str]

  def score(self, videos: Sequence[Video], real: Sequence[Video] | None = None
            ) -> dict[str, float]:
    ...


def mean_or_nan(values: Sequence[float]) -> float:
  values = [float(v) for v in values if np.isfinite(v)]
  return float(np.mean(values)) if values else float("nan")


def is_video_metric(kind: str | None) -> bool:
  return kind in VIDEO_METRICS


def make_metric(name: str, settings: Mapping) -> Metric:
  """The metric `config.evals.<name>` describes ({"type": ..., **settings}); raises `Unavailable`
  when its network was not provided and a UserError for unknown types or keys."""
  import importlib
  import inspect

  settings = dict(settings)
  kind = settings.pop("type", None)
  settings.pop("every", None)  # Training-time scheduling; video metrics run in `vasa evaluate`.
  if kind not in VIDEO_METRICS:
    raise UserError(f"config.evals.{name}.type={kind!r} is not a video metric; known: "
                    f"{', '.join(sorted(VIDEO_METRICS))}")
  module_name, _, class_name = VIDEO_METRICS[kind].partition(":")
  cls = getattr(importlib.import_module(module_name), class_name or "Metric")
  accepted = set(inspect.signature(cls).parameters)
  unknown = sorted(set(settings) - accepted)
  if unknown:
    raise UserError(f"config.evals.{name} has unknown keys {unknown} for type {kind!r}; it takes "
                    f"{', '.join(sorted(accepted)) or 'no settings'}")
  return cls(**settings)
