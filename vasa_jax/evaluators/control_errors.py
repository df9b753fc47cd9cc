"""E_g and E_d: how far the gaze and the head distance seen in a video are from those asked for.

VASA-1 conditions generation on a main gaze direction and a head distance and reports the error of
what the video shows. Each video with a requested control (`Video.gaze`, `Video.distance`) is read
frame by frame (`reader`, see `vasa_jax.evaluators.readers`) and its mean reading compared with the
request:
  E_g  the angle between the mean read gaze (theta, phi) and the requested one, in degrees;
  E_d  |mean read distance - requested distance|, in the dataset's distance units.

A reader measures in its own units (MediaPipe's iris gaze is biased on stylised eyes; it sees the
distance only as the face's size in the frame). When the real clips of the split carry labels, a
per-quantity linear calibration from reading to label is fitted on their frames (distance from
1 / face size), and generated and real videos are read through it; the real clips' own errors (the
"Real video" row) then show what the instrument allows. Without labelled real clips the raw
reading is used (gaze in radians; distance only from readers that read it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from vasa_jax.errors import UserError
from vasa_jax.evaluators import readers
from vasa_jax.evaluators.videos import Video, mean_or_nan

MIN_CALIBRATION_FRAMES = 50


def _raw(values: dict[str, np.ndarray], quantity: str) -> np.ndarray | None:
  """The reading a quantity is calibrated from, [T, k]."""
  if quantity == "gaze":
    if "gaze_theta" in values and "gaze_phi" in values:
      return np.stack([values["gaze_theta"], values["gaze_phi"]], -1).astype(np.float64)
    return None
  if "distance" in values:
    return np.asarray(values["distance"], np.float64)[:, None]
  if "face_share" in values:
    with np.errstate(divide="ignore"):
      return 1.0 / np.asarray(values["face_share"], np.float64)[:, None]
  return None


def _target(video: Video, quantity: str) -> np.ndarray | None:
  """The per-frame truth of a labelled video, [T, k]."""
  labels = video.labels or {}
  names = ("gaze_theta", "gaze_phi") if quantity == "gaze" else ("distance",)
  if not all(name in labels for name in names):
    return None
  return np.stack([np.asarray(labels[n], np.float64) for n in names], -1)


class _ControlError:
  quantity = ""
  key = ""

  def __init__(self, reader: str = "landmarks", calibrate: bool = True):
    if reader == "labels":
      raise UserError(f"{self.key} reads generated frames, which have no labels; set its reader "
                      "to 'landmarks' or probe:DIR")
    readers.make_reader(reader)
    self.reader, self.calibrate = reader, calibrate
    self.weights = {"frame reader": readers.describe(reader)}
    self.calibration: list[tuple[float, float]] | None = None

  def _fit(self, real: Sequence[Video]) -> None:
    xs, ys = [], []
    for video in real:
      target = _target(video, self.quantity)
      raw = _raw(readers.read(video, self.reader), self.quantity)
      if target is None or raw is None:
        continue
      keep = np.isfinite(target).all(-1) & np.isfinite(raw).all(-1)
      xs.append(raw[keep])
      ys.append(target[keep])
    if not xs or sum(len(x) for x in xs) < MIN_CALIBRATION_FRAMES:
      self.calibration = None
      return
    x, y = np.concatenate(xs), np.concatenate(ys)
    fits = []
    for k in range(x.shape[1]):
      if np.std(x[:, k]) < 1e-9:
        fits.append((0.0, float(y[:, k].mean())))
      else:
        slope, offset = np.polyfit(x[:, k], y[:, k], 1)
        fits.append((float(slope), float(offset)))
    self.calibration = fits
    logging.info("%s: reader %s calibrated on %d labelled real frames: %s", self.key, self.reader,
                 len(x), fits)

  def _reading(self, video: Video) -> np.ndarray | None:
    raw = _raw(readers.read(video, self.reader), self.quantity)
    if raw is None:
      raise UserError(f"frame reader {self.reader!r} does not read the {self.quantity}; use "
                      "'landmarks' or a probe trained to read it")
    if self.calibration is not None:
      raw = np.stack([a * raw[:, k] + b for k, (a, b) in enumerate(self.calibration)], -1)
    elif self.quantity == "distance" and "distance" not in readers.read(video, self.reader):
      return None  # A face size without calibration has no distance units.
    keep = np.isfinite(raw).all(-1)
    return raw[keep].mean(0) if keep.any() else None

  def score(self, videos: Sequence[Video], real: Sequence[Video] | None = None
            ) -> dict[str, float]:
    if self.calibrate and self.calibration is None and real:
      self._fit(real)
    errors = []
    for video in videos:
      requested = video.gaze if self.quantity == "gaze" else video.distance
      if requested is None or not np.all(np.isfinite(requested)):
        continue
      reading = self._reading(video)
      if reading is None:
        continue
      errors.append(self._error(reading, np.atleast_1d(np.asarray(requested, np.float64))))
    return {self.key: mean_or_nan(errors)}

  def _error(self, reading: np.ndarray, requested: np.ndarray) -> float:
    raise NotImplementedError


class GazeError(_ControlError):
  quantity, key = "gaze", "E_g"

  def _error(self, reading, requested):
    # Gaze as a direction: the angle between the two unit vectors (theta right, phi up).
    def direction(theta, phi):
      return np.array([np.cos(phi) * np.sin(theta), np.sin(phi), np.cos(phi) * np.cos(theta)])

    cosine = float(np.clip(direction(*reading) @ direction(*requested), -1.0, 1.0))
    return float(np.degrees(np.arccos(cosine)))


class DistanceError(_ControlError):
  quantity, key = "distance", "E_d"

  def _error(self, reading, requested):
    return float(abs(reading[0] - requested[0]))
