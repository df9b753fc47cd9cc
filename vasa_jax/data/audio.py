"""Speech input for every stage: any file PyAV reads, as 16 kHz mono float32, with clear errors.

`load_speech` reads a whole file; `check_speech` and `stream_speech` read one of any length (an
hour of speech) in bounded memory: one pass checks it, the next delivers it in chunks.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import numpy as np

from vasa_jax.data import video_io
from vasa_jax.errors import UserError
from vasa_jax.rates import SAMPLE_RATE

FORMATS = "wav, mp3, m4a, flac, ogg, or a video with sound"


def load_speech(path: str | os.PathLike, min_seconds: float = 0.2,
                silence_level: float = 1e-3) -> np.ndarray:
  """Reads speech from `path`: stereo is mixed to mono and any rate resampled to 16 kHz.

  Returns:
    float32 [num_samples] in [-1, 1].

  Raises:
    UserError: a missing, empty, corrupt, silent or too short file, naming the file and the fix.
  """
  if not os.path.isfile(path):
    raise UserError(f"audio file not found: {path}")
  try:
    audio = video_io.read_audio(path, SAMPLE_RATE)
  except video_io.MediaError as e:
    raise UserError(f"cannot use the audio of {path}: {e.reason}; give speech as {FORMATS}") from e
  if audio.size == 0:
    raise UserError(f"{path} holds no audio samples; give speech as {FORMATS}")
  if not np.isfinite(audio).all():
    raise UserError(f"{path} decodes to invalid samples (NaN or infinity): the file is corrupt")
  seconds = audio.size / SAMPLE_RATE
  if seconds < min_seconds:
    raise UserError(f"{path} lasts {seconds:.3f} s; give at least {min_seconds} s of speech")
  if np.abs(audio).max() < silence_level:
    raise UserError(f"{path} is silent (peak {np.abs(audio).max():.2g}); give a recording with "
                    "speech in it")
  return np.clip(audio, -1.0, 1.0).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SpeechInfo:
  """What one pass over a speech file found: its length at 16 kHz and its peak level."""

  path: str
  num_samples: int
  peak: float

  @property
  def seconds(self) -> float:
    return self.num_samples / SAMPLE_RATE


def check_speech(path: str | os.PathLike, min_seconds: float = 0.2, silence_level: float = 1e-3,
                 chunk_samples: int = 10 * SAMPLE_RATE) -> SpeechInfo:
  """`load_speech`'s checks in one decoding pass of bounded memory: returns the file's length.

  Raises:
    UserError: as `load_speech`.
  """
  if not os.path.isfile(path):
    raise UserError(f"audio file not found: {path}")
  num_samples, peak = 0, 0.0
  try:
    for chunk in video_io.iter_audio(path, SAMPLE_RATE, chunk_samples):
      if not np.isfinite(chunk).all():
        raise UserError(f"{path} decodes to invalid samples (NaN or infinity): the file is corrupt")
      num_samples += chunk.size
      peak = max(peak, float(np.abs(chunk).max()))
  except video_io.MediaError as e:
    raise UserError(f"cannot use the audio of {path}: {e.reason}; give speech as {FORMATS}") from e
  if num_samples == 0:
    raise UserError(f"{path} holds no audio samples; give speech as {FORMATS}")
  seconds = num_samples / SAMPLE_RATE
  if seconds < min_seconds:
    raise UserError(f"{path} lasts {seconds:.3f} s; give at least {min_seconds} s of speech")
  if peak < silence_level:
    raise UserError(f"{path} is silent (peak {peak:.2g}); give a recording with speech in it")
  return SpeechInfo(str(path), num_samples, peak)


def stream_speech(path: str | os.PathLike, chunk_samples: int = SAMPLE_RATE
                  ) -> Iterator[np.ndarray]:
  """The speech of `path` as float32 16 kHz mono chunks of `chunk_samples` (the last shorter), in
  [-1, 1]. Check the file with `check_speech` first; this only converts."""
  try:
    for chunk in video_io.iter_audio(path, SAMPLE_RATE, chunk_samples):
      yield np.clip(chunk, -1.0, 1.0)
  except video_io.MediaError as e:
    raise UserError(f"cannot use the audio of {path}: {e.reason}; give speech as {FORMATS}") from e
