"""The one entry point: `vasa SUBCOMMAND ...` or `python -m vasa_jax.main --config FILE[:ARG] --workdir DIR`.

Without a subcommand, `config.task` says what runs. Config keys are overridden with
`--config.KEY=VALUE` (a key that does not exist is an error naming it).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from vasa_jax.errors import UserError

EXIT_USER_ERROR = 2


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--config", required=True, metavar="FILE[:ARG]",
                      help="experiment config file, e.g. experiments/reference_autoencoder.py, "
                      "optionally with an argument after ':' for get_config(arg)")
  parser.add_argument("--workdir", required=True,
                      help="output folder: config.json, checkpoints, metrics, TensorBoard logs; "
                      "a run in a folder that holds checkpoints resumes from the latest")
  group = parser.add_argument_group(
      "multi-host", "join the processes of a multi-host job before anything runs "
      "(jax.distributed.initialize); on TPU pods, SLURM and Open MPI --distributed alone suffices")
  group.add_argument("--distributed", action="store_true",
                     help="call jax.distributed.initialize()")
  group.add_argument("--coordinator_address", default=None, metavar="HOST:PORT",
                     help="address of process 0 (implies --distributed)")
  group.add_argument("--num_processes", type=int, default=None,
                     help="number of processes (implies --distributed)")
  group.add_argument("--process_id", type=int, default=None,
                     help="this process's index (implies --distributed)")


OVERRIDES_EPILOG = ("Any config key can be overridden: --config.KEY=VALUE, e.g. "
                    "--config.total_steps=1000 --config.schedule.peak_value=1e-3.")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="vasa", description="vasa_jax: VASA-1 talking faces in JAX. With no subcommand, runs "
      "the task the config names (config.task).", epilog=OVERRIDES_EPILOG)
  subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
  train = subparsers.add_parser(
      "train", help="train the task of a config (resumes from the workdir's latest checkpoint)",
      description="Train the model of an experiment config. A run stopped by SIGTERM/SIGINT "
      "saves a checkpoint first; running the same command again resumes from it.",
      epilog=OVERRIDES_EPILOG)
  _add_run_arguments(train)
  train.set_defaults(handler=_run_task, takes_overrides=True)
  evaluate = subparsers.add_parser(
      "evaluate", help="score checkpoints or videos with the paper's metrics, or run a training "
      "run's evaluators",
      description="Two uses. (1) The paper's protocol: --checkpoint RUN (a stage-2 workdir; "
      "several allowed) and/or --videos [NAME=]DIR (folders of talking-face videos with sound: "
      "real clips or other systems' outputs) are scored with the video metrics of the config's "
      "config.evals (syncnet, capp, delta_p, fvd, gaze_error, distance_error) beside the real "
      "clips of --split; writes OUT/metrics.json and OUT/report.html. --config defaults to the "
      "checkpoint's own config.json; its config.evaluation holds the protocol's defaults. "
      "(2) --workdir RUN runs the evaluators of a training run's config on its checkpoint and "
      "writes WORKDIR/eval/step_<N>.json.",
      epilog=OVERRIDES_EPILOG)
  evaluate.add_argument("--config", default=None, metavar="FILE[:ARG]",
                        help="experiment config whose config.evals and config.evaluation apply")
  evaluate.add_argument("--checkpoint", action="append", default=[], metavar="RUN",
                        help="a stage-2 (motion) workdir to generate from; repeat for several")
  evaluate.add_argument("--videos", action="append", default=[], metavar="[NAME=]DIR",
                        help="a folder of videos to score as one system; repeat for several")
  evaluate.add_argument("--real", default=None, metavar="DIR",
                        help="a folder of real videos as the reference set, instead of the "
                        "dataset split of the config")
  evaluate.add_argument("--split", default=None, help="dataset split of the real clips "
                        "(default: config.evaluation.split, test)")
  evaluate.add_argument("--num_clips", type=int, default=None, help="clips drawn from the split "
                        "(0: all)")
  evaluate.add_argument("--samples", type=int, default=None, dest="samples_per_audio",
                        help="generated videos per audio (the paper: 3)")
  evaluate.add_argument("--seed", type=int, default=None)
  evaluate.add_argument("--long_form", type=float, default=None, metavar="SECONDS",
                        dest="long_form_seconds", help="join consecutive clips of one identity "
                        "into sequences of about this length (e.g. 60, like OneMin-32)")
  evaluate.add_argument("--max_seconds", type=float, default=None,
                        help="cut every clip to this length (a quick look)")
  evaluate.add_argument("--no_sweep", action="store_true",
                        help="skip config.evaluation.sweep (the guidance sweep)")
  evaluate.add_argument("--out", default=None, help="output folder (default: "
                        "CHECKPOINT/evaluation_<split>, or ./evaluation)")
  evaluate.add_argument("--workdir", default=None, help="(2) a training run's output folder")
  evaluate.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  evaluate.add_argument("--evals", default="", metavar="NAME[,NAME]",
                        help="only these entries of config.evals (default: all)")
  evaluate.set_defaults(handler=_run_evaluate, takes_overrides=True)
  sweep = subparsers.add_parser(
      "sweep", help="list (or run, one after another) the members of a config's sweep()",
      description="Each member of the config file's sweep() is a set of overrides; member M "
      "trains in WORKDIR/M. Without --run, prints one `vasa train` command per member (to hand to "
      "a job launcher). --config.* overrides given here apply to every member. --gather "
      "collects the members' latest evaluation scores into WORKDIR/ablation.md and .json.",
      epilog=OVERRIDES_EPILOG)
  sweep.add_argument("config_file", nargs="?", default=None, metavar="FILE[:ARG]",
                     help="the experiment config (or give it with --config)")
  sweep.add_argument("--config", default=None, metavar="FILE[:ARG]")
  sweep.add_argument("--workdir", required=True, help="parent folder of the members' workdirs")
  sweep.add_argument("--run", action="store_true", help="train the members here, in order")
  sweep.add_argument("--gather", action="store_true",
                     help="write the ablation table of the members' evaluation scores")
  sweep.set_defaults(handler=_run_sweep, takes_overrides=True)
  from vasa_jax import demo
  from vasa_jax.bench import cli as bench_cli
  from vasa_jax.data import audio_features, motion_latents, prepare_cli
  from vasa_jax.data.synthtalk import cli as synthtalk_cli
  from vasa_jax.inference import cli as inference_cli

  prepare_cli.register(subparsers)
  synthtalk_cli.register(subparsers)
  audio_features.register(subparsers)
  motion_latents.register(subparsers)
  inference_cli.register(subparsers)
  bench_cli.register(subparsers)
  demo.register(subparsers)
  return parser


def _split_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """Separates `--config.KEY=VALUE` (and `--config.KEY VALUE`) from the other arguments."""
  rest, overrides = [], []
  argv = list(argv)
  i = 0
  while i < len(argv):
    arg = argv[i]
    if arg.startswith("--config."):
      if "=" not in arg:
        if i + 1 >= len(argv):
          raise UserError(f"{arg} needs a value: {arg}=VALUE")
        arg, i = f"{arg}={argv[i + 1]}", i + 1
      overrides.append(arg)
    else:
      rest.append(arg)
    i += 1
  return rest, overrides


def _setup_logging() -> None:
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                      datefmt="%H:%M:%S", stream=sys.stderr, force=True)
  # absl and the libraries that log through it stay quiet below warnings.
  for name in ("absl", "orbax", "jax._src.xla_bridge"):
    logging.getLogger(name).setLevel(logging.WARNING)


def _run_task(args: argparse.Namespace) -> int:
  from absl import flags

  from vasa_jax import configs, trainers

  # grain reads absl flags in its workers; this program parses its own arguments.
  flags.FLAGS.mark_as_parsed()
  config = configs.load_config(args.config, args.overrides)
  trainer = trainers.get_trainer(config.task)
  if args.distributed or args.coordinator_address or args.num_processes is not None:
    from vasa_jax.trainers import common

    common.initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
  trainer.train(config, args.workdir)
  return 0


def _run_sweep(args: argparse.Namespace) -> int:
  import pathlib
  import shlex

  from absl import flags

  from vasa_jax import configs, trainers

  flags.FLAGS.mark_as_parsed()
  config_arg = args.config_file or args.config
  if not config_arg:
    raise UserError("vasa sweep needs the experiment config: vasa sweep experiments/... "
                    "--workdir ROOT")
  members = configs.sweep_overrides(config_arg)
  plans = []
  for member in members:
    config = configs.load_config(config_arg, args.overrides + member)  # Checks every member first.
    workdir = pathlib.Path(args.workdir) / configs.sweep_member_name(member)
    plans.append((config, workdir, member))
    if not args.gather:
      print(shlex.join(["vasa", "train", "--config", config_arg, "--workdir", str(workdir),
                        *args.overrides, *member]))
  if args.run:
    for config, workdir, _ in plans:
      logging.info("Sweep member %s", workdir)
      trainers.get_trainer(config.task).train(config, workdir)
  if args.gather:
    from vasa_jax.protocol import sweeps

    table = sweeps.gather([(workdir, member) for _, workdir, member in plans],
                          pathlib.Path(args.workdir))
    print(table)
  return 0


def _run_workdir_evaluators(args: argparse.Namespace) -> int:
  import pathlib

  from absl import flags

  from vasa_jax import configs, evaluators, runs

  flags.FLAGS.mark_as_parsed()
  workdir = pathlib.Path(args.workdir)

  def with_overrides(config):
    for override in args.overrides:
      configs.apply_override(config, override)

  trained = runs.load_run(workdir, args.step, adjust=with_overrides)
  config, task = trained.config, trained.task
  only = [name for name in args.evals.split(",") if name]
  scheduled = evaluators.make_evaluators(config, task, only=only or None)
  if not scheduled:
    raise UserError(f"{workdir / 'config.json'} configures no evaluators (config.evals is empty)")
  scores = evaluators.run_evaluators(scheduled, trained.params, trained.step, workdir)
  width = max(len(name) for name in scores)
  print(f"step {trained.step} of {workdir}:")
  for name, value in scores.items():
    print(f"  {name:<{width}}  {value:.4f}")
  return 0


def _run_evaluate(args: argparse.Namespace) -> int:
  if args.workdir:
    if args.checkpoint or args.videos:
      raise UserError("--workdir runs a training run's evaluators; --checkpoint/--videos run the "
                      "paper's protocol: give one or the other")
    return _run_workdir_evaluators(args)
  import pathlib

  from absl import flags

  from vasa_jax import configs
  from vasa_jax.protocol import scoring as protocol

  flags.FLAGS.mark_as_parsed()
  if not args.checkpoint and not args.videos:
    raise UserError("vasa evaluate needs --checkpoint RUN and/or --videos [NAME=]DIR (or "
                    "--workdir RUN for a training run's evaluators)")
  if args.config:
    config = configs.load_config(args.config, args.overrides)
  elif args.checkpoint:
    config = configs.read_json(pathlib.Path(args.checkpoint[0]) / "config.json")
    protocol.add_defaults(config)  # Runs configured before the video metrics existed.
    for override in args.overrides:
      configs.apply_override(config, override)
  else:
    raise UserError("--videos needs --config FILE: the experiment config whose config.evals "
                    "names the metrics and their weights")
  folders = {}
  for spec in args.videos:
    name, _, folder = spec.rpartition("=")
    folders[name or pathlib.Path(folder).name] = folder
  settings = protocol.Settings.from_config(
      config, split=args.split, num_clips=args.num_clips, samples_per_audio=args.samples_per_audio,
      seed=args.seed, long_form_seconds=args.long_form_seconds, max_seconds=args.max_seconds)
  if args.no_sweep:
    settings.sweep = None
  out = args.out or (pathlib.Path(args.checkpoint[0]) / f"evaluation_{settings.split}"
                     if args.checkpoint else pathlib.Path("evaluation"))
  sampling = None
  if args.config and "sampling" in config:
    sampling = protocol.sampling_of(config)
  only = [name for name in args.evals.split(",") if name]
  record = protocol.run(config, out, checkpoints=args.checkpoint, folders=folders,
                        real_folder=args.real, settings=settings, step=args.step,
                        only=only or None, config_name=args.config or "", sampling=sampling)
  print(protocol.format_rows(record))
  print(f"wrote {pathlib.Path(out) / 'metrics.json'} and {pathlib.Path(out) / 'report.html'}")
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  # No subcommand: `python -m vasa_jax.main --config ... --workdir ...` runs config.task.
  if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
    argv = ["train"] + argv
  try:
    rest, overrides = _split_overrides(argv)
    args = parser.parse_args(rest)
    if args.command is None:
      parser.print_help()
      return EXIT_USER_ERROR
    _setup_logging()
    if overrides and not getattr(args, "takes_overrides", False):
      raise UserError(f"{args.command} takes no --config.* overrides (got {overrides[0]})")
    args.overrides = overrides
    return args.handler(args)
  except UserError as e:
    print(f"vasa: error: {e}", file=sys.stderr)
    return EXIT_USER_ERROR
  except Exception as e:
    from vasa_jax.trainers.common import TrainingInterrupted

    if isinstance(e, TrainingInterrupted):
      print(f"vasa: {e}", file=sys.stderr)
      return 128 + e.signum
    raise
  except KeyboardInterrupt:
    print("vasa: interrupted", file=sys.stderr)
    return 128 + signal.SIGINT


def run() -> None:
  """Console-script entry (`vasa`)."""
  sys.exit(main())


if __name__ == "__main__":
  run()
