"""The SynthTalk probe: a small CNN that reads head pose and mouth state back from one face image.

SynthTalk renders every frame from known labels, so a network trained to regress those labels from
the frames can later measure what another model's images show: the disentanglement evaluator drives
identity A with identity B's motion through the face latent model and asks this probe whether the
result has B's pose and mouth. The probe reads `PROBE_LABELS`, trained with mean squared error on
labels standardised by fixed per-label offsets and scales (`LABEL_MEAN`, `LABEL_STD`), and reports
errors in the labels' own units. A ResNet trunk reads the whole frame for the head pose, and two
small CNNs read fixed windows of it at full resolution for the mouth and the eyes (`ProbeNet`,
`REGIONS`): the probe expects SynthTalk's framing, which the face latent model's outputs keep.

The images it will read come from an imperfect generator, so training frames are degraded at random
(colour jitter and shuffled colour channels, Gaussian blur, JPEG re-encoding, noise: `degrade`).
The only augmentation that moves pixels is the left-right mirror, whose labels are known exactly
(yaw and roll change sign); it makes the probe read yaw from the face's asymmetry rather than from
who it is, which matters when the training set has few identities. Nothing shifts, scales or
rotates frames, since that would change the pose the labels describe.

  probe = load_probe("runs/probe128")
  values = probe.predict(images)  # float [B, H, W, 3] in [-1, 1] -> [B, len(probe.labels)]
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vasa_jax import runs
from vasa_jax.data import pipelines, schema
from vasa_jax.errors import UserError
from vasa_jax.evaluators.image_metrics import to_signed
from vasa_jax.models.synthtalk_probe import (PROBE_LABELS, ProbeNet, decode_variant,
                                             natural, standardise)
from vasa_jax.trainers import common

TASK_NAME = "synthtalk_probe"

_LABEL_COLUMNS = np.asarray([schema.LABEL_NAMES.index(name) for name in PROBE_LABELS])


def dataset_resolution(dataset: str) -> int:
  """The frame size of a SynthTalk dataset named "synthtalk/<config>", read from its config."""
  kind, _, name = dataset.partition("/")
  if kind != "synthtalk":
    raise UserError(f"config.data.dataset={dataset!r}: the SynthTalk probe trains on SynthTalk "
                    "labels; use synthtalk/<config> (e.g. synthtalk/small)")
  from vasa_jax.data.synthtalk import builder

  synthtalk_config = builder.config_from_name(name)
  if synthtalk_config is None:
    raise UserError(f"config.data.dataset={dataset!r}: unknown SynthTalk config {name!r}; known: "
                    f"{sorted(builder.CONFIGS)}, or a custom one by its name "
                    "(r<resolution>_n<train>_<validation>_<test>_s<seed>)")
  return int(synthtalk_config.resolution)


# ----------------------------------------------------------------------------------------------------
# Data.


@dataclasses.dataclass
class ProbeFrames:
  """Probe samples: one random frame of a clip and its labels.

  With `augment`, the frame is degraded as a generator's output might be (`degrade`: colour jitter,
  colour channels shuffled, sometimes grey, blurred with sigma up to 1.5 px at 128 px and in
  proportion at other sizes, JPEG re-encoded, noisy), and half the time
  mirrored left-right (`mirror`), which negates yaw and roll and leaves the other labels as they
  are. Nothing else moves pixels. Output: "image" uint8 [image_size, image_size, 3], "labels"
  float32 [len(PROBE_LABELS)] (natural units, `PROBE_LABELS` order).
  """

  image_size: int
  augment: bool = True

  def __call__(self, clip: dict, rng: np.random.Generator) -> dict:
    from vasa_jax.data.synthtalk.clip import decode_frames

    t = int(rng.integers(len(clip["frames"])))
    image = pipelines._resize(decode_frames(clip["frames"], [t])[0], self.image_size)
    labels = schema.stack_labels(clip["labels"])[t, _LABEL_COLUMNS].astype(np.float32)
    if self.augment:
      image = degrade(image, rng, blur_scale=self.image_size / BLUR_REFERENCE_SIZE)
      if rng.random() < 0.5:
        image, labels = mirror(image, labels)
    return {"image": np.ascontiguousarray(image, np.uint8), "labels": labels}


# Sign of each of PROBE_LABELS in the mirror image: SynthTalk's camera is orthographic and centred,
# so mirroring x turns R_roll(r) R_pitch(p) R_yaw(y) into R_roll(-r) R_pitch(p) R_yaw(-y).
MIRROR_SIGNS = np.asarray([-1.0 if name in ("yaw", "roll") else 1.0 for name in PROBE_LABELS],
                          np.float32)


def mirror(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The left-right mirror image [H, W, 3] and its labels [len(PROBE_LABELS)]."""
  return image[:, ::-1], labels * MIRROR_SIGNS


# Blur sigmas are drawn for frames of this size and scaled with the frame size.
BLUR_REFERENCE_SIZE = 128


def degrade(image: np.ndarray, rng: np.random.Generator, blur_scale: float = 1.0) -> np.ndarray:
  """`ProbeFrames`' photometric augmentation of one uint8 [H, W, 3] image (shape kept).

  Colour jitter (`pipelines._colour_jitter`) and a random order of the colour channels (so that
  skin, hair and background colours cannot stand in for the few identities of a small training
  set), grey with probability 0.2, then each with probability 1/2 a Gaussian blur (sigma 0..1.5 px
  times `blur_scale`), JPEG re-encoding (quality 50..95) and Gaussian noise (sigma 0..6 grey
  levels).
  """
  import cv2

  image = pipelines._colour_jitter(rng)(image)[..., rng.permutation(3)]
  grey, blur, jpeg, noise = rng.random(4) < (0.2, 0.5, 0.5, 0.5)
  sigma = rng.uniform(0.0, 1.5) * blur_scale
  quality, noise_std = int(rng.integers(50, 96)), rng.uniform(0.0, 6.0)
  if grey:
    image = np.repeat(image.mean(axis=-1, keepdims=True).round().astype(np.uint8), 3, axis=-1)
  if blur and sigma > 0.05:
    image = cv2.GaussianBlur(np.ascontiguousarray(image), (0, 0), sigmaX=float(sigma))
  if jpeg:
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(image),
                               [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if ok:  # Channel order does not matter to a round trip.
      image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
  if noise:
    noisy = image.astype(np.float32) + rng.normal(0.0, noise_std, image.shape)
    image = np.clip(noisy, 0, 255).round().astype(np.uint8)
  return image


# ----------------------------------------------------------------------------------------------------
# The task.


class SynthTalkProbeTask:
  """`common.Task` of the SynthTalk probe: MSE on standardised `PROBE_LABELS`."""

  name = TASK_NAME

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    sizes = decode_variant(config.model.variant)
    self.labels = PROBE_LABELS
    self.model = ProbeNet(sizes["width"], sizes["blocks"], sizes["region_widths"],
                          len(PROBE_LABELS), dtype=jnp.dtype(config.compute_dtype),
                          param_dtype=jnp.float32)
    self.image_size = int(config.data.get("image_size", 0) or
                          dataset_resolution(config.data.dataset))
    minimum = 32
    if self.image_size < minimum:
      raise UserError(f"config.data.image_size={self.image_size} is too small for probe variant "
                      f"{config.model.variant!r}; use at least {minimum} (0: the dataset's size)")

  def model_summary(self) -> dict:
    return {"name": "synthtalk_probe", "variant": self.config.model.variant,
            "image_size": self.image_size, "labels": list(PROBE_LABELS)}

  def init_params(self, rng: jax.Array):
    images = jnp.zeros((1, self.image_size, self.image_size, 3), jnp.float32)
    return self.model.init(rng, images)["params"]

  def predict(self, params, images: jax.Array) -> jax.Array:
    """Float images [B, image_size, image_size, 3] in [-1, 1] -> labels in natural units."""
    return natural(self.model.apply({"params": params}, images))

  def predictor(self, run) -> "Probe":
    """The trained probe of a `runs.Run` of this task."""
    return Probe(self, run.params, step=run.step, workdir=run.workdir)

  def loss_fn(self, params, batch, rng):
    del rng  # Deterministic model.
    target = jnp.asarray(batch["labels"], jnp.float32)
    out = self.model.apply({"params": params}, to_signed(batch["image"]))
    loss = jnp.mean((out - standardise(target)) ** 2)
    errors = jnp.mean(jnp.abs(natural(out) - target), axis=0)
    metrics = {f"mae_{name}": errors[i] for i, name in enumerate(PROBE_LABELS)}
    return loss, metrics

  def make_data_iterator(self, process_index: int, process_count: int, split: str = "train",
                         augment: bool = True, seed: int | None = None,
                         batch_size: int | None = None):
    data = self.config.data
    source = pipelines.open_split(data.data_dir, data.dataset, split)
    return pipelines.global_batch_iterator(
        source, seed=self.config.seed if seed is None else seed,
        global_batch_size=batch_size or self.config.batch_size,
        process_index=process_index, process_count=process_count,
        random_transform=ProbeFrames(self.image_size, augment=augment),
        worker_count=data.worker_count)


def make_task(config: ml_collections.ConfigDict) -> SynthTalkProbeTask:
  return SynthTalkProbeTask(config)


# ----------------------------------------------------------------------------------------------------
# Reading a trained probe.


class Probe:
  """A trained probe: `predict` reads `labels` (natural units) from images of any square size."""

  def __init__(self, task: SynthTalkProbeTask, params, step: int = 0,
               workdir: pathlib.Path | None = None):
    self.task, self.params, self.step, self.workdir = task, params, step, workdir
    self.image_size = task.image_size
    self.labels = PROBE_LABELS
    self._predict = jax.jit(self._forward)

  def _forward(self, params, images: jax.Array) -> jax.Array:
    images = images.astype(jnp.float32)
    if images.shape[1:3] != (self.image_size, self.image_size):
      images = jax.image.resize(images, images.shape[:1] + (self.image_size, self.image_size, 3),
                                method="linear", antialias=True)
    return self.task.predict(params, images)

  def predict(self, images) -> np.ndarray:
    """Float images [B, H, W, 3] in [-1, 1] (any H = W) -> float32 [B, len(labels)] in natural
    units; resized to `image_size` when they are not that size."""
    images = jnp.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
      raise ValueError(f"probe images must be [batch, size, size, 3]; got {images.shape}")
    return np.asarray(self._predict(self.params, images), np.float32)


def load_probe(workdir: str | os.PathLike, step: int | None = None) -> Probe:
  """The probe trained in `workdir` (its `config.json` and latest checkpoint, or `step`'s)."""
  return runs.load_run(workdir, step, task=TASK_NAME).predictor()


def train(config: ml_collections.ConfigDict, workdir: str) -> common.TrainResult:
  """Trains the probe; its `probe_errors` evaluator (`config.evals`) scores it after the last
  step (`vasa_jax.evaluators.probe_errors`)."""
  return common.train(config, workdir, make_task(config))
