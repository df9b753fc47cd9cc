"""Training speed: `vasa bench train --stage 1|2 [--config FILE[:ARG]] --batch_sizes 1,2,4`.

One row per per-device batch size: the experiment's own jitted, sharded and donated training step
(`trainers.common.make_train_step`, what `vasa train` runs) on random data of the config's shapes,
with random weights, over all local devices (global batch = per-device batch x devices). Columns:
  step ms: wall time of one step after compilation (mean over --steps, dispatched back to back as
    the training loop does);
  ex/s: training examples per second (a stage-1 example is a source/driving/other frame triplet, a
    stage-2 example a window of K + W frames); img/s for stage 1 counts generated images;
  TFLOP/step: XLA's cost analysis of the compiled step, per device (rematerialised work included);
  MFU: those FLOPs per second over the device's peak in the compute dtype (`common.device_peak`:
    datasheet numbers for accelerators, a measured matmul on CPUs);
  memory: the allocator's peak (accelerators) or XLA's estimate for the program (CPU), per device;
  compiles: XLA compilations after the first step; anything but 0 is a retracing bug.

Stage 1 runs with its perceptual and cross-identity losses on, as a real run does: the packaged
VGG16 and dlib ResNet (config.losses' defaults), or, where their packages are not installed, a VGG19
and an ArcFace r50 with random weights in their place. Stage 2's sizes are the paper pairing:
motion of the stage-1 model of the same variant (or `--stage1_variant`), audio of Wav2Vec2 base
(768).
"""

from __future__ import annotations

import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.bench import common as bench_common

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments"
STAGE_CONFIGS = {1: "face_latent/vox2_512.py", 2: "motion/vox2.py"}
WAV2VEC2_BASE_DIM = 768


def stage_config(stage: int, variant: str | None = None) -> str:
  """The config spec of a stage's paper-size experiment, with its variant argument."""
  spec = str(EXPERIMENTS / STAGE_CONFIGS[stage])
  return f"{spec}:variant={variant}" if variant else spec


def _random_vgg19(dtype, rng):
  from vasa_jax.models.vgg19 import VGG19Features

  model = VGG19Features(dtype=dtype)
  variables = jax.jit(model.init)(rng, jnp.zeros((1, 32, 32, 3), jnp.float32))
  return model.apply, variables


def _random_arcface(dtype, rng):
  from vasa_jax.convert import frozen
  from vasa_jax.models import arcface

  model = arcface.IResNet(arcface.stage_blocks_for_depth(50), dtype=dtype)
  variables = jax.jit(model.init)(
      rng, jnp.zeros((1, arcface.INPUT_SIZE, arcface.INPUT_SIZE, 3), jnp.float32))
  return frozen.arcface_embedding(model), variables


def build_task(config, stage1_variant: str | None = None, audio_dim: int = WAV2VEC2_BASE_DIM):
  """The config's training task, complete without data or pretrained files (see the module
  docstring). Stage 2's motion is that of the `stage1_variant` model (default: the config's own
  variant)."""
  if config.task == "face_latent":
    from vasa_jax.trainers import face_latent

    task = face_latent.make_task(config)
    dtype = jnp.dtype(config.compute_dtype)
    weights = config.losses.weights
    rng = jax.random.key(1)
    if task.vgg is None and weights.get("perceptual", 0.0):
      task.vgg = _random_vgg19(dtype, rng)
      task.weights["perceptual"] = float(weights.perceptual)
    if task.identity_network is None and weights.get("cross_identity", 0.0):
      task.identity_network = _random_arcface(dtype, rng)
      task.weights["cross_identity"] = float(weights.cross_identity)
    return task
  if config.task == "motion":
    from vasa_jax.models.face_latent import networks, warping
    from vasa_jax.trainers import motion

    motion_dim = None
    if not config.stage1.workdir:
      variant = stage1_variant or config.model.variant
      motion_dim = warping.POSE_DIM + networks.make_config(variant).dyn_dim
    return motion.MotionTask(config, motion_dim=motion_dim,
                             audio_dim=None if config.audio.wav2vec2_path else audio_dim)
  raise ValueError(f"task {config.task!r} has no training benchmark; use face_latent or motion")


def synthetic_batch(task, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
  """A batch of random data with the shapes and dtypes the task's data pipeline gives."""
  rng = np.random.default_rng(seed)
  if task.name == "face_latent":
    shape = (batch_size, task.image_size, task.image_size, 3)
    return {k: rng.integers(0, 256, shape, np.uint8) for k in ("source", "driving", "other")}
  c = task.model_config
  frames = c.context + c.window
  return {"motion": rng.standard_normal((batch_size, frames, c.motion_dim), np.float32),
          "audio": rng.standard_normal((batch_size, frames, c.audio_dim), np.float32),
          "valid": np.ones((batch_size, frames), bool),
          "has_previous": np.ones((batch_size,), bool),
          "gaze": rng.uniform(-0.3, 0.3, (batch_size, 2)).astype(np.float32),
          "distance": np.ones((batch_size,), np.float32),
          "emotion": rng.integers(0, c.num_emotions, (batch_size,)).astype(np.int32)}


def measure(config, per_device_batch: int, steps: int = 5, stage1_variant: str | None = None,
            audio_dim: int = WAV2VEC2_BASE_DIM, profile_dir: str | None = None) -> dict:
  """One row of the table (see the module docstring) for `config` at `per_device_batch`."""
  from vasa_jax.trainers import common

  config = config.copy_and_resolve_references()
  mesh = common.create_mesh(config.mesh)
  global_batch = per_device_batch * mesh.size
  with config.unlocked():
    config.batch_size = global_batch
  task = build_task(config, stage1_variant, audio_dim)
  tx, schedule = common.task_optimizer(task, config)
  ema_decay = float(config.get("ema_decay", 0.0))
  init_fn = common.make_init_fn(task, tx, use_ema=ema_decay > 0)
  rng = jax.random.key(0)
  abstract_state = jax.eval_shape(init_fn, rng)
  state_shardings = common.fsdp_shardings(abstract_state, mesh,
                                          config.mesh.get("fsdp_min_size", 2**14))
  data_sharding = common.batch_sharding(mesh)
  accum = int(config.get("grad_accum_steps", 1))
  step = jax.jit(common.make_train_step(task, tx, schedule, mesh, accum, ema_decay),
                 in_shardings=(state_shardings, data_sharding, common.replicated(mesh)),
                 out_shardings=(state_shardings, common.replicated(mesh)), donate_argnums=(0,))
  state = jax.jit(init_fn, out_shardings=state_shardings)(rng)
  batch = common.to_global_batch(synthetic_batch(task, global_batch), data_sharding)

  start = time.perf_counter()
  compiled = step.lower(state, batch, rng).compile()
  compile_s = time.perf_counter() - start
  costs = bench_common.cost(compiled)
  with bench_common.CompileCounter() as compiles:
    state, metrics = step(state, batch, rng)  # Warm-up: the same program, already compiled.
    jax.block_until_ready(metrics)
    with bench_common.profile(profile_dir):
      start = time.perf_counter()
      for _ in range(steps):
        state, metrics = step(state, batch, rng)
      jax.block_until_ready((state, metrics))
      step_s = (time.perf_counter() - start) / steps
  dtype = jnp.dtype(config.compute_dtype).name
  peak, peak_source = bench_common.device_peak(dtype)
  memory = bench_common.peak_memory_bytes()
  memory_source = "allocator peak"
  if memory is None:
    memory, memory_source = bench_common.compiled_memory_bytes(compiled), "XLA estimate"
  examples_per_s = global_batch / step_s
  images = 0
  if task.name == "face_latent":  # The reconstruction, two transfer decodes, the crossed one.
    w = task.weights
    images = 1 + 2 * bool(w["consistency"]) + bool(w["cross_identity"])
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  return {"device": jax.devices()[0].device_kind, "devices": mesh.size, "task": task.name,
          "variant": config.model.variant, "dtype": dtype,
          "resolution": getattr(task, "image_size", None), "remat": bool(
              config.model.get("remat", False)), "per_device_batch": per_device_batch,
          "global_batch": global_batch, "params": int(num_params), "step_ms": 1000 * step_s,
          "examples_per_s": examples_per_s,
          "images_per_s": examples_per_s * images if images else None,
          "tflop_per_step": costs["flops"] / 1e12, "gb_accessed_per_step": costs["bytes"] / 1e9,
          "mfu": costs["flops"] / step_s / peak, "peak_tflops": peak / 1e12,
          "peak_source": peak_source, "memory_gb": None if memory is None else memory / 1e9,
          "memory_source": memory_source, "compile_s": compile_s,
          "compiles_after_warmup": compiles.count,
          "loss": float(metrics["loss"]), "finite": bool(metrics["finite"])}


COLUMNS = (("device", "device", ""), ("task", "task", ""), ("variant", "variant", ""),
           ("px", "resolution", ""), ("dtype", "dtype", ""), ("remat", "remat", ""),
           ("batch/dev", "per_device_batch", "d"), ("step ms", "step_ms", ".1f"),
           ("ex/s", "examples_per_s", ".2f"), ("img/s", "images_per_s", ".2f"),
           ("TFLOP/step", "tflop_per_step", ".3f"), ("MFU", "mfu", ".1%"),
           ("memory GB", "memory_gb", ".2f"), ("compiles", "compiles_after_warmup", "d"))


def table(rows: list[dict]) -> str:
  lines = [bench_common.format_table(rows, COLUMNS)]
  memory = ", ".join(sorted({r["memory_source"] for r in rows}))
  for peak in sorted({f"{r['peak_tflops']:.1f} TFLOP/s ({r['peak_source']})" for r in rows}):
    lines.append(f"MFU over {peak}; memory: {memory}.")
  return "\n".join(lines)


def run(config_spec: str, overrides, batch_sizes, steps: int = 5,
        stage1_variant: str | None = None,
        audio_dim: int = WAV2VEC2_BASE_DIM, profile_dir: str | None = None,
        progress: bool = True) -> list[dict]:
  from vasa_jax import configs

  config = configs.load_config(config_spec, overrides)
  rows = []
  # Ascending: an accelerator's allocator reports its peak since the process started.
  for batch_size in sorted(batch_sizes):
    row = measure(config, batch_size, steps, stage1_variant, audio_dim,
                  f"{profile_dir}/batch{batch_size}" if profile_dir else None)
    row["config"] = config_spec
    row["overrides"] = list(overrides)
    if progress:
      print(json.dumps(row), flush=True)
    rows.append(row)
  return rows
