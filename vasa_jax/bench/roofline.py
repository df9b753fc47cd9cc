"""Roofline of generation and training: `vasa bench roofline --size paper [--device H100]`.

XLA's cost analysis of each program generation and training run, on abstract arguments (nothing is
allocated and nothing runs), per unit of work:
  per generated frame: stage-1 rendering (one render batch / its frames), stage-2 sampling (one
    guided denoiser call x steps / frames per window: W offline, hop streaming) and the audio
    encoder (Wav2Vec2 base, the paper's, on a block with its left and right context / the block's
    frames);
  per training example: the training step of stage 1 (experiments/face_latent/vox2_512.py, its
    perceptual and cross-identity networks on) and of stage 2 (experiments/motion/vox2.py).
The floor of a program on a device is max(FLOPs / peak FLOP/s, bytes / bandwidth): no schedule
runs it faster. Generation programs are compiled for the local backend, so their bytes are those
of its fused program; training steps are only lowered (compiling the paper's stage-1 step takes
minutes on a CPU), so their bytes count every unfused operation's traffic, an upper bound, and
their floor is taken from FLOPs alone. `--measured` adds the measured time of the same row from
`vasa bench generate` / `train` JSON and the gap to the floor.
"""

from __future__ import annotations

import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.bench import common as bench_common
from vasa_jax.errors import UserError


def _abstract(tree):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x)), tree)


def _cost(fn, *args, compile_: bool = True) -> dict[str, float]:
  lowered = jax.jit(fn).lower(*args)
  return bench_common.cost(lowered.compile() if compile_ else lowered)


def generation_costs(size: str, batch: int, dtype: str, hop: int | None = None,
                     audio: str | None = None) -> dict:
  """FLOPs and bytes of one render batch, one guided denoiser call and one audio block.

  `audio`: "wav2vec2" (base, the paper's; default for the base and paper sizes) or "mel" (the
  small sizes' log-mel features, whose cost is left out as negligible)."""
  audio = audio or ("wav2vec2" if size in ("base", "paper") else "mel")
  from vasa_jax.bench import generate
  from vasa_jax.data import schema
  from vasa_jax.diffusion import guidance
  from vasa_jax.models import motion_dit
  from vasa_jax.models.audio import features, wav2vec2
  from vasa_jax.models.face_latent import networks, warping

  dtype = jnp.dtype(dtype)
  face_model = networks.FaceLatentModel.from_variant(size, dtype=dtype)
  r = face_model.config.image_size
  image = jax.ShapeDtypeStruct((1, r, r, 3), jnp.float32)
  params = jax.eval_shape(lambda k: face_model.init(k, jnp.zeros(image.shape), jnp.zeros(
      image.shape))["params"], jax.random.key(0))
  latents = jax.eval_shape(lambda p, x: face_model.apply({"params": p}, x,
                                                         method=face_model.encode), params, image)

  def render(p, v_app, z_id, z_pose, z_dyn, background, background_flow, background_pose):
    expand = lambda x: None if x is None else jnp.broadcast_to(
        x, (z_pose.shape[0],) + x.shape[1:])
    return face_model.apply({"params": p}, expand(v_app), expand(z_id), z_pose, z_dyn,
                            expand(background), expand(background_flow),
                            expand(background_pose),
                            method=face_model.decode)

  dyn = face_model.config.dyn_dim
  render_cost = _cost(render, params, latents["v_app"], latents["z_id"],
                      jax.ShapeDtypeStruct((batch, warping.POSE_DIM), jnp.float32),
                      jax.ShapeDtypeStruct((batch, dyn), jnp.float32),
                      latents.get("background"), latents.get("background_flow"),
                      latents["z_pose"])

  variant, window, context = generate.STAGE2[size]
  wav2vec2_config = wav2vec2.Wav2Vec2Config.variant("base")
  mel = features.MelConfig()
  audio_dim = (wav2vec2_config.hidden_size if audio == "wav2vec2" else
               (features.SAMPLES_PER_FRAME // mel.hop) * mel.n_mels)
  config = motion_dit.make_config(variant, motion_dim=warping.POSE_DIM + dyn, audio_dim=audio_dim,
                                  window=window, context=context,
                                  num_emotions=len(schema.EMOTIONS))
  model = motion_dit.MotionDiT(config, dtype=dtype)
  motion_params = jax.eval_shape(lambda k: model.init(k, *motion_dit.dummy_inputs(config, 1))[
      "params"], jax.random.key(0))
  x_t, t, conditions, keep = _abstract(motion_dit.dummy_inputs(config, 1))
  scales = {"audio": 0.5, "gaze": 1.0}

  def denoise(p, x_t, t, conditions, keep):
    predict = lambda *a: model.apply({"params": p}, *a)  # noqa: E731
    return guidance.guided_x0(predict, x_t, t, conditions, keep, scales)

  motion_cost = _cost(denoise, motion_params, x_t, t, conditions, keep)
  hop = hop or max(1, window // 5)
  result = {"size": size, "resolution": r, "batch": batch, "window": window, "hop": hop,
            "audio": audio,
            "render_batch": render_cost, "denoise": motion_cost,
            "guidance_variants": 1 + len(scales)}
  if audio == "wav2vec2":
    encoder = wav2vec2.Wav2Vec2Model(wav2vec2_config, dtype=dtype)
    w2v_params = wav2vec2.init_shapes(wav2vec2_config, dtype=dtype)
    left, right = 50, 10  # inference.audio.default_context for Wav2Vec2.
    for name, block in (("offline", window), ("streaming", hop)):
      samples = (left + block + right) * features.SAMPLES_PER_FRAME
      audio_cost = _cost(lambda p, a: encoder.apply({"params": p}, a,
                                                       output_hidden_states=False), w2v_params,
                         jax.ShapeDtypeStruct((1, samples), jnp.float32))
      result[f"audio_{name}"] = dict(audio_cost, frames=block)
  return result


def training_costs(stage: int, variant: str, batch: int, dtype: str,
                   stage1_variant: str | None = None) -> dict:
  """FLOPs and (unfused) bytes of one training step of `batch` examples, lowered only; stage 2
  generates the motion of a `stage1_variant` model (default: `variant`)."""
  from vasa_jax import configs
  from vasa_jax.bench import training
  from vasa_jax.trainers import common

  config = configs.load_config(training.stage_config(stage, variant),
                               [f"--config.compute_dtype={dtype}", f"--config.batch_size={batch}"])
  task = training.build_task(config, stage1_variant)
  tx, schedule = common.task_optimizer(task, config)
  ema = float(config.get("ema_decay", 0.0))
  init_fn = common.make_init_fn(task, tx, use_ema=ema > 0)
  state = jax.eval_shape(init_fn, jax.random.key(0))
  mesh = common.create_mesh(config.mesh)
  step = common.make_train_step(task, tx, schedule, mesh, 1, ema)
  batch_shapes = _abstract(training.synthetic_batch(task, batch))
  cost = _cost(step, state, batch_shapes, jax.random.key(0), compile_=False)
  return {"stage": stage, "variant": variant, "batch": batch, "step": cost,
          "params": int(sum(math.prod(x.shape) for x in jax.tree.leaves(state.params)))}


def _floor(flops: float, bytes_: float | None, peak: float, bandwidth: float | None) -> float:
  return max(flops / peak, (bytes_ or 0.0) / bandwidth if bandwidth else 0.0)


def analyse(size: str = "paper", batch: int = 8, steps=(50, 10), hop: int | None = None,
            dtype: str = "bfloat16", device: str = "H100", train: bool = True,
            measured=()) -> dict:
  """The rows of the roofline note (see the module docstring)."""
  dtype_name = jnp.dtype(dtype).name
  if device == "local":  # This machine: its measured matmul rate, and no bandwidth term.
    peak, _ = bench_common.device_peak(dtype_name)
    bandwidth = bench_common.device_bandwidth()
    device = f"local {jax.devices()[0].device_kind}"
  else:
    peaks = bench_common.known_peaks(device)
    if peaks is None or dtype_name not in peaks[0]:
      raise UserError(f"--device {device!r} has no datasheet peak in {dtype_name}; use local or "
                      f"one of {', '.join(name for name, _, _ in bench_common.DEVICE_PEAKS)}")
    peak, bandwidth = peaks[0][dtype_name], peaks[1]
  payloads = []
  for path in measured:  # Read first: a wrong path fails before minutes of analysis.
    try:
      payloads.append(json.loads(pathlib.Path(path).read_text()))
    except (OSError, ValueError) as e:
      raise UserError(f"--measured {path}: {e}; give the JSON `vasa bench generate` or `vasa "
                      "bench train` wrote") from None
  g = generation_costs(size, batch, dtype, hop)
  render = {k: v / batch for k, v in g["render_batch"].items()}
  rows = []
  for num_steps in steps:
    for mode, frames in (("offline", g["window"]), ("streaming", g["hop"])):
      motion = {k: v * num_steps / frames for k, v in g["denoise"].items()}
      audio = g.get(f"audio_{mode}")
      audio = {k: audio[k] / audio["frames"] for k in ("flops", "bytes")} if audio else \
          {"flops": 0.0, "bytes": 0.0}
      parts = {"render": render, "motion": motion, "audio": audio}
      flops = sum(p["flops"] for p in parts.values())
      bytes_ = sum(p["bytes"] for p in parts.values())
      floor = sum(_floor(p["flops"], p["bytes"], peak, bandwidth) for p in parts.values())
      rows.append({"what": f"generated frame, {mode}, {num_steps} steps", "kind": "generate",
                   "mode": mode, "steps": num_steps, "size": size, "resolution": g["resolution"],
                   "batch": batch, "hop": g["hop"] if mode == "streaming" else g["window"],
                   "gflop": flops / 1e9, "gb": bytes_ / 1e9,
                   **{f"{name}_gflop": p["flops"] / 1e9 for name, p in parts.items()},
                   **{f"{name}_floor_ms": 1e3 * _floor(p["flops"], p["bytes"], peak, bandwidth)
                      for name, p in parts.items()},
                   "intensity": flops / max(bytes_, 1.0), "floor_ms": 1e3 * floor,
                   "ceiling_fps": 1.0 / floor})
  if train:
    from vasa_jax.bench import generate

    for stage in (1, 2):
      # Stage 2 of a size is the motion variant the generator pairs with it.
      variant = size if stage == 1 else generate.STAGE2[size][0]
      t = training_costs(stage, variant, batch if stage == 1 else 64, dtype, stage1_variant=size)
      n = t["batch"]
      flops = t["step"]["flops"] / n
      floor = flops / peak
      rows.append({"what": f"stage-{stage} training example", "kind": "train", "stage": stage,
                   "size": variant, "batch": n, "params": t["params"], "gflop": flops / 1e9,
                   "gb": t["step"]["bytes"] / n / 1e9, "intensity": flops * n / max(
                       t["step"]["bytes"], 1.0), "floor_ms": 1e3 * floor,
                   "ceiling_fps": 1.0 / floor, "bytes_unfused": True})
  for payload in payloads:
    _attach_measured(rows, payload)
  return {"rows": rows, "settings": {"size": size, "batch": batch, "dtype": dtype_name,
                                     "device": device, "peak_tflops": peak / 1e12,
                                     "bandwidth_tb_s": bandwidth / 1e12 if bandwidth else None,
                                     "ridge_flop_per_byte": peak / bandwidth if bandwidth else None,
                                     "generate_costs": g}}


def _attach_measured(rows: list[dict], payload: dict) -> None:
  """Adds the measured per-frame / per-example time of matching rows and its ratio to the floor."""
  for m in payload.get("rows", []):
    for row in rows:
      if payload.get("benchmark") == "generate" and row["kind"] == "generate" and \
          m.get("resolution") == row["resolution"] and m.get("steps") == row["steps"] and \
          m.get("batch") == row["batch"]:
        fps = m["fps"] if row["mode"] == "offline" else m["stream_fps"]
        row.update(measured_ms=1e3 / fps, gap=1e3 / fps / row["floor_ms"],
                   measured_on=m["device"])
      if payload.get("benchmark") == "train" and row["kind"] == "train" and \
          m.get("task") == ("face_latent" if row["stage"] == 1 else "motion"):
        row.update(measured_ms=m["step_ms"] / m["global_batch"],
                   gap=m["step_ms"] / m["global_batch"] / row["floor_ms"],
                   measured_on=m["device"])


COLUMNS = (("per", "what", ""), ("GFLOP", "gflop", ".1f"), ("GB", "gb", ".3f"),
           ("FLOP/B", "intensity", ".0f"), ("render GFLOP", "render_gflop", ".1f"),
           ("motion GFLOP", "motion_gflop", ".2f"), ("audio GFLOP", "audio_gflop", ".2f"),
           ("floor ms", "floor_ms", ".3f"), ("ceiling /s", "ceiling_fps", ".0f"),
           ("measured ms", "measured_ms", ".2f"), ("gap x", "gap", ".1f"))


def report(result: dict) -> str:
  s = result["settings"]
  memory = (f"{s['bandwidth_tb_s']:.2f} TB/s, ridge {s['ridge_flop_per_byte']:.0f} FLOP/byte"
            if s["bandwidth_tb_s"] else "bandwidth unknown: floors from FLOPs alone")
  lines = [f"{s['device']}: {s['peak_tflops']:.3g} TFLOP/s {s['dtype']}, {memory}; size "
           f"{s['size']}, render batch {s['batch']}.",
           bench_common.format_table(result["rows"], COLUMNS),
           "floor: sum over the frame's programs of max(FLOPs / peak, bytes / bandwidth); training "
           "rows: FLOPs / peak (their bytes are unfused, an upper bound)."]
  return "\n".join(lines)
