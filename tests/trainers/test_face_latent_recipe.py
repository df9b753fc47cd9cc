"""Stage 1's recipe without training: the curriculum's phases, pose supervision, region weighting,
one optimizer per network and the ablation sweep."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.helpers import EXPERIMENTS
from vasa_jax import configs
from vasa_jax.data import schema
from vasa_jax.errors import UserError
from vasa_jax.evaluators.image_metrics import to_signed
from vasa_jax.models.face_latent import alignment
from vasa_jax.trainers import face_latent

SPEC = f"{EXPERIMENTS / 'face_latent' / 'synthtalk_tiny.py'}"
NO_PRETRAINED = ["--config.losses.perceptual_network=none", "--config.losses.identity_network=none"]


def _task(*overrides):
  return face_latent.make_task(configs.load_config(SPEC, NO_PRETRAINED + list(overrides)))


def _batch(size=64, batch=2):
  rng = np.random.default_rng(0)
  labels = rng.normal(0, 0.1, (batch, len(schema.LABEL_NAMES))).astype(np.float32)
  return {"source": rng.integers(0, 256, (batch, size, size, 3), np.uint8),
          "driving": rng.integers(0, 256, (batch, size, size, 3), np.uint8),
          "other": rng.integers(0, 256, (batch, size, size, 3), np.uint8),
          "source_labels": labels, "driving_labels": labels,
          **{f"{k}_landmarks": np.full((batch, len(schema.LANDMARK_NAMES), 2), 0.5, np.float32)
             for k in ("source", "driving", "other")}}


def _metric_names(task, phase):
  params = jax.eval_shape(task.init_params, jax.random.key(0))
  _, metrics = jax.eval_shape(lambda p: task.loss_fn(p, _batch(), jax.random.key(0), phase=phase),
                              params)
  return set(metrics)


def test_curriculum_switches_phases_at_the_configured_steps():
  task = _task("--config.losses.start.adversarial=100",
               "--config.losses.start.feature_matching=100",
               "--config.losses.start.consistency=150", "--config.losses.start.contrastive=150")
  assert task.phase(0) == task.phase(99) == ()
  assert task.phase(100) == task.phase(149) == ("adversarial", "feature_matching")
  # Cross-identity is off (no identity network), so it never joins a phase.
  assert task.phase(150) == task.phase(10**6) == ("adversarial", "feature_matching",
                                                  "contrastive", "consistency")
  assert _metric_names(task, ()) >= {"l1", "pose", "psnr"}
  assert not _metric_names(task, ()) & {"adversarial", "consistency", "discriminator_loss"}
  assert _metric_names(task, task.phase(150)) >= {"adversarial", "feature_matching",
                                                  "consistency", "contrastive",
                                                  "discriminator_loss"}
  config = configs.load_config(SPEC, NO_PRETRAINED)
  with config.unlocked():
    config.losses.start.l1 = 5
  with pytest.raises(UserError, match="can start these late"):
    face_latent.make_task(config)


def test_the_experiment_starts_reconstruction_alone():
  config = configs.load_config(SPEC, NO_PRETRAINED)
  task = face_latent.make_task(config)
  assert task.phase(0) == ()
  assert 0 < min(task.starts.values()) < config.total_steps
  assert task.phase(config.total_steps - 1)  # Every late loss is on by the end.


def test_pose_supervision_is_on_by_default_and_can_be_turned_off():
  assert _task().weights["pose"] > 0
  assert "pose" in _metric_names(_task(), ())
  assert "pose" not in _metric_names(_task("--config.losses.weights.pose=0"), ())


def test_pose_loss_compares_rotation_with_known_labels_only():
  labels = np.zeros((2, len(schema.LABEL_NAMES)), np.float32)
  labels[:, :3] = [[0.1, -0.2, 0.05], [np.nan, np.nan, np.nan]]
  z_pose = np.zeros((2, 7), np.float32)
  z_pose[0, :3] = [0.2, -0.2, 0.05]
  z_pose[1, :3] = 5.0  # Its labels are unknown: left out.
  z_pose[:, 3:] = 9.0  # Translation and scale are not supervised.
  assert float(face_latent.pose_loss(z_pose, labels)) == pytest.approx(0.1 / 3)
  assert float(face_latent.pose_loss(z_pose, labels, z_pose, None)) == pytest.approx(0.1 / 3)
  assert float(face_latent.pose_loss(z_pose, labels[1:2].repeat(2, 0))) == 0.0


def test_dynamics_label_diagnostic_is_off_by_default_and_reads_jaw_and_blink():
  assert _task().weights["dynamics_labels"] == 0
  assert "dynamics_labels" not in _metric_names(_task(), ())
  assert "dynamics_labels" in _metric_names(
      _task("--config.losses.weights.dynamics_labels=1"), ())
  labels = np.full((1, len(schema.LABEL_NAMES)), 7.0, np.float32)
  labels[0, schema.LABEL_NAMES.index("jaw_open")] = 0.5
  labels[0, schema.LABEL_NAMES.index("blink")] = np.nan  # Unknown: left out.
  z_dyn = np.full((1, 32), 3.0, np.float32)
  z_dyn[0, 0] = 0.3  # z_dyn[0] carries the jaw, z_dyn[1] the blink; the rest is free.
  assert float(face_latent.dynamics_label_loss(z_dyn, labels)) == pytest.approx(0.2)


def test_crop_difference_is_on_by_default_and_trains_z_dyn_not_z_pose():
  assert _task().weights["crop_difference"] > 0 and _task().model_config.crop_difference
  assert "crop_difference" in _metric_names(_task(), ())
  assert "crop_difference" not in _metric_names(_task("--config.model.crop_difference=False"), ())
  task = _task()
  model, batch = task.model, _batch()
  source, driving = to_signed(batch["source"]), to_signed(255 - batch["source"])

  def motions(module, *images):  # The motion encoder and the crop-difference map alone.
    coded = [module.encode_motion(image, batch["source_landmarks"]) for image in images]
    return coded, module.predict_crop_difference(coded[1][1] - coded[0][1],
                                                 coded[1][0] - coded[0][0])

  params = jax.jit(lambda key: model.init(key, source, driving, method=motions))(
      jax.random.key(0, impl="unsafe_rbg"))["params"]

  def loss(generator):
    (s, d), _ = model.apply({"params": generator}, source, driving, method=motions)
    return task.crop_difference_term(generator, batch, source, driving, s, d)

  grads = jax.jit(jax.grad(loss))(params)
  motion = grads["motion_encoder"]
  assert float(jnp.abs(motion["dyn_head"]["kernel"]).max()) > 0
  assert float(jnp.abs(motion["pose_head"]["kernel"]).max()) == 0  # No gradient to z_pose.
  assert float(jnp.abs(grads["crop_difference_net"]["kernel"]).max()) > 0


def test_crop_difference_loss_weighs_pairs_by_how_little_the_head_turns():
  predicted = np.zeros((2, 4, 4, 3), np.float32)
  change = np.stack([np.full((4, 4, 3), 1.0), np.full((4, 4, 3), 3.0)]).astype(np.float32)
  turn = np.zeros((2, 7), np.float32)
  turn[1, 0] = 0.2  # The second pair's head turns by 0.2 rad.
  assert float(face_latent.crop_difference_loss(predicted, change, turn)) == pytest.approx(5.0)
  weight = np.exp(-0.2 ** 2 / (2 * 0.1 ** 2))
  assert float(face_latent.crop_difference_loss(predicted, change, turn, pose_sigma=0.1)) == \
      pytest.approx((1.0 + weight * 9.0) / (1.0 + weight), rel=1e-5)


def test_region_l1_weighs_the_mouth_and_eyes_up():
  target = jnp.zeros((1, 64, 64, 3))
  landmarks = np.full((1, len(schema.LANDMARK_NAMES), 2), 0.5, np.float32)
  landmarks[0, 3] = (0.5, 0.75)  # mouth centre
  at_mouth = target.at[:, 46:50, 30:34].set(1.0)
  far = target.at[:, 2:6, 2:6].set(1.0)
  plain = [float(face_latent.region_l1(x, target, None, 4.0, 0.08)) for x in (at_mouth, far)]
  assert plain[0] == pytest.approx(plain[1])
  weighted = [float(face_latent.region_l1(x, target, landmarks, 4.0, 0.08))
              for x in (at_mouth, far)]
  assert weighted[0] > 3 * weighted[1]
  unknown = np.full_like(landmarks, np.nan)
  assert float(face_latent.region_l1(at_mouth, target, unknown, 4.0, 0.08)) == pytest.approx(
      plain[0])


def test_the_foreground_loss_asks_the_alpha_to_cover_the_face_not_the_backdrop():
  """With the background path the source can be copied through a zero alpha; the loss makes that
  costly over the face and leaves the rest of the frame to the model."""
  landmarks = np.array([[(0.4, 0.4), (0.6, 0.4), (0.5, 0.52), (0.5, 0.64), (0.5, 0.75),
                         (0.5, 0.28)]], np.float32)
  mask = np.asarray(alignment.face_mask(landmarks, 64))
  face = mask > 0.5
  covering = jnp.where(mask > 1e-3, 0.99, 0.01)
  copying = jnp.full((1, 64, 64, 1), 0.01)
  backdrop_only = jnp.where(face, 0.01, 0.99)
  loss = lambda alpha, lm=landmarks: float(face_latent.foreground_loss(alpha, lm))  # noqa: E731
  assert loss(covering) < 0.05
  assert loss(copying) > 4.0 and loss(backdrop_only) > 4.0
  assert loss(copying, None) == 0.0 and loss(copying, np.full_like(landmarks, np.nan)) == 0.0
  assert _task().weights["foreground"] == 0  # An option: the recipe warps the background.
  assert "foreground" not in _metric_names(_task(), ())
  assert "foreground" in _metric_names(_task("--config.losses.weights.foreground=1"), ())
  # Without the background path there is no alpha to ask for.
  assert _task("--config.model.background_path=False",
               "--config.losses.weights.foreground=1").weights["foreground"] == 0
  # Nor with the residual renderer, which adds a correction and composites nothing.
  assert _task("--config.model.background_residual=True",
               "--config.losses.weights.foreground=1").weights["foreground"] == 0


def test_the_features_foreground_covers_the_mouth_and_eyes_only():
  """`foreground_region="features"`: the rendered head must draw the mouth and the eyes (the
  weights of `region_l1`); the rest of the face may come from the warped photo."""
  landmarks = np.array([[(0.4, 0.4), (0.6, 0.4), (0.5, 0.52), (0.5, 0.64), (0.5, 0.75),
                         (0.5, 0.28)]], np.float32)
  bumps = np.asarray(face_latent.feature_bumps(landmarks, 64, 0.08))
  assert bumps.shape == (1, 64, 64)
  assert bumps[0, 41, 32] == pytest.approx(1.0, abs=0.02)  # The mouth centre (0.64 x 64 = 41).
  assert bumps[0, 25, 25] == pytest.approx(1.0, abs=0.02)  # The left eye.
  assert bumps[0, 5, 5] < 1e-3 and bumps[0, 60, 32] < 0.1  # Backdrop; below the chin.
  face = np.asarray(alignment.face_mask(landmarks, 64))[0, ..., 0] > 0.5
  features = bumps[0] > 0.5
  others = face & (bumps[0] < 0.3)  # Forehead, cheeks and chin: fewer pixels than `features`.
  assert 100 < others.sum() < features.sum()
  loss = lambda covered, region: float(face_latent.foreground_loss(  # noqa: E731
      jnp.where(covered, 0.99, 0.01)[None, ..., None], landmarks, region, 0.08))
  # Drawing the features costs less than drawing the rest of the face, under "features" only.
  assert loss(features, "features") < 0.5 * loss(others, "features")
  assert loss(features, "face") > 0.5 * loss(others, "face")
  task = _task("--config.losses.weights.foreground=1", "--config.losses.foreground_region=features")
  assert task.foreground_region == "features" and _task().foreground_region == "face"
  with pytest.raises(UserError, match="foreground_region='eyes' is unknown"):
    _task("--config.losses.foreground_region=eyes")


def test_generator_and_discriminator_have_their_own_optimizers():
  """Each network is clipped on its own gradient norm: a huge generator gradient does not shrink
  the discriminator's update (one global clip did), and the discriminator has its own b1."""
  config = configs.load_config(SPEC, NO_PRETRAINED)
  task = face_latent.make_task(config)
  tx, _ = task.make_optimizer(config)
  params = {"generator": {"w": jnp.ones(3)}, "discriminator": {"w": jnp.ones(3)}}
  state = tx.init(params)
  small = {"generator": {"w": jnp.full(3, 1e-3)}, "discriminator": {"w": jnp.full(3, 1e-3)}}
  huge = {"generator": {"w": jnp.full(3, 1e6)}, "discriminator": {"w": jnp.full(3, 1e-3)}}
  for _ in range(60):  # Past both warm-ups.
    small_updates, small_state = tx.update(small, state, params)
    huge_updates, state = tx.update(huge, state, params)
  np.testing.assert_allclose(huge_updates["discriminator"]["w"],
                             small_updates["discriminator"]["w"], rtol=1e-6)
  assert config.discriminator.optimizer.b1 != config.optimizer.b1
  assert isinstance(tx, optax.GradientTransformation)


def test_sweep_ablates_each_ingredient_and_both_vasa_losses():
  from vasa_jax.configs import sweep_overrides

  members = sweep_overrides(SPEC)
  assert members[0] == []
  flat = [" ".join(m) for m in members]
  for key in ("model.warp_input", "model.background_path", "model.background_warp",
              "model.separate_motion_trunks", "model.flow_basis", "model.crop_difference",
              "losses.crop_difference_pose_sigma",
              "model.linear_upsampling", "model.min_group_size", "losses.weights.pose",
              "data.cross_clip", "losses.region_weight", "losses.start.adversarial",
              "losses.weights.consistency", "losses.weights.cross_identity"):
    assert any(key in member for member in flat), key
  for overrides in members:  # Every member builds.
    face_latent.make_task(configs.load_config(SPEC, NO_PRETRAINED + overrides))
