"""Audio features of speech that arrives in chunks, one vector per 25 fps video frame.

`AudioFeatureStream` runs the audio encoder (`vasa_jax.models.audio.features`) on blocks of `block`
frames with `left` frames of audio before and `right` after each block, so memory stays bounded for
any length and features leave as soon as their audio (and `right` frames of lookahead) is in. Before
the first sample and after the last, the audio is zeros, as when a whole clip is encoded.

Log-mel features depend on 200 samples either side of a frame, so one frame of context on each side
(the default) gives exactly the whole-clip features. Wav2Vec2 attends over all its input: its
features depend on how much context it gets (training encoded whole clips), so give it seconds of
`left` context and as much `right` lookahead as the latency allows.
"""

from __future__ import annotations

import jax
import numpy as np

from vasa_jax.models.audio import features

SAMPLES_PER_FRAME = features.SAMPLES_PER_FRAME


def default_context(encoder: features.AudioEncoder) -> tuple[int, int]:
  """(left, right) frames of context: exact for log-mel; 2 s before and 0.4 s after for Wav2Vec2."""
  return (1, 1) if encoder.kind == "mel" else (50, 10)


class AudioFeatureStream:
  """Pushed 16 kHz mono samples in, features of completed frames out.

  Args:
    encoder: the audio encoder stage 2 was trained with.
    block: frames per encoder call (one compiled shape).
    left, right: frames of audio context before and after each block (None: `default_context`).
    apply: a jitted `encoder.apply` to share between streams (optional).
  """

  def __init__(self, encoder: features.AudioEncoder, block: int = 25, left: int | None = None,
               right: int | None = None, apply=None):
    default_left, default_right = default_context(encoder)
    self.encoder = encoder
    self.block = int(block)
    self.left = default_left if left is None else int(left)
    self.right = default_right if right is None else int(right)
    if self.block < 1 or self.left < 0 or self.right < 0:
      raise ValueError(f"block {block} must be positive and context {left}, {right} non-negative")
    self._apply = apply or jax.jit(encoder.apply)
    self._buffer = np.zeros(self.left * SAMPLES_PER_FRAME, np.float32)  # Zeros before sample 0.
    self._buffer_start = -self.left * SAMPLES_PER_FRAME  # Sample index of _buffer[0].
    self.num_samples = 0  # Samples pushed.
    self.num_frames = 0  # Frames whose features have left.
    self._finished = False

  @property
  def latency_frames(self) -> int:
    """Frames of audio that must arrive after a frame before its feature can leave (at most)."""
    return self.block - 1 + self.right

  def _encode(self, first: int, count: int) -> np.ndarray:
    """Features of frames [first, first + count), count <= block, from the buffer (zero-padded)."""
    start = (first - self.left) * SAMPLES_PER_FRAME
    length = (self.left + self.block + self.right) * SAMPLES_PER_FRAME
    offset = start - self._buffer_start
    segment = np.zeros(length, np.float32)
    available = self._buffer[offset:offset + length]
    segment[:available.size] = available
    out = np.asarray(self._apply(self.encoder.params, segment[None]))[0]
    return out[self.left:self.left + count]

  def _trim(self) -> None:
    keep_from = (self.num_frames - self.left) * SAMPLES_PER_FRAME
    cut = keep_from - self._buffer_start
    if cut > 0:
      self._buffer = self._buffer[cut:]
      self._buffer_start = keep_from

  def push(self, samples: np.ndarray) -> np.ndarray:
    """Adds samples; returns the features [n, dim] of the frames completed by them (n may be 0)."""
    if self._finished:
      raise ValueError("push after finish")
    samples = np.asarray(samples, np.float32).reshape(-1)
    self._buffer = np.concatenate([self._buffer, samples])
    self.num_samples += samples.size
    out = []
    # A block can go once its frames and `right` frames after them are complete.
    while (self.num_frames + self.block + self.right) * SAMPLES_PER_FRAME <= self.num_samples:
      out.append(self._encode(self.num_frames, self.block))
      self.num_frames += self.block
      self._trim()
    return self._stack(out)

  def finish(self) -> np.ndarray:
    """The features of the remaining frames, ceil(samples / 640) in all (the last one zero-padded)."""
    self._finished = True
    total = features.num_video_frames(self.num_samples)
    out = []
    while self.num_frames < total:
      count = min(self.block, total - self.num_frames)
      out.append(self._encode(self.num_frames, count))
      self.num_frames += count
      self._trim()
    return self._stack(out)

  def _stack(self, out: list[np.ndarray]) -> np.ndarray:
    if out:
      return np.concatenate(out).astype(np.float32)
    return np.zeros((0, self.encoder.dim), np.float32)
