"""grain pipelines that deliver each process its share of every global batch, and the samples each
stage draws: `FaceFrameTriplets` from a talking-face dataset for stage 1, `MotionWindows` from a
motion-latent cache for stage 2.

Global batch g is made of the examples g*B .. (g+1)*B-1 of one shuffled, endlessly repeated stream (each
epoch reshuffled from the seed). Process p of P receives rows p*B/P .. (p+1)*B/P-1 of it, which is where
`jax.make_array_from_process_local_data` places them in the global array. So the trainer sees the same
global batches whatever the number of processes, and the iterator's position, saved with the trainer's
checkpoints, fixes the batches that follow a restart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import grain
import numpy as np

from vasa_jax.data import schema
from vasa_jax.errors import UserError


def global_batch_iterator(
    source: Any,
    *,
    seed: int,
    global_batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
    transform: Callable[[Any], Any] | None = None,
    random_transform: Callable[[Any, np.random.Generator], Any] | None = None,
    shuffle: bool = True,
    worker_count: int = 0,
    read_threads: int = 2,
    prefetch: int = 8,
) -> grain.DatasetIterator:
  """Returns this process's iterator over local batches of a random-access `source`.

  Args:
    source: a grain random-access data source (`__len__` and `__getitem__`).
    seed: shuffle seed; epoch e is shuffled with a seed derived from (seed, e).
    global_batch_size: examples per global batch, across all processes.
    process_index, process_count: this process and how many share the batch.
    transform: applied to every example before batching.
    random_transform: applied after `transform` with a generator seeded by (seed, position in the
      stream), so augmentation and sampling are reproducible and differ between epochs.
    shuffle: False keeps the source order (evaluation).
    worker_count: grain worker processes (0 = decode in this process).
    read_threads, prefetch: threads and buffered examples per process.

  Returns:
    An iterator of dicts of numpy arrays `[global_batch_size // process_count, ...]` with
    `get_state()` / `set_state()`.
  """
  if global_batch_size % process_count:
    raise UserError(f"the global batch size {global_batch_size} does not split over "
                    f"{process_count} processes; use a multiple of {process_count}")
  local_batch_size = global_batch_size // process_count
  dataset = grain.MapDataset.source(source)
  if shuffle:
    dataset = dataset.shuffle(seed=seed)
  dataset = dataset.repeat()
  if transform is not None:
    dataset = dataset.map(transform)
  if random_transform is not None:
    dataset = dataset.random_map(random_transform, seed=seed)
  dataset = dataset.batch(local_batch_size, drop_remainder=True)
  dataset = dataset[process_index::process_count]
  iter_dataset = dataset.to_iter_dataset(
      grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch))
  if worker_count > 0:
    iter_dataset = iter_dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
  return iter(iter_dataset)


# ----------------------------------------------------------------------------------------------------
# Talking-face datasets (data/README.md): stage 1 frame triplets, stage 2 motion windows.


def open_split(data_dir: str, name: str, split: str):
  """The random-access source of one split of a prepared talking-face dataset.

  Args:
    data_dir: the tfds data folder SynthTalk was built into, or the output folder of
      `vasa prepare` for "talking_videos".
    name: "synthtalk/<config>" (e.g. "synthtalk/tiny") or "talking_videos".
    split: "train", "validation" or "test".
  """
  dataset, _, config = name.partition("/")
  if dataset == "talking_videos":
    from vasa_jax.data import talking_videos

    data_builder = talking_videos.dataset_builder(data_dir)
    if not data_builder.is_prepared():
      raise UserError(f"no prepared videos in {data_dir}; run: vasa prepare --input RAW_VIDEOS "
                      f"--output {data_dir}")
  elif dataset == "synthtalk":
    from vasa_jax.data.synthtalk import builder as synthtalk

    synthtalk_config = synthtalk.config_from_name(config)
    if synthtalk_config is None:
      raise UserError(f"unknown SynthTalk config {config!r}; known: {sorted(synthtalk.CONFIGS)}, "
                      "or a custom one by its name (r<resolution>_n<train>_<validation>_<test>"
                      "_s<seed>)")
    data_builder = synthtalk.builder(config=synthtalk_config, data_dir=data_dir)
    if not data_builder.is_prepared():
      how = (f"--config {config}" if config in synthtalk.CONFIGS else
             f"--resolution {synthtalk_config.resolution} --clips "
             f"{' '.join(str(n) for n in synthtalk_config.split_clips.values())} "
             f"--seed {synthtalk_config.seed}")
      raise UserError(f"dataset {name} is not built in {data_dir}; build it with: vasa synthtalk "
                      f"build {how} --data_dir {data_dir}")
  else:
    raise UserError(f"unknown dataset {name!r}; use synthtalk/<config> or talking_videos")
  if split not in data_builder.info.splits:
    raise UserError(f"dataset {name} in {data_dir} has no split {split!r}; it has "
                    f"{sorted(data_builder.info.splits)}")
  return data_builder.as_data_source(split)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
  import cv2

  if image.shape[0] == size and image.shape[1] == size:
    return image
  return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


@dataclasses.dataclass
class FaceFrameTriplets:
  """Stage 1 samples: a source and a driving frame of one identity, and a frame of another identity.

  With probability `cross_clip` (where the identity has several clips) the driving frame comes
  from another clip of the source's identity, so what is constant within a clip (base head pose,
  gaze, distance, emotion) must travel through the motion codes rather than the appearance; else
  both frames come from one clip, and then, with probability `nearby`, the driving frame lies
  within `nearby_frames` of the source (a pair whose head pose barely differs, so what is left to
  explain is the mouth and the eyes). Augmentation (when `augment`): one colour jitter (brightness,
  contrast, saturation) shared by the source and driving frames, so the pair still shows the same
  face, and another for the other identity's frame; and, with probability `flip`, all three frames
  mirrored left-right, with the labels and landmarks mirrored to match (yaw, roll, tx and the gaze's
  horizontal angle change sign; the eyes swap): a mirrored face is another plausible identity,
  which the pose and motion encoders must generalise to. Output, per example: "source", "driving",
  "other" uint8 [size, size, 3]; "source_labels", "driving_labels" float32 [len(LABEL_NAMES)];
  "source_landmarks", "driving_landmarks", "other_landmarks" float32 [len(LANDMARK_NAMES), 2]
  ((x, y) / size, NaN where unknown).
  The clips of each identity are indexed on first use (one pass over the split's records).
  """

  source: Any
  image_size: int
  augment: bool = True
  cross_clip: float = 0.5
  flip: float = 0.5
  nearby: float = 0.0
  nearby_frames: int = 8
  _by_identity: dict | None = dataclasses.field(default=None, init=False, repr=False)

  def __call__(self, clip: dict, rng: np.random.Generator) -> dict:
    from vasa_jax.data.synthtalk.clip import decode_frames

    num_frames = len(clip["frames"])
    source_t, driving_t = rng.choice(num_frames, size=2, replace=num_frames < 2)
    driving_clip = clip
    if self.cross_clip > 0 and rng.random() < self.cross_clip:
      driving_clip = self._same_identity(clip, rng)
      driving_t = int(rng.integers(len(driving_clip["frames"])))
    elif self.nearby > 0 and rng.random() < self.nearby:
      driving_t = int(rng.integers(max(0, source_t - self.nearby_frames),
                                   min(num_frames, source_t + self.nearby_frames + 1)))
    source = decode_frames(clip["frames"], [source_t])[0]
    driving = decode_frames(driving_clip["frames"], [driving_t])[0]
    other_clip = self._other_identity(clip, rng)
    other_t = int(rng.integers(len(other_clip["frames"])))
    other = decode_frames(other_clip["frames"], [other_t])[0]
    labels = schema.stack_labels(clip["labels"])
    driving_labels = schema.stack_labels(driving_clip["labels"])
    source_labels, driving_labels = labels[source_t], driving_labels[driving_t]
    source_landmarks, driving_landmarks, other_landmarks = (
        landmarks_at(c, t) for c, t in ((clip, source_t), (driving_clip, driving_t),
                                         (other_clip, other_t)))
    if self.augment:
      jitter = _colour_jitter(rng)
      source, driving = jitter(source), jitter(driving)
      other = _colour_jitter(rng)(other)
      if self.flip > 0 and rng.random() < self.flip:
        source, driving, other = (np.ascontiguousarray(x[:, ::-1]) for x in (source, driving, other))
        source_labels, driving_labels = mirror_labels(source_labels), mirror_labels(driving_labels)
        source_landmarks, driving_landmarks, other_landmarks = (
            mirror_landmarks(x) for x in (source_landmarks, driving_landmarks, other_landmarks))
    return {"source": _resize(source, self.image_size),
            "driving": _resize(driving, self.image_size),
            "other": _resize(other, self.image_size),
            "source_labels": source_labels, "driving_labels": driving_labels,
            "source_landmarks": source_landmarks, "driving_landmarks": driving_landmarks,
            "other_landmarks": other_landmarks}

  def _same_identity(self, clip: dict, rng: np.random.Generator) -> dict:
    """Another clip of `clip`'s identity, or `clip` itself when it has no other."""
    if self._by_identity is None:
      by_identity: dict[str, list[int]] = {}
      for index in range(len(self.source)):
        meta = self.source[index]["meta"]
        by_identity.setdefault(_text(meta["identity"]), []).append(index)
      self._by_identity = by_identity
    clip_id = _text(clip["meta"]["clip_id"])
    indices = self._by_identity.get(_text(clip["meta"]["identity"]), [])
    if len(indices) < 2:
      return clip
    for _ in range(8):
      other = self.source[int(indices[rng.integers(len(indices))])]
      if _text(other["meta"]["clip_id"]) != clip_id:
        return other
    return clip

  def _other_identity(self, clip: dict, rng: np.random.Generator) -> dict:
    identity = clip["meta"]["identity"]
    for _ in range(32):
      other = self.source[int(rng.integers(len(self.source)))]
      if other["meta"]["identity"] != identity:
        return other
    raise UserError("the dataset has a single identity; the cross-identity frame needs several")


# Labels whose sign flips when a frame is mirrored left-right (`schema.LABEL_NAMES`).
_MIRRORED_LABELS = [schema.LABEL_NAMES.index(n) for n in ("yaw", "roll", "tx", "gaze_theta")]


def mirror_labels(labels: np.ndarray) -> np.ndarray:
  """Labels `[..., len(LABEL_NAMES)]` of the left-right mirror image of a frame."""
  labels = np.array(labels, np.float32)
  labels[..., _MIRRORED_LABELS] *= -1.0
  return labels


def landmarks_at(clip: dict, t: int) -> np.ndarray:
  """Frame `t`'s landmarks `[len(LANDMARK_NAMES), 2]` of a clip; NaN where the clip has none."""
  landmarks = np.asarray(clip["landmarks"], np.float32)
  if len(landmarks) > t:
    return landmarks[t]
  return np.full((len(schema.LANDMARK_NAMES), 2), np.nan, np.float32)


def mirror_landmarks(landmarks: np.ndarray) -> np.ndarray:
  """Landmarks `[..., len(LANDMARK_NAMES), 2]` ((x, y) / size) of the mirrored frame: x -> 1 - x,
  and the left and right eyes swap."""
  landmarks = np.array(landmarks, np.float32)
  landmarks[..., 0] = 1.0 - landmarks[..., 0]
  left, right = schema.LANDMARK_NAMES.index("left_eye"), schema.LANDMARK_NAMES.index("right_eye")
  landmarks[..., [left, right], :] = landmarks[..., [right, left], :]
  return landmarks


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def _colour_jitter(rng: np.random.Generator, strength: float = 0.15):
  brightness, contrast, saturation = 1.0 + rng.uniform(-strength, strength, 3)

  def apply(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32)
    grey = x.mean(axis=-1, keepdims=True)
    x = grey + (x - grey) * saturation
    x = (x - x.mean()) * contrast + x.mean()
    return np.clip(x * brightness, 0, 255).round().astype(np.uint8)

  return apply


@dataclasses.dataclass
class MotionWindows:
  """Stage 2 samples: a random window of one clip of a motion-latent cache
  (`vasa_jax.data.motion_latents.MotionLatentSource`), K previous frames and W current ones, with
  motion and audio normalised by `stats` (the training cache's `compute_stats`).

  A clip long enough gets a window whose K previous frames exist; a shorter one puts the current
  window at its start (no previous frames) and pads it, marking real frames in "valid". Output:
  "motion" `[K + W, M]`, "audio" `[K + W, A]`, "valid" bool `[K + W]`, "has_previous" bool,
  "gaze" `[2]`, "distance" `[]`, "emotion" int32 `[]`.
  """

  window: int
  context: int
  stats: dict

  def __call__(self, clip: dict, rng: np.random.Generator) -> dict:
    W, K = self.window, self.context
    motion = (clip["motion"] - self.stats["motion_mean"]) / self.stats["motion_std"]
    audio = (clip["audio"] - self.stats["audio_mean"]) / self.stats["audio_std"]
    num_frames = motion.shape[0]
    if num_frames >= K + W:
      start = int(rng.integers(K, num_frames - W + 1))
      has_previous = K > 0
    else:
      start, has_previous = 0, False
    out_motion = np.zeros((K + W, motion.shape[1]), np.float32)
    out_audio = np.zeros((K + W, audio.shape[1]), np.float32)
    valid = np.zeros(K + W, bool)
    stop = min(start + W, num_frames)
    out_motion[K:K + stop - start] = motion[start:stop]
    out_audio[K:K + stop - start] = audio[start:stop]
    valid[K:K + stop - start] = True
    if has_previous:
      out_motion[:K], out_audio[:K] = motion[start - K:start], audio[start - K:start]
      valid[:K] = True
    return {"motion": out_motion, "audio": out_audio, "valid": valid,
            "has_previous": np.bool_(has_previous),
            "gaze": np.asarray(clip["gaze"], np.float32),
            "distance": np.float32(clip["distance"]), "emotion": np.int32(clip["emotion"])}
