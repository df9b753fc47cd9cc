"""`vasa synthtalk build` (the tfds dataset) and `vasa synthtalk preview` (a contact sheet and videos)."""

from __future__ import annotations

import argparse
import logging
import pathlib
import time

import numpy as np

from vasa_jax.errors import UserError


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "synthtalk", help="build or preview SynthTalk, the procedural talking-face dataset",
      description="SynthTalk: procedural talking faces with real synthesized speech and exact "
      "per-frame ground truth (data/README.md).")
  commands = parser.add_subparsers(dest="synthtalk_command", metavar="COMMAND", required=True)

  build = commands.add_parser("build", help="build a config into a tfds data folder (ArrayRecord)")
  build.add_argument("--config", default="tiny",
                     help="tiny (64px), small (128px), base (256px), large (512px), or custom "
                     "with --resolution and --clips")
  build.add_argument("--data_dir", required=True, help="tfds data folder to write into")
  build.add_argument("--workers", type=int, default=None,
                     help="clip-making processes (default: all cores)")
  build.add_argument("--resolution", type=int, default=None, help="custom config: pixels")
  build.add_argument("--clips", type=int, nargs=3, default=None,
                     metavar=("TRAIN", "VALIDATION", "TEST"), help="custom config: clips per split")
  build.add_argument("--seed", type=int, default=0, help="custom config: seed")
  build.set_defaults(handler=_build)

  preview = commands.add_parser(
      "preview", help="make a clip of each of a few identities: a contact sheet (PNG) and mp4s "
      "with audio")
  preview.add_argument("--out", required=True, help="output folder")
  preview.add_argument("--split", default="test", choices=("train", "validation", "test"))
  preview.add_argument("--clips", type=int, default=4)
  preview.add_argument("--resolution", type=int, default=128)
  preview.add_argument("--seed", type=int, default=0)
  preview.set_defaults(handler=_preview)


def _build(args: argparse.Namespace) -> int:
  from vasa_jax.data.synthtalk import builder as synthtalk

  if args.resolution or args.clips:
    if not (args.resolution and args.clips):
      raise UserError("a custom SynthTalk config needs both --resolution and --clips")
    config = synthtalk.custom_config(args.resolution, *args.clips, seed=args.seed)
  elif args.config in synthtalk.CONFIGS:
    config = synthtalk.CONFIGS[args.config]
  else:
    raise UserError(f"unknown SynthTalk config {args.config!r}; use one of "
                    f"{sorted(synthtalk.CONFIGS)} or --resolution with --clips")
  _check_resolution(config.resolution)
  data_builder = synthtalk.builder(config=config, data_dir=args.data_dir, workers=args.workers)
  start = time.perf_counter()
  data_builder.download_and_prepare(file_format="array_record")
  splits = {name: info.num_examples for name, info in data_builder.info.splits.items()}
  logging.info("SynthTalk %s (%dx%d) in %s: %s clips, built in %.1f s.", config.name,
               config.resolution, config.resolution, data_builder.data_dir, splits,
               time.perf_counter() - start)
  print(f"dataset: synthtalk/{config.name}  data_dir: {args.data_dir}  splits: {splits}")
  return 0


def _check_resolution(resolution: int) -> None:
  if not 64 <= resolution <= 512 or resolution % 2:
    raise UserError(f"SynthTalk resolution {resolution} must be even and within 64..512")


def _preview(args: argparse.Namespace) -> int:
  from vasa_jax.data import video_io
  from vasa_jax.data.synthtalk import clip as clip_lib

  _check_resolution(args.resolution)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  spec = clip_lib.ClipSpec(resolution=args.resolution)
  rows = []
  for number in range(args.clips):
    # One clip of each of the first identities.
    example = clip_lib.generate_clip(args.seed, args.split, number * spec.clips_per_identity, spec)
    frames = clip_lib.decode_frames(example["frames"])
    meta = example["meta"]
    path = video_io.write_video(out / f"{meta['clip_id']}.mp4", frames, clip_lib.FPS,
                                example["audio"], meta["sample_rate"],
                                metadata={"title": meta["text"]})
    columns = np.linspace(0, len(frames) - 1, 8).round().astype(int)
    rows.append(frames[columns].astype(np.float32) / 255.0)
    print(f"{path}  {meta['identity']}  {len(frames) / clip_lib.FPS:.2f} s  \"{meta['text']}\"")
  sheet = video_io.write_image_grid(rows, out / "contact_sheet.png")
  print(f"{sheet}  (rows: clips; columns: 8 frames evenly spaced over each clip)")
  return 0
