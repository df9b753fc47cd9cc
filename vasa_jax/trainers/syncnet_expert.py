"""Our lip-sync expert: a SyncNet-style network trained on the project's own talking-face data.

The public SyncNet's weights cannot be shipped or downloaded here, so the S_C / S_D metric can
also run on an expert trained from any prepared dataset (SynthTalk `synthtalk/<config>` or real
video `talking_videos`): `vasa_jax.models.syncnet.SyncExpert` embeds 5 frames of a window around
the mouth (`MOUTH_WINDOW` of the face crop, resized to `image_size`) and the 20 MFCC steps heard
over them, the same windows the public SyncNet reads, so the metric's offset search is the same.

Each training example is one clip: a video window at frame t (chosen among the windows with
speech when the clip has some: silence looks like silence at every shift), its in-sync audio
window and `config.data.negatives` off-sync ones of the same clip at shifts drawn from +-1 ..
+-S (`config.data.max_shift` = S). The loss is the sum of two softmax cross-entropies over cosine
similarities times a learned scale (InfoNCE), both with the in-sync window as the answer: one
over the clip's own shifted windows (same voice, same words, wrong time), one over every audio
window of the batch (the other clips' too). The metric ranks the audio shifts of one clip by
distance, so a loss that ranks exactly those (rather than Wav2Lip's BCE on the cosine of
independent pairs, which needs its positives and negatives balanced and its cosines calibrated)
trains the property S_C measures; it gets its own term because, in the batch-wide softmax, telling
clips apart by face and voice is far easier and would take the gradient first. The other clips'
windows keep the embeddings from encoding only the clip. Unit embeddings make cosine and L2
distance rank alike.

Augmentation (training only): a left-right mirror (sync does not care) and, when the config asks,
one colour jitter shared by the 5 frames (`colour_jitter`) and the mouth window moved by up to
`window_jitter` of the frame and scaled by up to twice that, so that the expert tolerates the
framing of generated faces. Both make the start of learning slower, which matters for short runs.

  expert = load_expert("runs/sync_tiny")          # latest checkpoint, or step=...
  expert.embed_video(expert.prepare_frames(frames)[windows]), expert.embed_audio(mfcc_windows)

After the last step the `sync_accuracy` evaluator (`vasa_jax.evaluators.sync_accuracy`) scores it:
held-out sync accuracy (is the in-sync audio window the closest of the 2 S + 1 shifts?) and the
expert's S_C / S_D on held-out clips as they are and with their audio delayed by `shift` frames.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vasa_jax import runs
from vasa_jax.data import pipelines
from vasa_jax.errors import UserError
from vasa_jax.models import syncnet
from vasa_jax.trainers import common

TASK_NAME = "syncnet_expert"

# Sizes of `SyncExpert` (first-stage width, per-frame features, embedding size) and the side of
# its mouth window in pixels.
VARIANTS = {
    "tiny": dict(width=16, frame_dim=64, embed_dim=128, image_size=32),
    "small": dict(width=32, frame_dim=128, embed_dim=256, image_size=48),
    "base": dict(width=64, frame_dim=256, embed_dim=512, image_size=96),
}

# (top, bottom, left, right) of the window the expert reads, as fractions of the face crop. The
# training framing is loose (`data.faces.crop_box`: lip centre at 63% of the height, chin near
# 80%), so the lower half of the crop is mostly neck and background; this square holds the mouth
# and chin. Over SynthTalk tiny's frames the mouth centre stays within x 0.36..0.65, y 0.54..0.74
# and the chin within y 0.66..0.85 (its landmarks / resolution).
MOUTH_WINDOW = (0.45, 0.95, 0.25, 0.75)


def decode_variant(variant: str) -> dict:
  if variant not in VARIANTS:
    raise UserError(f"config.model.variant={variant!r} is unknown for the sync expert; use one of "
                    f"{sorted(VARIANTS)}")
  return dict(VARIANTS[variant])


def mouth_crop(frames: np.ndarray, window: Sequence[float], image_size: int,
               jitter: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
  """Face crops uint8 [T, H, W, 3] -> their `window` resized to [T, image_size, image_size, 3].

  `jitter` (dy, dx, scale) moves the window by fractions of the frame and scales it about its
  centre."""
  frames = np.asarray(frames)
  height, width = frames.shape[1:3]
  top, bottom, left, right = window
  dy, dx, scale = jitter
  cy, cx = (top + bottom) / 2 + dy, (left + right) / 2 + dx
  half_h, half_w = (bottom - top) * scale / 2, (right - left) * scale / 2
  r0, r1 = (int(np.clip(round(v * height), 0, height)) for v in (cy - half_h, cy + half_h))
  c0, c1 = (int(np.clip(round(v * width), 0, width)) for v in (cx - half_w, cx + half_w))
  if r1 - r0 < 2 or c1 - c0 < 2:
    raise UserError(f"mouth window {tuple(window)} is empty in {height}x{width} frames; use "
                    "fractions 0..1 with top < bottom and left < right")
  return syncnet.resize_frames(frames[:, r0:r1, c0:c1], image_size, image_size)


def _speech_starts(audio: np.ndarray, count: int) -> np.ndarray:
  """Window starts (< count) whose 0.2 s of audio is at least a fifth as loud (RMS) as the
  loudest window's, when there is sound at all; else every start."""
  samples = syncnet.SAMPLES_PER_FRAME
  frames = len(audio) // samples
  energy = np.square(audio[:frames * samples].astype(np.float64)).reshape(frames, samples).sum(1)
  window_energy = np.convolve(energy, np.ones(syncnet.WINDOW_FRAMES), "valid")[:count]
  rms = np.sqrt(window_energy)
  if rms.max() <= 0:
    return np.arange(count)
  return np.flatnonzero(rms >= 0.2 * rms.max())


@dataclasses.dataclass
class SyncWindows:
  """Expert samples from one clip: a video window and audio windows at several shifts.

  t is drawn among the windows whose shifts -S .. S all lie inside the clip (S = `max_shift`),
  and among those with speech (`_speech_starts`) when there are any. With `negatives` n, the
  audio windows are the in-sync one and n off-sync ones at distinct shifts drawn from
  +-1 .. +-S; with `negatives` 0, all 2 S + 1 shifts (-S .. S after the in-sync one).

  Output: "video" uint8 [5, image_size, image_size, 3] (frames t .. t+4, the mouth window);
  "audio" float32 [K, 13, 20], the MFCC windows of frames t + shift; "shift" int32 [K] (shift[0]
  = 0: index 0 is in sync); "valid" bool [K] (t + shift is a window of the clip).
  """

  window: tuple[float, float, float, float]
  image_size: int
  max_shift: int
  negatives: int = 0
  augment: bool = True
  colour_jitter: bool = False
  window_jitter: float = 0.0

  def __call__(self, clip: dict, rng: np.random.Generator) -> dict:
    from vasa_jax.data.synthtalk.clip import decode_frames

    audio = np.asarray(clip["audio"])
    count = syncnet.num_windows(len(clip["frames"]), len(audio))
    if count < 1:
      raise UserError(f"clip {clip['meta']['clip_id']!r} has {len(clip['frames'])} frames and "
                      f"{len(audio) / syncnet.SAMPLE_RATE:.2f} s of audio: too short for a sync "
                      "window (6 frames); remove it from the dataset")
    limit = self.max_shift
    inside = np.arange(limit, count - limit) if count > 2 * limit else np.arange(count)
    speech = np.intersect1d(inside, _speech_starts(audio, count))
    choices = speech if len(speech) else inside
    t = int(choices[rng.integers(len(choices))])
    off_sync = np.concatenate([np.arange(-limit, 0), np.arange(1, limit + 1)])
    if self.negatives:
      off_sync = rng.choice(off_sync, size=min(self.negatives, len(off_sync)), replace=False)
    shift = np.concatenate([[0], off_sync]).astype(np.int32)
    valid = (t + shift >= 0) & (t + shift < count)
    audio_windows = syncnet.audio_windows_of(syncnet.to_int16_scale(audio),
                                             np.clip(t + shift, 0, count - 1))
    frames = decode_frames(clip["frames"], range(t, t + syncnet.WINDOW_FRAMES))
    jitter = (0.0, 0.0, 1.0)
    if self.augment and self.window_jitter:
      move = self.window_jitter
      jitter = (rng.uniform(-move, move), rng.uniform(-move, move),
                rng.uniform(1 - 2 * move, 1 + 2 * move))
    video = mouth_crop(frames, self.window, self.image_size, jitter)
    if self.augment and self.colour_jitter:
      colour = pipelines._colour_jitter(rng)
      video = np.stack([colour(frame) for frame in video])
    if self.augment and rng.random() < 0.5:
      video = video[:, :, ::-1]
    return {"video": np.ascontiguousarray(video, np.uint8), "audio": audio_windows,
            "shift": shift, "valid": valid}


# ----------------------------------------------------------------------------------------------------
# The task.


def contrastive_logits(video: jax.Array, audio: jax.Array, valid: jax.Array,
                       scale: jax.Array) -> jax.Array:
  """Scaled cosine similarities [B, B * K] of video embeddings [B, D] with every audio window
  [B, K, D] of the batch; invalid windows get -1e9."""
  b, k, d = audio.shape
  logits = scale * video @ audio.reshape(b * k, d).T
  return jnp.where(valid.reshape(1, b * k), logits, -1e9)


class SyncExpertTask:
  """`common.Task` of the sync expert: InfoNCE over shifted and other clips' audio windows."""

  name = TASK_NAME

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    sizes = decode_variant(config.model.variant)
    self.image_size = int(config.model.get("image_size", 0) or sizes["image_size"])
    self.window = tuple(float(v) for v in config.model.get("window", MOUTH_WINDOW))
    self.max_shift = int(config.data.get("max_shift", 6))
    if self.image_size < 16:
      raise UserError(f"config.model.image_size={self.image_size} is too small; use at least 16 "
                      "(0: the variant's size)")
    if len(self.window) != 4:
      raise UserError(f"config.model.window={self.window} must be (top, bottom, left, right)")
    if self.max_shift < 1:
      raise UserError(f"config.data.max_shift={self.max_shift} must be at least 1")
    self.model = syncnet.SyncExpert(sizes["width"], sizes["frame_dim"], sizes["embed_dim"],
                                    dtype=jnp.dtype(config.compute_dtype),
                                    param_dtype=jnp.float32)

  def model_summary(self) -> dict:
    return {"name": TASK_NAME, "variant": self.config.model.variant,
            "image_size": self.image_size, "window": list(self.window),
            "embed_dim": self.model.embed_dim}

  def predictor(self, run) -> "Expert":
    """The trained expert of a `runs.Run` of this task."""
    return Expert(self, run.params, step=run.step, workdir=run.workdir)

  def init_params(self, rng: jax.Array):
    frames = jnp.zeros((1, syncnet.WINDOW_FRAMES, self.image_size, self.image_size, 3), jnp.uint8)
    mfcc = jnp.zeros((1, syncnet.NUM_CEPSTRA, syncnet.MFCC_WINDOW), jnp.float32)
    return self.model.init(rng, frames, mfcc)["params"]

  def embed(self, params, video: jax.Array, audio: jax.Array):
    """(video [B, D], audio [B, K, D], logit scale) of a batch's "video" and "audio"."""
    b, k = audio.shape[:2]
    v, a, scale = self.model.apply({"params": params}, video, audio.reshape((b * k,) +
                                                                            audio.shape[2:]))
    return v, a.reshape(b, k, -1), scale

  def loss_fn(self, params, batch, rng):
    del rng  # Deterministic model.
    v, a, scale = self.embed(params, batch["video"], batch["audio"])
    valid = jnp.asarray(batch["valid"])
    b, k = valid.shape
    # Index 0 of each example's audio windows is in sync.
    own = syncnet.own_clip_cosines(v, a, valid)
    own_loss = -jnp.mean(jax.nn.log_softmax(scale * own, axis=-1)[:, 0])
    logits = contrastive_logits(v, a, valid, scale)
    target = jnp.arange(b) * k
    batch_loss = -jnp.mean(jax.nn.log_softmax(logits, axis=-1)[jnp.arange(b), target])
    best = jnp.argmax(own, axis=-1)
    error = jnp.abs(jnp.take_along_axis(jnp.asarray(batch["shift"]), best[:, None], axis=1)[:, 0])
    off_sync = valid.at[:, 0].set(False)
    metrics = {
        "own_clip_loss": own_loss, "batch_loss": batch_loss,
        "sync_accuracy": jnp.mean(best == 0), "within_one": jnp.mean(error <= 1),
        "batch_accuracy": jnp.mean(jnp.argmax(logits, axis=-1) == target),
        "logit_scale": scale, "cosine_in_sync": jnp.mean(own[:, 0]),
        "cosine_off_sync": jnp.sum(jnp.where(off_sync, own, 0.0)) / jnp.maximum(
            jnp.sum(off_sync), 1)}
    return own_loss + batch_loss, metrics

  def make_data_iterator(self, process_index: int, process_count: int, split: str = "train",
                         augment: bool = True, seed: int | None = None,
                         batch_size: int | None = None):
    """Batches of `SyncWindows`: for training (`augment`) with `config.data.negatives` off-sync
    windows each; for evaluation with all 2 S + 1 shifts."""
    data = self.config.data
    source = pipelines.open_split(data.data_dir, data.dataset, split)
    negatives = int(data.get("negatives", 0)) if augment else 0
    return pipelines.global_batch_iterator(
        source, seed=self.config.seed if seed is None else seed,
        global_batch_size=batch_size or self.config.batch_size, process_index=process_index,
        process_count=process_count,
        random_transform=SyncWindows(
            self.window, self.image_size, self.max_shift, negatives, augment,
            colour_jitter=bool(data.get("colour_jitter", False)),
            window_jitter=float(data.get("window_jitter", 0.0))),
        worker_count=data.get("worker_count", 0))


def make_task(config: ml_collections.ConfigDict) -> SyncExpertTask:
  return SyncExpertTask(config)


# ----------------------------------------------------------------------------------------------------
# A trained expert, as the S_C / S_D metric uses it (`evaluators.syncnet.Embedder`).


class Expert:
  """A trained sync expert as the metric's `Embedder`: `prepare_frames` crops its mouth window,
  `embed_video` / `embed_audio` give its unit embeddings, lifted off the origin (`_off_origin`)."""

  def __init__(self, task: SyncExpertTask, params, step: int = 0,
               workdir: pathlib.Path | None = None):
    self.task, self.params, self.step, self.workdir = task, params, step, workdir
    self.image_size, self.window = task.image_size, task.window
    model = task.model
    self._video = jax.jit(lambda p, x: model.apply({"params": p}, x,
                                                   method=syncnet.SyncExpert.embed_video))
    self._audio = jax.jit(lambda p, x: model.apply({"params": p}, x,
                                                   method=syncnet.SyncExpert.embed_audio))

  def prepare_frames(self, frames: np.ndarray) -> np.ndarray:
    """RGB uint8 face crops [T, H, W, 3] -> mouth windows [T, image_size, image_size, 3]."""
    return mouth_crop(frames, self.window, self.image_size)

  def embed_video(self, windows: np.ndarray) -> np.ndarray:
    """Mouth windows [B, 5, image_size, image_size, 3] uint8 -> [B, embed_dim + 1]."""
    return _off_origin(self._video(self.params, jnp.asarray(windows)))

  def embed_audio(self, mfcc_windows: np.ndarray) -> np.ndarray:
    """MFCC windows [B, 13, 20] -> [B, embed_dim + 1]."""
    return _off_origin(self._audio(self.params, jnp.asarray(mfcc_windows, jnp.float32)))


def _off_origin(embeddings: jax.Array) -> np.ndarray:
  """Unit embeddings [B, D] with a constant sqrt(3) appended: distances between them stay as they
  are (0 .. 2), and the zero rows with which the offset search pads the audio lie at distance 2,
  as far as any audio window can be. (At distance 1, the padding would beat every off-sync
  window, and the search would favour the largest shifts, where there is most padding.)"""
  embeddings = np.asarray(embeddings, np.float32)
  return np.concatenate([embeddings, np.full((len(embeddings), 1), np.sqrt(3.0), np.float32)],
                        axis=1)


def load_expert(workdir: str | os.PathLike, step: int | None = None) -> Expert:
  """The expert trained in `workdir` (its config.json and latest checkpoint, or `step`'s)."""
  return runs.load_run(workdir, step, task=TASK_NAME).predictor()


def train(config: ml_collections.ConfigDict, workdir: str | os.PathLike,
          mesh: jax.sharding.Mesh | None = None) -> common.TrainResult:
  """Trains the expert; its `sync_accuracy` evaluator (`config.evals`) scores it after the last
  step (`vasa_jax.evaluators.sync_accuracy`)."""
  return common.train(config, workdir, make_task(config), mesh=mesh)
