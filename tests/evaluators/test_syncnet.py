"""The syncnet metric: MFCCs as python_speech_features computes them, the offset search of the
public evaluation, and the metric's settings."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

from vasa_jax.convert import common as torch_io
from vasa_jax.errors import UserError
from vasa_jax.evaluators import syncnet as metric
from vasa_jax.evaluators import videos
from vasa_jax.models import syncnet


def _speech_like(num_samples: int, seed: int = 0) -> np.ndarray:
  """int16 audio: a chirp and noise, with stretches of digital silence (exact zeros)."""
  rng = np.random.default_rng(seed)
  t = np.arange(num_samples) / 16000
  audio = 8000 * np.sin(2 * np.pi * (200 + 900 * t) * t) + rng.normal(0, 1500, num_samples)
  audio[num_samples // 3:num_samples // 3 + 2000] = 0
  audio[-700:] = 0
  return np.clip(np.round(audio), -32768, 32767).astype(np.int16)


def test_mfcc_matches_python_speech_features():
  psf = pytest.importorskip("python_speech_features")
  for num_samples in (250, 400, 401, 16000, 29_123):
    audio = _speech_like(num_samples, seed=num_samples)
    want = psf.mfcc(audio, 16000)
    got = syncnet.mfcc(syncnet.to_int16_scale(audio))
    assert got.shape == want.shape == (syncnet.num_mfcc_steps(num_samples), 13)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
  # Steps computed alone equal the rows of the whole, and windows are the public slices.
  audio = syncnet.to_int16_scale(_speech_like(29_123))
  whole = syncnet.mfcc(audio)
  for first, count in ((0, 5), (1, 20), (57, 31), (len(whole) - 3, 3)):
    np.testing.assert_allclose(syncnet.mfcc(audio, first, count), whole[first:first + count],
                               rtol=1e-12, atol=1e-9)
  starts = np.array([3, 4, 9, 30])
  windows = syncnet.audio_windows(whole, starts)
  assert windows.shape == (4, 13, 20)
  np.testing.assert_array_equal(windows[2], whole[36:56].T.astype(np.float32))
  np.testing.assert_allclose(syncnet.audio_windows_of(audio, starts), windows, rtol=1e-6)
  # Float audio is scaled to int16 as a 16-bit WAV stores it.
  np.testing.assert_array_equal(
      syncnet.to_int16_scale(np.asarray([0.5, -1.0, 1.0, 1e-5], np.float32)),
      [16384, -32768, 32767, 0])
  for module in (syncnet, metric):  # The package is a test dependency only.
    assert not re.search(r"^\s*(import|from)\s+python_speech_features",
                         pathlib.Path(module.__file__).read_text(), re.M)


def _lagged_features(lag: int, count: int = 60, dims: int = 32, seed: int = 0):
  """Video features [count, dims] and noisy audio features whose window i + lag matches video
  window i (the audio lags the video by `lag` windows)."""
  rng = np.random.default_rng(seed)
  margin = abs(lag)
  base = rng.normal(size=(count + 2 * margin, dims))
  index = margin + np.arange(count)
  return base[index], base[index - lag] + rng.normal(0, 0.1, (count, dims))


@pytest.mark.parametrize("lag", [0, 3, -4])
def test_offset_search_finds_a_known_shift(lag):
  video, audio = _lagged_features(lag)
  result = metric.sync_offset(video, audio, vshift=15)
  assert result.curve.shape == (31,)
  assert result.offset == -lag  # Audio lagging the video gives a negative offset.
  assert result.min_dist == pytest.approx(result.curve.min(), rel=1e-6)
  assert result.confidence == pytest.approx(np.median(result.curve) - result.curve.min(),
                                            rel=1e-5)
  assert result.min_dist < 0.2 * np.sqrt(2 * 32) < result.confidence
  # The curve is the mean distance to the zero-padded audio features at each shift.
  k = 7
  padded = np.concatenate([np.zeros((15, 32)), audio, np.zeros((15, 32))])
  manual = np.mean(np.linalg.norm(video - padded[15 + k:15 + k + 60] + 1e-6, axis=1))
  assert result.curve[15 + k] == pytest.approx(manual, rel=1e-6)


def test_offset_search_matches_the_torch_formulation():
  torch = pytest.importorskip("torch")
  video, audio = _lagged_features(2, count=40, seed=3)
  vshift = 10
  # syncnet_python's calc_pdist and its reductions.
  feat1, feat2 = torch.from_numpy(video).float(), torch.from_numpy(audio).float()
  feat2p = torch.nn.functional.pad(feat2, (0, 0, vshift, vshift))
  dists = [torch.nn.functional.pairwise_distance(feat1[[i], :].repeat(2 * vshift + 1, 1),
                                                 feat2p[i:i + 2 * vshift + 1, :])
           for i in range(len(feat1))]
  mdist = torch.mean(torch.stack(dists, 1), 1)
  minval, minidx = torch.min(mdist, 0)
  result = metric.sync_offset(video, audio, vshift=vshift)
  np.testing.assert_allclose(result.curve, mdist.numpy(), rtol=1e-5)
  assert result.offset == int(vshift - minidx)
  assert result.min_dist == pytest.approx(float(minval), rel=1e-5)
  assert result.confidence == pytest.approx(float(torch.median(mdist) - minval), rel=1e-4)


class _BeatEmbedder:
  """A hand-made `Embedder`: a frame is bright when the mouth is 'open', and its 40 ms of audio
  loud; each window embeds as those five on/off states, read from the pixels and the MFCCs."""

  def prepare_frames(self, frames):
    return frames.mean(axis=(1, 2, 3))[:, None]

  def embed_video(self, windows):
    return (windows[..., 0] > 120).astype(np.float32)

  def embed_audio(self, mfcc_windows):
    # MFCC step 4j + 1 (samples 640 j + 160 .. + 560) lies inside the window's frame j.
    return (mfcc_windows[:, 0, 1::4] > 0).astype(np.float32)


def _beat_video(lag: int, num_frames: int = 70) -> videos.Video:
  """Open (bright) and closed (dark) frames; the audio of frame t + lag is noise when frame t is
  open and digital silence when it is closed."""
  rng = np.random.default_rng(1)
  margin = abs(lag)
  state = rng.random(num_frames + 2 * margin) < 0.5
  index = margin + np.arange(num_frames)
  frames = np.where(state[index, None, None, None], 200, 40).astype(np.uint8)
  frames = np.ascontiguousarray(np.broadcast_to(frames, (num_frames, 16, 16, 3)))
  loud = np.repeat(state[index - lag], syncnet.SAMPLES_PER_FRAME)
  audio = rng.normal(0, 0.2, loud.size).astype(np.float32) * loud
  return videos.Video(name=f"beat{lag}", frames=frames, audio=audio)


@pytest.mark.parametrize("lag", [0, 5, -3])
def test_end_to_end_offset_of_a_known_audio_video_shift(lag):
  """Frames -> windows -> MFCCs of int16-scale audio -> features -> offset: audio delayed by
  `lag` frames is found at offset -lag. In sync, the distances are 0 but where the shift pairs
  a window with the zero padding."""
  video = _beat_video(lag)
  result = metric.score_clip(_BeatEmbedder(), video.frames, video.audio)
  assert len(result.curve) == 31
  assert result.offset == -lag
  assert result.min_dist < (0.01 if lag == 0 else 0.2) < 1.0 < result.confidence
  # Windows: min(frames, samples // 640) - 5 of them.
  video_features, _ = metric.clip_features(_BeatEmbedder(), video.frames, video.audio,
                                           batch_size=7)
  assert video_features.shape == (65, 5)
  assert metric.score_clip(_BeatEmbedder(), video.frames[:5], video.audio) is None


def test_unavailable_without_a_network(tmp_path):
  with pytest.raises(videos.Unavailable) as error:
    metric.Metric()
  assert "`weights`" in str(error.value) and "`expert`" in str(error.value)
  assert "convert_syncnet" in str(error.value) and "syncnet_expert.py" in str(error.value)
  with pytest.raises(videos.Unavailable):
    videos.make_metric("sync", {"type": "syncnet", "vshift": 15})
  with pytest.raises(UserError, match="not both"):
    metric.Metric(weights="a.safetensors", expert="runs/sync")
  with pytest.raises(UserError, match="do not exist"):
    metric.Metric(weights=str(tmp_path / "missing.safetensors"))
  with pytest.raises(UserError, match=r"not a training run \(no config.json\); give the "
                     "workdir of a sync expert"):
    metric.Metric(expert=str(tmp_path))


def test_public_network_scores_videos(tmp_path):
  """The public SyncNet path end to end with random weights in the converted format: 224x224 BGR
  frames, 1024-d features, one score per video; a wrong file is a UserError."""
  rng = np.random.default_rng(0)
  shapes = syncnet.variable_shapes()
  flat = {k: (rng.uniform(0.5, 1.5, s) if k.endswith("/var") else rng.normal(0, 0.05, s))
          .astype(np.float32) for k, s in shapes.items()}
  path = torch_io.write_safetensors(flat, tmp_path / "syncnet.safetensors", "vasa_jax.syncnet",
                                    {}, "SyncNet")
  scorer = metric.Metric(weights=str(path), batch_size=2, vshift=3)
  assert scorer.weights == {"syncnet": str(path)}
  clip = videos.Video(name="a", frames=rng.integers(0, 256, (8, 40, 40, 3), dtype=np.uint8),
                      audio=rng.normal(0, 0.1, 8 * 640).astype(np.float32))
  short = videos.Video(name="b", frames=clip.frames[:5], audio=clip.audio)
  scores = scorer.score([clip, short])
  assert set(scores) == {"S_C", "S_D", "offset_abs"}
  result = dict(scorer.results)["a"]
  assert dict(scorer.results)["b"] is None
  assert result.curve.shape == (7,) and scores["S_D"] == pytest.approx(result.min_dist)
  assert scores["S_C"] == pytest.approx(result.confidence) and scores["S_C"] >= 0
  assert scores["offset_abs"] == abs(result.offset) <= 3
  video_features, audio_features = metric.clip_features(scorer.embedder, clip.frames, clip.audio, 2)
  assert video_features.shape == audio_features.shape == (3, 1024)
  # BGR 0..255 at 224x224 is what the network reads.
  prepared = scorer.embedder.prepare_frames(clip.frames[:1])
  assert prepared.shape == (1, 224, 224, 3)
  np.testing.assert_array_equal(prepared[0, ..., ::-1],
                                syncnet.resize_frames(clip.frames[:1], 224, 224)[0])
  with pytest.raises(UserError, match="25 fps"):
    scorer.score([videos.Video(name="c", frames=clip.frames, audio=clip.audio, fps=30.0)])
  other = tmp_path / "other.safetensors"
  torch_io.write_safetensors({"a": np.zeros(3, np.float32)}, other, "vasa_jax.vgg19", {}, "VGG19")
  with pytest.raises(UserError, match="not converted SyncNet weights"):
    metric.Metric(weights=str(other))
