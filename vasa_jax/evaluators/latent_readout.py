"""What stage 1's motion codes carry: ridge read-outs from z_dyn and z_pose to the dataset's labels.

The motion encoder is run on frames of the training split (every `stride`-th frame of each clip,
up to `max_frames`); a ridge regression per code and label is fitted there (features standardised
on the training frames, bias not shrunk) and applied to frames of `split` (held-out identities and
sentences). Reported, for each (code, label) pair in `READOUTS`, the Pearson correlation of the
read-out with the truth on the held-out frames: `dyn_jaw_open_r`, `dyn_blink_r` (eye openness is
1 - blink, the same |r|), `pose_yaw_r`, `pose_pitch_r`, `pose_roll_r`, and `dyn_yaw_r`, which
should stay low: the dynamics code should not carry head pose. Labels a dataset does not have
(NaN) are left out of both the fit and the score.
"""

from __future__ import annotations

import jax
import numpy as np

from vasa_jax.data import schema
from vasa_jax.evaluators import EvalResult
from vasa_jax.evaluators.image_metrics import to_signed
from vasa_jax.models.face_latent import warping

# (code, label) pairs read out and scored.
READOUTS = (("dyn", "jaw_open"), ("dyn", "blink"), ("dyn", "lip_width"), ("dyn", "yaw"),
            ("pose", "yaw"), ("pose", "pitch"), ("pose", "roll"))


def frames_and_labels(source, image_size: int, stride: int, max_frames: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """uint8 frames [N, S, S, 3], float32 labels [N, len(LABEL_NAMES)] and float32 landmarks
  [N, len(LANDMARK_NAMES), 2] (NaN where unknown) of every `stride`-th frame of each clip of
  `source`, in clip order, at most `max_frames`."""
  from vasa_jax.data.pipelines import landmarks_at, _resize
  from vasa_jax.data.synthtalk.clip import decode_frames

  frames, labels, landmarks = [], [], []
  count = 0
  for index in range(len(source)):
    clip = source[index]
    chosen = list(range(0, len(clip["frames"]), stride))[:max_frames - count]
    frames.extend(_resize(f, image_size) for f in decode_frames(clip["frames"], chosen))
    labels.append(schema.stack_labels(clip["labels"])[chosen])
    landmarks.extend(landmarks_at(clip, t) for t in chosen)
    count += len(chosen)
    if count >= max_frames:
      break
  return np.stack(frames), np.concatenate(labels).astype(np.float32), np.stack(landmarks)


def fit_ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, ...]:
  """(mean, std, weights [dims + 1]) of a ridge regression of y [N] on x [N, dims], rows with a
  NaN label left out."""
  rows = np.isfinite(y)
  x, y = x[rows].astype(np.float64), y[rows].astype(np.float64)
  mean, std = x.mean(0), x.std(0) + 1e-6
  features = np.concatenate([(x - mean) / std, np.ones((len(x), 1))], axis=1)
  eye = ridge * np.eye(features.shape[1])
  eye[-1, -1] = 0.0
  weights = np.linalg.solve(features.T @ features + eye, features.T @ y)
  return mean, std, weights


def apply_ridge(fit: tuple[np.ndarray, ...], x: np.ndarray) -> np.ndarray:
  mean, std, weights = fit
  return np.concatenate([(x - mean) / std, np.ones((len(x), 1))], axis=1) @ weights


def pearson(a: np.ndarray, b: np.ndarray) -> float:
  rows = np.isfinite(a) & np.isfinite(b)
  a, b = a[rows] - a[rows].mean(), b[rows] - b[rows].mean()
  denominator = np.sqrt((a * a).sum() * (b * b).sum())
  return float((a * b).sum() / denominator) if denominator > 0 else 0.0


class Evaluator:
  def __init__(self, task, split: str = "validation", stride: int = 2, max_frames: int = 4000,
               ridge: float = 1.0, batch_size: int = 64):
    self.ridge = ridge
    self.batch_size = batch_size
    self.train = frames_and_labels(task.open_split("train"), task.image_size, stride, max_frames)
    self.heldout = frames_and_labels(task.open_split(split), task.image_size, stride, max_frames)
    model = task.model

    def encode(params, images, landmarks):
      return model.apply({"params": params["generator"]}, to_signed(images), landmarks,
                         method=model.encode_motion)

    self._encode = jax.jit(encode)

  def codes(self, params, frames: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
    poses, dyns = [], []
    for start in range(0, len(frames), self.batch_size):
      chunk = frames[start:start + self.batch_size]
      padded = np.zeros((self.batch_size,) + chunk.shape[1:], chunk.dtype)
      padded[:len(chunk)] = chunk
      padded_landmarks = np.full((self.batch_size,) + landmarks.shape[1:], np.nan, np.float32)
      padded_landmarks[:len(chunk)] = landmarks[start:start + self.batch_size]
      z_pose, z_dyn = jax.device_get(self._encode(params, padded, padded_landmarks))
      poses.append(np.asarray(z_pose)[:len(chunk)])
      dyns.append(np.asarray(z_dyn)[:len(chunk)])
    return {"pose": np.concatenate(poses)[:, :warping.POSE_DIM],
            "dyn": np.concatenate(dyns)}

  def run(self, params) -> EvalResult:
    (train_frames, train_labels, train_landmarks), (test_frames, test_labels, test_landmarks) = (
        self.train, self.heldout)
    train_codes = self.codes(params, train_frames, train_landmarks)
    test_codes = self.codes(params, test_frames, test_landmarks)
    scalars = {}
    for code, label in READOUTS:
      column = schema.LABEL_NAMES.index(label)
      if not np.isfinite(train_labels[:, column]).any():
        continue
      fit = fit_ridge(train_codes[code], train_labels[:, column], self.ridge)
      predicted = apply_ridge(fit, test_codes[code])
      scalars[f"{code}_{label}_r"] = pearson(predicted, test_labels[:, column])
    scalars["frames_fitted"] = float(len(train_labels))
    scalars["frames_scored"] = float(len(test_labels))
    return EvalResult(scalars)
