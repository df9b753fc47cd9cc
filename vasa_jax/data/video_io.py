"""Video and audio files with PyAV: the one video writer (H.264/AAC mp4, marked as AI-generated), the
one reader (constant 25 fps frames, 16 kHz mono audio), and the one image-grid writer.

A file appears under its final name only when it is complete: it is written next to it under a
temporary name and renamed at the end, so an interrupted write never leaves a truncated video behind.
"""

from __future__ import annotations

import dataclasses
import fractions
import os
import pathlib
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from vasa_jax import atomic
from vasa_jax.rates import FPS, SAMPLE_RATE

# Written into the container's metadata of every video the project makes.
AI_GENERATED_METADATA = {
    "comment": "AI-generated video (synthetic face animation made with vasa_jax)",
    "description": "AI-generated",
}


class VideoWriter:
  """An H.264 (+ AAC) mp4 written incrementally: frames and audio are added as they are made.

  Memory stays bounded whatever the length: frames and audio chunks are encoded and muxed as they
  come. The file is written under a temporary name next to `path` and renamed on `close()`; if an
  exception leaves the `with` block (or `abort()` is called) the partial file is removed, so `path`
  only ever holds a complete video (and an earlier file there stays until the new one is done).

    with VideoWriter("out.mp4", fps=25, audio=True) as writer:
      writer.write_audio(samples)      # float32 mono chunks in [-1, 1] (or int16), any sizes
      writer.write_frames(frames)      # uint8 [H, W, 3] or [N, H, W, 3] RGB, even sizes

  Args:
    path: output file (.mp4).
    fps: frames per second.
    audio: whether the file has a mono AAC track (fed by `write_audio`).
    sample_rate: of the audio, in Hz.
    metadata: extra container metadata; the AI-generated mark is always added.
    crf: x264 quality (lower is better; 18 is visually lossless).
  """

  def __init__(self, path: str | os.PathLike, fps: int, audio: bool = False,
               sample_rate: int = SAMPLE_RATE, metadata: Mapping[str, str] | None = None,
               crf: int = 18):
    import av

    self.path = pathlib.Path(path)
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
    self.fps, self.sample_rate, self.crf = int(fps), int(sample_rate), int(crf)
    self.num_frames = 0
    self.num_samples = 0
    self._container = av.open(str(self._tmp), mode="w")
    for key, value in {**(metadata or {}), **AI_GENERATED_METADATA}.items():
      self._container.metadata[key] = value
    self._video = None
    self._audio = None
    if audio:
      self._audio = self._container.add_stream("aac", rate=self.sample_rate)
      self._audio.layout = "mono"
    self._pending_audio: list[np.ndarray] = []
    self._open = True

  def __enter__(self) -> VideoWriter:
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    if exc_type is None:
      self.close()
    else:
      self.abort()

  def write_frames(self, frames: np.ndarray | Iterable[np.ndarray]) -> None:
    """Adds uint8 RGB frames: one [H, W, 3], a batch [N, H, W, 3] or an iterable of frames."""
    import av

    if isinstance(frames, np.ndarray) and frames.ndim == 3:
      frames = [frames]
    for frame in frames:
      frame = np.ascontiguousarray(frame, dtype=np.uint8)
      if self._video is None:
        height, width = frame.shape[:2]
        if frame.ndim != 3 or frame.shape[2] != 3 or height % 2 or width % 2:
          raise ValueError(f"frames must be RGB [H, W, 3] with even H and W; got {frame.shape}")
        self._video = self._container.add_stream("libx264", rate=self.fps)
        self._video.height, self._video.width = height, width
        self._video.pix_fmt = "yuv420p"
        self._video.options = {"crf": str(self.crf)}
        for samples in self._pending_audio:
          self._encode_audio(samples)
        self._pending_audio = []
      for packet in self._video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        self._container.mux(packet)
      self.num_frames += 1

  def write_audio(self, samples: np.ndarray) -> None:
    """Adds a chunk of mono audio (float in [-1, 1], or int16) after the previous ones.

    Audio given before the first frame waits for it (the container's streams are fixed when the
    first packet is written, and the video stream takes its size from the first frame)."""
    if self._audio is None:
      raise ValueError(f"{self.path} was opened without an audio track (audio=False)")
    samples = np.asarray(samples).reshape(-1)
    if not samples.size:
      return
    if self._video is None:
      self._pending_audio.append(samples)
      return
    self._encode_audio(samples)

  def _encode_audio(self, samples: np.ndarray) -> None:
    import av

    if samples.dtype != np.int16:
      samples = (np.clip(samples, -1.0, 1.0) * 32767).round().astype(np.int16)
    frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
    frame.sample_rate = self.sample_rate
    frame.pts = self.num_samples
    frame.time_base = fractions.Fraction(1, self.sample_rate)
    for packet in self._audio.encode(frame):
      self._container.mux(packet)
    self.num_samples += samples.size

  def close(self) -> pathlib.Path:
    """Flushes the encoders and moves the finished file to its final name."""
    if not self._open:
      return self.path
    try:
      if self._video is None:
        raise ValueError(f"no frames to write to {self.path}")
      for packet in self._video.encode():
        self._container.mux(packet)
      if self._audio is not None:
        for packet in self._audio.encode():
          self._container.mux(packet)
    except BaseException:
      self.abort()
      raise
    self._container.close()
    self._open = False
    os.replace(self._tmp, self.path)
    return self.path

  def abort(self) -> None:
    """Stops writing and removes the partial file; `path` is left as it was."""
    if self._open:
      self._open = False
      try:
        self._container.close()
      except Exception:  # Closing a half-written container can fail; the file goes anyway.
        pass
    self._tmp.unlink(missing_ok=True)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: int,
                audio: np.ndarray | None = None, sample_rate: int = SAMPLE_RATE,
                metadata: Mapping[str, str] | None = None, crf: int = 18) -> pathlib.Path:
  """Writes frames (uint8 [height, width, 3] RGB, even sizes) and optional mono audio to `path`.

  Args:
    path: output file (.mp4).
    frames: an iterable of frames, consumed one at a time (a generator keeps memory bounded).
    fps: frames per second.
    audio: mono samples [num_samples], float in [-1, 1] or int16.
    sample_rate: of `audio`, in Hz.
    metadata: extra container metadata; the AI-generated mark is always added.
    crf: x264 quality (lower is better; 18 is visually lossless).

  Returns:
    The path written.
  """
  with VideoWriter(path, fps, audio=audio is not None, sample_rate=sample_rate,
                   metadata=metadata, crf=crf) as writer:
    if audio is not None:
      writer.write_audio(audio)
    writer.write_frames(frames)
  return writer.path


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int = SAMPLE_RATE
              ) -> pathlib.Path:
  """Writes 16-bit PCM audio (float in [-1, 1] or int16; [N] mono or [N, channels]) atomically."""
  import av

  path = pathlib.Path(path)
  samples = np.asarray(samples)
  if samples.dtype != np.int16:
    samples = (np.clip(samples, -1.0, 1.0) * 32767).round().astype(np.int16)
  samples = samples.reshape(len(samples), -1)
  layout = {1: "mono", 2: "stereo"}[samples.shape[1]]
  tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
  with av.open(str(tmp), "w", format="wav") as container:
    stream = container.add_stream("pcm_s16le", rate=sample_rate, layout=layout)
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=layout)
    frame.sample_rate = sample_rate
    for packet in stream.encode(frame):
      container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  os.replace(tmp, path)
  return path


def write_image_grid(rows: list[np.ndarray], path: str | os.PathLike,
                     min_size: int = 256) -> pathlib.Path:
  """Writes rows of [n, h, w, 3] float images in [0, 1] as one PNG, atomically; images smaller
  than `min_size` are enlarged by a whole factor (nearest neighbour) towards it."""
  import cv2

  path = pathlib.Path(path)
  grid = np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)
  grid = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)
  scale = max(1, min_size // rows[0].shape[1])
  grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
  with atomic.writing(path) as f:
    f.write(cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))[1].tobytes())
  return path


# ----------------------------------------------------------------------------------------------------
# Reading.


class MediaError(Exception):
  """A video or audio file that cannot be used; `reason` is a short label for summaries."""

  def __init__(self, path, reason: str, detail: str = ""):
    self.path, self.reason = str(path), reason
    super().__init__(f"{path}: {reason}{': ' + detail if detail else ''}")


@dataclasses.dataclass(frozen=True)
class MediaInfo:
  path: str
  width: int
  height: int
  fps: float
  duration: float  # seconds of video
  has_audio: bool


def probe(path: str | os.PathLike) -> MediaInfo:
  """Reads a media file's header; raises MediaError if it holds no decodable video."""
  import av

  path = pathlib.Path(path)
  if not path.is_file():
    raise MediaError(path, "missing file")
  if path.stat().st_size == 0:
    raise MediaError(path, "zero-length file")
  try:
    with av.open(str(path)) as container:
      if not container.streams.video:
        raise MediaError(path, "no video stream")
      stream = container.streams.video[0]
      fps = float(stream.average_rate or stream.guessed_rate or 0)
      if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
      elif container.duration is not None:
        duration = container.duration / 1e6
      else:
        duration = 0.0
      return MediaInfo(str(path), stream.codec_context.width, stream.codec_context.height, fps,
                       duration, bool(container.streams.audio))
  except MediaError:
    raise
  except Exception as e:  # PyAV raises many types for damaged files; all mean the same here.
    raise MediaError(path, "unreadable", f"{type(e).__name__}: {e}") from e


def iter_frames(path: str | os.PathLike, fps: int = FPS) -> Iterator[np.ndarray]:
  """Decodes a video at a constant `fps`: frame i is the source frame shown at time i / fps.

  Yields uint8 RGB [height, width, 3]. Time 0 is the video stream's first frame. Source frames are
  repeated or dropped as the rate conversion needs; the last one is held for its own duration.
  """
  import av

  try:
    with av.open(str(path)) as container:
      stream = container.streams.video[0]
      stream.thread_type = "AUTO"
      source_rate = float(stream.average_rate or stream.guessed_rate or fps)
      start, previous, index = None, None, 0
      for frame in container.decode(stream):
        time = frame.time
        if time is None:
          continue
        start = time if start is None else start
        t = time - start
        while previous is not None and index / fps < t - 1e-6:
          yield previous
          index += 1
        previous = frame.to_ndarray(format="rgb24")
      if previous is not None:
        end = (t + 1.0 / source_rate) if start is not None else 0.0
        while index / fps < end - 1e-6:
          yield previous
          index += 1
  except Exception as e:
    if isinstance(e, MediaError):
      raise
    raise MediaError(path, "unreadable", f"{type(e).__name__}: {e}") from e


def video_start_time(path: str | os.PathLike) -> float:
  """Presentation time of the first video frame, seconds (audio is aligned to it)."""
  import av

  with av.open(str(path)) as container:
    for frame in container.decode(container.streams.video[0]):
      if frame.time is not None:
        return float(frame.time)
  return 0.0


def iter_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE,
               chunk_samples: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
  """Decodes the first audio stream as mono float32 chunks of `chunk_samples` (the last one shorter),
  at `sample_rate`: `read_audio` in bounded memory, for audio of any length.

  Raises MediaError if there is no audio stream or it cannot be decoded.
  """
  import av

  pending, count = [], 0
  try:
    with av.open(str(path)) as container:
      if not container.streams.audio:
        raise MediaError(path, "no audio track")
      resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)

      def resampled():
        for frame in container.decode(container.streams.audio[0]):
          yield from resampler.resample(frame)
        yield from resampler.resample(None)

      for out in resampled():
        samples = out.to_ndarray().reshape(-1).astype(np.float32)
        pending.append(samples)
        count += samples.size
        while count >= chunk_samples:
          joined = np.concatenate(pending)
          yield joined[:chunk_samples]
          pending, count = [joined[chunk_samples:]], count - chunk_samples
  except MediaError:
    raise
  except Exception as e:
    raise MediaError(path, "unreadable audio", f"{type(e).__name__}: {e}") from e
  if count:
    yield np.concatenate(pending)


def read_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE,
               start_time: float | None = None) -> np.ndarray:
  """Decodes the first audio stream to mono float32 [num_samples] at `sample_rate`.

  Any format and layout PyAV reads (wav, mp3, m4a, flac, ogg, the audio of a video) is converted.
  `start_time` (seconds, in the file's clock) sets sample 0; by default the audio stream's own start.
  Raises MediaError if there is no audio stream or it cannot be decoded.
  """
  import av

  try:
    with av.open(str(path)) as container:
      if not container.streams.audio:
        raise MediaError(path, "no audio track")
      stream = container.streams.audio[0]
      resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
      chunks, first_time = [], None
      for frame in container.decode(stream):
        if first_time is None and frame.time is not None:
          first_time = float(frame.time)
        for out in resampler.resample(frame):
          chunks.append(out.to_ndarray().reshape(-1))
      for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
  except MediaError:
    raise
  except Exception as e:
    raise MediaError(path, "unreadable audio", f"{type(e).__name__}: {e}") from e
  audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
  if start_time is not None and first_time is not None:
    offset = int(round((first_time - start_time) * sample_rate))
    audio = np.concatenate([np.zeros(offset, np.float32), audio]) if offset > 0 else audio[-offset:]
  return audio
