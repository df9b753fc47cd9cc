"""SynthTalk generation speed and size on disk: prints a table.

  .venv/bin/python benchmarks/synthtalk_generation.py [--resolutions 128 512] [--clips 16] [--workers 2]

For each resolution it builds a custom SynthTalk config of `--clips` training clips into a temporary
folder with `--workers` processes (the real tfds build, ArrayRecord files included), and reports clips
per second, seconds of video made per second of wall time, and megabytes on disk per minute of video.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

from vasa_jax.data import schema
from vasa_jax.data.synthtalk import builder


def measure(resolution: int, clips: int, workers: int) -> dict:
  with tempfile.TemporaryDirectory() as data_dir:
    config = builder.custom_config(resolution, clips, 0, 0, seed=123)
    data_builder = builder.builder(config=config, data_dir=data_dir, workers=workers)
    start = time.perf_counter()
    data_builder.download_and_prepare(file_format="array_record")
    seconds = time.perf_counter() - start
    source = data_builder.as_data_source("train")
    frames = sum(int(source[i]["meta"]["num_frames"]) for i in range(len(source)))
    size = sum(p.stat().st_size for p in pathlib.Path(data_dir).rglob("*.array_record*"))
  minutes = frames / schema.FPS / 60
  return {"resolution": resolution, "clips": clips, "workers": workers, "seconds": seconds,
          "clips_per_sec": clips / seconds, "video_sec_per_sec": minutes * 60 / seconds,
          "mb_per_minute": size / 2**20 / minutes}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--resolutions", type=int, nargs="+", default=[128, 512])
  parser.add_argument("--clips", type=int, default=16)
  parser.add_argument("--workers", type=int, default=2)
  args = parser.parse_args()
  rows = [measure(r, args.clips, args.workers) for r in args.resolutions]
  print(f"\n{'resolution':>10} {'clips':>6} {'workers':>7} {'build s':>8} {'clips/s':>8} "
        f"{'video s/s':>9} {'MB/min':>8}")
  for row in rows:
    print(f"{row['resolution']:>10} {row['clips']:>6} {row['workers']:>7} {row['seconds']:>8.1f} "
          f"{row['clips_per_sec']:>8.2f} {row['video_sec_per_sec']:>9.2f} "
          f"{row['mb_per_minute']:>8.1f}")


if __name__ == "__main__":
  main()
