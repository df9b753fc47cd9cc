"""Frame-synchronous audio features: one vector per 25 fps video frame, from mel spectra or Wav2Vec2.

The rule that ties audio to video frames (the same everywhere in the project):
  * 16 kHz audio of N samples belongs to T = ceil(N / 640) video frames; it is zero-padded on the right
    to 640 T samples, so frame t owns samples [640 t, 640 (t + 1)).
  * Wav2Vec2 hops by s samples (320 for the public models: 50 Hz) and sees a window of w samples (400).
    The padded audio gets (w - s) / 2 more zeros on each side, so the conv stack yields exactly
    640 T / s features and feature k is centred on hop k, [s k, s (k + 1)). Frame t is the mean of its
    640 / s features (2 at 50 Hz).
  * Mel spectra hop by 160 samples (10 ms) with a 400-sample (25 ms) Hann window, centred the same way;
    frame t concatenates its 4 spectra: [T, 4 x n_mels].
So any audio length gives exactly the frame count of the video made from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.rates import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME  # noqa: F401 (re-exported)



def num_video_frames(num_samples: int) -> int:
  """Video frames for `num_samples` of 16 kHz audio: ceil(num_samples / 640)."""
  return -(-int(num_samples) // SAMPLES_PER_FRAME)


def pad_to_frames(audio: np.ndarray | jax.Array, num_frames: int | None = None):
  """Zero-pads (or trims) the last axis to exactly 640 x num_frames samples."""
  length = audio.shape[-1]
  num_frames = num_video_frames(length) if num_frames is None else num_frames
  target = num_frames * SAMPLES_PER_FRAME
  if length >= target:
    return audio[..., :target]
  pad = [(0, 0)] * (audio.ndim - 1) + [(0, target - length)]
  return jnp.pad(audio, pad) if isinstance(audio, jax.Array) else np.pad(audio, pad)


def conv_geometry(kernels: Sequence[int], strides: Sequence[int]) -> tuple[int, int]:
  """(receptive field, hop) in samples of a stack of 1-D convolutions without padding."""
  receptive, hop = 1, 1
  for kernel, stride in zip(kernels, strides):
    receptive += (kernel - 1) * hop
    hop *= stride
  return receptive, hop


def frames_from_hops(features: jax.Array, per_frame: int) -> jax.Array:
  """[batch, frames * per_frame, dims] -> [batch, frames, dims]: the mean over each frame's hops."""
  batch, hops, dims = features.shape
  return features.reshape(batch, hops // per_frame, per_frame, dims).mean(axis=2)


# ----------------------------------------------------------------------------------------------------
# Mel spectra.


@dataclasses.dataclass(frozen=True)
class MelConfig:
  n_mels: int = 80
  n_fft: int = 400  # 25 ms window.
  hop: int = 160  # 10 ms: 4 spectra per video frame.
  fmin: float = 55.0
  fmax: float = 7600.0
  log_floor: float = 1e-5


def mel_filterbank(config: MelConfig) -> np.ndarray:
  """[n_fft // 2 + 1, n_mels] Slaney-normalised mel filters (librosa's)."""
  import librosa

  return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=config.n_fft, n_mels=config.n_mels,
                             fmin=config.fmin, fmax=config.fmax).T.astype(np.float32)


def mel_power(audio: jax.Array, filterbank: jax.Array, config: MelConfig) -> jax.Array:
  """Mel power spectra of [batch, samples] audio: [batch, 1 + samples // hop, n_mels].

  Frames are centred (the audio is zero-padded by n_fft / 2 on both sides), as librosa does with
  `center=True, pad_mode="constant"`.
  """
  half = config.n_fft // 2
  padded = jnp.pad(audio, ((0, 0), (half, half)))
  count = 1 + audio.shape[-1] // config.hop
  starts = jnp.arange(count) * config.hop
  windows = padded[:, starts[:, None] + jnp.arange(config.n_fft)[None, :]]
  hann = 0.5 - 0.5 * jnp.cos(2 * jnp.pi * jnp.arange(config.n_fft) / config.n_fft)
  spectrum = jnp.abs(jnp.fft.rfft(windows * hann, axis=-1)) ** 2
  return spectrum @ filterbank


def log_mel_frames(audio: jax.Array, filterbank: jax.Array, config: MelConfig) -> jax.Array:
  """[batch, 640 T] audio -> [batch, T, (640 / hop) x n_mels] log-mel features per video frame."""
  per_frame = SAMPLES_PER_FRAME // config.hop
  frames = audio.shape[-1] // SAMPLES_PER_FRAME
  power = mel_power(audio, filterbank, config)[:, :frames * per_frame]
  log_mel = jnp.log(power + config.log_floor)
  return log_mel.reshape(audio.shape[0], frames, per_frame * config.n_mels)


# ----------------------------------------------------------------------------------------------------
# One interface for both.


class WeightedLayerSum(nn.Module):
  """A learned softmax-weighted sum over Wav2Vec2's layers: [batch, T, layers, H] -> [batch, T, H]."""

  @nn.compact
  def __call__(self, stacked: jax.Array) -> jax.Array:
    logits = self.param("layer_logits", nn.initializers.zeros, (stacked.shape[-2],), jnp.float32)
    return jnp.einsum("btlh,l->bth", stacked, jax.nn.softmax(logits).astype(stacked.dtype))


@dataclasses.dataclass
class AudioEncoder:
  """Audio [batch, 640 T] float32 -> features [batch, T, dim] (or [batch, T, layers, H] for "weighted").

  Build one with `vasa_jax.data.audio_features.make_audio_encoder(config)`. `params` are the frozen
  pretrained weights (None for mel); `apply(params, audio)` is pure and jittable.
  """

  kind: str
  dim: int
  layer: Any
  params: Any = None
  model: Any = None
  hop: int = 160
  pad: int = 0
  mel: MelConfig | None = None
  filterbank: np.ndarray | None = None
  normalize: bool = False
  description: str = ""

  def apply(self, params, audio: jax.Array) -> jax.Array:
    audio = jnp.asarray(audio, jnp.float32)
    if self.kind == "mel":
      return log_mel_frames(audio, jnp.asarray(self.filterbank), self.mel)
    from vasa_jax.models.audio import wav2vec2

    if self.normalize:
      audio = wav2vec2.normalize_waveform(audio)
    padded = jnp.pad(audio, ((0, 0), (self.pad, self.pad)))
    out = self.model.apply({"params": params}, padded, output_hidden_states=True)
    per_frame = SAMPLES_PER_FRAME // self.hop
    if self.layer == "weighted":
      stacked = jnp.stack(out["hidden_states"], axis=2)
      batch, hops, layers, hidden = stacked.shape
      return stacked.reshape(batch, hops // per_frame, per_frame, layers, hidden).mean(axis=2)
    hidden = out["last_hidden_state"] if self.layer == "last" else out["hidden_states"][self.layer]
    return frames_from_hops(hidden, per_frame)

  def __call__(self, audio) -> jax.Array:
    return self.apply(self.params, audio)
