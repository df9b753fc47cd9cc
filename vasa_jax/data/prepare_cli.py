"""`vasa prepare`: real videos to clips (`prepare`), then the tfds dataset over them
(`talking_videos`)."""

from __future__ import annotations

import json

from vasa_jax.data import prepare
from vasa_jax.errors import UserError

Options = prepare.PrepareOptions


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "prepare",
      help="turn a folder of talking-face videos (VoxCeleb2, HDTF, any) into the dataset",
      description=(prepare.__doc__.split("\n\n")[0]
                   + " Runs again continue where a stopped run ended."))
  parser.add_argument("--input", required=True, help="folder of videos (searched recursively)")
  parser.add_argument("--output", required=True,
                      help="output folder: videos/, done/, summary.json and the dataset in tfds/")
  parser.add_argument("--resolution", type=int, default=Options.resolution,
                      help="side of the square face crops, pixels")
  parser.add_argument("--workers", type=int, default=1, help="parallel processes")
  parser.add_argument("--audio_dir", default=None,
                      help="folder with the audio as separate files at the same relative paths "
                      "(VoxCeleb2's m4a release)")
  parser.add_argument("--min_face_pixels", type=float, default=Options.min_face_pixels,
                      help="smallest eye-to-mouth distance kept, source pixels")
  parser.add_argument("--min_sharpness", type=float, default=Options.min_sharpness,
                      help="smallest median sharpness (variance of the Laplacian) kept")
  parser.set_defaults(handler=_command)


def _command(args) -> int:
  from vasa_jax.data import talking_videos

  if not 64 <= args.resolution <= 1024 or args.resolution % 2:
    raise UserError(f"--resolution {args.resolution} must be even and within 64..1024")
  options = Options(resolution=args.resolution, min_face_pixels=args.min_face_pixels,
                    min_sharpness=args.min_sharpness)
  summary = prepare.run(args.input, args.output, options, workers=args.workers,
                        audio_dir=args.audio_dir)
  if summary["clips_kept"]:
    builder = talking_videos.build_dataset(args.output)
    summary["splits"] = {k: v.num_examples for k, v in builder.info.splits.items()}
  print(json.dumps(summary, indent=2))
  if not summary["clips_kept"]:
    raise UserError(f"no usable clip in {args.input}; see {args.output}/summary.json for the "
                    "reasons")
  return 0
