"""The one video writer (frames and speech to an H.264/AAC mp4 with PyAV, marked as AI-generated),
and the one image-grid writer.

A file appears under its final name only when it is complete: it is written next to it under a
temporary name and renamed at the end, so an interrupted write never leaves a truncated video behind.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Mapping

import numpy as np

# Written into the container's metadata of every video the project makes.
AI_GENERATED_METADATA = {
    "comment": "AI-generated video (synthetic face animation made with vasa_jax)",
    "description": "AI-generated",
}


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: int,
                audio: np.ndarray | None = None, sample_rate: int = 16000,
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
  import av

  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
  container = av.open(str(tmp), mode="w")
  try:
    for key, value in {**(metadata or {}), **AI_GENERATED_METADATA}.items():
      container.metadata[key] = value
    video = None
    audio_stream = None
    if audio is not None:
      audio_stream = container.add_stream("aac", rate=sample_rate)
      audio_stream.layout = "mono"
    for frame in frames:
      frame = np.ascontiguousarray(frame, dtype=np.uint8)
      if video is None:
        video = container.add_stream("libx264", rate=fps)
        video.height, video.width = frame.shape[:2]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf)}
      for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    if video is None:
      raise ValueError(f"no frames to write to {path}")
    for packet in video.encode():
      container.mux(packet)
    if audio_stream is not None:
      samples = np.asarray(audio)
      if samples.dtype != np.int16:
        samples = (np.clip(samples, -1.0, 1.0) * 32767).round().astype(np.int16)
      audio_frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
      audio_frame.sample_rate = sample_rate
      for packet in audio_stream.encode(audio_frame):
        container.mux(packet)
      for packet in audio_stream.encode():
        container.mux(packet)
  except BaseException:
    container.close()
    tmp.unlink(missing_ok=True)
    raise
  container.close()
  os.replace(tmp, path)
  return path


def write_image_grid(rows: list[np.ndarray], path: str | os.PathLike) -> pathlib.Path:
  """Writes rows of [n, h, w, 3] float images in [0, 1] as one PNG, atomically."""
  import cv2

  path = pathlib.Path(path)
  grid = np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)
  grid = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)
  scale = max(1, 256 // rows[0].shape[1])
  grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
  tmp = path.with_name(path.stem + ".tmp.png")
  cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
  tmp.replace(path)
  return path
