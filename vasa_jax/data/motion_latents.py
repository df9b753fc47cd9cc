"""Stage 2's training data: per-frame motion latents of the frozen stage-1 model and audio
features of every clip of a dataset split, computed once and cached.

  vasa motion-latents --stage1 STAGE1_WORKDIR [--step N] --data_dir DIR --dataset synthtalk/tiny \
      --split train,validation --cache_dir CACHE [--wav2vec2 HF_FOLDER --layer last]

Every frame of a clip goes through stage 1's motion encoder (z_pose [7], z_dyn [dyn_dim]) and the
clip's audio through the audio encoder (`vasa_jax.models.audio.features`); each clip keeps exactly
its own frames. Without --stage1 the cache holds no latents, and stage 2 learns SynthTalk's
ground-truth motion labels instead ("labels only"). Results go to
`CACHE/motion_latents/<dataset>/<variant>_step<N>/<split>/` (`labels_only` in place of the stage-1
tag), so latents of different checkpoints never share a folder, in shards of clips:

  shard-00000.npz  per clip k of the shard: z_pose_{k} float32 [T, 7], z_dyn_{k} [T, dyn_dim] (not
                   in a labels-only cache), labels_{k} [T, 15] (`schema.LABEL_NAMES`), audio_{k}
                   [T, A]; per shard: clip_ids, identities (str [n]), num_frames int32 [n], gaze
                   float32 [n, 2], distance float32 [n], emotion int32 [n].
  meta.json        dataset, split, clips, shard_size, stage1 (workdir, step, variant, sizes; or
                   null), audio (encoder, dim), label_names: a cache is never mixed with other
                   settings.
  stats.npz        per-dimension mean and std of motion, audio and labels over all frames (train).

Each shard is written atomically, so a stopped run continues with the shards not yet written.
`MotionLatentSource` reads a cache as a grain random-access source of whole clips.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import threading
from typing import Any

import numpy as np

from vasa_jax import atomic, runs
from vasa_jax.data import schema
from vasa_jax.errors import UserError

LABELS_ONLY = "labels_only"
SHARD_SIZE = 32  # Clips per shard file: what a killed run loses at most.
AUDIO_BATCH_SIZE = 8  # Clips per audio-encoder call.
STD_FLOOR = 1e-6  # A dimension that never moves is scaled by 1, not divided by 0.


# ----------------------------------------------------------------------------------------------------
# The frozen stage-1 model.


def load_stage1(workdir: str | os.PathLike, step: int | None = None,
                batch_size: int = 64) -> Any:
  """The stage-1 model of a face_latent training run's workdir, at `step` (default: latest): a
  `vasa_jax.trainers.face_latent.Stage1`, which encodes frames into motion latents."""

  def no_loss_networks(config):
    # Encoding needs no loss networks, and their weight files may not exist on this machine.
    config.losses.vgg19_path = ""
    config.losses.arcface_path = ""
    config.losses.perceptual_network = "none"
    config.losses.identity_network = "none"

  # quiet: the task's report of the losses left off concerns training only.
  run = runs.load_run(workdir, step, task="face_latent", adjust=no_loss_networks, quiet=True)
  return run.predictor(batch_size=batch_size)


# ----------------------------------------------------------------------------------------------------
# Writing a cache.


def cache_folder(cache_dir: str | os.PathLike, dataset: str, split: str,
                 stage1: Any) -> pathlib.Path:
  tag = stage1.tag if stage1 is not None else LABELS_ONLY
  return pathlib.Path(cache_dir) / "motion_latents" / dataset.replace("/", "_") / tag / split


def shard_path(folder: str | os.PathLike, index: int) -> pathlib.Path:
  return pathlib.Path(folder) / f"shard-{index:05d}.npz"


def extract_split(data_dir: str, dataset: str, split: str, cache_dir: str, audio_config,
                  stage1_workdir: str = "", stage1_step: int | None = None, batch_size: int = 64,
                  shard_size: int = SHARD_SIZE, audio_batch_size: int = AUDIO_BATCH_SIZE
                  ) -> pathlib.Path:
  """Caches the motion latents and audio features of every clip of a split; returns the folder.

  Args:
    data_dir, dataset, split: the split, as `pipelines.open_split` takes it.
    cache_dir: root of the caches; the split goes to `cache_folder(...)` below it.
    audio_config: `audio_features.make_audio_encoder`'s config ({"wav2vec2_path": ""}: log-mel).
    stage1_workdir: a stage-1 training run's workdir; "" writes a labels-only cache.
    stage1_step: its checkpoint (default: latest).
    batch_size: frames per motion-encoder call.
    shard_size: clips per shard file.
    audio_batch_size: clips per audio-encoder call.
  """
  import jax

  from vasa_jax.data import audio_features, pipelines

  if stage1_step is not None and not stage1_workdir:
    raise UserError("a stage-1 step was given without a stage-1 workdir (--stage1)")
  source = pipelines.open_split(data_dir, dataset, split)
  encoder = audio_features.make_audio_encoder(audio_config)
  stage1 = load_stage1(stage1_workdir, stage1_step, batch_size) if stage1_workdir else None
  return _extract(source, dataset, split, cache_dir, stage1, encoder, jax.jit(encoder.apply),
                  shard_size, audio_batch_size)


def _extract(source, dataset: str, split: str, cache_dir: str, stage1: Any, encoder,
             apply, shard_size: int, audio_batch_size: int) -> pathlib.Path:
  """`extract_split` with the models already loaded (the CLI reuses them for several splits)."""
  import jax
  from tqdm import tqdm

  folder = cache_folder(cache_dir, dataset, split, stage1)
  meta = {"dataset": dataset, "split": split, "clips": len(source), "shard_size": shard_size,
          "stage1": stage1.describe() if stage1 is not None else None,
          "audio": {"encoder": encoder.description, "dim": encoder.dim},
          "label_names": list(schema.LABEL_NAMES)}
  meta_path = folder / "meta.json"
  if meta_path.exists():
    written = json.loads(meta_path.read_text())
    if written != meta:
      key = next(k for k in sorted(set(written) | set(meta)) if written.get(k) != meta.get(k))
      raise UserError(f"{folder} holds a cache written with other settings ({key}: "
                      f"{written.get(key)!r} there, {meta.get(key)!r} now); use another "
                      "--cache_dir")
  folder.mkdir(parents=True, exist_ok=True)
  if jax.process_index() == 0 and not meta_path.exists():
    atomic.write_json(meta_path, meta)

  process_index, process_count = jax.process_index(), jax.process_count()
  num_shards = -(-len(source) // shard_size)
  mine = [s for s in range(num_shards) if s % process_count == process_index]
  total = sum(min(shard_size, len(source) - s * shard_size) for s in mine)
  progress = tqdm(total=total, desc=f"motion latents {dataset} {split}", unit="clip")
  for index in mine:
    path = shard_path(folder, index)
    indices = range(index * shard_size, min((index + 1) * shard_size, len(source)))
    if path.exists():
      progress.update(len(indices))
      continue
    clips = [source[i] for i in indices]
    arrays = _shard_arrays(clips, stage1, encoder, apply, audio_batch_size, progress)
    with atomic.writing(path) as f:  # A killed run leaves no file that shard-*.npz matches.
      np.savez(f, **arrays)
  progress.close()
  if process_count > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(f"motion latents {folder}")
  logging.info("Motion latents (%s) and audio features (%s, dim %d) of %d clips in %s.",
               stage1.tag if stage1 is not None else LABELS_ONLY, encoder.description,
               encoder.dim, len(source), folder)
  return folder


def _shard_arrays(clips: list[dict], stage1: Any, encoder, apply, audio_batch_size: int,
                  progress) -> dict[str, np.ndarray]:
  """The npz members of one shard (see the module docstring)."""
  from vasa_jax.data import audio_features

  metas = [clip["meta"] for clip in clips]
  num_frames = [int(m["num_frames"]) for m in metas]
  arrays = {"clip_ids": np.array([_text(m["clip_id"]) for m in metas]),
            "identities": np.array([_text(m["identity"]) for m in metas]),
            "num_frames": np.asarray(num_frames, np.int32),
            "gaze": np.asarray([m["gaze"] for m in metas], np.float32).reshape(len(clips), 2),
            "distance": np.asarray([m["distance"] for m in metas], np.float32),
            "emotion": np.asarray([m["emotion"] for m in metas], np.int32)}
  for k, clip in enumerate(clips):
    labels = schema.stack_labels(clip["labels"])
    if len(labels) != num_frames[k] or len(clip["frames"]) != num_frames[k]:
      raise UserError(f"clip {arrays['clip_ids'][k]} has {len(clip['frames'])} frames and "
                      f"{len(labels)} label rows but num_frames {num_frames[k]}; prepare the "
                      "dataset again")
    arrays[f"labels_{k}"] = labels
  if stage1 is not None:
    for k, (z_pose, z_dyn) in enumerate(_motion_of_clips(stage1, clips, progress)):
      arrays[f"z_pose_{k}"], arrays[f"z_dyn_{k}"] = z_pose, z_dyn
  for k, audio in enumerate(audio_features.encode_clip_audio(encoder, apply, clips,
                                                             audio_batch_size)):
    arrays[f"audio_{k}"] = audio
  if stage1 is None:
    progress.update(len(clips))
  return arrays


def _motion_of_clips(stage1: Any, clips: list[dict], progress
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
  """(z_pose [T, 7], z_dyn [T, dyn_dim]) per clip.

  Consecutive clips share batches, so that only the shard's last batch is padded, and no more than a
  batch and a clip of decoded frames are held at once.
  """
  from vasa_jax.data import pipelines
  from vasa_jax.data.synthtalk.clip import decode_frames

  size = stage1.image_size
  pending: list[tuple[np.ndarray, np.ndarray]] = []
  pending_count = 0
  poses, dyns = [], []

  def encode(frames, landmarks):
    z_pose, z_dyn = stage1.encode_motion(frames, landmarks)
    poses.append(z_pose)
    dyns.append(z_dyn)

  for clip in clips:
    frames = decode_frames(clip["frames"])
    if frames.shape[1:3] != (size, size):
      frames = np.stack([pipelines._resize(frame, size) for frame in frames])  # INTER_AREA.
    landmarks = np.stack([pipelines.landmarks_at(clip, t) for t in range(len(frames))])
    pending.append((frames, landmarks))
    pending_count += len(frames)
    if pending_count >= stage1.batch_size:
      frames, landmarks = (np.concatenate(parts) for parts in zip(*pending))
      full = len(frames) // stage1.batch_size * stage1.batch_size
      encode(frames[:full], landmarks[:full])
      pending, pending_count = [(frames[full:], landmarks[full:])], len(frames) - full
    progress.update(1)
  if pending_count:
    encode(*(np.concatenate(parts) for parts in zip(*pending)))
  z_pose = np.concatenate(poses) if poses else np.zeros((0, stage1.pose_dim), np.float32)
  z_dyn = np.concatenate(dyns) if dyns else np.zeros((0, stage1.dyn_dim), np.float32)
  bounds = np.cumsum([len(clip["frames"]) for clip in clips])[:-1]
  return list(zip(np.split(z_pose, bounds), np.split(z_dyn, bounds)))


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


# ----------------------------------------------------------------------------------------------------
# Reading a cache.


def compute_stats(folder: str | os.PathLike) -> dict[str, np.ndarray]:
  """Per-dimension mean and std over all frames of all clips of a cache, stored as `stats.npz`.

  Returns:
    {"motion_mean", "motion_std", "audio_mean", "audio_std", "labels_mean", "labels_std"}: float32
    [motion_dim], [audio_dim], [15]; stds are at least `STD_FLOOR`. Read back from `stats.npz` when
    it exists.
  """
  import jax

  folder = pathlib.Path(folder)
  path = folder / "stats.npz"
  if path.exists():
    with np.load(path, allow_pickle=False) as data:
      return {name: data[name] for name in data.files}
  source = MotionLatentSource(folder)
  moments = {name: _Moments() for name in ("motion", "audio", "labels")}
  for index in range(source.num_shards):
    with np.load(shard_path(folder, index), allow_pickle=False) as data:
      for k in range(len(data["clip_ids"])):
        for name, values in source._clip_arrays(data, k).items():
          moments[name].add(values)
  stats = {}
  for name, moment in moments.items():
    stats[f"{name}_mean"] = np.asarray(moment.mean, np.float32)
    stats[f"{name}_std"] = np.maximum(np.sqrt(moment.m2 / max(moment.count, 1)),
                                      STD_FLOOR).astype(np.float32)
  if jax.process_index() == 0:
    with atomic.writing(path) as f:
      np.savez(f, **stats)
  return stats


class _Moments:
  """Running count, mean and sum of squared deviations over the first axis (Chan et al.'s merge,
  in float64: exact enough over millions of frames, unlike sums of squares)."""

  def __init__(self):
    self.count, self.mean, self.m2 = 0, 0.0, 0.0

  def add(self, values: np.ndarray) -> None:
    values = np.asarray(values, np.float64)
    count = len(values)
    if not count:
      return
    mean = values.mean(axis=0)
    m2 = ((values - mean) ** 2).sum(axis=0)
    total = self.count + count
    delta = mean - self.mean
    self.mean = self.mean + delta * count / total
    self.m2 = self.m2 + m2 + delta ** 2 * self.count * count / total
    self.count = total


_READ_LOCK = threading.Lock()


class MotionLatentSource:
  """A cache written by `extract_split` as a grain random-access source of whole clips.

  Item i: "motion" float32 [T, motion_dim] (z_pose then z_dyn; the labels in a labels-only cache),
  "labels" float32 [T, 15], "audio" float32 [T, audio_dim], "gaze" float32 [2], "distance" float32
  [], "emotion" int32 [], "clip_id" and "identity" str. Members are read from the shard files only
  when asked for, and no file stays open, so copies of the source (grain workers) share nothing.
  """

  def __init__(self, folder: str | os.PathLike):
    self.folder = pathlib.Path(folder)
    meta_path = self.folder / "meta.json"
    if not meta_path.exists():
      raise UserError(f"no motion latents in {self.folder} (it has no meta.json); compute them "
                      "with vasa motion-latents")
    self._meta = json.loads(meta_path.read_text())
    self.num_shards = -(-self._meta["clips"] // self._meta["shard_size"])
    missing = [i for i in range(self.num_shards) if not shard_path(self.folder, i).exists()]
    if missing:
      stage1 = self._meta["stage1"]
      how = (f"vasa motion-latents --data_dir DATA_DIR --dataset {self._meta['dataset']} "
             f"--split {self._meta['split']} --cache_dir {self.folder.parents[3]}")
      if stage1:
        how += f" --stage1 {stage1['workdir']} --step {stage1['step']}"
      raise UserError(f"{self.folder} is incomplete ({len(missing)} of {self.num_shards} shards "
                      f"missing, e.g. {shard_path(self.folder, missing[0]).name}); finish it with: "
                      f"{how} (and the same audio encoder: {self._meta['audio']['encoder']})")
    self._per_shard: dict[int, dict[str, np.ndarray]] = {}  # The small per-clip arrays.

  @property
  def meta(self) -> dict:
    return self._meta

  @property
  def has_latents(self) -> bool:
    return self._meta["stage1"] is not None

  @property
  def motion_dim(self) -> int:
    stage1 = self._meta["stage1"]
    return stage1["pose_dim"] + stage1["dyn_dim"] if stage1 else len(self._meta["label_names"])

  @property
  def audio_dim(self) -> int:
    return int(self._meta["audio"]["dim"])

  def __len__(self) -> int:
    return int(self._meta["clips"])

  def __getitem__(self, index) -> dict[str, Any]:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"clip {index} of a cache of {len(self)} clips")
    shard, k = divmod(index, self._meta["shard_size"])
    # numpy parses .npy headers with ast.literal_eval, which CPython before 3.11.8 / 3.12.1 does not
    # make thread-safe (SystemError "AST constructor recursion depth mismatch" under grain's read
    # threads); reads of this small data are serialised.
    with _READ_LOCK, np.load(shard_path(self.folder, shard), allow_pickle=False) as data:
      per_shard = self._per_shard.get(shard)
      if per_shard is None:
        per_shard = {name: data[name] for name in ("clip_ids", "identities", "gaze", "distance",
                                                   "emotion")}
        self._per_shard[shard] = per_shard
      item = self._clip_arrays(data, k)
    item.update(gaze=per_shard["gaze"][k].copy(), distance=np.float32(per_shard["distance"][k]),
                emotion=np.int32(per_shard["emotion"][k]), clip_id=str(per_shard["clip_ids"][k]),
                identity=str(per_shard["identities"][k]))
    return item

  def _clip_arrays(self, data, k: int) -> dict[str, np.ndarray]:
    """{"motion", "labels", "audio"} of clip k of an open shard."""
    labels = data[f"labels_{k}"]
    motion = (np.concatenate([data[f"z_pose_{k}"], data[f"z_dyn_{k}"]], axis=-1)
              if self.has_latents else labels)
    return {"motion": motion, "labels": labels, "audio": data[f"audio_{k}"]}


# ----------------------------------------------------------------------------------------------------
# Command line.


def register(subparsers) -> None:
  from vasa_jax.data import audio_features

  parser = subparsers.add_parser(
      "motion-latents", help="cache stage 1's motion latents and the audio features of dataset "
      "splits for stage 2", description=__doc__.split("\n\n")[0])
  parser.add_argument("--stage1", default="", metavar="WORKDIR",
                      help="workdir of a stage-1 (face_latent) run; without it, the cache holds "
                      "the dataset's motion labels only (SynthTalk)")
  parser.add_argument("--step", type=int, default=None,
                      help="stage-1 checkpoint step (default: latest)")
  audio_features.add_dataset_and_encoder_arguments(parser)
  parser.add_argument("--split", default="train", metavar="SPLIT[,SPLIT]",
                      help="one split or several, e.g. train,validation; statistics are computed "
                      "for train")
  parser.add_argument("--cache_dir", required=True, help="where the caches are stored")
  parser.add_argument("--batch_size", type=int, default=64, help="frames per motion-encoder call")
  parser.set_defaults(handler=_command)


def _command(args) -> int:
  import jax

  from vasa_jax.data import audio_features, pipelines

  if args.step is not None and not args.stage1:
    raise UserError("--step needs --stage1 (the stage-1 workdir)")
  splits = [split for split in args.split.split(",") if split]
  if not splits:
    raise UserError("--split names no split; e.g. --split train,validation")
  sources = {split: pipelines.open_split(args.data_dir, args.dataset, split) for split in splits}
  layer = int(args.layer) if args.layer.lstrip("-").isdigit() else args.layer
  encoder = audio_features.make_audio_encoder({"wav2vec2_path": args.wav2vec2, "layer": layer})
  apply = jax.jit(encoder.apply)
  stage1 = load_stage1(args.stage1, args.step, args.batch_size) if args.stage1 else None
  for split, source in sources.items():
    folder = _extract(source, args.dataset, split, args.cache_dir, stage1, encoder, apply,
                      SHARD_SIZE, AUDIO_BATCH_SIZE)
    if split == "train":
      compute_stats(folder)
    print(folder)
  return 0
