"""CAPP: the contrastive audio-pose model that VASA-1's evaluation scores head motion with.

Trains `vasa_jax.models.capp.CappModel` on real pairs of audio and head pose: one example is a
window of `config.model.window_seconds` (the paper: 3 s) of one clip, its per-frame audio features
and its yaw, pitch and roll. The loss is CLIP's symmetric InfoNCE over the batch: each audio window
must pick its own pose window among the batch's, and each pose window its audio, at a learned
temperature.

Negatives from other clips teach which speech goes with which motion, not when, nor how much: the
score must also fall when the pose is a few frames late or moves too little or too much, which is
what the paper's sanity checks ask of it. So, beside the other clips (`config.negatives`; our
addition, the paper names only the loss's CLIP form):
  shifted: each clip gives the batch two windows 1..`max_shift` frames apart, so that every
    window's negatives include its own clip's pose a few frames off (a window drawn twice, when the
    clip leaves no room, is no negative of itself);
  scaled: each audio window also meets `scaled` copies of its own pose whose deviation from the
    window's first frame is scaled by f or 1/f, f log-uniform in `scale_range` (1.5 to 4).
`config.batch_size` counts clips: a batch has two windows per clip with `shifted`.

Data come from the motion task's cache (`vasa_jax.data.motion_latents`, labels only: per clip the
audio features of `config.audio` and the 15 per-frame labels), so a dataset stage 2 can train on
serves here without decoding a frame: SynthTalk (exact head pose) or real video prepared by
`vasa prepare` (head pose measured from landmarks, NaN where no face was found). A training window
is drawn among those whose frames all have a pose when the clip has one; otherwise its frames
without a pose are masked, as are the padding frames after the end of a clip shorter than a window.
Audio features are normalised by the training cache's per-dimension mean and std, stored in the run
(`capp_stats.npz`) with the audio encoder's settings (`capp_source.json`), so that
`vasa_jax.evaluators.capp.CappScorer` can score any audio and pose with the run alone.

After the last step the `capp_retrieval` evaluator (`vasa_jax.evaluators.capp.Evaluator`) scores
the held-out split (eval/<name>_<step>.json in the workdir): retrieval
accuracy among all its windows (audio to pose and pose to audio, with chance level), the mean
cosine of paired and of unpaired windows, and the paper's sanity curves: the score with the pose
delayed by 0..`shifts` frames, and with the pose's deviation from its first frame scaled by each of
`scales`.

  vasa train --config experiments/evals/capp.py --workdir runs/capp --config.data.data_dir=DATA
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vasa_jax import atomic, runs
from vasa_jax.data import motion_latents, pipelines, schema
from vasa_jax.errors import UserError
from vasa_jax.models import capp as capp_model
from vasa_jax.trainers import common

TASK_NAME = "capp"
RUN_STATS = "capp_stats.npz"
RUN_SOURCE = "capp_source.json"
POSE_COLUMNS = tuple(schema.LABEL_NAMES.index(name) for name in ("yaw", "pitch", "roll"))


def window_frames(seconds: float) -> int:
  """Frames of a window of `seconds` at 25 fps."""
  return int(round(float(seconds) * schema.FPS))


def clip_key(clip_id: str) -> np.int32:
  """A stable 31-bit number naming a clip, so that a batch can tell windows of one clip apart."""
  return np.int32(zlib.crc32(str(clip_id).encode()) & 0x7FFFFFFF)


@dataclasses.dataclass
class CappWindows:
  """Training samples: `windows_per_clip` windows of `window` frames of one clip of a labels cache.

  The first window is drawn among those whose frames all have a pose, when the clip has any;
  otherwise (a clip shorter than a window, or one whose face is lost too often) among all, with
  frames without a pose and frames past the clip's end marked invalid. Each further window starts
  1..`max_shift` frames before or after the first (where the clip leaves room; otherwise it is the
  first one again, which the loss then ignores): in the batch its pose is the first window's pose
  a few frames off, a hard negative of the first window's audio, and the reverse.

  With `scale_negatives`, each window also gets that many copies of its pose whose deviation from
  the window's first frame is scaled by f or 1/f, f log-uniform in `scale_range`: the same motion,
  too small or too large.

  Output, P = `windows_per_clip`, M = `scale_negatives`: "audio" float32 `[P, window, A]`
  (normalised by `audio_mean`, `audio_std`), "pose" float32 `[P, window, 3]` (yaw, pitch, roll
  radians; 0 where invalid), "valid" bool `[P, window]`, "start" int32 `[P]`, "clip_key" int32,
  "scaled_pose" `[P, M, window, 3]`.
  """

  window: int
  audio_mean: np.ndarray
  audio_std: np.ndarray
  windows_per_clip: int = 1
  max_shift: int = 4
  scale_negatives: int = 0
  scale_range: tuple[float, float] = (1.5, 4.0)

  def __call__(self, clip: dict, rng: np.random.Generator) -> dict:
    W = self.window
    pose = np.asarray(clip["labels"], np.float32)[:, POSE_COLUMNS]
    audio = (np.asarray(clip["audio"], np.float32) - self.audio_mean) / self.audio_std
    num_frames = len(pose)
    seen = np.isfinite(pose).all(axis=-1)
    pose = np.where(seen[:, None], pose, 0.0)
    start = 0
    if num_frames > W:
      missing = np.concatenate([[0], np.cumsum(~seen)])
      complete = np.flatnonzero(missing[W:] - missing[:-W] == 0)
      starts = complete if len(complete) else np.arange(num_frames - W + 1)
      start = int(starts[rng.integers(len(starts))])
    moves = [d for d in range(-self.max_shift, self.max_shift + 1)
             if d and 0 <= start + d <= num_frames - W]
    starts = [start] + [start + (int(moves[rng.integers(len(moves))]) if moves else 0)
                        for _ in range(self.windows_per_clip - 1)]
    P, M = len(starts), self.scale_negatives
    out = {"audio": np.zeros((P, W, audio.shape[1]), np.float32),
           "pose": np.zeros((P, W, 3), np.float32), "valid": np.zeros((P, W), bool),
           "start": np.asarray(starts, np.int32), "clip_key": clip_key(clip["clip_id"]),
           "scaled_pose": np.zeros((P, M, W, 3), np.float32)}
    for p, first in enumerate(starts):
      n = min(first + W, num_frames) - first
      out["audio"][p, :n] = audio[first:first + n]
      out["pose"][p, :n] = pose[first:first + n]
      out["valid"][p, :n] = seen[first:first + n]
      reference = out["pose"][p, np.argmax(out["valid"][p])]
      for m in range(M):
        factor = np.exp(rng.uniform(*np.log(self.scale_range)))
        factor = factor if rng.random() < 0.5 else 1.0 / factor
        out["scaled_pose"][p, m] = np.where(
            out["valid"][p, :, None], reference + factor * (out["pose"][p] - reference), 0.0)
    return out


def contrastive_loss(audio_emb: jax.Array, pose_emb: jax.Array, logit_scale: jax.Array,
                     exclude: jax.Array | None = None, scaled_emb: jax.Array | None = None
                     ) -> tuple[jax.Array, dict]:
  """Symmetric InfoNCE of unit embeddings `[N, D]`: audio window i must pick pose window i among
  all N, and pose window i audio window i.

  Args:
    exclude: bool `[N, N]`, pairs that are not negatives (a window drawn twice).
    scaled_emb: `[N, M, D]`, further pose negatives of each audio window (its pose scaled), added
      to its row of the audio-to-pose softmax.

  Returns:
    (loss, metrics).
  """
  cosine = audio_emb @ pose_emb.T
  n = cosine.shape[0]
  diagonal = jnp.eye(n, dtype=bool)
  logits = logit_scale * cosine
  if exclude is not None:
    logits = jnp.where(exclude & ~diagonal, -1e9, logits)
  labels = jnp.arange(n)
  rows = logits
  paired = jnp.diagonal(cosine)
  metrics = {}
  if scaled_emb is not None and scaled_emb.shape[1]:
    scaled_cosine = jnp.einsum("nd,nmd->nm", audio_emb, scaled_emb)
    rows = jnp.concatenate([logits, logit_scale * scaled_cosine], axis=1)
    metrics["scaled_margin"] = jnp.mean(paired[:, None] - scaled_cosine)
  log_p_pose = jax.nn.log_softmax(rows, axis=1)[labels, labels]
  log_p_audio = jax.nn.log_softmax(logits, axis=0)[labels, labels]
  loss = -0.5 * (jnp.mean(log_p_pose) + jnp.mean(log_p_audio))
  off = ~diagonal
  metrics.update(
      accuracy=jnp.mean(jnp.argmax(logits, axis=1) == labels),
      paired_cosine=jnp.mean(paired),
      unpaired_cosine=jnp.sum(jnp.where(off, cosine, 0.0)) / max(n * (n - 1), 1),
      temperature=1.0 / logit_scale)
  return loss, metrics


class CappTask:
  """`common.Task` of CAPP."""

  name = TASK_NAME

  def __init__(self, config: ml_collections.ConfigDict):
    from vasa_jax.trainers import motion

    self.config = config
    self._caches: dict[str, pathlib.Path] = {}
    pose = config.get("pose", ml_collections.ConfigDict())
    self.model_config = capp_model.make_config(
        config.model.variant, audio_dim=motion.audio_feature_size(config.audio),
        window=window_frames(config.model.window_seconds),
        pose_scale=tuple(pose.get("scale", capp_model.POSE_SCALE)),
        velocity_scale=tuple(pose.get("velocity_scale", capp_model.VELOCITY_SCALE)))
    self.window = self.model_config.window
    self.model = capp_model.CappModel(self.model_config, dtype=jnp.dtype(config.compute_dtype))
    self.negatives = check_negatives(config.get("negatives", ml_collections.ConfigDict()))

  # Data.

  def cache(self, split: str) -> pathlib.Path:
    """The labels cache of `split` (the motion task's), extracted first if missing or unfinished."""
    if split not in self._caches:
      data = self.config.data
      self._caches[split] = motion_latents.extract_split(
          data.data_dir, data.dataset, split, data.get("cache_dir") or data.data_dir,
          dict(self.config.audio), stage1_workdir="",
          batch_size=int(data.get("extract_batch_size", 64)))
    return self._caches[split]

  @functools.cached_property
  def train_folder(self) -> pathlib.Path:
    folder = self.cache(self.config.data.get("train_split", "train"))
    source = motion_latents.MotionLatentSource(folder)
    if source.audio_dim != self.model_config.audio_dim:
      raise UserError(f"{folder} holds {source.audio_dim}-dim audio features, the config asks for "
                      f"{self.model_config.audio_dim}; use another config.data.cache_dir")
    return folder

  @functools.cached_property
  def stats(self) -> dict[str, np.ndarray]:
    """The training cache's per-dimension audio mean and std."""
    stats = motion_latents.compute_stats(self.train_folder)
    return {"audio_mean": stats["audio_mean"], "audio_std": stats["audio_std"]}

  def make_data_iterator(self, process_index: int, process_count: int):
    source = motion_latents.MotionLatentSource(self.train_folder)
    return pipelines.global_batch_iterator(
        source, seed=self.config.seed, global_batch_size=self.config.batch_size,
        process_index=process_index, process_count=process_count,
        random_transform=CappWindows(self.window, self.stats["audio_mean"],
                                     self.stats["audio_std"], **self.negatives),
        worker_count=self.config.data.get("worker_count", 0))

  # Model.

  def model_summary(self) -> dict:
    c = self.model_config
    return {"name": "capp", "variant": self.config.model.variant, "window": c.window,
            "audio_dim": c.audio_dim, "pose_scale": list(c.pose_scale),
            "velocity_scale": list(c.velocity_scale)}

  def predictor(self, run) -> "Loaded":
    """A `runs.Run` of this task with the audio normalisation it was trained with."""
    stats, source = read_run_files(run.workdir)
    return Loaded(task=self, params=run.params, step=run.step, workdir=run.workdir, stats=stats,
                  source=source)

  def init_params(self, rng: jax.Array):
    return self.model.init(rng, *capp_model.dummy_inputs(self.model_config, 1))["params"]

  def embed(self, params, audio: jax.Array, pose: jax.Array, valid: jax.Array):
    """(audio embeddings, pose embeddings, logit scale) of windows `[B, W, ...]`."""
    return self.model.apply({"params": params}, audio, pose, valid)

  def loss_fn(self, params, batch, rng):
    del rng  # Deterministic model.
    B, P, W = batch["valid"].shape
    M = batch["scaled_pose"].shape[2]
    N = B * P
    valid = batch["valid"].reshape(N, W)
    model = self.model
    audio_emb = model.apply({"params": params}, batch["audio"].reshape(N, W, -1), valid,
                            method=model.embed_audio)
    # The true and the scaled poses in one call of the pose tower.
    poses = jnp.concatenate([batch["pose"].reshape(N, W, 3),
                             batch["scaled_pose"].reshape(N * M, W, 3)])
    pose_valid = jnp.concatenate([valid, jnp.repeat(valid, M, axis=0)])
    pose_emb = model.apply({"params": params}, poses, pose_valid, method=model.embed_pose)
    pose_emb, scaled_emb = pose_emb[:N], pose_emb[N:].reshape(N, M, -1)
    scale = model.apply({"params": params}, method=model.temperature_scale)
    keys = jnp.repeat(batch["clip_key"], P)
    starts = batch["start"].reshape(N)
    exclude = (keys[:, None] == keys[None, :]) & (starts[:, None] == starts[None, :])
    loss, metrics = contrastive_loss(audio_emb, pose_emb, scale, exclude, scaled_emb)
    if P > 1:  # How often a window's own pose beats its clip's other window, a few frames off.
      cosine = jnp.einsum("bpd,bqd->bpq", audio_emb.reshape(B, P, -1), pose_emb.reshape(B, P, -1))
      other = ~exclude.reshape(B, P, B, P)[jnp.arange(B), :, jnp.arange(B), :]
      wins = (jnp.diagonal(cosine, axis1=1, axis2=2)[:, :, None] > cosine) & other
      metrics["shifted_accuracy"] = wins.sum() / jnp.maximum(other.sum(), 1)
    return loss, metrics


def check_negatives(negatives) -> dict[str, Any]:
  """`CappWindows`' hard-negative settings from `config.negatives` (none when it is empty)."""
  shifted = bool(negatives.get("shifted", False))
  max_shift = int(negatives.get("max_shift", 4))
  scaled = int(negatives.get("scaled", 0))
  scale_range = tuple(float(f) for f in negatives.get("scale_range", (1.5, 4.0)))
  if shifted and max_shift < 1:
    raise UserError(f"config.negatives.max_shift={max_shift}: shifted windows need at least 1")
  if scaled < 0 or len(scale_range) != 2 or not 1.0 < scale_range[0] <= scale_range[1]:
    raise UserError(f"config.negatives: scaled={scaled} must be >= 0 and scale_range="
                    f"{list(scale_range)} two factors 1 < low <= high")
  return dict(windows_per_clip=2 if shifted else 1, max_shift=max_shift,
              scale_negatives=scaled, scale_range=scale_range)


def make_task(config: ml_collections.ConfigDict) -> CappTask:
  return CappTask(config)


# ----------------------------------------------------------------------------------------------------
# Run files, training, loading.


def write_run_files(task: CappTask, workdir: str | os.PathLike) -> None:
  """Stores what scoring needs besides the checkpoint: `capp_stats.npz` (the audio normalisation)
  and `capp_source.json` (the audio encoder's settings and description, the training data)."""
  stats = task.stats  # Extracts the training cache first if needed (all processes).
  if jax.process_index() != 0:
    return
  workdir = pathlib.Path(workdir)
  config_path = workdir / "config.json"
  if config_path.is_file() and json.loads(config_path.read_text()).get("task") != TASK_NAME:
    return  # Not a CAPP run: common.train refuses it with the reason.
  with atomic.writing(workdir / RUN_STATS) as f:
    np.savez(f, **stats)
  meta = motion_latents.MotionLatentSource(task.train_folder).meta
  atomic.write_json(workdir / RUN_SOURCE, {
      "audio": dict(task.config.audio), "audio_encoder": meta["audio"],
      "dataset": meta["dataset"], "train_clips": meta["clips"]})


def read_run_files(workdir: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
  workdir = pathlib.Path(workdir)
  if not (workdir / RUN_STATS).is_file() or not (workdir / RUN_SOURCE).is_file():
    raise UserError(f"{workdir} has no {RUN_STATS} / {RUN_SOURCE}; it was not trained by "
                    "`vasa train --config experiments/evals/capp.py` (train it that way)")
  with np.load(workdir / RUN_STATS, allow_pickle=False) as data:
    stats = {name: data[name] for name in data.files}
  return stats, json.loads((workdir / RUN_SOURCE).read_text())


def train(config: ml_collections.ConfigDict, workdir: str,
          mesh: jax.sharding.Mesh | None = None) -> common.TrainResult:
  """Trains CAPP; its `capp_retrieval` evaluator (`config.evals`) scores the held-out split after
  the last step (see the module docs)."""
  task = make_task(config)
  write_run_files(task, workdir)
  return common.train(config, workdir, task, mesh=mesh)


@dataclasses.dataclass
class Loaded:
  task: CappTask
  params: Any
  step: int
  workdir: pathlib.Path
  stats: dict[str, np.ndarray]
  source: dict


def load(workdir: str | os.PathLike, step: int | None = None) -> Loaded:
  """A trained CAPP run: its task, parameters (EMA when kept) at `step` (default: the latest),
  and the audio normalisation it was trained with."""
  return runs.load_run(workdir, step, task=TASK_NAME).predictor()
