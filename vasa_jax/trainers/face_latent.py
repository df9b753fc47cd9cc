"""Stage 1: the face latent space, trained on the trainer core (`common.train`).

One step updates the generator (the face latent model) and the multi-scale patch discriminator,
each with its own optimizer and gradient clip (`make_optimizer`): the loss is the sum of the
generator's weighted losses, in which the discriminator's parameters are held fixed, and the
discriminator's hinge loss, in which the generated images are held fixed; so each network's gradient
is exactly that of its own objective. Per example (a source and a driving frame of one identity,
from one clip or two, and a frame of another identity; `pipelines.FaceFrameTriplets`):
  * reconstruction: the source's appearance and identity driven by the driving frame's pose and
    dynamics must give the driving frame (L1, with the mouth and eyes weighted up where landmarks
    are known, and perceptual VGG features);
  * pose: z_pose's rotation against the dataset's head-pose labels (MegaPortraits takes the pose
    from a frozen estimator; our datasets carry labels), where labels exist;
  * crop difference (ours): the change of z_dyn (and of z_pose, without gradient) from the source
    to the driving frame, through a linear map, must give the change of their face-aligned crops,
    pairs weighted by how little the head turns: z_dyn learns what moves in the face from the
    first step, before the renderer draws it;
  * foreground (off in the recipe): with the background path, the renderer's alpha must cover the
    driving frame's face (an ellipse at its landmarks), so the face is drawn from the volume;
  * adversarial hinge loss and feature matching on the reconstruction;
  * contrastive (CosFace) on the dynamics codes: the driving frame's z_dyn against z_dyn re-encoded
    from the other identity driven by the same motion (MegaPortraits' positive), the other
    examples' as negatives;
  * VASA-1's pose/dynamics transfer consistency: D(V_j, id_j, pose_i, dyn_j) = D(V_i, id_i, pose_i,
    dyn_j) for the source i and driving j of one identity;
  * VASA-1's cross-identity loss: the other identity driven by the driving frame's motion keeps its
    face-recognition features.
A curriculum (`config.losses.start`) switches losses on at given steps: reconstruction and pose
from the first, the rest once the reconstruction has formed. A loss whose pretrained network is
not configured is off, and the log says so.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vasa_jax.configs.face_latent import LATE_LOSSES
from vasa_jax.data import schema
from vasa_jax.errors import UserError
from vasa_jax.evaluators import image_metrics
from vasa_jax.evaluators.image_metrics import to_signed, to_unit
from vasa_jax.convert import frozen
from vasa_jax.losses import adversarial, consistency, contrastive, identity, perceptual
from vasa_jax.models.face_latent import alignment, networks, warping
from vasa_jax.trainers import common

LOSS_NAMES = ("l1", "perceptual", "pose", "foreground", "adversarial", "feature_matching",
              "contrastive", "consistency", "cross_identity", "dynamics_labels",
              "crop_difference")
# Label columns (`schema.LABEL_NAMES`) that z_pose's first three entries are anchored to.
_POSE_LABELS = (0, 1, 2)  # yaw, pitch, roll
# Label columns z_dyn's first two entries are anchored to by the diagnostic `dynamics_labels` loss.
_DYNAMICS_LABELS = (10, 9)  # jaw_open, blink
FOREGROUND_REGIONS = ("face", "features")  # `foreground_loss`
_MOUTH, _EYES = 3, (0, 1)  # landmark rows: mouth centre; left and right eye


def loss_networks(losses: ml_collections.ConfigDict) -> tuple[str, str]:
  """(perceptual network, identity network) a `config.losses` asks for: a weights path wins over
  the packaged default; a config written before the packaged networks (without the keys) keeps the
  losses it trained with."""
  perceptual_network = ("vgg19" if losses.get("vgg19_path")
                        else losses.get("perceptual_network", "none") or "none")
  identity_network = ("arcface" if losses.get("arcface_path")
                      else losses.get("identity_network", "none") or "none")
  if perceptual_network not in ("vgg16", "vgg19", "none"):
    raise UserError(f"config.losses.perceptual_network={perceptual_network!r} is unknown; fix: "
                    "vgg16 (packaged), vgg19 (with config.losses.vgg19_path) or none")
  if identity_network not in (*frozen.IDENTITY_NETWORKS, "none"):
    raise UserError(f"config.losses.identity_network={identity_network!r} is unknown; fix: dlib "
                    "(packaged), arcface (with config.losses.arcface_path) or none")
  return perceptual_network, identity_network


class FaceLatentTask:
  """`common.Task` of stage 1; parameters are {"generator": ..., "discriminator": ...}."""

  name = "face_latent"

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    dtype = jnp.dtype(config.compute_dtype)
    if config.model.variant not in networks.VARIANTS:
      raise UserError(f"config.model.variant={config.model.variant!r} is unknown; use one of "
                      f"{sorted(networks.VARIANTS)}")
    self.model_config = networks.make_config(config.model.variant, **model_overrides(config))
    self.model = networks.FaceLatentModel(self.model_config, dtype=dtype,
                                          remat=bool(config.model.get("remat", False)))
    self.discriminator = networks.PatchDiscriminator.from_variant(self.model_config, dtype=dtype)
    self.image_size = self.model_config.image_size
    self.weights = {name: float(config.losses.weights.get(name, 0.0)) for name in LOSS_NAMES}
    unknown = set(config.losses.weights) - set(LOSS_NAMES)
    if unknown:
      raise UserError(f"config.losses.weights has unknown losses {sorted(unknown)}; known: "
                      f"{', '.join(LOSS_NAMES)}")
    starts = config.losses.get("start", {}) or {}
    unknown = set(starts) - set(LATE_LOSSES)
    if unknown:
      raise UserError(f"config.losses.start has unknown losses {sorted(unknown)}; the curriculum "
                      f"can start these late: {', '.join(LATE_LOSSES)}")
    self.starts = {name: int(starts.get(name, 0) or 0) for name in LATE_LOSSES}
    self.crop_difference_pose_sigma = float(config.losses.get("crop_difference_pose_sigma", 0.0))
    self.region_weight = float(config.losses.get("region_weight", 0.0))
    self.region_sigma = float(config.losses.get("region_sigma", 0.08))
    self.foreground_region = str(config.losses.get("foreground_region", "face"))
    self.foreground_sigma = float(config.losses.get("foreground_sigma", 0.04))
    if self.foreground_region not in FOREGROUND_REGIONS:
      raise UserError(f"config.losses.foreground_region={self.foreground_region!r} is unknown; "
                      f"fix: one of {FOREGROUND_REGIONS}")
    self.consistency_fraction = float(config.losses.get("consistency_fraction", 1.0))
    if not 0.0 < self.consistency_fraction <= 1.0:
      raise UserError(f"config.losses.consistency_fraction={self.consistency_fraction}: give a "
                      "fraction in (0, 1]")
    perceptual_network, identity_network = loss_networks(config.losses)
    self.vgg = self.identity_network = None
    if self.weights["perceptual"] and perceptual_network == "vgg16":
      self.vgg = frozen.load_vgg16(dtype=dtype)
    elif self.weights["perceptual"] and perceptual_network == "vgg19":
      self.vgg = perceptual.load_vgg19_or_none(config.losses.vgg19_path, dtype=dtype)
    if self.weights["cross_identity"] and identity_network != "none":
      embed, variables, _ = frozen.load_identity_network(
          identity_network, config.losses.get("arcface_path", ""), dtype=dtype)
      self.identity_network = (embed, variables)
    if not self.model_config.background_path or self.model_config.background_residual:
      self.weights["foreground"] = 0.0  # No alpha to ask for (the residual renderer has none).
    if self.vgg is None:
      self.weights["perceptual"] = 0.0
    if self.identity_network is None:
      self.weights["cross_identity"] = 0.0
    logging.info("Stage-1 losses on: %s", {k: v for k, v in self.weights.items() if v})

  def model_summary(self) -> dict:
    return {"name": "face_latent", "variant": self.config.model.variant,
            "image_size": self.image_size, **model_overrides(self.config)}

  def predictor(self, run, batch_size: int = 64) -> "Stage1":
    """The frozen motion encoder of a `runs.Run` of this task."""
    return Stage1(task=self, params=run.params, step=int(run.step), workdir=str(run.workdir),
                  variant=str(run.config.model.variant), image_size=int(self.image_size),
                  pose_dim=warping.POSE_DIM, dyn_dim=int(self.model_config.dyn_dim),
                  batch_size=batch_size)

  def make_optimizer(self, config: ml_collections.ConfigDict):
    """One optimizer per network (GAN practice): the generator's from `config.optimizer`,
    `config.schedule` and `config.grad_clip_norm`; the discriminator's from
    `config.discriminator.{optimizer, schedule, grad_clip_norm}` where given (else the
    generator's). Returns (transformation, the generator's schedule)."""
    tx_g, schedule = common.make_optimizer(config)
    disc = config.get("discriminator", None) or ml_collections.ConfigDict()
    tx_d, _ = common.make_optimizer(config, optimizer=disc.get("optimizer", None),
                                    schedule=disc.get("schedule", None),
                                    grad_clip_norm=disc.get("grad_clip_norm", None))
    return optax.multi_transform({"generator": tx_g, "discriminator": tx_d},
                                 {"generator": "generator", "discriminator": "discriminator"}
                                 ), schedule

  def init_params(self, rng: jax.Array):
    image = jnp.zeros((1, self.image_size, self.image_size, 3), jnp.float32)
    generator_rng, discriminator_rng = jax.random.split(rng)
    return {"generator": self.model.init(generator_rng, image, image)["params"],
            "discriminator": self.discriminator.init(discriminator_rng, image)["params"]}

  def _encode(self, params, image, landmarks=None):
    return self.model.apply({"params": params}, image, landmarks, method=self.model.encode)

  def _decode(self, params, latents, z_pose, z_dyn):
    return self.model.apply({"params": params}, latents["v_app"], latents["z_id"], z_pose, z_dyn,
                            latents.get("background"), latents.get("background_flow"),
                            latents["z_pose"], method=self.model.decode)

  def _motion(self, params, image, landmarks=None):
    return self.model.apply({"params": params}, image, landmarks,
                            method=self.model.encode_motion)

  def reenact(self, params, source: jax.Array, driving: jax.Array,
              source_landmarks: jax.Array | None = None,
              driving_landmarks: jax.Array | None = None) -> jax.Array:
    """`source`'s face with `driving`'s pose and dynamics: images in [-1, 1] -> [-1, 1].

    `params` is the task's parameter tree ({"generator": ..., "discriminator": ...}); landmarks
    (`[batch, 6, 2]`, or None) place the dynamics encoder's face crop.
    """
    generator = params["generator"]
    s = self._encode(generator, source, source_landmarks)
    z_pose, z_dyn = self._motion(generator, driving, driving_landmarks)
    return self._decode(generator, s, z_pose, z_dyn)

  def eval_examples(self, split: str, num_examples: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`num_examples` source/driving/other triplets of `split` without augmentation, source and
    driving from one clip: the same on every call and in every process
    (`pipelines.FaceFrameTriplets`)."""
    from vasa_jax.data import pipelines

    data = self.config.data
    source = pipelines.open_split(data.data_dir, data.dataset, split)
    iterator = pipelines.global_batch_iterator(
        source, seed=seed, global_batch_size=num_examples,
        random_transform=pipelines.FaceFrameTriplets(source, self.image_size, augment=False,
                                                     cross_clip=0.0))
    return next(iterator)

  def open_split(self, split: str):
    from vasa_jax.data import pipelines

    data = self.config.data
    return pipelines.open_split(data.data_dir, data.dataset, split)

  def phase(self, step: int) -> tuple[str, ...]:
    """The late losses (`LATE_LOSSES`) the curriculum has switched on for the update taken at
    `step` (0-based): one compiled training step per distinct phase."""
    return tuple(name for name in LATE_LOSSES
                 if self.weights[name] and step >= self.starts[name])

  def loss_fn(self, params, batch, rng, phase=None):
    """The generator's and the discriminator's losses; `phase` (`self.phase(step)`) lists the late
    losses that are on (None: all of them, the full recipe)."""
    del rng
    active = set(LATE_LOSSES if phase is None else phase)
    w = {name: (weight if name not in LATE_LOSSES or name in active else 0.0)
         for name, weight in self.weights.items()}
    generator = params["generator"]
    fixed_discriminator = jax.lax.stop_gradient(params["discriminator"])
    source, driving = to_signed(batch["source"]), to_signed(batch["driving"])
    driving_landmarks = batch.get("driving_landmarks")
    s = self._encode(generator, source, batch.get("source_landmarks"))
    d_pose, d_dyn = self._motion(generator, driving, driving_landmarks)
    recon, alpha = self.model.apply(
        {"params": generator}, s["v_app"], s["z_id"], d_pose, d_dyn, s.get("background"),
        s.get("background_flow"), s["z_pose"], return_alpha=True, method=self.model.decode)
    losses = {"l1": region_l1(recon, driving, driving_landmarks,
                              self.region_weight, self.region_sigma)}
    if w["foreground"]:
      losses["foreground"] = foreground_loss(alpha, driving_landmarks, self.foreground_region,
                                             self.foreground_sigma)
    if w["perceptual"]:
      features_fn, variables = self.vgg
      losses["perceptual"] = perceptual.perceptual_l1(features_fn, variables, recon, driving)
    if w["pose"]:
      losses["pose"] = pose_loss(s["z_pose"], batch.get("source_labels"), d_pose,
                                 batch.get("driving_labels"))
    if w["crop_difference"] and self.model_config.crop_difference:
      losses["crop_difference"] = self.crop_difference_term(
          generator, batch, source, driving, (s["z_pose"], s["z_dyn"]), (d_pose, d_dyn))
    if w["dynamics_labels"]:
      losses["dynamics_labels"] = dynamics_label_loss(d_dyn, batch.get("driving_labels"))
    if w["consistency"]:
      n = max(1, int(round(self.consistency_fraction * source.shape[0])))
      s_part = {k: v[:n] for k, v in s.items()}  # The source's encoding, already made.
      d_part = self._encode(generator, driving[:n],
                            None if driving_landmarks is None else driving_landmarks[:n])
      a = self._decode(generator, d_part, s["z_pose"][:n], d_dyn[:n])
      b = self._decode(generator, s_part, s["z_pose"][:n], d_dyn[:n])
      losses["consistency"] = consistency.transfer_consistency(a, b)
    if w["contrastive"] or w["cross_identity"]:
      other = to_signed(batch["other"])
      o = self._encode(generator, other, batch.get("other_landmarks"))
      crossed = self._decode(generator, o, d_pose, d_dyn)
      if w["contrastive"]:
        # The crossed render has the driving frame's pose: its face crop is cut at the driving
        # frame's landmarks (the other face's proportions move them a little).
        _, z_dyn_again = self._motion(generator, crossed, driving_landmarks)
        losses["contrastive"] = contrastive.cosface_in_batch(d_dyn, z_dyn_again)
      if w["cross_identity"]:
        embed, variables = self.identity_network
        losses["cross_identity"] = identity.cross_identity(embed, variables, crossed, other)
    gan = w["adversarial"] or w["feature_matching"]
    if gan:
      fake = self.discriminator.apply({"params": fixed_discriminator}, recon)
      real = self.discriminator.apply({"params": fixed_discriminator}, driving)
      if w["adversarial"]:
        losses["adversarial"] = adversarial.g_hinge([logits for logits, _ in fake])
      if w["feature_matching"]:
        losses["feature_matching"] = adversarial.feature_matching(
            [features for _, features in real], [features for _, features in fake])
    generator_loss = sum(w[name] * value for name, value in losses.items())
    metrics = dict(losses, generator_loss=generator_loss,
                   psnr=jnp.mean(image_metrics.psnr(to_unit(recon), to_unit(driving))))
    total = generator_loss
    if gan:
      real = self.discriminator.apply({"params": params["discriminator"]}, driving)
      fake = self.discriminator.apply({"params": params["discriminator"]},
                                      jax.lax.stop_gradient(recon))
      discriminator_loss = adversarial.d_hinge([logits for logits, _ in real],
                                               [logits for logits, _ in fake])
      metrics["discriminator_loss"] = discriminator_loss
      total = total + discriminator_loss
    return total, metrics

  def crop_difference_term(self, generator, batch, source, driving, source_motion,
                           driving_motion) -> jax.Array:
    """The `crop_difference` loss of a batch: images in [-1, 1], motions (z_pose, z_dyn) of the
    source and driving frames; z_pose's change enters without gradient."""
    pose_change = jax.lax.stop_gradient(driving_motion[0] - source_motion[0])
    predicted = self.model.apply({"params": generator}, driving_motion[1] - source_motion[1],
                                 pose_change, method=self.model.predict_crop_difference)
    change = networks.crop_change(self.model_config, source, batch.get("source_landmarks"),
                                  driving, batch.get("driving_landmarks"))
    return crop_difference_loss(predicted, change, pose_change, self.crop_difference_pose_sigma)

  def make_data_iterator(self, process_index: int, process_count: int, split: str = "train",
                         augment: bool = True):
    from vasa_jax.data import pipelines  # grain: not needed to build or benchmark the model.

    data = self.config.data
    source = pipelines.open_split(data.data_dir, data.dataset, split)
    return pipelines.global_batch_iterator(
        source, seed=self.config.seed, global_batch_size=self.config.batch_size,
        process_index=process_index, process_count=process_count,
        random_transform=pipelines.FaceFrameTriplets(
            source, self.image_size, augment=augment,
            cross_clip=float(data.get("cross_clip", 0.0)), nearby=float(data.get("nearby", 0.0)),
            nearby_frames=int(data.get("nearby_frames", 8))),
        worker_count=data.worker_count)


def model_overrides(config: ml_collections.ConfigDict) -> dict:
  """The `FaceLatentConfig` fields `config.model` sets besides `variant` and `remat` (the design
  switches of `networks.FaceLatentConfig`, for ablations)."""
  return {k: (tuple(v) if isinstance(v, list) else v) for k, v in config.model.items()
          if k not in ("variant", "remat")}


def feature_bumps(landmarks: jax.Array, size: int, sigma: float) -> jax.Array:
  """`[batch, size, size]`: the largest of three Gaussians of std `sigma` x `size` around the
  mouth and the eyes (`landmarks` `[batch, 6, 2]`, (x, y) / size, `schema.LANDMARK_NAMES` order),
  1 at a landmark; all zeros for a row whose mouth or eyes are unknown (NaN)."""
  centres = jnp.asarray(landmarks, jnp.float32)[:, (_MOUTH, *_EYES)]  # [batch, 3, 2]
  known = jnp.all(jnp.isfinite(centres), axis=(1, 2))
  centres = jnp.where(jnp.isfinite(centres), centres, 0.0)
  grid = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size
  dx = grid[None, None, None, :] - centres[:, :, 0, None, None]
  dy = grid[None, None, :, None] - centres[:, :, 1, None, None]
  bumps = jnp.exp(-(dx ** 2 + dy ** 2) / (2.0 * sigma ** 2))  # [batch, 3, size, size]
  return jnp.where(known[:, None, None], jnp.max(bumps, axis=1), 0.0)


def region_l1(pred: jax.Array, target: jax.Array, landmarks: jax.Array | None,
              region_weight: float, sigma: float) -> jax.Array:
  """L1 with pixels near the mouth and the eyes counting `1 + region_weight` times
  (`feature_bumps` of std `sigma` x the image size); rows whose landmarks are unknown (NaN) weigh
  every pixel 1. Normalised by the weights' sum, so it stays on the scale of a plain L1."""
  error = jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32))
  if landmarks is None or not region_weight:
    return jnp.mean(error)
  weight = 1.0 + region_weight * feature_bumps(landmarks, pred.shape[1], sigma)
  weight = weight[..., None]
  return jnp.sum(weight * error) / (jnp.sum(weight) * error.shape[-1])


def foreground_loss(alpha: jax.Array, landmarks: jax.Array | None, region: str = "face",
                    sigma: float = 0.04) -> jax.Array:
  """Mean -log(alpha) over a region of the driving frame (landmarks `[batch, 6, 2]` or None): the
  rendered head, not the background path, must draw it. `region` "face": the face ellipse
  (`alignment.face_mask`); "features": the mouth and the eyes (`feature_bumps` of std `sigma` x the
  image size), where expressions draw what a warp of the photo cannot (teeth, the mouth's inside,
  closed lids). 0 where no landmarks are known.

  Ours, off in the recipe (`weights.foreground` 0). With the unwarped background path and without
  this term, the reconstruction's quickest minimum is the source copied through an alpha near 0
  (the demo's model at 650 steps: mean alpha 0.14, 0.4 dB above copying the source, its rendered
  head alone 17 dB); with it the face is drawn from the volume, which at that budget is a blur
  (23.4 dB against 24.2 for copying). The recipe warps the background instead
  (`background_warp`): copying is then no longer a minimum, and the photo's detail moves with the
  motion codes."""
  if landmarks is None:
    return jnp.zeros((), jnp.float32)
  if region == "face":
    mask = alignment.face_mask(landmarks, alpha.shape[1])
  elif region == "features":
    mask = feature_bumps(jax.lax.stop_gradient(landmarks), alpha.shape[1], sigma)[..., None]
  else:
    raise ValueError(f"foreground region {region!r}: use one of {FOREGROUND_REGIONS}")
  nll = -jnp.log(jnp.clip(alpha.astype(jnp.float32), 1e-6, 1.0))
  return jnp.sum(mask * nll) / jnp.maximum(jnp.sum(mask), 1.0)


def crop_difference_loss(predicted: jax.Array, change: jax.Array, pose_change: jax.Array,
                         pose_sigma: float = 0.0) -> jax.Array:
  """Squared error of the predicted change of the face-aligned crop (`[batch, s, s, 3]`); with
  `pose_sigma` (radians) each pair weighs exp(-d^2 / (2 pose_sigma^2)), d the change of z_pose's
  rotation (without gradient), so that pairs whose head barely turns, where the crop changes with
  the face's own motion, count most."""
  error = jnp.mean(jnp.square(predicted - change), axis=(1, 2, 3))
  if not pose_sigma:
    return jnp.mean(error)
  turn = jnp.sum(jnp.square(jax.lax.stop_gradient(pose_change[:, :3])), axis=-1)
  weight = jnp.exp(-turn / (2.0 * pose_sigma ** 2))
  return jnp.sum(weight * error) / jnp.maximum(jnp.sum(weight), 1e-6)


def pose_loss(*pairs) -> jax.Array:
  """Mean absolute error (radians) of z_pose's yaw, pitch and roll against the dataset's labels,
  over pairs (z_pose `[batch, 7]`, labels `[batch, len(LABEL_NAMES)]` or None); labels that are
  NaN (not known) are left out. 0 without any known label."""
  return _label_l1(_POSE_LABELS, pairs)


def dynamics_label_loss(*pairs) -> jax.Array:
  """The diagnostic `dynamics_labels` loss: mean absolute error of z_dyn's first two entries
  against the jaw opening and blink labels, over pairs (z_dyn, labels or None), as `pose_loss`."""
  return _label_l1(_DYNAMICS_LABELS, pairs)


def _label_l1(columns, pairs) -> jax.Array:
  total = count = jnp.zeros((), jnp.float32)
  for code, labels in zip(pairs[::2], pairs[1::2]):
    if labels is None:
      continue
    truth = jnp.asarray(labels, jnp.float32)[:, columns]
    known = jnp.isfinite(truth)
    error = jnp.abs(code[:, :len(columns)].astype(jnp.float32) - jnp.where(known, truth, 0.0))
    total = total + jnp.sum(jnp.where(known, error, 0.0))
    count = count + jnp.sum(known)
  return total / jnp.maximum(count, 1.0)


def make_task(config: ml_collections.ConfigDict) -> FaceLatentTask:
  return FaceLatentTask(config)


def train(config: ml_collections.ConfigDict, workdir: str) -> common.TrainResult:
  """Trains stage 1; `config.evals` run during training and after the last step."""
  return common.train(config, workdir, make_task(config))


# ----------------------------------------------------------------------------------------------------
# The frozen stage-1 model.


@dataclasses.dataclass
class Stage1:
  """A trained stage-1 (face latent) model, frozen, that turns frames into motion latents.

  Build one with `vasa_jax.data.motion_latents.load_stage1` (a run's `predictor`). Frames are
  encoded in batches of `batch_size` (rounded up to a multiple of this process's devices), split
  over those devices, with the generator's parameters replicated.
  """

  task: FaceLatentTask
  params: Any  # {"generator": ..., "discriminator": ...}
  step: int
  workdir: str  # Absolute.
  variant: str
  image_size: int
  pose_dim: int
  dyn_dim: int
  batch_size: int = 64
  _encode: Any = dataclasses.field(default=None, init=False, repr=False)
  _batch_sharding: Any = dataclasses.field(default=None, init=False, repr=False)

  def __post_init__(self):
    # Each process encodes its own shards of the split, in its own time: the mesh holds this
    # process's devices (all of them in a single-process run).
    mesh = common.create_mesh({"data": -1, "fsdp": 1}, devices=jax.local_devices())
    self._batch_sharding = common.batch_sharding(mesh)
    self.batch_size = -(-int(self.batch_size) // mesh.size) * mesh.size
    self.params = dict(self.params, generator=jax.device_put(self.params["generator"],
                                                             common.replicated(mesh)))
    model = self.task.model

    def encode(generator, images, landmarks):
      return model.apply({"params": generator}, to_signed(images), landmarks,
                         method=model.encode_motion)

    self._encode = jax.jit(encode, in_shardings=(common.replicated(mesh), self._batch_sharding,
                                                 self._batch_sharding))

  @property
  def tag(self) -> str:
    """The cache folder's name for latents of this checkpoint."""
    return f"{self.variant}_step{self.step}"

  def describe(self) -> dict:
    return {"workdir": self.workdir, "step": self.step, "variant": self.variant,
            "image_size": self.image_size, "pose_dim": self.pose_dim, "dyn_dim": self.dyn_dim}

  def encode_motion(self, images: np.ndarray, landmarks: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Motion latents of frames.

    Args:
      images: uint8 [N, image_size, image_size, 3], any N.
      landmarks: float32 [N, len(LANDMARK_NAMES), 2] ((x, y) / size; NaN where unknown), where
        the dynamics encoder cuts its face crop; None: the canonical crop's positions.

    Returns:
      (z_pose float32 [N, pose_dim], z_dyn float32 [N, dyn_dim]).
    """
    images = np.asarray(images)
    frame_shape = (self.image_size, self.image_size, 3)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != frame_shape:
      raise ValueError(f"encode_motion takes uint8 [N, {self.image_size}, {self.image_size}, 3]; "
                       f"got {images.dtype} {list(images.shape)}")
    if landmarks is None:
      landmarks = np.full((len(images), len(schema.LANDMARK_NAMES), 2), np.nan, np.float32)
    landmarks = np.asarray(landmarks, np.float32)
    if landmarks.shape != (len(images), len(schema.LANDMARK_NAMES), 2):
      raise ValueError(f"encode_motion's landmarks are [N, {len(schema.LANDMARK_NAMES)}, 2] for "
                       f"N = {len(images)} frames; got {list(landmarks.shape)}")
    encoded = []
    for start in range(0, len(images), self.batch_size):
      chunk = images[start:start + self.batch_size]
      # One batch shape for every call, so it compiles once: the last chunk is filled up with black.
      batch = np.zeros((self.batch_size,) + frame_shape, np.uint8)
      batch[:len(chunk)] = chunk
      batch_landmarks = np.full((self.batch_size,) + landmarks.shape[1:], np.nan, np.float32)
      batch_landmarks[:len(chunk)] = landmarks[start:start + self.batch_size]
      latents = self._encode(self.params["generator"],
                             jax.device_put(batch, self._batch_sharding),
                             jax.device_put(batch_landmarks, self._batch_sharding))
      encoded.append((len(chunk), latents))  # Fetched below: the next batch is queued meanwhile.
    z_pose = [np.asarray(pose, np.float32)[:n] for n, (pose, _) in encoded]
    z_dyn = [np.asarray(dyn, np.float32)[:n] for n, (_, dyn) in encoded]
    if not encoded:
      return np.zeros((0, self.pose_dim), np.float32), np.zeros((0, self.dyn_dim), np.float32)
    return np.concatenate(z_pose), np.concatenate(z_dyn)
