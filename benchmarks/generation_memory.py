"""Peak memory of video generation against the length of the audio; prints a table.

  .venv/bin/python benchmarks/generation_memory.py [--seconds 60 600] [--resolution 384]

Each length runs in its own process (or all in one, `--one_process`): speech of that length is
written to a wav file, and `TalkingFaceGenerator.generate_video` makes a video of it (tiny models with random weights, one
sampling step, the face pasted back into a 512x512 photo and written at --resolution). The peak
resident memory of the process (ru_maxrss) is reported; generation streams audio, features, motion
and frames, so it should not grow with the length.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def _write_speech(path: str, seconds: float) -> None:
  import av

  t = np.arange(16000) / 16000
  second = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 * 32767)
  with av.open(path, "w") as container:
    stream = container.add_stream("pcm_s16le", rate=16000, layout="mono")
    for _ in range(int(seconds)):
      frame = av.AudioFrame.from_ndarray(second.astype(np.int16)[None], format="s16",
                                         layout="mono")
      frame.sample_rate = 16000
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def child(lengths: list[float], folder: str, resolution: int) -> None:
  """Makes one video per length, in this process, printing the peak memory after each."""
  from skimage import data

  from vasa_jax.bench import generate as bench
  from vasa_jax.inference import talking_face as tf

  generator, _ = bench.random_generator("tiny", batch_size=25, steps=1)
  subject = generator.prepare(data.astronaut())
  for seconds in lengths:
    path = str(pathlib.Path(folder) / f"speech_{seconds:g}")
    _write_speech(path + ".wav", seconds)
    start = time.perf_counter()
    summary = generator.generate_video(subject, path + ".wav", path + ".mp4", progress=False,
                                       output=tf.Output(paste_back=True, resolution=resolution))
    print(json.dumps({"seconds": seconds, "frames": summary["frames"],
                      "video_seconds": summary["video_seconds"],
                      "generate_seconds": time.perf_counter() - start,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
          flush=True)


def measure(lengths: list[float], resolution: int = 384) -> list[dict]:
  """Rows for `lengths`, made one after another in one child process."""
  with tempfile.TemporaryDirectory() as tmp:
    out = subprocess.run([sys.executable, __file__, "--child", tmp, "--resolution",
                          str(resolution), "--seconds", *map(str, lengths)],
                         capture_output=True, text=True)
  if out.returncode:
    raise RuntimeError(out.stderr[-3000:])
  return [json.loads(line) for line in out.stdout.strip().splitlines()[-len(lengths):]]


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--seconds", type=float, nargs="+", default=[60, 600])
  parser.add_argument("--resolution", type=int, default=384)
  parser.add_argument("--one_process", action="store_true",
                      help="make all the lengths' videos in one process, one after another (each "
                      "row's peak then includes the earlier ones)")
  parser.add_argument("--json", action="store_true", help="print the rows as JSON lines only")
  parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    child(args.seconds, args.child, args.resolution)
    return 0
  if args.one_process:
    rows = measure(args.seconds, args.resolution)
  else:
    rows = [row for s in args.seconds for row in measure([s], args.resolution)]
  if args.json:
    for row in rows:
      print(json.dumps(row))
    return 0
  print("| audio (s) | frames | generation (s) | peak memory (MB) |")
  print("|---|---|---|---|")
  for row in rows:
    print(f"| {row['seconds']:.0f} | {row['frames']} | {row['generate_seconds']:.0f} | "
          f"{row['peak_mb']:.0f} |")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
