"""Stage-1 losses against hand-computed values, their gradients, and the no-weights switch."""

from __future__ import annotations

import logging
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.errors import UserError
from vasa_jax.convert import frozen
from vasa_jax.losses import adversarial, consistency, contrastive, identity, perceptual


def _assert_finite_grad(fn, *args):
  grads = jax.grad(fn, argnums=tuple(range(len(args))))(*args)
  for g in jax.tree.leaves(grads):
    assert np.all(np.isfinite(np.asarray(g)))
  return grads


def _toy_features(params, images):
  """Two 'taps': the images scaled by params["a"], and their per-pixel channel sum."""
  return [params["a"] * images, jnp.sum(images, axis=-1, keepdims=True)]


def test_l1_and_perceptual_known_values():
  pred = jnp.zeros((1, 2, 2, 3))
  target = jnp.full((1, 2, 2, 3), 0.5)
  assert float(perceptual.l1(pred, target)) == pytest.approx(0.5)
  params = {"a": jnp.float32(2.0)}
  # tap 1: |2 * 0 - 2 * 0.5| = 1; tap 2: |0 - 1.5| = 1.5.
  loss = perceptual.perceptual_l1(_toy_features, params, pred, target, weights=(1.0, 0.1))
  assert loss.dtype == jnp.float32 and loss.shape == ()
  assert float(loss) == pytest.approx(1.0 + 0.15)
  assert float(perceptual.perceptual_l1(_toy_features, params, pred, target)) == pytest.approx(2.5)
  grads = _assert_finite_grad(
      lambda p, x: perceptual.perceptual_l1(_toy_features, p, x, target, (1.0, 0.1)),
      params, pred)
  assert float(grads[0]["a"]) == 0.0  # the feature network is frozen
  with pytest.raises(ValueError):
    perceptual.perceptual_l1(_toy_features, params, pred, target, weights=(1.0,))


def test_hinge_known_values():
  real = [jnp.array([2.0, 0.5, -1.0]), jnp.array([[0.0]])]
  fake = [jnp.array([-2.0, 0.0, 1.0]), jnp.array([[-0.5]])]
  # scale 0: real relu(1 - r) = (0, 0.5, 2) -> 2.5/3; fake relu(1 + f) = (0, 1, 2) -> 1.
  # scale 1: real 1; fake 0.5.
  expected = ((2.5 / 3 + 1.0) + (1.0 + 0.5)) / 2
  assert float(adversarial.d_hinge(real, fake)) == pytest.approx(expected)
  assert float(adversarial.g_hinge(fake)) == pytest.approx((1.0 / 3 + 0.5) / 2)
  _assert_finite_grad(adversarial.d_hinge, real, fake)
  _assert_finite_grad(adversarial.g_hinge, fake)


def test_feature_matching_known_values():
  real = [[jnp.zeros((1, 2, 2, 1)), jnp.ones((1, 1, 1, 4))], [jnp.full((2, 3), 3.0)]]
  fake = [[jnp.ones((1, 2, 2, 1)), jnp.ones((1, 1, 1, 4))], [jnp.full((2, 3), 1.0)]]
  # per layer: 1, 0, 2 -> mean 1.
  assert float(adversarial.feature_matching(real, fake)) == pytest.approx(1.0)
  real_grad, fake_grad = jax.grad(adversarial.feature_matching, argnums=(0, 1))(real, fake)
  assert all(float(jnp.abs(g).sum()) == 0.0 for g in jax.tree.leaves(real_grad))
  assert float(jnp.abs(fake_grad[1][0]).sum()) > 0
  with pytest.raises(ValueError):
    adversarial.feature_matching(real, fake[:1])


def test_cosface_against_the_formula():
  s, m = 5.0, 0.2
  anchor = jnp.array([[1.0, 0.0, 0.0]])
  positive = jnp.array([[3.0, 0.0, 0.0]])  # parallel: cos 1
  negatives = jnp.array([[[0.0, 2.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]]])  # cos 0, 0, -1
  pos = math.exp(s * (1 - m))
  expected = -math.log(pos / (pos + 2 * math.exp(0.0) + math.exp(-s)))
  loss = contrastive.cosface(anchor, positive, negatives)
  assert loss.dtype == jnp.float32 and loss.shape == ()
  assert float(loss) == pytest.approx(expected, rel=1e-6)
  # An orthogonal positive: cos 0.
  orthogonal = jnp.array([[0.0, 1.0, 0.0]])
  pos = math.exp(-s * m)
  expected = -math.log(pos / (pos + 2 + math.exp(-s)))
  assert float(contrastive.cosface(anchor, orthogonal, negatives)) == pytest.approx(expected,
                                                                                     rel=1e-6)
  _assert_finite_grad(lambda a: contrastive.cosface(a, positive, negatives), anchor)
  _assert_finite_grad(lambda a: contrastive.cosface(a, positive, negatives), jnp.zeros((1, 3)))


def test_cosface_in_batch_matches_explicit_negatives():
  # Jitted: eager dispatch of the many small ops is the slow part on CPU.
  cosface, in_batch = jax.jit(contrastive.cosface), jax.jit(contrastive.cosface_in_batch)
  rng = np.random.default_rng(0)
  anchor = jnp.asarray(rng.normal(size=(4, 8)), jnp.float32)
  positive = jnp.asarray(rng.normal(size=(4, 8)), jnp.float32)
  negatives = jnp.asarray(np.stack([np.delete(np.asarray(positive), i, axis=0) for i in range(4)]))
  assert float(in_batch(anchor, positive)) == pytest.approx(
      float(cosface(anchor, positive, negatives)), rel=1e-5)
  # Masking every negative leaves -log(1) = 0.
  none = jnp.zeros((4, 4), bool)
  assert float(in_batch(anchor, positive, none)) == pytest.approx(0.0, abs=1e-6)
  # Elements 0 and 1 from the same video: each is no negative of the other.
  mask = jnp.ones((4, 4), bool).at[0, 1].set(False).at[1, 0].set(False)
  explicit_0 = cosface(anchor[:1], positive[:1], positive[None, 2:])
  explicit_rest = cosface(anchor[2:], positive[2:], negatives[2:])
  explicit_1 = cosface(anchor[1:2], positive[1:2], positive[None, 2:])
  expected = (float(explicit_0) + float(explicit_1) + 2 * float(explicit_rest)) / 4
  assert float(in_batch(anchor, positive, mask)) == pytest.approx(expected, rel=1e-5)
  _assert_finite_grad(jax.jit(lambda a, p: contrastive.cosface_in_batch(a, p, mask)), anchor,
                      positive)


def test_transfer_consistency():
  a = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 4, 4, 3)), jnp.float32)
  assert float(consistency.transfer_consistency(a, a)) == 0.0
  assert float(consistency.transfer_consistency(a, a + 0.25)) == pytest.approx(0.25)
  params = {"a": jnp.float32(2.0)}
  # L1 0.25 + 0.5 * (1 * |2 * 0.25| + 1 * |3 * 0.25|).
  loss = consistency.transfer_consistency(a, a + 0.25, _toy_features, params,
                                          perceptual_weight=0.5)
  assert float(loss) == pytest.approx(0.25 + 0.5 * (0.5 + 0.75))
  assert float(consistency.transfer_consistency(a, a, _toy_features, params)) == 0.0
  _assert_finite_grad(
      lambda x, y: consistency.transfer_consistency(x, y, _toy_features, params), a, a + 0.1)


def test_cross_identity_and_arcface_input():
  def embed(params, images):
    return jnp.mean(images, axis=(1, 2)) * params["w"]

  params = {"w": jnp.ones(3)}
  source = jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0]), (2, 8, 8, 3))
  same = identity.cross_identity(embed, params, source * 3, source)
  assert float(same) == pytest.approx(0.0, abs=1e-6)
  orthogonal = jnp.broadcast_to(jnp.array([0.0, 1.0, 0.0]), (2, 8, 8, 3))
  assert float(identity.cross_identity(embed, params, orthogonal, source)) == pytest.approx(1.0)
  opposite = identity.cross_identity(embed, params, -source, source)
  assert float(opposite) == pytest.approx(2.0)
  result = orthogonal + 0.5 * source
  (grad,) = _assert_finite_grad(lambda r: identity.cross_identity(embed, params, r, source),
                                result)
  assert float(jnp.abs(grad).sum()) > 0

  images = jnp.linspace(0, 1, 2 * 256 * 256 * 3).reshape(2, 256, 256, 3)
  faces = frozen.arcface_input(images, input_range=(0.0, 1.0))
  assert faces.shape == (2, 112, 112, 3)
  assert -1.0 <= float(faces.min()) and float(faces.max()) <= 1.0
  top, left, bottom, right = frozen.CANONICAL_CROP_BOX
  # Square, centred, eye midpoint (41%) and mouth (63.2%) land on the 112x112 template's rows.
  assert bottom - top == pytest.approx(right - left)
  assert (left + right) / 2 == pytest.approx(0.5)
  assert top + 51.6 / 112 * (bottom - top) == pytest.approx(0.41)
  assert top + 92.3 / 112 * (bottom - top) == pytest.approx(0.632)
  whole = frozen.arcface_input(jnp.zeros((1, 112, 112, 3)), crop_box=(0, 0, 1, 1),
                                 input_range=(0.0, 1.0))
  np.testing.assert_allclose(whole, -1.0)


def test_missing_weights_turn_losses_off(caplog, tmp_path):
  with caplog.at_level(logging.WARNING):
    assert frozen.load_vgg19_or_none(None) is None
    assert frozen.load_arcface_or_none("") is None
  assert ("perceptual loss off: no VGG19 weights configured (set config.losses.vgg19_path)"
          in caplog.text)
  assert ("identity loss off: no ArcFace weights configured (set config.losses.arcface_path)"
          in caplog.text)
  # A configured but missing file is an error, never random weights.
  with pytest.raises(UserError, match="do not exist"):
    frozen.load_vgg19_or_none(tmp_path / "missing.safetensors")
  with pytest.raises(UserError, match="do not exist"):
    frozen.load_arcface_or_none(tmp_path / "missing.safetensors")


def test_loaded_networks_drive_the_losses(tmp_path):
  from vasa_jax.convert import common as convert_common
  from vasa_jax.models import arcface, vgg19

  # Converted files holding random weights stand in for real ones here.
  rng = np.random.default_rng(0)
  flat = {f"{module}/{leaf}": rng.normal(0, 0.05, shape).astype(np.float32)
          for module, leaves in vgg19.param_shapes().items() for leaf, shape in leaves.items()}
  vgg_path = convert_common.write_safetensors(flat, tmp_path / "vgg.safetensors", "vasa_jax.vgg19",
                                           {}, "VGG19")
  features_fn, variables = frozen.load_vgg19_or_none(vgg_path, taps=("relu1_1", "relu2_1"))
  pred = jnp.zeros((1, 32, 32, 3))
  target = jnp.full((1, 32, 32, 3), 0.5)
  loss = jax.jit(lambda v, p, t: perceptual.perceptual_l1(features_fn, v, p, t, (1.0, 1.0)))(
      variables, pred, target)
  assert float(loss) > 0

  flat = {path: (np.abs(rng.normal(1, 0.1, spec.shape)) if path.endswith("/var") else
                 rng.normal(0, 0.02, spec.shape)).astype(np.float32)
          for path, spec in convert_common.flatten(arcface.init_shapes((1, 1, 1, 1))).items()}
  arc_path = convert_common.write_safetensors(flat, tmp_path / "arc.safetensors", "vasa_jax.arcface",
                                           {"stage_blocks": "[1, 1, 1, 1]"}, "ArcFace")
  embed, arc_vars = frozen.load_arcface_or_none(arc_path)
  faces = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)), jnp.float32)
  loss = jax.jit(lambda v, r, s: identity.cross_identity(embed, v, r, s))(arc_vars, faces, faces)
  assert float(loss) == pytest.approx(0.0, abs=1e-5)
