"""Lip sync of talking-face videos: SyncNet confidence S_C and distance S_D (LSE-C / LSE-D).

The protocol of the public SyncNet evaluation (syncnet_python's `SyncNetInstance.evaluate`, which
Wav2Lip's LSE scripts and the VASA-1 paper use), per clip:
  1. every 5-frame video window i (frames i .. i+4, for i < min(frames, samples // 640) - 5) and
     its audio window (MFCC steps 4i .. 4i+19: the same 0.2 s) are embedded;
  2. for each audio shift k = -vshift .. vshift (15: +-0.6 s), the distance d_k is the mean over
     windows i of the L2 distance between video feature i and audio feature i + k, audio features
     zero outside the clip (torch's `pairwise_distance`, which adds eps = 1e-6 to the difference);
  3. S_D = min_k d_k, S_C = median_k d_k - S_D, and the offset is vshift - argmin index, i.e. -k
     at the minimum: negative when the audio lags the video (`sync_offset`).
The metric averages S_C and S_D over the videos (clips too short for one window are left out) and
reports the mean |offset| in frames.

Two networks can embed the windows (`Metric`):
  * `weights`: the public SyncNet (`models.syncnet.SyncNet`, converted from syncnet_v2.model by
    `vasa_jax.convert.syncnet.convert_syncnet`): its numbers are on the scale of published LSE
    numbers. It reads the whole face crop at 224x224 (BGR, 0..255) and MFCCs of int16-scale
    audio. syncnet_python feeds it its own face crops, which are tighter than the training
    framing videos come in here: absolute values can differ somewhat from published ones.
  * `expert`: our SyncNet-style expert trained on the project's data
    (`vasa_jax.trainers.syncnet_expert`), which reads a window around the mouth. Its embeddings
    are unit vectors (with a constant coordinate appended, so that the zero padding of the search
    is as far as any audio window can be), so its distances lie in [0, 2]: its S_C / S_D compare
    runs scored by the same expert, not published numbers.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from vasa_jax.errors import UserError
from vasa_jax.evaluators import videos as video_lib
from vasa_jax.models import syncnet

VSHIFT = 15
PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance's default.


@dataclasses.dataclass(frozen=True)
class SyncResult:
  """The sync of one clip.

  offset: frames; -k for the audio shift k that fits best (negative: the audio lags the video).
  confidence: S_C, median(curve) - min(curve).
  min_dist: S_D, min(curve).
  curve: float [2 * vshift + 1], the mean distance for audio shift k = -vshift .. vshift.
  """
  offset: int
  confidence: float
  min_dist: float
  curve: np.ndarray


def sync_offset(video_features: np.ndarray, audio_features: np.ndarray,
                vshift: int = VSHIFT) -> SyncResult:
  """The offset search of the public evaluation on embeddings [N, D] of the N windows of a clip.

  curve[j] = mean_i || video_features[i] - audio_padded[i + j] + eps ||, audio_padded being the
  audio features with vshift zero rows before and after. The median of the 2 vshift + 1 values is
  their middle one.
  """
  video_features = np.asarray(video_features, np.float64)
  audio_features = np.asarray(audio_features, np.float64)
  if video_features.shape != audio_features.shape or video_features.ndim != 2:
    raise ValueError(f"video and audio features must both be [N, D]; got {video_features.shape} "
                     f"and {audio_features.shape}")
  count = len(video_features)
  if count == 0:
    raise ValueError("sync_offset needs at least one window")
  padded = np.zeros((count + 2 * vshift, audio_features.shape[1]))
  padded[vshift:vshift + count] = audio_features
  curve = np.array([
      np.mean(np.linalg.norm(video_features - padded[j:j + count] + PAIRWISE_EPS, axis=1))
      for j in range(2 * vshift + 1)])
  best = int(np.argmin(curve))
  minimum = float(curve[best])
  median = float(np.sort(curve)[(len(curve) - 1) // 2])
  return SyncResult(offset=vshift - best, confidence=median - minimum, min_dist=minimum,
                    curve=curve.astype(np.float32))


class Embedder(Protocol):
  """What the offset search needs of a network."""

  def prepare_frames(self, frames: np.ndarray) -> np.ndarray:
    """RGB uint8 face crops [T, H, W, 3] -> what `embed_video` reads per frame, [T, ...]."""

  def embed_video(self, windows: np.ndarray) -> np.ndarray:
    """Prepared frames [B, 5, ...] -> features [B, D]."""

  def embed_audio(self, mfcc_windows: np.ndarray) -> np.ndarray:
    """MFCC windows [B, 13, 20] (`syncnet.audio_windows`) -> features [B, D]."""


def clip_features(embedder: Embedder, frames: np.ndarray, audio: np.ndarray,
                  batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
  """(video features, audio features), each [N, D], of the N windows the public evaluation
  scores in a clip: RGB uint8 frames [T, H, W, 3] at 25 fps, 16 kHz mono audio (float in [-1, 1]
  or int16). Batches are padded to `batch_size` so each network compiles once."""
  count = syncnet.num_windows(len(frames), len(audio))
  if count == 0:
    return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
  cepstra = syncnet.mfcc(syncnet.to_int16_scale(audio))
  prepared = embedder.prepare_frames(np.asarray(frames[:count + syncnet.WINDOW_FRAMES - 1]))
  video_out, audio_out = [], []
  for start in range(0, count, batch_size):
    starts = np.arange(start, min(start + batch_size, count))
    filled = np.concatenate([starts, np.full(batch_size - len(starts), starts[-1])])
    video_out.append(np.asarray(embedder.embed_video(
        syncnet.video_windows(prepared, filled)))[:len(starts)])
    audio_out.append(np.asarray(embedder.embed_audio(
        syncnet.audio_windows(cepstra, filled)))[:len(starts)])
  return np.concatenate(video_out), np.concatenate(audio_out)


def score_clip(embedder: Embedder, frames: np.ndarray, audio: np.ndarray, vshift: int = VSHIFT,
               batch_size: int = 16) -> SyncResult | None:
  """`sync_offset` of one clip's windows; None when the clip is too short for one (6 frames)."""
  video_features, audio_features = clip_features(embedder, frames, audio, batch_size)
  if len(video_features) == 0:
    return None
  return sync_offset(video_features, audio_features, vshift)


class PublicSyncNet:
  """The public SyncNet as an `Embedder`: whole face crops at 224x224 BGR, 1024-d features."""

  def __init__(self, weights: str | pathlib.Path):
    import jax

    from vasa_jax.convert.syncnet import load_syncnet

    self.path = pathlib.Path(weights).expanduser()
    self.variables = load_syncnet(self.path)
    model = syncnet.SyncNet()
    self._lip = jax.jit(lambda v, x: model.apply(v, x, method=syncnet.SyncNet.embed_lip))
    self._audio = jax.jit(lambda v, x: model.apply(v, x, method=syncnet.SyncNet.embed_audio))

  def prepare_frames(self, frames: np.ndarray) -> np.ndarray:
    return syncnet.lip_input(frames)

  def embed_video(self, windows: np.ndarray) -> np.ndarray:
    return np.asarray(self._lip(self.variables, windows))

  def embed_audio(self, mfcc_windows: np.ndarray) -> np.ndarray:
    return np.asarray(self._audio(self.variables, mfcc_windows))


class Metric:
  """S_C, S_D and the mean |offset| of videos, by the public SyncNet or by our expert.

  Args:
    weights: the public SyncNet converted to safetensors (`convert_syncnet`).
    expert: the workdir of a `syncnet_expert` run (experiments/evals/syncnet_expert.py).
    expert_step: that run's checkpoint to use; -1 for the latest.
    vshift: audio shifts searched, +-frames.
    batch_size: windows embedded per call.
  Exactly one of `weights` and `expert` is given; with neither the metric is `Unavailable`.
  """

  def __init__(self, weights: str = "", expert: str = "", expert_step: int = -1,
               vshift: int = VSHIFT, batch_size: int = 16):
    if weights and expert:
      raise UserError("the syncnet metric takes one network: set either `weights` (the public "
                      f"SyncNet, {weights}) or `expert` (our expert's run, {expert}), not both")
    if not weights and not expert:
      raise video_lib.Unavailable(
          "lip sync (S_C / S_D) needs a SyncNet: set `weights` to the public SyncNet converted "
          "with vasa_jax.convert.syncnet.convert_syncnet(syncnet_v2.model, OUT.safetensors) "
          "(syncnet_v2.model comes with syncnet_python or Wav2Lip's evaluation), or `expert` to "
          "the workdir of our expert, trained with `vasa train --config "
          "experiments/evals/syncnet_expert.py --workdir DIR`")
    if int(vshift) < 1 or int(batch_size) < 1:
      raise UserError(f"syncnet metric: vshift={vshift} and batch_size={batch_size} must be at "
                      "least 1")
    self.vshift, self.batch_size = int(vshift), int(batch_size)
    if weights:
      self.embedder = PublicSyncNet(weights)
      self.weights = {"syncnet": str(self.embedder.path)}
    else:
      from vasa_jax import runs

      self.embedder = runs.load_run(expert, int(expert_step), task="syncnet_expert").predictor()
      self.weights = {"syncnet_expert": f"{self.embedder.workdir} step {self.embedder.step}"}
    self.results: list[tuple[str, SyncResult | None]] = []

  def score_video(self, video: video_lib.Video) -> SyncResult | None:
    """The sync of one video (None when it has fewer than 6 frames of audio and video)."""
    if abs(float(video.fps) - syncnet.FPS) > 1e-3:
      raise UserError(f"video {video.name} is at {video.fps} fps; the syncnet metric reads 25 fps "
                      "video (5 frames per 0.2 s window): resample it to 25 fps")
    return score_clip(self.embedder, video.frames, video.audio, self.vshift, self.batch_size)

  def score(self, videos: Sequence[video_lib.Video], real: Sequence[video_lib.Video] | None = None
            ) -> dict[str, float]:
    del real  # Sync is a property of each video alone.
    self.results = [(video.name, self.score_video(video)) for video in videos]
    scored = [r for _, r in self.results if r is not None]
    if len(scored) < len(self.results):
      logging.warning("syncnet: %d of %d videos are shorter than 6 frames and were not scored.",
                      len(self.results) - len(scored), len(self.results))
    return {"S_C": video_lib.mean_or_nan([r.confidence for r in scored]),
            "S_D": video_lib.mean_or_nan([r.min_dist for r in scored]),
            "offset_abs": video_lib.mean_or_nan([abs(r.offset) for r in scored])}
