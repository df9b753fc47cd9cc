"""dP: head-motion intensity, the mean |angle change| between adjacent frames, in degrees.

VASA-1 re-extracts head pose from the generated frames and averages the absolute frame-to-frame
change of the angles; next to real video's dP it says whether motion is as lively as real motion
(too low: a stiff head; too high: jitter). The pose comes from the frames by `pose` (a reader spec
of `vasa_jax.evaluators.readers`: "landmarks" for real faces, "probe:DIR" for SynthTalk), or from the
clips' own labels with "labels" (real SynthTalk clips; generated videos are then read by
`fallback`). Generated and real video must be read by the same reader to be compared.
"""

from __future__ import annotations

from collections.abc import Sequence

from vasa_jax.evaluators import pose as pose_lib
from vasa_jax.evaluators import readers
from vasa_jax.evaluators.videos import Video, mean_or_nan


class Metric:
  def __init__(self, pose: str = "landmarks", fallback: str = "landmarks"):
    self.spec, self.fallback = pose, fallback
    if pose != "labels":
      readers.make_reader(pose)  # Fails now, not after generation, if the spec is wrong.
    self.weights = {"pose reader": readers.describe(pose if pose != "labels" else fallback)}

  def score(self, videos: Sequence[Video], real: Sequence[Video] | None = None
            ) -> dict[str, float]:
    del real
    values = []
    for video in videos:
      angles = pose_lib.of_video(video, self.spec, self.fallback)
      readers.log_unread(video.name, angles)
      values.append(pose_lib.intensity(angles))
    return {"dP": mean_or_nan(values)}
