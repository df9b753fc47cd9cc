"""`vasa bench generate | train | roofline`: each prints a table and writes its rows as JSON."""

from __future__ import annotations

from vasa_jax.errors import UserError


def _ints(text: str, what: str) -> list[int]:
  try:
    values = [int(v) for v in text.split(",") if v]
  except ValueError:
    raise UserError(f"{what} takes comma-separated integers, e.g. 1,8; got {text!r}") from None
  if not values or min(values) < 1:
    raise UserError(f"{what} takes positive integers; got {text!r}")
  return values


def register(subparsers) -> None:
  bench = subparsers.add_parser("bench", help="benchmarks that print a table and write JSON")
  commands = bench.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)

  gen = commands.add_parser(
      "generate", help="generation speed: frames per second and first-frame latency",
      description="Times the whole generation pipeline (audio features, stage-2 sampling, stage-1 "
      "rendering) with random weights of each size on this machine's default JAX backend: offline "
      "and streaming frames per second, streaming's first-frame latency, and the time per frame "
      "in motion sampling and in frame decoding, for each number of sampling steps.")
  gen.add_argument("--sizes", default="tiny",
                   help="comma-separated stage-1 sizes: tiny (64 px), small (128), base (256), "
                   "paper (512); stage 2 is tiny for tiny, small for small, paper otherwise")
  gen.add_argument("--batch_sizes", default="1,8", help="comma-separated render batch sizes")
  gen.add_argument("--steps", default="50,10", help="comma-separated stage-2 sampling steps")
  gen.add_argument("--seconds", type=float, default=4.0, help="seconds of audio per measurement")
  gen.add_argument("--hop", type=int, default=None, help="streaming hop in frames (default W/5)")
  gen.add_argument("--dtype", default="float32", help="compute dtype: float32 or bfloat16")
  gen.add_argument("--no_pipeline", action="store_true",
                   help="fetch each window's frames before sampling the next (the old schedule)")
  gen.add_argument("--profile", default=None, metavar="DIR",
                   help="write a jax.profiler trace of each timed offline run under DIR")
  gen.add_argument("--json", default=None, help="where to write the rows (default: "
                   "bench_generate.json)")
  gen.set_defaults(handler=_generate)

  train = commands.add_parser(
      "train", help="training-step speed, MFU and memory over a per-device batch sweep",
      description="Times the experiment's jitted, sharded, donated training step on random data "
      "and random weights over all local devices, for each per-device batch size: step time, "
      "examples/s, FLOPs from XLA's cost analysis, MFU over the device's peak, peak memory, and "
      "compilations after warm-up. --config.KEY=VALUE overrides apply (e.g. "
      "--config.model.remat=true, --config.compute_dtype=float32).")
  train.add_argument("--stage", type=int, choices=(1, 2), default=1,
                     help="1: experiments/face_latent/vox2_512.py, 2: experiments/motion/vox2.py")
  train.add_argument("--config", default=None,
                     help="another experiment config (FILE[:ARG]) instead of --stage's")
  train.add_argument("--variant", default=None,
                     help="model variant of --stage's config (tiny, small, base, paper)")
  train.add_argument("--batch_sizes", default="1,2,4", help="comma-separated per-device batches")
  train.add_argument("--steps", type=int, default=5, help="timed steps per batch size")
  train.add_argument("--stage1_variant", default=None,
                     help="stage 2: the stage-1 variant whose motion it generates (default: "
                     "the same variant)")
  train.add_argument("--audio_dim", type=int, default=768,
                     help="stage 2 without config.audio.wav2vec2_path: the audio feature size "
                     "(768: Wav2Vec2 base, as the paper)")
  train.add_argument("--profile", default=None, metavar="DIR",
                     help="write a jax.profiler trace of the timed steps under DIR")
  train.add_argument("--json", default=None,
                     help="where to write the rows (default: bench_train_TASK.json)")
  train.set_defaults(handler=_train, takes_overrides=True)

  roof = commands.add_parser(
      "roofline", help="FLOPs and bytes per generated frame and per training example, and the "
      "time floor they imply on an accelerator",
      description="XLA's cost analysis of the programs generation and training run, per generated "
      "frame and per training example, and the floor max(FLOPs / peak, bytes / bandwidth) on a "
      "device (--device, default H100). With --measured (the JSON of `vasa bench generate` or "
      "`train` on that device) it adds the measured time and the gap.")
  roof.add_argument("--size", default="paper", help="stage-1 size: tiny, small, base, paper")
  roof.add_argument("--batch", type=int, default=8, help="render batch / training batch")
  roof.add_argument("--steps", default="50,10", help="comma-separated sampling steps")
  roof.add_argument("--hop", type=int, default=None, help="streaming hop (default W/5)")
  roof.add_argument("--dtype", default="bfloat16", help="compute dtype")
  roof.add_argument("--device", default="H100", help="the device of the floor: a DEVICE_PEAKS "
                    "name of vasa_jax.bench.common (H100, H200, A100, TPU v5, ...), or local "
                    "(this machine's measured matmul rate)")
  roof.add_argument("--no_train", action="store_true", help="generation only")
  roof.add_argument("--measured", nargs="*", default=(), metavar="JSON",
                    help="bench generate/train JSON files measured on --device")
  roof.add_argument("--json", default=None,
                    help="where to write the rows (default: bench_roofline_SIZE.json)")
  roof.set_defaults(handler=_roofline)


def _generate(args) -> int:
  from vasa_jax.bench import common, generate

  sizes = [s for s in args.sizes.split(",") if s]
  unknown = sorted(set(sizes) - set(generate.STAGE1_SIZES))
  if unknown:
    raise UserError(f"--sizes: {', '.join(unknown)} unknown; use "
                    f"{', '.join(generate.STAGE1_SIZES)}")
  rows = generate.run(sizes, _ints(args.batch_sizes, "--batch_sizes"), seconds=args.seconds,
                      steps=_ints(args.steps, "--steps"), hop=args.hop, dtype=args.dtype,
                      pipelined=not args.no_pipeline, profile_dir=args.profile)
  print(generate.table(rows))
  path = args.json or "bench_generate.json"
  common.write_json(path, "generate", rows)
  print(f"wrote {path}")
  _print_profiles(args.profile)
  return 0


def _train(args) -> int:
  from vasa_jax.bench import common, training

  spec = args.config or training.stage_config(args.stage, args.variant)
  if args.config and args.variant:
    raise UserError("--variant picks the variant of --stage's config; with --config, give it as "
                    "FILE:variant=NAME")
  rows = training.run(spec, args.overrides, _ints(args.batch_sizes, "--batch_sizes"), args.steps,
                      args.stage1_variant, args.audio_dim, args.profile)
  print(training.table(rows))
  path = args.json or f"bench_train_{rows[0]['task']}.json"
  common.write_json(path, "train", rows)
  print(f"wrote {path}")
  _print_profiles(args.profile)
  return 0


def _print_profiles(directory: str | None) -> None:
  """The top operations of each trace written under `directory`."""
  import pathlib

  from vasa_jax.bench import common

  if not directory:
    return
  for run in sorted(p for p in pathlib.Path(directory).iterdir() if p.is_dir()):
    print(f"\nprofile {run} (TensorBoard/XProf; perfetto_trace.json.gz at ui.perfetto.dev)")
    for by_kind, title in ((True, "kinds of operation"), (False, "operations")):
      print(f"  top {title}:")
      for name, ms, share in common.trace_summary(run, top=6, by_kind=by_kind):
        print(f"  {share:6.1%} {ms:10.1f} ms  {name}")


def _roofline(args) -> int:
  from vasa_jax.bench import common, roofline

  result = roofline.analyse(args.size, batch=args.batch, steps=_ints(args.steps, "--steps"),
                            hop=args.hop, dtype=args.dtype, device=args.device,
                            train=not args.no_train, measured=args.measured)
  print(roofline.report(result))
  path = args.json or f"bench_roofline_{args.size}.json"
  common.write_json(path, "roofline", result["rows"], settings=result["settings"])
  print(f"wrote {path}")
  return 0
