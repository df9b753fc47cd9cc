"""A cross-reenactment grid: rows are held-out identities, columns are driving frames of others.

The top row shows the driving frames and the left column the source frames (each the first frame
of a clip); cell (r, c) is source r driven by the pose and facial dynamics of driving frame c.
Driving frames come from the middle of their clips (mid-sentence, mouth moving) and from identities
other than the sources' while the split has them.
"""

from __future__ import annotations

import jax
import numpy as np

from vasa_jax.errors import UserError
from vasa_jax.evaluators import EvalResult
from vasa_jax.evaluators.image_metrics import to_signed, to_unit


def pick_frames(source, count: int, image_size: int, position: float = 0.0,
                exclude: frozenset[str] = frozenset()) -> tuple[np.ndarray, list[str]]:
  """Frames at `position` of their clips (0 = first, 0.5 = middle) of up to `count` clips of a data
  source: one clip per identity first, identities in `exclude` last. Returns uint8 frames
  [n, image_size, image_size, 3], their landmarks float32 [n, len(LANDMARK_NAMES), 2] (NaN where
  unknown) and their identities."""
  from vasa_jax.data.pipelines import landmarks_at, _resize
  from vasa_jax.data.synthtalk.clip import decode_frames

  first, later, seen = [], [], set()
  for index in range(len(source)):
    identity = source[index]["meta"]["identity"]
    if identity in seen or identity in exclude:
      later.append(index)
    else:
      first.append(index)
      seen.add(identity)
  frames, landmarks, identities = [], [], []
  for index in (first + later)[:count]:
    clip = source[index]
    t = int(position * (len(clip["frames"]) - 1))
    frames.append(_resize(decode_frames(clip["frames"], [t])[0], image_size))
    landmarks.append(landmarks_at(clip, t))
    identities.append(clip["meta"]["identity"])
  if not frames:
    raise UserError("the evaluation split is empty: the reenactment grid has nothing to show")
  return np.stack(frames), np.stack(landmarks), identities


class Evaluator:
  def __init__(self, task, split: str = "validation", identities: int = 4, driving: int = 6):
    source = task.open_split(split)
    self.sources, self.source_landmarks, names = pick_frames(source, identities, task.image_size)
    rows = len(set(names))  # One row per identity.
    self.sources, self.source_landmarks = self.sources[:rows], self.source_landmarks[:rows]
    self.driving, self.driving_landmarks, _ = pick_frames(
        source, driving, task.image_size, position=0.5, exclude=frozenset(names))

    def cells(params, sources, driving, source_landmarks, driving_landmarks):
      s = np.repeat(np.arange(len(sources)), len(driving))
      d = np.tile(np.arange(len(driving)), len(sources))
      return to_unit(task.reenact(params, to_signed(sources)[s], to_signed(driving)[d],
                                  source_landmarks[s], driving_landmarks[d]))

    self._cells = jax.jit(cells)

  def run(self, params) -> EvalResult:
    rows, cols = len(self.sources), len(self.driving)
    out = np.asarray(jax.device_get(self._cells(params, self.sources, self.driving,
                                                self.source_landmarks, self.driving_landmarks)))
    size = out.shape[1]
    out = out.reshape(rows, cols, size, size, 3)
    sources = self.sources.astype(np.float32) / 255.0
    driving = self.driving.astype(np.float32) / 255.0
    blank = np.ones((size, size, 3), np.float32)
    top = np.concatenate([blank] + list(driving), axis=1)
    body = [np.concatenate([sources[r]] + list(out[r]), axis=1) for r in range(rows)]
    grid = np.concatenate([top] + body, axis=0)
    return EvalResult(scalars={}, images={"grid": grid})
