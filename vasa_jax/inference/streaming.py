"""A speech file streamed through a generator `Session` as if it came from a microphone, in real
time, with the latencies measured (`vasa generate --stream`): the live use of the method.

  summary = stream_video(generator, subject, "speech.wav", "out.mp4", hop=5)
  summary["first_frame_latency"], summary["latency_mean"], summary["realtime_factor"]
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from vasa_jax.data import audio as speech_io
from vasa_jax.inference.talking_face import (SAMPLES_PER_FRAME, Controls, Output, Subject,
                                             TalkingFaceGenerator)
from vasa_jax.rates import FPS, SAMPLE_RATE


def stream_video(generator: TalkingFaceGenerator, subject: Subject,
                 audio_path: str | os.PathLike, out_path: str | os.PathLike | None,
                 controls: Controls = Controls(), seed: int = 0, output: Output = Output(),
                 hop: int | None = None, chunk_ms: float = 40.0, realtime: bool = True,
                 hold: str | None = None, on_frames=None) -> dict[str, Any]:
  """Streams a speech file through a `Session` as if it came from a microphone, and measures it.

  The file is cut into chunks of `chunk_ms`; with `realtime`, chunk k is handed over only once
  its audio would have been spoken (k + 1 chunk durations after the start), and chunks that arrived
  while frames were being made are handed over together. Frames go to `out_path` (if given) and to
  `on_frames(frames)` as they leave.

  Returns:
    The measurements: `first_frame_latency` (seconds from the first audio sample's arrival to the
    first frame out), `latency_mean` / `latency_max` (from the arrival of a frame's last audio
    sample to the frame leaving), `frames_per_second` (sustained: frames after the first over the
    time since it), `realtime_factor` (seconds of video made per second of wall time).
  """
  from vasa_jax.data import video_io

  hop = hop or max(1, generator.window // 5)
  info = speech_io.check_speech(audio_path)
  chunk = max(1, int(round(chunk_ms * SAMPLE_RATE / 1000)))
  session = generator.session(subject, controls, seed, hop, output, hold, pipelined=False)
  # Compile everything before the clock starts: one window of silence through a throwaway session.
  warm = generator.session(subject, controls, seed, hop, output)
  warm.push(np.zeros(SAMPLES_PER_FRAME * (hop + 2 * generator.window), np.float32))
  warm.finish()
  writer = (video_io.VideoWriter(out_path, FPS, audio=True, sample_rate=SAMPLE_RATE)
            if out_path else None)
  arrivals = []  # Arrival time of each chunk.
  emitted = []  # (frame count so far, time) after each batch of frames.
  start = time.perf_counter()

  def deliver(frames, now):
    if len(frames):
      if writer is not None:
        writer.write_frames(frames)
      if on_frames is not None:
        on_frames(frames)
      emitted.append((session.num_frames, now))

  try:
    pending = []
    for k, samples in enumerate(speech_io.stream_speech(audio_path, chunk)):
      arrival = start + (k + 1) * chunk / SAMPLE_RATE if realtime else time.perf_counter()
      arrivals.append(arrival)
      pending.append(samples)
      if realtime and time.perf_counter() < arrival:
        time.sleep(max(0.0, arrival - time.perf_counter()))
      if realtime and k + 1 < -(-info.num_samples // chunk) and \
          time.perf_counter() >= start + (k + 2) * chunk / SAMPLE_RATE:
        continue  # Behind real time: the next chunk is already here, take both at once.
      joined = np.concatenate(pending)
      pending = []
      if writer is not None:
        writer.write_audio(joined)
      deliver(session.push(joined), time.perf_counter())
    if pending:
      joined = np.concatenate(pending)
      if writer is not None:
        writer.write_audio(joined)
      deliver(session.push(joined), time.perf_counter())
    deliver(session.finish(), time.perf_counter())
  except BaseException:
    if writer is not None:
      writer.abort()
    raise
  if writer is not None:
    writer.close()
  # Latency of frame i: from the arrival of the chunk holding its last sample to its batch leaving.
  first_sample_arrival = (arrivals[0] - chunk / SAMPLE_RATE) if realtime else start
  latencies, done = [], 0
  for count, when in emitted:
    for i in range(done, count):
      last_sample = min((i + 1) * SAMPLES_PER_FRAME, info.num_samples) - 1
      latencies.append(when - arrivals[min(last_sample // chunk, len(arrivals) - 1)])
    done = count
  first_time, last_time = emitted[0][1], emitted[-1][1]
  after_first = session.num_frames - emitted[0][0]
  return {"frames": session.num_frames, "hop": hop, "chunk_ms": chunk_ms, "realtime": realtime,
          "first_frame_latency": first_time - first_sample_arrival,
          "latency_mean": float(np.mean(latencies)), "latency_max": float(np.max(latencies)),
          "frames_per_second": after_first / (last_time - first_time) if last_time > first_time
          else float("nan"),
          "realtime_factor": session.num_frames / FPS / max(last_time - first_sample_arrival, 1e-9),
          "video": str(out_path) if out_path else None}
