"""Peak memory of video generation against the length of the audio; prints a table.

  .venv/bin/python benchmarks/generation_memory.py [--seconds 60 600] [--resolution 384]

Each length runs in its own process: speech of that length is written to a wav file, and
`TalkingFaceGenerator.generate_video` makes a video of it (tiny models with random weights, one
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


def child(seconds: float, path: str, resolution: int) -> None:
  import av
  from skimage import data

  from vasa_jax.inference import bench
  from vasa_jax.inference import talking_face as tf

  t = np.arange(16000) / 16000
  second = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 * 32767)
  with av.open(path + ".wav", "w") as container:
    stream = container.add_stream("pcm_s16le", rate=16000, layout="mono")
    for _ in range(int(seconds)):
      frame = av.AudioFrame.from_ndarray(second.astype(np.int16)[None], format="s16",
                                         layout="mono")
      frame.sample_rate = 16000
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  generator, _ = bench.random_generator("tiny", batch_size=25, steps=1)
  subject = generator.prepare(data.astronaut())
  start = time.perf_counter()
  summary = generator.generate_video(subject, path + ".wav", path + ".mp4", progress=False,
                                     output=tf.Output(paste_back=True, resolution=resolution))
  print(json.dumps({"seconds": seconds, "frames": summary["frames"],
                    "video_seconds": summary["video_seconds"],
                    "generate_seconds": time.perf_counter() - start,
                    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(seconds: float, resolution: int = 384) -> dict:
  with tempfile.TemporaryDirectory() as tmp:
    out = subprocess.run([sys.executable, __file__, "--child", str(seconds), str(
        pathlib.Path(tmp) / "speech"), "--resolution", str(resolution)], capture_output=True,
        text=True)
  if out.returncode:
    raise RuntimeError(out.stderr[-3000:])
  return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--seconds", type=float, nargs="+", default=[60, 600])
  parser.add_argument("--resolution", type=int, default=384)
  parser.add_argument("--json", action="store_true", help="print the rows as JSON lines only")
  parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    child(float(args.child[0]), args.child[1], args.resolution)
    return 0
  rows = [measure(s, args.resolution) for s in args.seconds]
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
