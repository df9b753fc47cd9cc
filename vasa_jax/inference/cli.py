"""`vasa generate` (photo + speech to video, offline or streamed) and `vasa edit` (a photo driven by
a video's motion)."""

from __future__ import annotations

import math
import os
import pathlib

from vasa_jax.errors import UserError


def register(subparsers) -> None:
  generate = subparsers.add_parser(
      "generate", help="one face photo and a speech file into a talking-face video",
      description="Animates the face of a photo with speech: stage 2 generates head and face motion "
      "from the audio, stage 1 renders the photo's face with it. The video (H.264 + AAC, marked as "
      "AI-generated in its metadata) appears at --out when complete. With --stream the audio is fed "
      "in chunks as from a microphone and the latency and frame rate are measured.")
  generate.add_argument("--image", required=True, help="the face photo (any size, format, mode)")
  generate.add_argument("--audio", required=True,
                        help="speech: wav, mp3, m4a, flac, ogg, or a video with sound; any length")
  generate.add_argument("--checkpoint", required=True, metavar="WORKDIR",
                        help="a stage-2 (motion) training run; it names the stage-1 run it used")
  generate.add_argument("--out", required=True, help="the output video (.mp4)")
  _add_model_arguments(generate)
  group = generate.add_argument_group("controls")
  group.add_argument("--gaze", default=None, metavar="THETA,PHI",
                     help="gaze direction in degrees (theta > 0: towards the viewer's right; phi > "
                     "0: up); default: the model's choice")
  group.add_argument("--distance", type=float, default=None,
                     help="head-to-camera distance, 1 = the training data's framing")
  group.add_argument("--emotion", default=None,
                     help="neutral, happy, angry, surprised (or 0-3); default: the model's choice")
  group.add_argument("--hold", choices=("pose", "expression"), default=None,
                     help="keep the photo's head pose (only the face moves) or its expression "
                     "(only the head moves)")
  group = generate.add_argument_group("sampling")
  group.add_argument("--guidance", default=None, metavar="NAME=SCALE[,...]",
                     help="classifier-free guidance scales, e.g. audio=0.5,gaze=1.0 (default: the "
                     "run's config.sampling.guidance)")
  group.add_argument("--steps", type=int, default=None, help="sampling steps (default: the run's)")
  group.add_argument("--sampler", choices=("ddim", "ddpm"), default=None)
  group.add_argument("--eta", type=float, default=None, help="DDIM eta (0: deterministic)")
  group.add_argument("--seed", type=int, default=0)
  group = generate.add_argument_group("streaming")
  group.add_argument("--stream", action="store_true",
                     help="feed the audio in chunks at real-time pace and print the first-frame "
                     "latency and sustained frame rate")
  group.add_argument("--hop", type=int, default=None,
                     help="frames per streaming step (default: a fifth of the motion window)")
  group.add_argument("--chunk_ms", type=float, default=40.0, help="audio chunk length when streaming")
  group.add_argument("--no_realtime", action="store_true",
                     help="stream as fast as possible instead of at the audio's pace")
  generate.add_argument("--report", default=None, help="also write the summary to this JSON file")
  generate.set_defaults(handler=_generate)

  edit = subparsers.add_parser(
      "edit", help="drive a face photo with the motion of a video (all of it, or only the "
      "expression or only the head pose)",
      description="Stage 1's motion encoder reads the head pose and facial dynamics of every frame "
      "of a driving video; the photo's face is rendered with them. --transfer expression keeps the "
      "photo's head pose and takes the video's expression; --transfer pose the reverse.")
  edit.add_argument("--image", required=True, help="the face photo")
  edit.add_argument("--video", required=True, help="the driving video (one visible face)")
  edit.add_argument("--checkpoint", required=True, metavar="WORKDIR",
                    help="a stage-1 (face_latent) run, or a stage-2 run (its stage-1 run is used)")
  edit.add_argument("--out", required=True, help="the output video (.mp4)")
  edit.add_argument("--transfer", choices=("all", "expression", "pose"), default="all")
  edit.add_argument("--step", type=int, default=None, help="stage-1 checkpoint step")
  edit.add_argument("--face_index", type=int, default=None,
                    help="which face of the photo, numbered left to right from 0")
  edit.add_argument("--resolution", type=int, default=None)
  edit.add_argument("--paste_back", action="store_true")
  edit.add_argument("--batch_size", type=int, default=8)
  edit.set_defaults(handler=_edit)


def _add_model_arguments(parser) -> None:
  parser.add_argument("--step", type=int, default=None, help="stage-2 checkpoint step (default: "
                      "latest)")
  parser.add_argument("--stage1", default=None, metavar="WORKDIR",
                      help="the stage-1 run, if it moved since stage 2 was trained")
  parser.add_argument("--face_index", type=int, default=None,
                      help="which face of the photo, numbered left to right from 0 (needed when "
                      "it shows several)")
  parser.add_argument("--resolution", type=int, default=None,
                      help="output size: the square's side (default: the model's), or with "
                      "--paste_back the photo's longer side (default: its own)")
  parser.add_argument("--paste_back", action="store_true",
                      help="paste the generated face back into the whole photo (soft mask)")
  parser.add_argument("--batch_size", type=int, default=8, help="frames per stage-1 render call")


def _parse_gaze(text: str | None):
  if text is None:
    return None
  try:
    theta, phi = (float(v) for v in text.split(","))
  except ValueError:
    raise UserError(f"--gaze {text!r}: give two angles in degrees, THETA,PHI (e.g. 0,-5)") from None
  return (math.radians(theta), math.radians(phi))


def _parse_guidance(text: str | None) -> dict[str, float] | None:
  from vasa_jax.trainers import motion as motion_trainer

  if text is None:
    return None
  scales = {}
  for item in filter(None, text.split(",")):
    name, _, value = item.partition("=")
    if name not in motion_trainer.guidance_conditions():
      raise UserError(f"--guidance {item!r}: the conditions are "
                      f"{', '.join(motion_trainer.guidance_conditions())}")
    try:
      scales[name] = float(value)
    except ValueError:
      raise UserError(f"--guidance {item!r}: give NAME=SCALE, e.g. audio=0.5") from None
  return scales


def _emotion(text: str | None):
  if text is None:
    return None
  return int(text) if text.lstrip("-").isdigit() else text


def _check_out(path: str) -> pathlib.Path:
  out = pathlib.Path(path)
  if out.suffix.lower() not in (".mp4", ".m4v", ".mov"):
    raise UserError(f"--out {path}: write an .mp4 (H.264 video with AAC audio)")
  if out.is_dir():
    raise UserError(f"--out {path} is a folder; give a file name such as {out / 'talking.mp4'}")
  return out


def _print_summary(summary: dict) -> None:
  for key, value in summary.items():
    if isinstance(value, float):
      value = f"{value:.4g}"
    print(f"  {key:<20} {value}")


def _generate(args) -> int:
  from vasa_jax.data import audio as speech_io
  from vasa_jax.inference import portrait
  from vasa_jax.inference import streaming
  from vasa_jax.inference import talking_face as tf

  out = _check_out(args.out)
  # The inputs first, before seconds to minutes of model loading: the photo decodes and shows the
  # face to animate, the speech file decodes.
  if not os.path.isfile(args.image):
    raise UserError(f"photo not found: {args.image}")
  found = portrait.crop_photo(args.image, None, face_index=args.face_index)
  speech_io.check_speech(args.audio)
  sampling = {}
  if args.steps is not None:
    sampling["num_steps"] = args.steps
  if args.sampler is not None:
    sampling["method"] = args.sampler
  if args.eta is not None:
    sampling["eta"] = args.eta
  scales = _parse_guidance(args.guidance)
  controls = tf.Controls(gaze=_parse_gaze(args.gaze), distance=args.distance,
                         emotion=_emotion(args.emotion))
  controls.as_arrays()  # Checks the emotion.
  generator = tf.load_generator(args.checkpoint, args.step, args.stage1, args.batch_size, sampling)
  if scales:
    generator.motion.scales = {**generator.motion.scales, **scales}
  subject = generator.prepare(found, name=args.image)
  output = tf.Output(paste_back=args.paste_back, resolution=args.resolution)
  if args.stream:
    summary = streaming.stream_video(generator, subject, args.audio, out, controls, args.seed, output,
                              hop=args.hop, chunk_ms=args.chunk_ms, realtime=not args.no_realtime,
                              hold=args.hold)
  else:
    summary = generator.generate_video(subject, args.audio, out, controls, args.seed, output,
                                       hold=args.hold)
  print(f"wrote {out}")
  _print_summary({k: v for k, v in summary.items() if k not in ("settings", "video")})
  if args.report:
    from vasa_jax import atomic

    atomic.write_json(args.report, {**summary, "settings": generator.describe(
        controls, args.seed, output)})
  return 0


def _edit(args) -> int:
  from vasa_jax.inference import editing

  out = _check_out(args.out)
  summary = editing.edit_video(args.image, args.video, args.checkpoint, out,
                               transfer=args.transfer, step=args.step, face_index=args.face_index,
                               resolution=args.resolution, paste_back=args.paste_back,
                               batch_size=args.batch_size)
  print(f"wrote {out}")
  _print_summary(summary)
  return 0
