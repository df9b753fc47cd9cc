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
  train.set_defaults(handler=None)
  evaluate = subparsers.add_parser(
      "evaluate", help="run the evaluators of a trained workdir (config.evals) on a checkpoint",
      description="Runs the evaluators of a training run's config (its workdir's config.json, "
      "with --config.* overrides, e.g. --config.evals.transfer.probe_workdir=DIR) on its latest "
      "checkpoint, prints the scores and writes them to WORKDIR/eval/step_<N>.json.",
      epilog=OVERRIDES_EPILOG)
  evaluate.add_argument("--workdir", required=True, help="the training run's output folder")
  evaluate.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  evaluate.add_argument("--evals", default="", metavar="NAME[,NAME]",
                        help="only these entries of config.evals (default: all)")
  evaluate.set_defaults(handler=None)
  sweep = subparsers.add_parser(
      "sweep", help="list (or run, one after another) the members of a config's sweep()",
      description="Each member of the config file's sweep() is a set of overrides; member M "
      "trains in WORKDIR/M. Without --run, prints one `vasa train` command per member (to hand to "
      "a job launcher). --config.* overrides given here apply to every member.",
      epilog=OVERRIDES_EPILOG)
  sweep.add_argument("--config", required=True, metavar="FILE[:ARG]")
  sweep.add_argument("--workdir", required=True, help="parent folder of the members' workdirs")
  sweep.add_argument("--run", action="store_true", help="train the members here, in order")
  sweep.set_defaults(handler=None)
  from vasa_jax import demo
  from vasa_jax.data import audio_features, motion_latents, prepare
  from vasa_jax.data.synthtalk import cli as synthtalk_cli
  from vasa_jax.inference import cli as inference_cli

  prepare.register(subparsers)
  synthtalk_cli.register(subparsers)
  audio_features.register(subparsers)
  motion_latents.register(subparsers)
  inference_cli.register(subparsers)
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


def _run_task(args: argparse.Namespace, overrides: list[str]) -> int:
  from absl import flags

  from vasa_jax import configs, trainers

  # grain reads absl flags in its workers; this program parses its own arguments.
  flags.FLAGS.mark_as_parsed()
  config = configs.load_config(args.config, overrides)
  trainer = trainers.get_trainer(config.task)
  if args.distributed or args.coordinator_address or args.num_processes is not None:
    from vasa_jax.trainers import common

    common.initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
  trainer.train(config, args.workdir)
  return 0


def _run_sweep(args: argparse.Namespace, overrides: list[str]) -> int:
  import pathlib
  import shlex

  from absl import flags

  from vasa_jax import configs, trainers

  flags.FLAGS.mark_as_parsed()
  members = configs.sweep_overrides(args.config)
  plans = []
  for member in members:
    config = configs.load_config(args.config, overrides + member)  # Checks every member first.
    workdir = pathlib.Path(args.workdir) / configs.sweep_member_name(member)
    plans.append((config, workdir, member))
    print(shlex.join(["vasa", "train", "--config", args.config, "--workdir", str(workdir),
                      *overrides, *member]))
  if args.run:
    for config, workdir, _ in plans:
      logging.info("Sweep member %s", workdir)
      trainers.get_trainer(config.task).train(config, workdir)
  return 0


def _run_evaluate(args: argparse.Namespace, overrides: list[str]) -> int:
  import pathlib

  from absl import flags

  from vasa_jax import configs, evaluators, trainers
  from vasa_jax.trainers import common

  flags.FLAGS.mark_as_parsed()
  workdir = pathlib.Path(args.workdir)
  config = configs.read_json(workdir / "config.json")
  for override in overrides:
    configs.apply_override(config, override)
  task = trainers.get_trainer(config.task).make_task(config)
  trained = common.load_trained(workdir, task, config, args.step)
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
    if args.handler is not None:
      if overrides:
        raise UserError(f"{args.command} takes no --config.* overrides (got {overrides[0]})")
      return args.handler(args)
    if args.command == "evaluate":
      return _run_evaluate(args, overrides)
    if args.command == "sweep":
      return _run_sweep(args, overrides)
    return _run_task(args, overrides)
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
