"""SyncNet: lip-sync networks that embed 5 video frames and the speech heard over them.

Two networks live here, both two-stream: a video window (5 frames at 25 fps, 0.2 s) and the audio
window of the same 0.2 s (20 MFCC steps of 10 ms) go to separate encoders, and in-sync pairs lie
close in the embedding space. The S_C / S_D metric (`vasa_jax.evaluators.syncnet`) slides the audio
against the video and reads how clearly the in-sync alignment stands out.

`SyncNet` is the public SyncNet of Chung & Zisserman ("Out of time: automated lip sync in the
wild", 2016) as its authors released it (`syncnet_python`, weights `syncnet_v2.model`), the network
behind the LSE-C / LSE-D numbers of Wav2Lip and of the VASA-1 paper. Its layer geometry is kept
exactly, layer for layer, so the released weights convert (`vasa_jax.convert.syncnet`):

  audio  [B, 13, 20, 1] MFCC   conv3x3 64, BN, ReLU, (1x1 pool)    13x20
                               conv3x3 192, BN, ReLU, pool 3x3 /(1,2)   11x9
                               conv3x3 384, 256, 256 (BN, ReLU each), pool 3x3 /2   5x4
                               conv5x4 512 valid, BN, ReLU         1x1  -> 512
                               fc 512, BN, ReLU, fc 1024
  lip    [B, 5, 224, 224, 3]   conv 5x7x7 /(1,2,2) 96 valid, BN, ReLU, pool 1x3x3 /2   1x54x54
                               conv 1x5x5 /2 pad 1 256, BN, ReLU, pool 1x3x3 /2 pad 1   1x13x13
                               conv 1x3x3 pad 1 256 x3 (BN, ReLU each), pool 1x3x3 /2   1x6x6
                               conv 1x6x6 512 valid, BN, ReLU      -> 512
                               fc 512, BN, ReLU, fc 1024

BatchNorm runs in inference mode on the released running statistics. Parameters are named after the
torch `Sequential` indices (`netcnnaud_0`, `netcnnaud_1`, ...; `netfclip_3`), under `audio/` and
`lip/`, so the converter is a transpose per tensor.

Preprocessing, exactly as the public evaluation feeds the network:
  * video: the face crop resized to 224x224, colour channels in **BGR** order (OpenCV's), values
    0..255 as floats, not normalised (`lip_input`);
  * audio: 16 kHz mono as **int16-scale** samples (float audio times 32768), turned into MFCCs by
    python_speech_features' `mfcc(signal, 16000)` with its defaults, reimplemented in numpy here
    (`mfcc`): pre-emphasis 0.97, 25 ms frames every 10 ms, |512-point FFT|^2 / 512, 26 triangular
    mel filters over 0..8 kHz, log, orthonormal DCT-II, 13 cepstra, sinusoidal lifter 22, and c0
    replaced by the log of the frame's total power. Four MFCC steps per video frame: the audio
    window of video frames i..i+4 is MFCC steps 4i..4i+19 (`audio_windows`).

`SyncExpert` is our own trainable SyncNet-style network (`vasa_jax.trainers.syncnet_expert`): it
reads the same MFCC windows, and a small window of the face crop around the mouth instead of the
whole face at 224 px, and returns unit-length embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.models import layers
from vasa_jax.rates import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME  # noqa: F401 (re-exported)

Dtype = Any

WINDOW_FRAMES = 5  # Video frames per window.
MFCC_PER_FRAME = 4  # 10 ms MFCC steps per 40 ms video frame.
MFCC_WINDOW = WINDOW_FRAMES * MFCC_PER_FRAME  # 20 steps: the same 0.2 s as the video window.
NUM_CEPSTRA = 13
LIP_SIZE = 224  # Input frames of the public network.
EMBED_DIM = 1024  # Output of the public network's streams.

# python_speech_features.mfcc defaults.
_WINDOW_SAMPLES = 400  # 25 ms
_HOP_SAMPLES = 160  # 10 ms
_NFFT = 512
_NUM_FILTERS = 26
_PREEMPHASIS = 0.97
_LIFTER = 22

# --------------------------------------------------------------------------------------------------
# Preprocessing.


def to_int16_scale(audio: np.ndarray) -> np.ndarray:
  """Float audio in [-1, 1] -> float64 samples at int16 scale (rounded and clipped as a 16-bit
  PCM file stores them), what the public pipeline reads from its WAV file. int16 input is kept."""
  audio = np.asarray(audio)
  if audio.dtype == np.int16:
    return audio.astype(np.float64)
  return np.clip(np.round(audio.astype(np.float64) * 32768.0), -32768, 32767)


def mel_filterbank(num_filters: int = _NUM_FILTERS, nfft: int = _NFFT,
                   sample_rate: int = SAMPLE_RATE) -> np.ndarray:
  """Triangular mel filters [num_filters, nfft // 2 + 1] over 0 .. sample_rate / 2, with edges
  on FFT bins floor((nfft + 1) * hz / sample_rate) of points evenly spaced in mel."""
  def to_mel(hz):
    return 2595.0 * np.log10(1.0 + hz / 700.0)

  mels = np.linspace(to_mel(0.0), to_mel(sample_rate / 2), num_filters + 2)
  edges = np.floor((nfft + 1) * (700.0 * (10.0 ** (mels / 2595.0) - 1.0)) / sample_rate)
  bins = np.arange(nfft // 2 + 1, dtype=np.float64)[None]
  low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
  rising = np.where((bins >= low) & (bins < centre), (bins - low) / np.maximum(centre - low, 1),
                    0.0)
  falling = np.where((bins >= centre) & (bins < high),
                     (high - bins) / np.maximum(high - centre, 1), 0.0)
  return rising + falling


def _dct_matrix(size: int, count: int) -> np.ndarray:
  """Orthonormal DCT-II as a matrix [size, count]: x [.., size] @ it -> first `count` terms."""
  n = np.arange(size)[:, None]
  k = np.arange(count)[None]
  matrix = np.cos(np.pi * k * (2 * n + 1) / (2 * size)) * np.sqrt(2.0 / size)
  matrix[:, 0] /= np.sqrt(2.0)
  return matrix


_FILTERBANK = mel_filterbank()
_DCT = _dct_matrix(_NUM_FILTERS, NUM_CEPSTRA)
_LIFT = 1.0 + (_LIFTER / 2.0) * np.sin(np.pi * np.arange(NUM_CEPSTRA) / _LIFTER)


def num_mfcc_steps(num_samples: int) -> int:
  """MFCC steps of `num_samples` samples: 1 + ceil((N - 400) / 160), 1 when N <= 400."""
  if num_samples <= _WINDOW_SAMPLES:
    return 1
  return 1 + math.ceil((num_samples - _WINDOW_SAMPLES) / _HOP_SAMPLES)


def mfcc(signal: np.ndarray, first_step: int = 0, num_steps: int | None = None) -> np.ndarray:
  """python_speech_features' `mfcc(signal, 16000)` with its defaults: 16 kHz samples [N] (at int16
  scale for SyncNet: `to_int16_scale`) -> float64 [steps, 13], steps = `num_mfcc_steps(N)`; the
  last frame is zero-padded. `first_step` and `num_steps` compute only those steps (the same
  values as the rows of the whole)."""
  signal = np.asarray(signal, np.float64).reshape(-1)
  if signal.size == 0:
    raise ValueError("mfcc needs at least one sample")
  total = num_mfcc_steps(signal.size)
  num_steps = total - first_step if num_steps is None else int(num_steps)
  if first_step < 0 or num_steps < 1 or first_step + num_steps > total:
    raise ValueError(f"MFCC steps {first_step}..{first_step + num_steps - 1} are outside the "
                     f"{total} steps of {signal.size} samples")
  start = first_step * _HOP_SAMPLES
  stop = (first_step + num_steps - 1) * _HOP_SAMPLES + _WINDOW_SAMPLES
  # Pre-emphasis x[n] - 0.97 x[n - 1], the first sample kept as it is.
  before = signal[start - 1:start] if start > 0 else signal[:0]
  segment = np.concatenate([before, signal[start:stop]])
  emphasised = segment[1:] - _PREEMPHASIS * segment[:-1]
  if start == 0:
    emphasised = np.concatenate([segment[:1], emphasised])
  padded = np.zeros(stop - start)
  padded[:emphasised.size] = emphasised
  index = np.arange(_WINDOW_SAMPLES)[None] + _HOP_SAMPLES * np.arange(num_steps)[:, None]
  power = np.abs(np.fft.rfft(padded[index], _NFFT)) ** 2 / _NFFT
  eps = np.finfo(np.float64).eps
  energy = power.sum(axis=1)
  energy = np.where(energy == 0, eps, energy)
  bands = power @ _FILTERBANK.T
  bands = np.where(bands == 0, eps, bands)
  cepstra = (np.log(bands) @ _DCT) * _LIFT
  cepstra[:, 0] = np.log(energy)
  return cepstra


def num_windows(num_frames: int, num_samples: int) -> int:
  """Video windows the public evaluation scores in a clip: min(frames, samples // 640) - 5 (it
  leaves out the last complete window), at least 0."""
  return max(min(int(num_frames), int(num_samples) // SAMPLES_PER_FRAME) - WINDOW_FRAMES, 0)


def audio_windows(cepstra: np.ndarray, starts: Sequence[int] | np.ndarray) -> np.ndarray:
  """MFCC windows of the video windows starting at frames `starts`: cepstra [steps, 13] ->
  float32 [len(starts), 13, 20] (steps 4s .. 4s + 19, cepstra along the first axis as the
  public network reads them)."""
  starts = np.asarray(starts, np.int64)
  index = MFCC_PER_FRAME * starts[:, None] + np.arange(MFCC_WINDOW)[None]
  if index.size and index.max() >= len(cepstra):
    raise ValueError(f"audio windows need {index.max() + 1} MFCC steps; there are "
                     f"{len(cepstra)}")
  return np.ascontiguousarray(cepstra[index].transpose(0, 2, 1), np.float32)


def audio_windows_of(signal: np.ndarray, starts: Sequence[int] | np.ndarray) -> np.ndarray:
  """`audio_windows(mfcc(signal), starts)` computing only the MFCC steps the windows cover."""
  starts = np.asarray(starts, np.int64)
  first = int(starts.min())
  cepstra = mfcc(signal, MFCC_PER_FRAME * first,
                 MFCC_PER_FRAME * (int(starts.max()) - first) + MFCC_WINDOW)
  return audio_windows(cepstra, starts - first)


def video_windows(frames: np.ndarray, starts: Sequence[int] | np.ndarray) -> np.ndarray:
  """Frames [T, ...] -> windows [len(starts), 5, ...] of frames s .. s + 4."""
  starts = np.asarray(starts, np.int64)
  return frames[starts[:, None] + np.arange(WINDOW_FRAMES)[None]]


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
  """uint8 [T, H, W, C] -> [T, height, width, C]: area averaging when shrinking, bilinear when
  enlarging."""
  import cv2

  frames = np.asarray(frames)
  if frames.shape[1:3] == (height, width):
    return frames
  shrink = frames.shape[1] >= height and frames.shape[2] >= width
  interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
  return np.stack([cv2.resize(np.ascontiguousarray(f), (width, height),
                              interpolation=interpolation) for f in frames])


def lip_input(frames: np.ndarray) -> np.ndarray:
  """RGB uint8 face crops [T, H, W, 3] -> the public network's frames: uint8 [T, 224, 224, 3] in
  BGR order (`SyncNet.embed_lip` takes them as 0..255 floats, unnormalised)."""
  return np.ascontiguousarray(resize_frames(frames, LIP_SIZE, LIP_SIZE)[..., ::-1])


# --------------------------------------------------------------------------------------------------
# The public SyncNet.

# (kind, torch Sequential index, settings). Every BatchNorm is followed by a ReLU (index + 1).
# conv: (features, kernel, strides, padding); pool: (window, strides, padding); linear: features.
AUDIO_CNN = (
    ("conv", 0, (64, (3, 3), (1, 1), (1, 1))), ("bn", 1, None),
    ("pool", 3, ((1, 1), (1, 1), (0, 0))),
    ("conv", 4, (192, (3, 3), (1, 1), (1, 1))), ("bn", 5, None),
    ("pool", 7, ((3, 3), (1, 2), (0, 0))),
    ("conv", 8, (384, (3, 3), (1, 1), (1, 1))), ("bn", 9, None),
    ("conv", 11, (256, (3, 3), (1, 1), (1, 1))), ("bn", 12, None),
    ("conv", 14, (256, (3, 3), (1, 1), (1, 1))), ("bn", 15, None),
    ("pool", 17, ((3, 3), (2, 2), (0, 0))),
    ("conv", 18, (512, (5, 4), (1, 1), (0, 0))), ("bn", 19, None),
)
LIP_CNN = (
    ("conv", 0, (96, (5, 7, 7), (1, 2, 2), (0, 0, 0))), ("bn", 1, None),
    ("pool", 3, ((1, 3, 3), (1, 2, 2), (0, 0, 0))),
    ("conv", 4, (256, (1, 5, 5), (1, 2, 2), (0, 1, 1))), ("bn", 5, None),
    ("pool", 7, ((1, 3, 3), (1, 2, 2), (0, 1, 1))),
    ("conv", 8, (256, (1, 3, 3), (1, 1, 1), (0, 1, 1))), ("bn", 9, None),
    ("conv", 11, (256, (1, 3, 3), (1, 1, 1), (0, 1, 1))), ("bn", 12, None),
    ("conv", 14, (256, (1, 3, 3), (1, 1, 1), (0, 1, 1))), ("bn", 15, None),
    ("pool", 17, ((1, 3, 3), (1, 2, 2), (0, 0, 0))),
    ("conv", 18, (512, (1, 6, 6), (1, 1, 1), (0, 0, 0))), ("bn", 19, None),
)
FC = (("linear", 0, 512), ("bn", 1, None), ("linear", 3, EMBED_DIM))
# Stream name in the parameters -> (its CNN's torch name, layers; its fc's torch name, layers).
STREAMS = {"audio": ("netcnnaud", AUDIO_CNN, "netfcaud", FC),
           "lip": ("netcnnlip", LIP_CNN, "netfclip", FC)}
BN_EPSILON = 1e-5  # torch's default.


class SyncNetStream(nn.Module):
  """One stream of the public SyncNet: its CNN, flattened, then its fc head -> [B, 1024]."""

  stream: str  # "audio" or "lip"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cnn_name, cnn, fc_name, fc = STREAMS[self.stream]
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = x.astype(self.dtype)
    for prefix, spec in ((cnn_name, cnn), (fc_name, fc)):
      if prefix == fc_name:
        x = x.reshape(x.shape[0], -1)
      for kind, index, settings in spec:
        name = f"{prefix}_{index}"
        if kind == "conv":
          features, kernel, strides, padding = settings
          x = nn.Conv(features, kernel, strides=strides, padding=[(p, p) for p in padding],
                      name=name, **kw)(x)
        elif kind == "linear":
          x = nn.Dense(settings, name=name, **kw)(x)
        elif kind == "bn":
          x = nn.relu(nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, name=name,
                                   **kw)(x))
        else:
          window, strides, padding = settings
          x = nn.max_pool(x, window, strides=strides, padding=[(p, p) for p in padding])
    return x.astype(jnp.float32)


class SyncNet(nn.Module):
  """The public SyncNet (syncnet_python's `S`), inference only.

  `embed_audio`: MFCC windows [B, 13, 20] (`audio_windows` of `mfcc` of int16-scale audio) ->
  [B, 1024]. `embed_lip`: BGR frames [B, 5, 224, 224, 3], 0..255 (`lip_input`), any dtype ->
  [B, 1024]. `__call__(mfcc, frames)` gives both (it initialises every parameter).
  """

  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def setup(self):
    self.audio = SyncNetStream("audio", dtype=self.dtype, param_dtype=self.param_dtype)
    self.lip = SyncNetStream("lip", dtype=self.dtype, param_dtype=self.param_dtype)

  def embed_audio(self, mfcc_windows: jax.Array) -> jax.Array:
    return self.audio(mfcc_windows[..., None])

  def embed_lip(self, frames: jax.Array) -> jax.Array:
    return self.lip(frames)

  def __call__(self, mfcc_windows: jax.Array, frames: jax.Array) -> tuple[jax.Array, jax.Array]:
    return self.embed_audio(mfcc_windows), self.embed_lip(frames)


def variable_shapes() -> dict[str, tuple[int, ...]]:
  """{"params/audio/netcnnaud_0/kernel": shape, "batch_stats/...": shape} of `SyncNet`."""
  abstract = jax.eval_shape(
      SyncNet().init, jax.random.key(0), jnp.zeros((1, NUM_CEPSTRA, MFCC_WINDOW)),
      jnp.zeros((1, WINDOW_FRAMES, LIP_SIZE, LIP_SIZE, 3)))
  flat = jax.tree_util.tree_flatten_with_path(abstract)[0]
  return {"/".join(str(k.key) for k in path): tuple(leaf.shape) for path, leaf in flat}


# --------------------------------------------------------------------------------------------------
# Our trainable expert.

# MFCCs (`mfcc` of int16-scale audio) are standardised per coefficient with these, then clipped to
# +-MFCC_CLIP: digital silence gives c0 = log(eps) = -36, which saturates. Measured by
# `mfcc_statistics` over the MFCC steps that are not digital silence (c0 > -30) of every clip of
# SynthTalk tiny's train split (`vasa synthtalk build --config tiny --data_dir DATA`, seed 0),
# rounded to 0.1; fixed here so that an expert means the same whatever it was trained on:
#   python -c "from vasa_jax.data import pipelines; from vasa_jax.models import syncnet as s;
#     src = pipelines.open_split('DATA', 'synthtalk/tiny', 'train');
#     print(s.mfcc_statistics([s.mfcc(src[i]['audio']) for i in range(len(src))]))"
MFCC_MEAN = np.asarray([18.7, -6.2, -8.8, 7.6, -21.8, -12.2, -8.6, -19.7, 7.4, -9.4, 1.2, -9.7,
                        -2.4], np.float32)
MFCC_STD = np.asarray([2.1, 16.5, 15.3, 21.4, 19.4, 26.6, 25.8, 27.0, 22.9, 18.2, 16.6, 18.6,
                       17.0], np.float32)
MFCC_CLIP = 6.0


def mfcc_statistics(cepstra: Sequence[np.ndarray], silence: float = -30.0
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Per-coefficient mean and standard deviation over the steps of MFCC arrays [steps, 13] whose
  c0 (log energy) exceeds `silence`."""
  stacked = np.concatenate([np.asarray(c, np.float64) for c in cepstra])
  stacked = stacked[stacked[:, 0] > silence]
  return stacked.mean(axis=0), stacked.std(axis=0)


class _ResidualBlock(nn.Module):
  """Strided conv 3 (over 1 or 2 axes), GroupNorm, ReLU, conv 3, GroupNorm, plus a strided 1x1
  skip; ReLU."""

  features: int
  strides: tuple[int, ...]
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    kernel = (3,) * len(self.strides)
    y = nn.Conv(self.features, kernel, strides=self.strides, padding="SAME", **kw)(x)
    y = nn.relu(layers.group_norm(self.features, **kw)(y))
    y = nn.Conv(self.features, kernel, padding="SAME", **kw)(y)
    y = layers.group_norm(self.features, **kw)(y)
    if x.shape[-1] != self.features or any(s != 1 for s in self.strides):
      x = nn.Conv(self.features, (1,) * len(self.strides), strides=self.strides, name="skip",
                  **kw)(x)
    return nn.relu(x + y)


def _unit(x: jax.Array) -> jax.Array:
  x = x.astype(jnp.float32)
  return x / jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True) + 1e-12)


class _Head(nn.Module):
  """Per-frame features [B, 5, F] -> unit embedding [B, embed_dim]: the five are concatenated in
  order (when in the window the mouth opens is what sync is about), then two dense layers."""

  embed_dim: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, per_frame: jax.Array) -> jax.Array:
    x = per_frame.reshape(per_frame.shape[0], -1)
    x = nn.relu(nn.Dense(2 * self.embed_dim, name="hidden", dtype=self.dtype,
                         param_dtype=self.param_dtype)(x))
    return _unit(nn.Dense(self.embed_dim, name="out", dtype=jnp.float32,
                          param_dtype=self.param_dtype)(x))


class _VideoStream(nn.Module):
  """Mouth windows [B, 5, S, S, 3] in [-1, 1] -> [B, embed_dim]. One CNN reads each frame and its
  difference from the window's mean frame (stem conv3x3, residual blocks halving the size down
  to 8 px or less, widths doubling up to 8x), the mean and max over the image and a dense layer
  give per-frame features, `_Head` joins the five."""

  width: int
  frame_dim: int
  embed_dim: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, frames: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    b, t, h, w, c = frames.shape
    # Each frame with its difference from the window's mean frame, where what moves stands out.
    x = jnp.concatenate([frames, frames - jnp.mean(frames, axis=1, keepdims=True)], axis=-1)
    x = x.reshape(b * t, h, w, 2 * c)
    x = nn.Conv(self.width, (3, 3), padding="SAME", name="stem", **kw)(x)
    x = nn.relu(layers.group_norm(self.width, **kw)(x))
    stage = 0
    while max(x.shape[1:3]) > 8:
      x = _ResidualBlock(self.width * 2 ** min(stage, 3), (2, 2), **kw)(x)
      stage += 1
    x = jnp.concatenate([jnp.mean(x, axis=(1, 2)), jnp.max(x, axis=(1, 2))], axis=-1)
    x = nn.relu(nn.Dense(self.frame_dim, name="frame", **kw)(x))
    return _Head(self.embed_dim, name="head", **kw)(x.reshape(b, t, -1))


class _AudioStream(nn.Module):
  """MFCC windows [B, 13, 20] (standardised) -> [B, embed_dim]. Convolutions along time with the
  cepstra as channels (20 steps -> 10 -> 5), a dense layer per 40 ms step (one per video frame),
  and `_Head` joins the five."""

  width: int
  frame_dim: int
  embed_dim: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, mfcc_windows: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = mfcc_windows.transpose(0, 2, 1)  # [B, 20 steps, 13 cepstra]
    x = nn.Conv(self.width, (3,), padding="SAME", name="stem", **kw)(x)
    x = nn.relu(layers.group_norm(self.width, **kw)(x))
    x = _ResidualBlock(2 * self.width, (2,), **kw)(x)
    x = _ResidualBlock(4 * self.width, (2,), **kw)(x)
    x = nn.relu(nn.Dense(self.frame_dim, name="frame", **kw)(x))
    return _Head(self.embed_dim, name="head", **kw)(x)


class SyncExpert(nn.Module):
  """A SyncNet-style expert: unit embeddings of a mouth window's 5 frames and of their MFCCs.

  `embed_video`: RGB frames [B, 5, S, S, 3], 0..255 (uint8 or float) -> [B, embed_dim].
  `embed_audio`: MFCC windows [B, 13, 20] (`audio_windows`) -> [B, embed_dim]. `__call__`
  returns both and the contrastive logit scale (a learned temperature: exp of a parameter,
  capped at 100).

  Both streams first describe each 40 ms on its own (one frame; four MFCC steps) and only then
  join the five in order, so that the two embeddings are built alike out of time-aligned parts.
  A frame is read together with its difference from the window's mean frame (what moves), and
  its features are pooled over the image (mean and max): where the mouth sits in the window
  changes with the head's pose, how open it is does not.

  Attributes:
    width: channels of the first stage of each stream; stages double it.
    frame_dim: size of the per-frame features.
    embed_dim: embedding size.
  """

  width: int = 16
  frame_dim: int = 64
  embed_dim: int = 128
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def setup(self):
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    self.video_stream = _VideoStream(self.width, self.frame_dim, self.embed_dim, **kw)
    self.audio_stream = _AudioStream(self.width, self.frame_dim, self.embed_dim, **kw)
    self.log_scale = self.param("log_scale", nn.initializers.constant(math.log(1 / 0.07)), ())

  def embed_video(self, frames: jax.Array) -> jax.Array:
    x = frames.astype(jnp.float32) / 127.5 - 1.0
    return self.video_stream(x.astype(self.dtype))

  def embed_audio(self, mfcc_windows: jax.Array) -> jax.Array:
    x = (mfcc_windows.astype(jnp.float32) - MFCC_MEAN[:, None]) / MFCC_STD[:, None]
    x = jnp.clip(x, -MFCC_CLIP, MFCC_CLIP)
    return self.audio_stream(x.astype(self.dtype))

  def logit_scale(self) -> jax.Array:
    return jnp.minimum(jnp.exp(self.log_scale), 100.0)

  def __call__(self, frames: jax.Array, mfcc_windows: jax.Array
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    return self.embed_video(frames), self.embed_audio(mfcc_windows), self.logit_scale()


def own_clip_cosines(video: jax.Array, audio: jax.Array, valid: jax.Array) -> jax.Array:
  """Cosine similarities [B, K] of each video window with its own clip's audio windows (invalid
  ones -2, below any cosine)."""
  return jnp.where(valid, jnp.einsum("bd,bkd->bk", video, audio), -2.0)
