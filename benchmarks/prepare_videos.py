"""Real-video preparation speed: prints a table.

  .venv/bin/python benchmarks/prepare_videos.py [--videos 4] [--seconds 4] [--workers 1 2]

Makes `--videos` test videos of a real photo (scikit-image's astronaut) moving, scaling and turning on a
1280x720 canvas at 25 fps with audio, then runs `vasa prepare` on them at 512x512 output, and reports
source frames prepared per second (both passes: detection and landmarks, then cropping and encoding).
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import cv2
import numpy as np

from vasa_jax.data import prepare, video_io


def make_videos(root: pathlib.Path, count: int, seconds: float) -> int:
  from skimage import data

  photo = data.astronaut()
  frames_per_video = int(seconds * 25)
  for v in range(count):
    frames = []
    for t in range(frames_per_video):
      phase = 2 * np.pi * t / frames_per_video + v
      matrix = cv2.getRotationMatrix2D((256, 256), 10 * np.sin(phase), 1.3 + 0.1 * np.cos(phase))
      matrix[:, 2] += [640 - 256 + 60 * np.sin(phase), 360 - 256 + 20 * np.cos(phase)]
      frames.append(cv2.warpAffine(photo, matrix, (1280, 720), borderValue=(90, 100, 110)))
    audio = (0.2 * np.sin(np.arange(int(seconds * 16000)) / 7)).astype(np.float32)
    video_io.write_video(root / f"speaker{v}" / "clip.mp4", frames, 25, audio, 16000)
  return count * frames_per_video


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--videos", type=int, default=4)
  parser.add_argument("--seconds", type=float, default=4.0)
  parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
  args = parser.parse_args()
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp) / "raw"
    frames = make_videos(root, args.videos, args.seconds)
    for workers in args.workers:
      start = time.perf_counter()
      summary = prepare.run(str(root), f"{tmp}/out{workers}", prepare.PrepareOptions(resolution=512),
                            workers=workers)
      seconds = time.perf_counter() - start
      rows.append((workers, frames, summary["clips_kept"], seconds, frames / seconds))
  print(f"\n{'workers':>7} {'frames':>7} {'clips':>6} {'seconds':>8} {'frames/s':>9}   "
        "(1280x720 source, 512x512 crops)")
  for workers, frames, clips, seconds, rate in rows:
    print(f"{workers:>7} {frames:>7} {clips:>6} {seconds:>8.1f} {rate:>9.1f}")


if __name__ == "__main__":
  main()
