"""CSIM: dlib descriptors of real faces in the training framing; the source photo found by clip."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import hide_distribution
from vasa_jax.data import faces
from vasa_jax.evaluators import csim, videos
from vasa_jax.evaluators.videos import Video

RESOLUTION = 128


def _crops(analyzer, image: np.ndarray, shifts) -> np.ndarray:
  """Canonical crops `[len(shifts), 128, 128, 3]` of the one face in `image`, the box moved by
  (dx, dy) fractions of its size: the small framing jitter of real video."""
  (_, landmarks), = analyzer.analyze(image)
  box = faces.crop_box(landmarks.points)
  return np.stack([faces.crop(image, box + np.array([dx * box[2], dy * box[2], 0], np.float32),
                              RESOLUTION) for dx, dy in shifts])


@pytest.fixture(scope="module")
def real_faces(analyzer, astronaut):
  skimage_data = pytest.importorskip("skimage.data")
  cameraman = np.repeat(skimage_data.camera()[..., None], 3, axis=-1)
  shifts = [(0, 0), (0.02, 0), (-0.02, 0.01), (0, -0.02), (0.01, 0.02)]
  return _crops(analyzer, astronaut, shifts), _crops(analyzer, cameraman, shifts)


def test_same_person_scores_high_another_low_and_the_source_comes_from_the_real_clip(real_faces):
  astronaut, cameraman = real_faces
  metric = csim.Metric(frames_per_video=8)
  assert metric.weights["identity"].startswith("face-recognition-models 0.3.0: ")
  silence = np.zeros(16000, np.float32)
  real = [Video("astronaut_real", astronaut, silence, clip="a"),
          Video("cameraman_real", cameraman, silence, clip="c")]
  real_score = metric.score(real, real)["CSIM"]
  # Generated videos of clip "a" are compared with the astronaut's first real frame.
  kept = metric.score([Video("kept", astronaut[::-1].copy(), silence, clip="a")], real)["CSIM"]
  swapped = metric.score([Video("swapped", cameraman, silence, clip="a")], real)["CSIM"]
  print(f"CSIM real-vs-real {real_score:.4f}, identity kept {kept:.4f}, swapped {swapped:.4f}")
  assert real_score > 0.95 and kept > 0.95
  # dlib's own threshold: descriptors of one person lie within 0.6 (Euclidean, unit-ish norm).
  assert swapped < kept - 0.1


def test_unavailable_only_without_the_package(monkeypatch):
  hide_distribution(monkeypatch, "face-recognition-models")
  with pytest.raises(videos.Unavailable, match=r"pip install face-recognition-models==0\.3\.0"):
    csim.Metric()
  with pytest.raises(videos.Unavailable, match="face-recognition-models"):
    videos.make_metric("id", {"type": "csim", "frames_per_video": 4})
