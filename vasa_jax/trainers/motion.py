"""Stage 2: the motion diffusion transformer, trained on cached stage-1 motion latents and audio.

The config names the frozen stage-1 run (`config.stage1.workdir`, `step`); its motion encoder's
per-frame [z_pose, z_dyn] and the audio features of every clip are cached once per split
(`vasa_jax.data.motion_latents`; built on first use, resumable) and the model's sizes are taken from
that cache. With no stage-1 workdir, stage 2 trains on SynthTalk's ground-truth per-frame motion
labels instead (a "labels" cache): the diffusion model alone, without stage 1's errors.

One training example is K + W consecutive frames of a clip (`pipelines.MotionWindows`), motion and audio
normalised by the training cache's statistics. The loss is the simple one on x0,
  || X0 - H(x_t, t, C) ||^2  averaged over the window's real frames,
plus, weighted by `config.losses.velocity` (0 by default; an ablation), the same on frame-to-frame
differences. Conditions are dropped as VASA-1 does for classifier-free guidance: each of audio, gaze,
distance and emotion with probability `config.dropout.<name>` (0.1), the previous window with 0.5,
and with probability `config.dropout.audio_tail` the audio from a random frame to the window's end.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vasa_jax import atomic, runs
from vasa_jax.data import motion_latents, schema
from vasa_jax.diffusion import guidance, schedules
from vasa_jax.errors import UserError
from vasa_jax.models import motion_dit
from vasa_jax.trainers import common

TASK_NAME = "motion"
DROPPED = ("audio", "gaze", "distance", "emotion", "previous")


class MotionTask:
  """`common.Task` of stage 2.

  `motion_dim` / `audio_dim` replace the sizes read from the stage-1 run and the audio encoder (the
  benchmarks build the paper's model without either).
  """

  name = TASK_NAME

  def __init__(self, config: ml_collections.ConfigDict, motion_dim: int | None = None,
               audio_dim: int | None = None):
    self.config = config
    self._caches: dict[str, pathlib.Path] = {}
    unknown = set(config.dropout) - set(DROPPED) - {"audio_tail"}
    if unknown:
      raise UserError(f"config.dropout has unknown conditions {sorted(unknown)}; known: "
                      f"{', '.join(DROPPED)}, audio_tail")
    unknown = set(config.sampling.guidance) - set(guidance_conditions())
    if unknown:
      raise UserError(f"config.sampling.guidance has unknown conditions {sorted(unknown)}; known: "
                      f"{', '.join(guidance_conditions())}")
    W, K = int(config.motion.window), int(config.motion.context)
    if K > W:
      raise UserError(f"config.motion.context K={K} exceeds the window W={W}; the previous frames "
                      "come from the last window, so K <= W")
    self.motion_kind, stage1_dim = stage1_motion_size(config.stage1.workdir)
    motion_dim = motion_dim or stage1_dim
    self.model_config = motion_dit.make_config(
        config.model.variant, motion_dim=motion_dim,
        audio_dim=audio_dim or audio_feature_size(config.audio),
        window=W, context=K, num_emotions=len(schema.EMOTIONS),
        conditioning=config.model.get("conditioning", "adaln_zero"),
        audio_filter=int(config.model.get("audio_filter", 0)))
    self.model = motion_dit.MotionDiT(self.model_config, dtype=jnp.dtype(config.compute_dtype))
    diffusion = config.diffusion
    self.schedule = schedules.make_schedule(diffusion.schedule, int(diffusion.num_steps))

  @functools.cached_property
  def train_folder(self) -> pathlib.Path:
    """The training split's cache (extracted on first use)."""
    folder = self.cache(self.config.data.get("train_split", "train"))
    source = motion_latents.MotionLatentSource(folder)
    c = self.model_config
    if (source.motion_dim, source.audio_dim) != (c.motion_dim, c.audio_dim):
      raise UserError(f"{folder} holds {source.motion_dim}-dim motion and {source.audio_dim}-dim "
                      f"audio, the config asks for {c.motion_dim} and {c.audio_dim}; use another "
                      "config.data.cache_dir")
    logging.info("Stage 2 on %s (%s motion, %d dims; audio %s, %d dims).", folder,
                 self.motion_kind, source.motion_dim, source.meta["audio"]["encoder"],
                 source.audio_dim)
    return folder

  @functools.cached_property
  def stats(self) -> dict[str, np.ndarray]:
    """Per-dimension mean and std of the training cache's motion and audio."""
    stats = motion_latents.compute_stats(self.train_folder)
    if not all(np.all(np.isfinite(stats[k])) for k in ("motion_mean", "motion_std")):
      raise UserError(f"{self.train_folder} has frames without labels (real video measures them "
                      "only where it sees a face), so labels cannot be the motion; set "
                      "config.stage1.workdir to train on stage-1 latents")
    return stats

  # Data.

  def cache(self, split: str) -> pathlib.Path:
    """The latent cache of `split`, extracted first if missing or unfinished."""
    if split not in self._caches:
      self._caches[split] = self._extract(split)
    return self._caches[split]

  def _extract(self, split: str) -> pathlib.Path:
    data = self.config.data
    stage1 = self.config.stage1
    step = int(stage1.step) if stage1.get("step", -1) not in (None, -1) else None
    return motion_latents.extract_split(
        data.data_dir, data.dataset, split, data.get("cache_dir") or data.data_dir,
        dict(self.config.audio), stage1_workdir=stage1.workdir, stage1_step=step,
        batch_size=int(data.get("extract_batch_size", 64)))

  def open_cache(self, split: str) -> motion_latents.MotionLatentSource:
    return motion_latents.MotionLatentSource(self.cache(split))

  def make_data_iterator(self, process_index: int, process_count: int, split: str = "train"):
    from vasa_jax.data import pipelines  # grain: not needed to build or benchmark the model.

    source = motion_latents.MotionLatentSource(
        self.train_folder if split == self.config.data.get("train_split", "train") else
        self.cache(split))
    return pipelines.global_batch_iterator(
        source, seed=self.config.seed, global_batch_size=self.config.batch_size,
        process_index=process_index, process_count=process_count,
        random_transform=pipelines.MotionWindows(self.model_config.window,
                                                 self.model_config.context, self.stats),
        worker_count=self.config.data.get("worker_count", 0))

  # Model.

  def model_summary(self) -> dict:
    c = self.model_config
    return {"name": "motion_dit", "variant": self.config.model.variant,
            "conditioning": c.conditioning, "audio_filter": c.audio_filter,
            "motion": self.motion_kind, "motion_dim": c.motion_dim, "audio_dim": c.audio_dim, "window": c.window,
            "context": c.context}

  def init_params(self, rng: jax.Array):
    return self.model.init(rng, *motion_dit.dummy_inputs(self.model_config, 1))["params"]

  def split_batch(self, batch) -> tuple[jax.Array, dict, dict, jax.Array]:
    """(x0 `[B, W, M]`, conditions, keep with nothing dropped yet, valid `[B, W]`) of a batch."""
    K = self.model_config.context
    valid = batch["valid"][:, K:]
    conditions = {"previous_motion": batch["motion"][:, :K],
                  "previous_audio": batch["audio"][:, :K],
                  "audio": batch["audio"][:, K:], "gaze": batch["gaze"],
                  "distance": batch["distance"], "emotion": batch["emotion"]}
    batch_size = valid.shape[0]
    keep = {"audio": valid, "gaze": jnp.ones((batch_size,), bool),
            "distance": jnp.ones((batch_size,), bool), "emotion": jnp.ones((batch_size,), bool),
            "previous": batch["has_previous"].astype(bool)}
    return batch["motion"][:, K:], conditions, keep, valid

  def training_keep(self, rng: jax.Array, keep: dict) -> dict:
    """Training's condition dropout on `keep` (the same masks guidance drops at sampling)."""
    dropout = self.config.dropout
    tail_rng, drop_rng = jax.random.split(rng)
    p_tail = float(dropout.get("audio_tail", 0.0))
    if p_tail:
      batch, window = keep["audio"].shape
      cut_rng, coin_rng = jax.random.split(tail_rng)
      cut = jax.random.randint(cut_rng, (batch, 1), 1, max(window, 2))
      tail = jax.random.bernoulli(coin_rng, p_tail, (batch, 1))
      keep = dict(keep, audio=keep["audio"] & ~(tail & (jnp.arange(window)[None] >= cut)))
    return guidance.drop_conditions(drop_rng, keep,
                                    {name: float(dropout.get(name, 0.0)) for name in DROPPED})

  def loss_fn(self, params, batch, rng):
    x0, conditions, keep, valid = self.split_batch(batch)
    t_rng, noise_rng, keep_rng = jax.random.split(rng, 3)
    t = jax.random.randint(t_rng, (x0.shape[0],), 0, self.schedule.num_steps)
    noise = jax.random.normal(noise_rng, x0.shape, jnp.float32)
    x_t = schedules.q_sample(self.schedule, x0, t, noise)
    keep = self.training_keep(keep_rng, keep)
    x0_hat = self.model.apply({"params": params}, x_t, t, conditions, keep)
    weights = valid.astype(jnp.float32)

    def masked_mean(error, mask):
      return jnp.sum(jnp.mean(error**2, axis=-1) * mask) / jnp.maximum(mask.sum(), 1)

    x0_mse = masked_mean(x0_hat - x0, weights)
    velocity_mse = masked_mean(jnp.diff(x0_hat, axis=1) - jnp.diff(x0, axis=1),
                               weights[:, 1:] * weights[:, :-1])
    loss = x0_mse + float(self.config.losses.get("velocity", 0.0)) * velocity_mse
    return loss, {"x0_mse": x0_mse, "velocity_mse": velocity_mse,
                  "audio_kept": jnp.sum(keep["audio"] * weights) / jnp.maximum(weights.sum(), 1)}

  # Sampling.

  def generator(self, params, **overrides):
    """A `vasa_jax.diffusion.motion.MotionGenerator` with `config.sampling` (or `overrides`:
    num_steps, method, eta, scales)."""
    from vasa_jax.diffusion.motion import MotionGenerator, sampling_settings

    settings = sampling_settings(self.config.sampling, **overrides)
    return MotionGenerator(self.model, params, self.schedule, self.stats, **settings)

  def predictor(self, run, **overrides):
    """The motion generator of a `runs.Run` of this task (`generator`)."""
    return self.generator(run.params, **overrides)


def stage1_motion_size(workdir: str) -> tuple[str, int]:
  """("latents", 7 + z_dyn size) of a stage-1 run, from its config; ("labels", 15) without one."""
  if not workdir:
    return "labels", len(schema.LABEL_NAMES)
  from vasa_jax import configs
  from vasa_jax.models.face_latent import networks, warping

  path = pathlib.Path(workdir) / "config.json"
  if not path.is_file():
    raise UserError(f"config.stage1.workdir={workdir!r} has no config.json; give the workdir of a "
                    "stage-1 run (vasa train --config experiments/face_latent/...)")
  stage1 = configs.read_json(path)
  if stage1.get("task") != "face_latent":
    raise UserError(f"{path} is a run of task {stage1.get('task')!r}; config.stage1.workdir must "
                    "be a stage-1 (face_latent) run")
  return "latents", warping.POSE_DIM + networks.make_config(stage1.model.variant).dyn_dim


def audio_feature_size(audio: ml_collections.ConfigDict) -> int:
  """Feature size of `config.audio` without loading weights: log-mel, or the Wav2Vec2's width."""
  path = audio.get("wav2vec2_path", "")
  if not path:
    from vasa_jax.data import audio_features

    return audio_features.make_audio_encoder(dict(audio)).dim
  if audio.get("layer", "last") == "weighted":
    raise UserError("config.audio.layer='weighted' gives every layer; stage 2 takes one: 'last' or "
                    "a hidden-state index")
  config_path = pathlib.Path(path) / "config.json"
  if not config_path.is_file():
    raise UserError(f"config.audio.wav2vec2_path={path!r} has no config.json; give a local "
                    "Hugging Face Wav2Vec2 folder (config.json and model.safetensors)")
  return int(json.loads(config_path.read_text())["hidden_size"])


def guidance_conditions() -> tuple[str, ...]:
  return ("audio", "gaze", "distance", "emotion")


def make_task(config: ml_collections.ConfigDict) -> MotionTask:
  return MotionTask(config)


RUN_STATS = "motion_stats.npz"
RUN_SOURCE = "motion_source.json"


def train(config: ml_collections.ConfigDict, workdir: str) -> common.TrainResult:
  """Trains stage 2; `config.evals` run during training and after the last step."""
  task = make_task(config)
  write_run_files(task, workdir)
  return common.train(config, workdir, task)


def write_run_files(task: MotionTask, workdir: str | os.PathLike) -> None:
  """Stores what generation needs besides the checkpoint in the run's workdir, so that the run
  stands alone: `motion_stats.npz` (the training cache's normalisation) and `motion_source.json`
  (the stage-1 checkpoint its latents came from, by absolute path and step, and the audio encoder).
  """
  stats = task.stats  # Extracts the training cache first if needed (all processes).
  if jax.process_index() != 0:
    return
  workdir = pathlib.Path(workdir)
  config_path = workdir / "config.json"
  if config_path.is_file() and json.loads(config_path.read_text()).get("task") != TASK_NAME:
    return  # Not a stage-2 run: common.train refuses it with the reason.
  meta = motion_latents.MotionLatentSource(task.train_folder).meta
  with atomic.writing(workdir / RUN_STATS) as f:
    np.savez(f, **{k: v for k, v in stats.items() if k.startswith(("motion_", "audio_"))})
  atomic.write_json(workdir / RUN_SOURCE, {
      "motion": task.motion_kind, "stage1": meta["stage1"], "audio": dict(task.config.audio),
      "audio_encoder": meta["audio"]})


def read_run_files(workdir: str | os.PathLike) -> tuple[dict | None, dict | None]:
  """(normalisation stats, source) that `write_run_files` stored; (None, None) for an older run."""
  workdir = pathlib.Path(workdir)
  if not (workdir / RUN_STATS).is_file() or not (workdir / RUN_SOURCE).is_file():
    return None, None
  with np.load(workdir / RUN_STATS, allow_pickle=False) as data:
    stats = {name: data[name] for name in data.files}
  return stats, json.loads((workdir / RUN_SOURCE).read_text())


def load(workdir, step: int | None = None) -> tuple[MotionTask, Any, int]:
  """(task, EMA parameters, step) of a stage-2 run's checkpoint."""
  run = runs.load_run(workdir, step, task=TASK_NAME)
  return run.task, run.params, run.step
