"""The trainer core every stage runs on: mesh, sharded state, one donated step, checkpoints, the loop.

Read top to bottom, `train` does this:
  1. builds the device mesh (`data` x `fsdp`) from `config.mesh`;
  2. works out the train state's shapes with `jax.eval_shape` and its shardings from them, then creates it
     with `jax.jit(init, out_shardings=...)` so no unsharded copy ever exists (or restores it, sharded, from
     the workdir's latest checkpoint together with the data iterator's position);
  3. runs one jitted, donated `train_step` per global batch: gradient accumulation over micro-batches,
     clipping and the optimizer from `config.optimizer` / `config.schedule`, an optional EMA of the
     parameters, the step's RNG folded from the seed and the step number;
  4. writes metrics to TensorBoard and `metrics.jsonl` (`metric_writer`), saves checkpoints
     (`checkpointing`) every `config.checkpoint.every` steps, at the end and on SIGTERM/SIGINT,
     and stops on a non-finite loss or gradient;
  5. runs the evaluators of `config.evals` (`vasa_jax.evaluators`) every `every` steps and after the last
     one, on the EMA parameters when there are any.

A stage supplies a `Task`: how to initialise its parameters, its loss, and its data iterator (plus
whatever its evaluators call, e.g. `reenact` and `eval_examples` for stage 1).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import pathlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from vasa_jax import configs
from vasa_jax.runs import check_same_model, param_shapes
from vasa_jax.errors import UserError
from vasa_jax.trainers.checkpointing import Checkpointer
from vasa_jax.trainers.metric_writer import MetricWriter

PyTree = Any
Batch = Mapping[str, Any]

MESH_AXES = ("data", "fsdp")
# Every device holds a different slice of the batch: FSDP shards the batch like data parallelism does.
BATCH_AXES = ("data", "fsdp")


class Task(Protocol):
  """What a stage gives the trainer core."""

  name: str

  def init_params(self, rng: jax.Array) -> PyTree:
    """Returns freshly initialised parameters (traced under `jax.jit`; must be pure)."""

  def loss_fn(self, params: PyTree, batch: Batch, rng: jax.Array) -> tuple[jax.Array, dict]:
    """Returns (scalar float32 loss, dict of scalar metrics) for a (micro-)batch.

    Optional hooks: a task with a `phase(step) -> hashable` method (e.g. a curriculum) gets
    `phase=phase(step)` here, static: `train` compiles one step per phase, when the run reaches
    it; a task may also define `make_optimizer(config) -> (tx, schedule)` to replace
    `make_optimizer` (e.g. one optimizer per network)."""

  def make_data_iterator(self, process_index: int, process_count: int) -> Iterator[Batch]:
    """Returns this process's iterator of local batches, with `get_state` / `set_state`."""

  def model_summary(self) -> dict:
    """Describes the model (name, variant, sizes): stored with checkpoints, shown when they differ."""


class TrainingInterrupted(Exception):
  """SIGTERM or SIGINT stopped training after a checkpoint was saved."""

  def __init__(self, signum: int, step: int, workdir: pathlib.Path):
    self.signum, self.step, self.workdir = signum, step, workdir
    super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint saved in "
                     f"{workdir}; run the same command again to resume")


class TrainingDiverged(UserError):
  """A non-finite loss or gradient; the last good checkpoint stays in the workdir."""


# ----------------------------------------------------------------------------------------------------
# The loop.


@dataclasses.dataclass
class TrainResult:
  workdir: pathlib.Path
  start_step: int
  final_step: int
  state: TrainState
  first_metrics: dict | None
  last_metrics: dict | None
  steps_per_sec: float | None


def train(config: ml_collections.ConfigDict, workdir: str | os.PathLike, task: Task,
          mesh: jax.sharding.Mesh | None = None) -> TrainResult:
  """Trains `task` as `config` says, in `workdir`, resuming from its latest checkpoint."""
  workdir = pathlib.Path(workdir).absolute()
  is_chief = jax.process_index() == 0
  mesh = mesh or create_mesh(config.mesh)
  total_steps = int(config.total_steps)
  global_batch, accum = _batch_split(config, mesh)
  workdir.mkdir(parents=True, exist_ok=True)
  tx, schedule = task_optimizer(task, config)
  ema_decay = float(config.get("ema_decay", 0.0))
  base_rng = jax.random.key(config.seed)
  checkpointer = Checkpointer(workdir / "checkpoints", keep=config.checkpoint.keep,
                              async_save=config.checkpoint.get("async_save", True))
  data_iterator = task.make_data_iterator(jax.process_index(), jax.process_count())
  state, state_shardings, meta, start_step = _first_state(
      config, task, mesh, make_init_fn(task, tx, use_ema=ema_decay > 0), base_rng, checkpointer,
      data_iterator, workdir)
  if is_chief:
    configs.write_json(config, workdir / "config.json")

  from vasa_jax import evaluators as evaluators_lib  # Only a run needs them.

  evaluators = evaluators_lib.make_evaluators(config, task, training=True)
  data_sharding = batch_sharding(mesh)
  compiled_steps: dict[Any, Callable] = {}

  def train_step(state, batch, base_rng, step):
    """The jitted step of the phase the update from `step - 1` to `step` belongs to."""
    phase = task.phase(step - 1) if hasattr(task, "phase") else None
    if phase not in compiled_steps:
      if phase is not None:
        logging.info("Step %d starts phase %s.", step, phase)
      compiled_steps[phase] = jax.jit(
          make_train_step(task, tx, schedule, mesh, accum, ema_decay, phase=phase),
          in_shardings=(state_shardings, data_sharding, replicated(mesh)),
          out_shardings=(state_shardings, replicated(mesh)),
          donate_argnums=(0,))
    return compiled_steps[phase](state, batch, base_rng)

  writer = MetricWriter(workdir, start_step, enabled=is_chief)
  log_every = int(config.get("log_every", 50))
  save_every = int(config.checkpoint.every)
  result = TrainResult(workdir, start_step, start_step, state, None, None, None)

  def diverged(step, metrics):
    last_good = checkpointer.latest_step()
    where = (f"the last good checkpoint (step {last_good}) stays in {checkpointer.directory}"
             if last_good else "no checkpoint was written yet")
    raise TrainingDiverged(
        f"non-finite training at step {step} (loss={float(metrics['loss'])}, "
        f"grad_norm={float(metrics['grad_norm'])}); {where}. Lower the learning rate "
        "(--config.schedule.peak_value), clip gradients (--config.grad_clip_norm) or use float32 "
        "compute (--config.compute_dtype=float32), then run again (it resumes from that checkpoint)")

  progress = _progress_bar(total_steps, start_step, enabled=is_chief)
  unchecked = None  # (step, metrics) of the previous step: checked while this one runs.
  interval_start, interval_steps = None, 0
  try:
    with _stop_signals() as stop_signals:
      for step in range(start_step + 1, total_steps + 1):
        batch = to_global_batch(next(data_iterator), data_sharding)
        state, metrics = train_step(state, batch, base_rng, step)
        progress.update(1)
        interval_steps += 1
        if step == start_step + 1:
          jax.block_until_ready(metrics)  # Leave compilation out of the measured rate.
          interval_start, interval_steps = time.perf_counter(), 0
        stop = _any_process(bool(stop_signals))
        log = step % log_every == 0 or step == total_steps or stop
        save = step % save_every == 0 or step == total_steps or stop
        # Every step's metrics are checked once: while the next step runs, or at once when they
        # are logged or the state saved, so that nothing non-finite is ever logged or saved.
        to_check, unchecked = ([unchecked] if unchecked else []), (step, metrics)
        if log or save:
          to_check, unchecked = to_check + [unchecked], None
        for checked_step, checked_metrics in to_check:
          if not bool(checked_metrics["finite"]):
            diverged(checked_step, checked_metrics)
        if log:
          scalars = jax.device_get(metrics)
          scalars.pop("finite")
          elapsed = time.perf_counter() - interval_start
          if interval_steps and elapsed > 0:
            scalars["steps_per_sec"] = interval_steps / elapsed
            scalars["examples_per_sec"] = scalars["steps_per_sec"] * global_batch
            result.steps_per_sec = scalars["steps_per_sec"]
          interval_start, interval_steps = time.perf_counter(), 0
          writer.write(step, scalars)
          result.first_metrics = result.first_metrics or dict(scalars, step=step)
          result.last_metrics = dict(scalars, step=step)
          progress.set_postfix(loss=f"{scalars['loss']:.4g}", refresh=False)
        if save:
          checkpointer.save(step, state, data_iterator, meta)
        due = [e for e in evaluators if not stop and e.due(step, total_steps)]
        if due:
          eval_start = time.perf_counter()
          evaluators_lib.run_evaluators(
              due, state.ema_params if state.ema_params is not None else state.params, step,
              workdir, writer, write_files=is_chief)
          if interval_start is not None:  # Evaluation time is not training time.
            interval_start += time.perf_counter() - eval_start
        result.final_step = step
        if stop:
          checkpointer.wait()
          raise TrainingInterrupted(stop_signals[0] if stop_signals else signal.SIGTERM, step,
                                    workdir)
  finally:
    progress.close()
    writer.close()
    checkpointer.close()
    if hasattr(data_iterator, "close"):  # Stops grain worker processes.
      data_iterator.close()
  result.state = state
  if is_chief:
    logging.info(_summary(result, checkpointer.directory))
  return result


def _batch_split(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> tuple[int, int]:
  """(global batch, gradient accumulation steps), checked to split over the mesh's devices."""
  global_batch = int(config.batch_size)
  if global_batch % mesh.size:
    raise UserError(f"config.batch_size={global_batch} does not split over the {mesh.size} devices "
                    f"of the mesh; use a multiple of {mesh.size}")
  accum = int(config.get("grad_accum_steps", 1))
  if accum < 1 or global_batch % (accum * mesh.size):
    raise UserError(f"config.grad_accum_steps={accum}: batch_size {global_batch} must be a multiple "
                    f"of grad_accum_steps x devices = {accum * mesh.size}")
  return global_batch, accum


def _first_state(config, task, mesh, init_fn, base_rng, checkpointer, data_iterator, workdir):
  """(train state, its shardings, the checkpoints' description, its step): restored from the latest
  checkpoint with the data iterator's position (after checking it is one of this model), or
  created sharded (`jax.jit` with out_shardings, so no unsharded copy ever exists) at step 0."""
  abstract_state = jax.eval_shape(init_fn, base_rng)
  state_shardings = fsdp_shardings(abstract_state, mesh, config.mesh.get("fsdp_min_size", 2**14))
  meta = {"task": task.name, "model": task.model_summary(),
          "param_shapes": param_shapes(abstract_state.params),
          "state_shapes": param_shapes(abstract_state)}
  num_params = sum(math.prod(s) for s in meta["param_shapes"].values())
  logging.info("Task %s, model %s: %s parameters. Mesh %s over %d %s device(s), %d process(es).",
               task.name, meta["model"], f"{num_params:,}", dict(mesh.shape), mesh.size,
               mesh.devices.flat[0].platform, jax.process_count())
  start_step = checkpointer.latest_step() or 0
  if not start_step:
    return jax.jit(init_fn, out_shardings=state_shardings)(base_rng), state_shardings, meta, 0
  check_same_model(checkpointer.read_meta(start_step), meta, workdir)
  target = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                        abstract_state, state_shardings)
  state = checkpointer.restore(start_step, target, data_iterator)
  logging.info("Resumed from the checkpoint at step %d in %s.", start_step, checkpointer.directory)
  return state, state_shardings, meta, start_step


@contextlib.contextmanager
def _stop_signals():
  """Turns SIGTERM / SIGINT into a flag the loop checks after each step."""
  received: list[int] = []
  previous = {}

  def handler(signum, frame):
    del frame
    if received:  # A second signal: stop without waiting for the checkpoint.
      signal.signal(signum, previous.get(signum, signal.SIG_DFL))
      raise KeyboardInterrupt
    received.append(signum)
    logging.warning("%s received: saving a checkpoint after this step.",
                    signal.Signals(signum).name)

  # Handlers can only be installed from the main thread; elsewhere the caller owns signals.
  if threading.current_thread() is threading.main_thread():
    for sig in (signal.SIGTERM, signal.SIGINT):
      previous[sig] = signal.signal(sig, handler)
  try:
    yield received
  finally:
    for sig, old in previous.items():
      signal.signal(sig, old)


def _any_process(flag: bool) -> bool:
  """True on every process if `flag` is true on any (all must stop at the same step)."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils

  return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.int32))))


def _summary(result: TrainResult, checkpoints: pathlib.Path) -> str:
  if result.final_step == result.start_step:
    return (f"Nothing to train: the checkpoint in {checkpoints} is already at step "
            f"{result.final_step} (raise --config.total_steps to train on).")
  first, last = result.first_metrics, result.last_metrics
  rate = f" at {result.steps_per_sec:.2f} steps/s" if result.steps_per_sec else ""
  return (f"Trained steps {result.start_step + 1}-{result.final_step}{rate}; loss "
          f"{first['loss']:.4g} (step {first['step']}) -> {last['loss']:.4g} (step {last['step']}). "
          f"Checkpoints: {checkpoints}; metrics: {result.workdir / 'metrics.jsonl'}; "
          f"TensorBoard: tensorboard --logdir {result.workdir / 'tensorboard'}")


def _progress_bar(total: int, initial: int, enabled: bool):
  from tqdm import tqdm

  return tqdm(total=total, initial=initial, unit="step", desc="train", disable=not enabled,
              dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 10.0,
              smoothing=0.1, file=sys.stderr)


# ----------------------------------------------------------------------------------------------------
# Multi-host and mesh.


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """Joins the processes of a multi-host job (`jax.distributed.initialize`).

  With no arguments the cluster is detected from the environment (TPU pods, SLURM, Open MPI, ...);
  arguments given override what is detected.
  """
  kwargs = {k: v for k, v in dict(coordinator_address=coordinator_address,
                                  num_processes=num_processes,
                                  process_id=process_id).items() if v is not None}
  jax.distributed.initialize(**kwargs)
  logging.info("Process %d of %d joined; %d local and %d global devices.", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())


def create_mesh(mesh_config: Mapping[str, int], devices: list | None = None) -> jax.sharding.Mesh:
  """A `data` x `fsdp` mesh; a size of -1 takes all remaining devices.

  Args:
    mesh_config: {"data": int, "fsdp": int, "fsdp_min_size": int (see `fsdp_shardings`)}; at most
      one axis -1.
    devices: the devices to use (default: all, in `jax.devices()` order, so that each process's devices
      are contiguous along the batch axis).
  """
  unknown = set(mesh_config) - set(MESH_AXES) - {"fsdp_min_size"}
  if unknown:
    raise UserError(f"config.mesh has unknown axes {sorted(unknown)}; the axes are {MESH_AXES}")
  devices = list(jax.devices() if devices is None else devices)
  sizes = [int(mesh_config.get(axis, 1)) for axis in MESH_AXES]
  if sizes.count(-1) > 1:
    raise UserError(f"config.mesh {dict(mesh_config)}: only one axis may be -1")
  known = math.prod(s for s in sizes if s != -1)
  if any(s == 0 or s < -1 for s in sizes) or len(devices) % known:
    raise UserError(f"config.mesh {dict(mesh_config)} does not fit {len(devices)} devices; use "
                    f"sizes whose product divides {len(devices)}, or -1 for 'the rest'")
  sizes = [len(devices) // known if s == -1 else s for s in sizes]
  used = math.prod(sizes)
  if used < len(devices):
    if jax.process_count() > 1:
      raise UserError(f"config.mesh {dict(mesh_config)} uses {used} of {len(devices)} devices; a "
                      "multi-host mesh must use them all")
    logging.warning("Mesh uses %d of %d devices.", used, len(devices))
  device_grid = np.asarray(devices[:used], dtype=object).reshape(sizes)
  return jax.sharding.Mesh(device_grid, MESH_AXES,
                           axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES))


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Leading (example) axis split over every device of the mesh."""
  return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def fsdp_shardings(abstract_tree: PyTree, mesh: jax.sharding.Mesh, min_size: int) -> PyTree:
  """Shards each array's largest dimension that divides evenly over the `fsdp` axis.

  Arrays smaller than `min_size` elements, and those with no such dimension, are replicated. Leaves
  of equal shape get equal shardings, so optimizer moments line up with their parameters.
  """
  fsdp = mesh.shape["fsdp"]

  def rule(leaf):
    shape = getattr(leaf, "shape", ())
    if fsdp == 1 or not shape or math.prod(shape) < min_size:
      return replicated(mesh)
    for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
      if shape[dim] % fsdp == 0:
        spec = [None] * len(shape)
        spec[dim] = "fsdp"
        return NamedSharding(mesh, P(*spec))
    return replicated(mesh)

  return jax.tree.map(rule, abstract_tree)


def to_global_batch(local_batch: Batch, sharding: NamedSharding) -> dict:
  """Assembles each process's rows into global arrays laid out by `sharding`."""
  process_count = jax.process_count()

  def put(x):
    x = np.asarray(x)
    global_shape = (x.shape[0] * process_count,) + x.shape[1:]
    return jax.make_array_from_process_local_data(sharding, x, global_shape)

  return jax.tree.map(put, dict(local_batch))


# ----------------------------------------------------------------------------------------------------
# Optimizer and schedule.


def make_schedule(schedule: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Learning rate per step from `config.schedule`.

  `name`: "constant" (`peak_value`), "cosine" (`peak_value` to `end_value` over the run, after
  `warmup_steps` of linear warm-up from 0) or "linear" (the same shape, decaying linearly).
  """
  name = schedule.get("name", "cosine")
  peak = float(schedule.peak_value)
  warmup = int(schedule.get("warmup_steps", 0))
  end = float(schedule.get("end_value", 0.0))
  decay_steps = max(int(schedule.get("decay_steps", 0) or total_steps), warmup + 1)
  if name == "constant":
    if warmup:
      return optax.join_schedules(
          [optax.linear_schedule(0.0, peak, warmup), optax.constant_schedule(peak)], [warmup])
    return optax.constant_schedule(peak)
  if name == "cosine":
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, decay_steps, end)
  if name == "linear":
    return optax.join_schedules(
        [optax.linear_schedule(0.0, peak, warmup),
         optax.linear_schedule(peak, end, decay_steps - warmup)], [warmup])
  raise UserError(f"config.schedule.name={name!r} is unknown; use constant, cosine or linear")


def task_optimizer(task: Task, config: ml_collections.ConfigDict
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The task's own `make_optimizer(config)` where it has one, else `make_optimizer(config)`."""
  if hasattr(task, "make_optimizer"):
    return task.make_optimizer(config)
  return make_optimizer(config)


def make_optimizer(config: ml_collections.ConfigDict,
                   optimizer: ml_collections.ConfigDict | None = None,
                   schedule: ml_collections.ConfigDict | None = None,
                   grad_clip_norm: float | None = None
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Gradient clipping, then the optimizer of `config.optimizer`, at the rate of `config.schedule`
  (or of the `optimizer`, `schedule` and `grad_clip_norm` given)."""
  schedule = make_schedule(schedule or config.schedule, config.total_steps)
  opt = optimizer or config.optimizer
  if opt.name == "adamw":
    optimizer = optax.adamw(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps,
                            weight_decay=opt.weight_decay)
  elif opt.name == "adam":
    optimizer = optax.adam(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps)
  elif opt.name == "sgd":
    optimizer = optax.sgd(schedule, momentum=opt.get("momentum", None) or None)
  else:
    raise UserError(f"config.optimizer.name={opt.name!r} is unknown; use adamw, adam or sgd")
  parts = []
  clip = config.get("grad_clip_norm") if grad_clip_norm is None else grad_clip_norm
  if clip:
    parts.append(optax.clip_by_global_norm(clip))
  parts.append(optimizer)
  return optax.chain(*parts), schedule


# ----------------------------------------------------------------------------------------------------
# Train state and step.


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: PyTree
  opt_state: PyTree
  ema_params: PyTree | None = None


def make_init_fn(task: Task, tx: optax.GradientTransformation,
                 use_ema: bool) -> Callable[[jax.Array], TrainState]:
  def init(rng):
    params = task.init_params(rng)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      ema_params=params if use_ema else None)

  return init


def make_train_step(task: Task, tx: optax.GradientTransformation, schedule: optax.Schedule,
                    mesh: jax.sharding.Mesh, grad_accum_steps: int = 1,
                    ema_decay: float = 0.0, phase: Any = None) -> Callable:
  """The pure update `(state, batch, base_rng) -> (state, metrics)`; a `phase` (of a task with
  `phase(step)`) is passed on to the task's `loss_fn`.

  With `grad_accum_steps` n > 1 the global batch [B, ...] is cut into n micro-batches of B/n rows taken
  with stride n, so that every device keeps working on its own rows; gradients, losses and metrics are
  averaged over them, which equals one step on the whole batch for a per-example mean loss.
  """
  microbatch_sharding = NamedSharding(mesh, P(None, BATCH_AXES))

  phase_kwargs = {} if phase is None else {"phase": phase}

  def loss_and_grads(params, batch, rng):
    (loss, metrics), grads = jax.value_and_grad(task.loss_fn, has_aux=True)(
        params, batch, rng, **phase_kwargs)
    return loss, metrics, grads

  def train_step(state: TrainState, batch: Batch, base_rng: jax.Array):
    rng = jax.random.fold_in(base_rng, state.step)
    if grad_accum_steps == 1:
      loss, metrics, grads = loss_and_grads(state.params, batch, rng)
    else:
      n = grad_accum_steps

      def split(x):
        x = x.reshape((x.shape[0] // n, n) + x.shape[1:]).swapaxes(0, 1)
        return jax.lax.with_sharding_constraint(x, microbatch_sharding)

      microbatches = jax.tree.map(split, batch)

      def accumulate(total, inputs):
        index, microbatch = inputs
        out = loss_and_grads(state.params, microbatch, jax.random.fold_in(rng, index))
        return jax.tree.map(jnp.add, total, out), None

      first = jax.tree.map(lambda x: x[0], microbatches)
      zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                           jax.eval_shape(loss_and_grads, state.params, first, rng))
      total, _ = jax.lax.scan(accumulate, zeros, (jnp.arange(n), microbatches))
      loss, metrics, grads = jax.tree.map(lambda x: x / n, total)

    grad_norm = optax.tree.norm(grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema_params = state.ema_params
    if ema_params is not None:
      ema_params = jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p,
                                ema_params, params)
    new_state = TrainState(step=state.step + 1, params=params, opt_state=opt_state,
                           ema_params=ema_params)
    metrics = dict(metrics)
    metrics.update(loss=loss, grad_norm=grad_norm, param_norm=optax.tree.norm(params),
                   learning_rate=schedule(state.step),
                   finite=jnp.isfinite(loss) & jnp.isfinite(grad_norm))
    return new_state, metrics

  return train_step
