"""Face latent networks: tiny-size shapes, base and paper parameter counts, gradients, bf16."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.errors import UserError
from vasa_jax.models import layers
from vasa_jax.models.face_latent import alignment, networks, warping

TINY = networks.make_config("tiny")
BATCH = 2


def _images(seed=0, size=TINY.image_size):
  return jax.random.uniform(jax.random.key(seed), (BATCH, size, size, 3), minval=-1, maxval=1)


def _key(seed=0):
  # Parameter initialisation compiles one RNG per parameter; rbg keys compile several times faster
  # than threefry, which keeps the real inits here within the test budget.
  return jax.random.key(seed, impl="unsafe_rbg")


@pytest.fixture(scope="module")
def tiny_model():
  model = networks.FaceLatentModel(TINY)
  params = jax.jit(model.init)(_key(), _images(1), _images(2))
  return model, params


def _sub(params, name):
  return {"params": params["params"][name]}


def test_variants_table():
  assert set(networks.VARIANTS) == {"tiny", "small", "base", "paper"}
  paper = networks.face_latent_config("paper")
  assert (paper["image_size"], paper["volume_channels"], paper["volume_depth"],
          paper["volume_size"]) == (512, 96, 16, 64)
  assert paper["unet_channels"] == (96, 192, 384, 768)
  assert paper["render_channels"] == 512 and paper["render_blocks"] == 8
  assert paper["render_up_channels"] == (256, 128, 64)
  assert networks.face_latent_config("tiny", dyn_dim=7)["dyn_dim"] == 7
  with pytest.raises(UserError):
    networks.face_latent_config("huge")
  with pytest.raises(UserError):
    networks.face_latent_config("tiny", no_such_key=1)


def test_module_shapes_at_tiny(tiny_model):
  """Each module with the really initialised parameters of the tiny model (shapes by eval_shape: the
  real forward pass of all of them runs in the tests below)."""
  _, params = tiny_model
  image = _images()
  depth, size, channels = TINY.volume_depth, TINY.volume_size, TINY.volume_channels
  volume_shape = (BATCH, depth, size, size, channels)
  volume = jnp.zeros(volume_shape)
  z_dyn, z_id = jnp.ones((BATCH, TINY.dyn_dim)), jnp.ones((BATCH, TINY.id_dim))

  def shape(module, name, *inputs):
    return jax.eval_shape(module.apply, _sub(params, name), *inputs)

  assert shape(networks.AppearanceEncoder(TINY), "appearance_encoder", image).shape == volume_shape
  z_id_out = shape(networks.IdentityEncoder(TINY), "identity_encoder", image)
  assert z_id_out.shape == (BATCH, TINY.id_dim)
  z_pose, z_dyn_out = shape(networks.MotionEncoder(TINY), "motion_encoder", image)
  assert z_pose.shape == (BATCH, 7) and z_dyn_out.shape == (BATCH, TINY.dyn_dim)
  for name in ("warp_to_canonical_net", "warp_from_canonical_net"):
    flow = shape(networks.WarpGenerator(TINY), name, z_dyn, z_id)
    assert flow.shape == (BATCH, depth, size, size, 3)
  assert shape(networks.CanonicalVolumeNet(TINY), "canonical_net", volume).shape == volume_shape
  rendered, alpha, depth_logits = shape(networks.Renderer(TINY), "renderer", volume)
  assert rendered.shape == image.shape and rendered.dtype == jnp.float32
  assert alpha.shape == image.shape[:-1] + (1,)
  assert depth_logits is None  # Only with background_warp.


def test_warp_generator_starts_small_and_depends_on_the_codes(tiny_model):
  """The flow starts at about `flow_init` grid units (a fraction of a voxel), not zero, and the
  codes are the generator's input: other codes give another flow from the first step."""
  _, params = tiny_model
  generator = networks.WarpGenerator(TINY)
  z_dyn = jax.random.normal(_key(1), (BATCH, TINY.dyn_dim))
  z_id = jax.random.normal(_key(2), (BATCH, TINY.id_dim))
  apply = jax.jit(generator.apply)
  flow = apply(_sub(params, "warp_to_canonical_net"), z_dyn, z_id)
  voxel = 2.0 / (TINY.volume_size - 1)
  assert 0.2 * TINY.flow_init < float(jnp.std(flow)) < 5 * TINY.flow_init
  assert float(jnp.abs(flow).max()) < voxel
  other = apply(_sub(params, "warp_to_canonical_net"), -z_dyn, z_id)
  assert float(jnp.mean(jnp.abs(flow - other))) > 0.2 * TINY.flow_init


def test_the_flow_basis_adds_a_linear_flow_per_dynamics_entry():
  """With `flow_basis`, the flow is the convolutional one plus z_dyn times a learned basis (zero at
  the start, so an untrained generator is unchanged)."""
  config = networks.make_config("tiny", flow_basis=True)
  generator = networks.WarpGenerator(config)
  z_dyn = jax.random.normal(_key(1), (BATCH, config.dyn_dim))
  z_id = jax.random.normal(_key(2), (BATCH, config.id_dim))
  params = jax.jit(generator.init)(_key(3), z_dyn, z_id)
  basis = params["params"]["flow_basis"]
  target = tuple(s // config.flow_stride for s in config.volume_shape)
  assert basis.shape == (config.dyn_dim,) + target + (3,) and not np.any(basis)
  plain = networks.WarpGenerator(networks.make_config("tiny"))
  without = {"params": {k: v for k, v in params["params"].items() if k != "flow_basis"}}
  np.testing.assert_allclose(generator.apply(params, z_dyn, z_id),
                             plain.apply(without, z_dyn, z_id), atol=1e-6)
  # One basis flow, uniform over the volume, moves the whole flow by z_dyn[0] times it.
  shifted = jax.tree.map(lambda x: x, params)
  shifted["params"]["flow_basis"] = basis.at[0].set(jnp.asarray([0.1, 0.0, 0.0]))
  moved = generator.apply(shifted, z_dyn, z_id) - generator.apply(params, z_dyn, z_id)
  expected = 0.1 * z_dyn[:, 0]
  np.testing.assert_allclose(moved[..., 0], jnp.broadcast_to(
      expected[:, None, None, None], moved.shape[:-1]), atol=1e-5)
  assert float(jnp.abs(moved[..., 1:]).max()) < 1e-6


def test_dynamics_reach_the_image_at_initialisation(tiny_model):
  """Swapping z_dyn between two examples changes the decoded image by more than 1e-3 (mean
  absolute, images in [-1, 1]); before the codes fed the warp generators' input (their only path
  was norm modulation and a flow head both initialised at variance 1e-4) the change was 3e-5,
  against 0.24 for a 0.1 rad yaw change."""
  model, params = tiny_model
  latents = jax.jit(lambda p, x: model.apply(p, x, method=model.encode))(params, _images(6))
  decode = jax.jit(lambda p, z_pose, z_dyn: model.apply(
      p, latents["v_app"], latents["z_id"], z_pose, z_dyn, latents["background"],
      method=model.decode))
  image = decode(params, latents["z_pose"], latents["z_dyn"])
  swapped = decode(params, latents["z_pose"], latents["z_dyn"][::-1])
  turned = decode(params, latents["z_pose"].at[:, 0].add(0.1), latents["z_dyn"])
  dynamics_change = float(jnp.mean(jnp.abs(image - swapped)))
  pose_change = float(jnp.mean(jnp.abs(image - turned)))
  assert dynamics_change > 1e-3
  assert dynamics_change > 0.01 * pose_change


def test_crop_difference_maps_code_changes_linearly_to_the_crop_change():
  """The crop-difference map is linear in the changes of z_dyn and z_pose (no change: no change of
  the crop), at most `crop_difference_size` a side, and the target is the difference of the two
  frames' face-aligned crops."""
  config = networks.make_config(TINY, dynamics_crop=0.5, crop_difference=True,
                                crop_difference_size=16)
  model = networks.FaceLatentModel(config)
  dyn, pose = (jax.random.normal(_key(seed), (BATCH, n)) for seed, n in ((3, TINY.dyn_dim), (4, 7)))
  params = model.init(_key(), dyn, pose, method=model.predict_crop_difference)
  predict = jax.jit(lambda d, p: model.apply(params, d, p, method=model.predict_crop_difference))
  assert predict(dyn, pose).shape == (BATCH, 16, 16, 3)
  np.testing.assert_allclose(predict(0 * dyn, 0 * pose), 0.0, atol=1e-7)
  np.testing.assert_allclose(predict(2 * dyn, 2 * pose), 2 * predict(dyn, pose), atol=1e-5)
  landmarks = jnp.full((BATCH, 6, 2), jnp.nan)
  image = _images(9)
  assert float(jnp.abs(networks.crop_change(config, image, landmarks, image, landmarks)).max()) \
      == 0.0
  assert networks.face_crop(config, image, landmarks).shape[1] == 32
  colour = jnp.broadcast_to(jnp.array([0.5, -0.2, 0.1]), image.shape)
  change = networks.crop_change(config, colour, landmarks, colour - 0.25, landmarks)
  assert change.shape == (BATCH, 16, 16, 3)  # The crop's 32 pixels a side, halved.
  np.testing.assert_allclose(change, -0.25, atol=1e-5)  # Driving minus source.
  with pytest.raises(UserError, match="crop_difference.*dynamics_crop"):
    networks.FaceLatentModel(networks.make_config(TINY, crop_difference=True)).init(
        _key(), dyn, pose, method="predict_crop_difference")


def test_background_path_composites_the_head_over_the_source(tiny_model):
  """decode = alpha * rendering + (1 - alpha) * background, alpha from the renderer."""
  model, params = tiny_model
  image = _images(7)

  @jax.jit
  def run(params, image):
    latents = model.apply(params, image, method=model.encode)
    args = (latents["v_app"], latents["z_id"], latents["z_pose"], latents["z_dyn"])
    rgb, alpha = model.apply(params, *args, method=model.decode_layers)
    composite = model.apply(params, *args, latents["background"], method=model.decode)
    return latents["background"], rgb, alpha, composite, model.apply(params, *args,
                                                                       method=model.decode)

  background, rgb, alpha, composite, alone = run(params, image)
  np.testing.assert_array_equal(background, image)
  assert 0.3 < float(alpha.mean()) < 0.7  # Half and half at initialisation.
  np.testing.assert_allclose(composite, alpha * rgb + (1 - alpha) * image, atol=1e-5)
  np.testing.assert_allclose(alone, rgb, atol=1e-6)
  without = networks.make_config(TINY, background_path=False)
  assert "background" not in jax.eval_shape(
      lambda x: networks.FaceLatentModel(without).apply(params, x, method="encode"), image)


def test_discriminator_shapes_at_tiny():
  disc = networks.PatchDiscriminator.from_variant("tiny")
  image = _images()
  variables = jax.jit(disc.init)(_key(), image)
  outputs = jax.jit(disc.apply)(variables, image)
  assert len(outputs) == TINY.disc_scales
  for scale, (logits, features) in enumerate(outputs):
    side = TINY.image_size // 2**scale // 8  # three stride-2 layers
    assert logits.shape == (BATCH, side, side, 1)
    assert len(features) == len(TINY.disc_channels)
    assert features[-1].shape[-1] == TINY.disc_channels[-1]
    assert bool(jnp.all(jnp.isfinite(logits)))


def test_call_returns_the_image_and_all_latents(tiny_model):
  model, params = tiny_model
  source, driving = _images(3), _images(4)
  out = jax.eval_shape(model.apply, params, source, driving)
  assert out["image"].shape == source.shape
  assert out["z_pose_driving"].shape == (BATCH, 7)
  assert out["z_dyn_driving"].shape == (BATCH, TINY.dyn_dim)
  assert set(out) == {"image", "v_app", "z_id", "z_pose", "z_dyn", "background",
                      "z_pose_driving", "z_dyn_driving"}


def test_decode_of_encode_runs_and_is_differentiable(tiny_model):
  model, params = tiny_model
  image = _images(5)

  def loss(params):
    latents = model.apply(params, image, method=model.encode)
    recon = model.apply(params, latents["v_app"], latents["z_id"], latents["z_pose"],
                        latents["z_dyn"], method=model.decode)
    return jnp.mean(jnp.abs(recon - image)), (latents, recon)

  (value, (latents, recon)), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
  assert latents["v_app"].shape == (BATCH, TINY.volume_depth, TINY.volume_size, TINY.volume_size,
                                    TINY.volume_channels)
  assert latents["z_id"].shape == (BATCH, TINY.id_dim)
  assert latents["z_pose"].shape == (BATCH, warping.POSE_DIM)
  assert latents["z_dyn"].shape == (BATCH, TINY.dyn_dim)
  assert float(jnp.abs(latents["z_pose"]).max()) < 0.05  # near the identity pose at init
  assert recon.shape == image.shape and float(jnp.abs(recon).max()) <= 1.0
  assert bool(jnp.isfinite(value))
  # Every network gets a finite, non-zero gradient (pose and flow reach it through the sampler).
  for name, grad in grads["params"].items():
    norm = float(jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(grad))))
    assert np.isfinite(norm) and norm > 0.0, name
  pose_grad = grads["params"]["motion_encoder"]["pose_head"]["kernel"]
  assert float(jnp.abs(pose_grad).max()) > 0.0


def test_bf16_compute_keeps_fp32_params(tiny_model):
  _, params = tiny_model
  model = networks.FaceLatentModel(TINY, dtype=jnp.bfloat16)
  source = _images(6)
  shapes = jax.eval_shape(model.init, _key(), source, source)
  assert {x.dtype for x in jax.tree_util.tree_leaves(shapes)} == {jnp.dtype(jnp.float32)}
  assert jax.tree_util.tree_structure(shapes) == jax.tree_util.tree_structure(params)
  out = jax.jit(model.apply)(params, source, source)
  assert out["image"].dtype == jnp.float32 and out["z_pose"].dtype == jnp.float32
  assert out["z_dyn"].dtype == jnp.bfloat16
  assert bool(jnp.all(jnp.isfinite(out["image"])))


def test_weight_standardised_conv_is_scale_invariant():
  x = jax.random.normal(jax.random.key(0), (1, 4, 5, 5, 3))
  conv = layers.conv(6, 3, 3, use_bias=False)
  variables = jax.jit(conv.init)(_key(1), x)
  scaled = jax.tree_util.tree_map(lambda p: 7.0 * p, variables)
  apply = jax.jit(conv.apply)
  np.testing.assert_allclose(apply(variables, x), apply(scaled, x), rtol=1e-4, atol=1e-4)


def test_remat_gives_the_same_values_and_gradients():
  """Rematerialisation changes what the backward pass stores, never what it computes (on tiny
  with one block per stage, which compiles twice as fast)."""
  config = networks.make_config(TINY, motion_blocks=(1, 1), id_blocks=(1, 1), unet_channels=(16,),
                                render_blocks=1, warp_channels=(16,))
  source, driving = _images(7), _images(8)
  params = jax.jit(networks.FaceLatentModel(config).init)(_key(), source, driving)

  def loss(model):
    def fn(params):
      return jnp.mean(jnp.abs(model.apply(params, source, driving)["image"] - driving))
    return jax.jit(jax.value_and_grad(fn))(params)

  value, grads = loss(networks.FaceLatentModel(config))
  remat_value, remat_grads = loss(networks.FaceLatentModel(config, remat=True))
  np.testing.assert_allclose(remat_value, value, rtol=1e-5)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6),
                         remat_grads, grads)


@pytest.mark.parametrize("variant, low, high", [("small", 0.5e6, 5e6), ("base", 30e6, 150e6),
                                                ("paper", 120e6, 300e6)])
def test_parameter_counts_by_eval_shape(variant, low, high):
  cfg = networks.make_config(variant)
  image = jax.ShapeDtypeStruct((1, cfg.image_size, cfg.image_size, 3), jnp.float32)
  model = networks.FaceLatentModel(cfg)
  shapes = jax.eval_shape(model.init, jax.random.key(0), image, image)
  total = networks.count_params(shapes)
  per_module = {k: networks.count_params(v) for k, v in shapes["params"].items()}
  disc = networks.PatchDiscriminator.from_variant(cfg)
  disc_total = networks.count_params(jax.eval_shape(disc.init, jax.random.key(0), image))
  print(f"\n{variant}: face model {total / 1e6:.1f}M parameters "
        f"({', '.join(f'{k} {v / 1e6:.1f}M' for k, v in per_module.items())}); "
        f"discriminator {disc_total / 1e6:.1f}M")
  assert low <= total <= high
  out = jax.eval_shape(model.apply, shapes, image, image)
  assert out["image"].shape == image.shape
  assert out["v_app"].shape == (1, cfg.volume_depth, cfg.volume_size, cfg.volume_size,
                                cfg.volume_channels)


def test_scaled_weight_standardisation_keeps_unit_variance():
  """A unit-variance input gives a unit-variance output whatever the fan-in (the 1/sqrt(fan_in)
  gain); without it a 3x3 conv over 64 channels multiplied the std by about 24."""
  for channels in (4, 64):
    x = jax.random.normal(jax.random.key(0), (8, 16, 16, channels))
    conv = layers.conv(32, 3, 2, use_bias=False)
    y = jax.jit(conv.apply)(jax.jit(conv.init)(_key(1), x), x)
    assert 0.5 < float(jnp.std(y)) < 1.5, channels


def test_residual_blocks_start_as_their_skip_path():
  x = jax.random.normal(jax.random.key(0), (2, 4, 8, 8, 16))
  block = layers.ResBlock3D(16, min_group_size=8, branch_init=0.0)
  variables = jax.jit(block.init)(_key(1), x)
  np.testing.assert_allclose(jax.jit(block.apply)(variables, x), x, atol=1e-6)


def test_group_norm_groups_hold_at_least_the_minimum():
  assert layers.num_groups(64) == 32 and layers.num_groups(8) == 8  # The old rule.
  assert layers.num_groups(64, min_group_size=8) == 8
  assert layers.num_groups(8, min_group_size=8) == 1
  assert layers.num_groups(24, min_group_size=8) == 3
  assert layers.num_groups(4, min_group_size=8) == 1


def test_linear_upsampling_matches_jax_image_resize():
  """x2 per axis, half-pixel centres: the same numbers as jax.image.resize's linear method, with
  no blocks of repeated values."""
  x = jax.random.normal(jax.random.key(0), (2, 3, 4, 5, 6))
  for factors in ((2, 2, 2), (1, 2, 2)):
    shape = (2,) + tuple(s * f for s, f in zip(x.shape[1:4], factors)) + (6,)
    np.testing.assert_allclose(layers.upsample_linear(x, factors),
                               jax.image.resize(x, shape, "linear"), atol=1e-6)
  with pytest.raises(ValueError):
    layers.upsample_linear(x, (3, 1, 1))


def test_motion_stem_stride_sets_the_resolution_the_dynamics_trunk_sees():
  image = jnp.zeros((1, 64, 64, 3))
  for stride, size in ((4, 16), (2, 32), (1, 64)):
    trunk = networks.ResNetTrunk(8, (1,), False, stem_stride=stride)
    variables = jax.eval_shape(trunk.init, _key(0), image)
    _, state = jax.eval_shape(
        lambda v: trunk.apply(v, image, capture_intermediates=True), variables)
    first_block = state["intermediates"]["_BasicBlock_0"]["__call__"][0]
    assert first_block.shape == (1, size, size, 8)
  with pytest.raises(ValueError, match="stem_stride 3"):
    networks.ResNetTrunk(8, (1,), False, stem_stride=3).init(_key(0), image)
  model = networks.FaceLatentModel.from_variant("tiny", motion_stem_stride=1)
  z_pose, z_dyn = jax.eval_shape(
      lambda: model.apply(model.init(_key(0), image, image), image, method=model.encode_motion))
  assert z_pose.shape == (1, warping.POSE_DIM) and z_dyn.shape == (1, model.config.dyn_dim)


def test_the_dynamics_trunk_reads_the_crop_at_the_landmarks():
  encoder = networks.MotionEncoder(networks.make_config("tiny", dynamics_crop=0.5))
  image = _images(3)
  params = jax.jit(encoder.init)(_key(0), image)
  landmarks = jnp.broadcast_to(jnp.asarray(
      [(0.35, 0.3), (0.55, 0.3), (0.45, 0.4), (0.45, 0.55), (0.45, 0.65), (0.45, 0.2)]),
      (BATCH, 6, 2))
  default = jnp.full((BATCH, 6, 2), jnp.nan)  # Unknown: the canonical crop's positions.
  motion = jax.jit(encoder.apply)
  pose_default, dyn_default = motion(params, image, default)
  pose_moved, dyn_moved = motion(params, image, landmarks)
  np.testing.assert_array_equal(pose_moved, pose_default)  # The pose trunk sees the whole image.
  assert float(jnp.abs(dyn_moved - dyn_default).max()) > 1e-4
  _, dyn_none = encoder.apply(params, image, None)
  np.testing.assert_allclose(dyn_none, dyn_default, atol=1e-5)  # Eager against jitted.
  # The whole image (MegaPortraits' input, and runs from before the switch): landmarks do not
  # matter, and the parameters are the same, so either reads the other's checkpoints.
  assert TINY.dynamics_crop == 0.0
  whole = jax.jit(networks.MotionEncoder(TINY).apply)
  np.testing.assert_array_equal(whole(params, image, default)[1],
                                whole(params, image, landmarks)[1])
  shared = networks.MotionEncoder(networks.make_config("tiny", dynamics_crop=0.5,
                                                       separate_motion_trunks=False))
  with pytest.raises(UserError, match="dynamics_crop needs separate_motion_trunks"):
    jax.eval_shape(shared.init, _key(0), image)


def test_the_warped_background_is_the_source_carried_by_the_pose(tiny_model):
  """`warp_background` with the source's own pose and no flow gives the source back; a target
  pose one voxel to the right moves the picture by a voxel's pixels; and a model with the switch
  carries the photo to a new pose from its first step (`background_warp`)."""
  size, volume = 64, 16
  image = jax.random.uniform(jax.random.key(1), (2, size, size, 3), minval=-1.0, maxval=1.0)
  pose = jnp.zeros((2, 7)).at[:, 0].set(jnp.array([0.0, 0.3]))  # yaw 0 and 0.3 rad
  flat_depth = jnp.zeros((2, size, size, 4))
  same = networks.warp_background(image, pose, None, pose, None, flat_depth, volume)
  np.testing.assert_allclose(same, image, atol=1e-4)
  moved = pose.at[:, 3].set(2.0 / (volume - 1))  # one voxel, 4 pixels, to the right
  shifted = networks.warp_background(image, pose, None, moved, None, flat_depth, volume)
  np.testing.assert_allclose(shifted[:, :, 8:], image[:, :, 4:-4], atol=1e-4)

  # A smooth picture, so that the untrained flows' fraction of a pixel does not matter.
  yy, xx = np.mgrid[:size, :size] / size
  smooth = jnp.asarray(np.stack([np.sin(6 * xx), np.cos(5 * yy), np.sin(4 * (xx + yy))],
                                -1)[None].repeat(2, 0), jnp.float32)
  model = networks.FaceLatentModel(networks.make_config(TINY, background_warp=True))
  # The switch adds one zero-initialised layer to the renderer: the tiny model's parameters and it.
  base = tiny_model[1]["params"]
  expected = jax.eval_shape(model.init, jax.random.key(0), smooth, smooth)["params"]
  params = {"params": {**base, "renderer": {**base["renderer"], "to_depth": jax.tree.map(
      lambda x: jnp.zeros(x.shape, x.dtype), expected["renderer"]["to_depth"])}}}
  assert jax.tree.structure(params["params"]) == jax.tree.structure(expected)

  @jax.jit
  def layers_of(params, image):
    """(composite, alpha, composite over the unwarped photo, the photo's flow) at a pose moved
    one voxel to the right."""
    latents = model.apply(params, image, method=model.encode)
    z_pose = latents["z_pose"].at[:, 3].add(2.0 / (volume - 1))
    args = (latents["v_app"], latents["z_id"], z_pose, latents["z_dyn"])
    out, alpha = model.apply(params, *args, latents["background"], latents["background_flow"],
                             latents["z_pose"], return_alpha=True, method=model.decode)
    unwarped = model.apply(params, *args, latents["background"], method=model.decode)
    return out, alpha, unwarped, latents["background_flow"]

  out, alpha, unwarped, flow = layers_of(params, smooth)
  assert flow.shape == (2, 4, volume, volume, 3)
  # The two composites differ by their backgrounds only; at initialisation the warped one is half
  # the photo moved, half the photo still.
  background = smooth + 2 * (out - unwarped) / (1 - alpha)
  error = jnp.abs(background[:, 8:-8, 12:-8] - smooth[:, 8:-8, 8:-12])
  assert float(error.mean()) < 0.04 and float(error.max()) < 0.3
  assert float(jnp.abs(out - unwarped).mean()) > 0.02


def test_the_residual_renderer_adds_a_correction_to_the_warped_background(tiny_model):
  """`background_residual`: the frame is the (warped) background plus the renderer's output, which
  starts at zero, so an untrained model returns the photo carried by its near-identity warps."""
  image = _images(9)
  residual = networks.FaceLatentModel(networks.make_config(TINY, background_warp=True,
                                                           background_residual=True))
  expected = jax.eval_shape(residual.init, jax.random.key(0), image, image)["params"]
  base = tiny_model[1]["params"]
  zero = lambda tree: jax.tree.map(jnp.zeros_like, tree)  # noqa: E731
  params = {**base, "renderer": {**base["renderer"], "to_depth": zero(
      expected["renderer"]["to_depth"]), "to_rgba": zero(base["renderer"]["to_rgba"])}}
  assert jax.tree.structure(params) == jax.tree.structure(expected)
  red = {**params, "renderer": {**params["renderer"], "to_rgba": {
      "kernel": params["renderer"]["to_rgba"]["kernel"], "bias": jnp.array([0.1, 0, 0, 0.0])}}}

  @jax.jit
  def run(params):
    latents = residual.apply({"params": params}, image, method=residual.encode)
    return residual.apply({"params": params}, latents["v_app"], latents["z_id"],
                          latents["z_pose"], latents["z_dyn"], latents["background"],
                          latents["background_flow"], latents["z_pose"], method=residual.decode)

  plain, redder = run(params), run(red)  # One compilation for both.
  assert float(jnp.abs(plain - image)[:, 8:-8, 8:-8].mean()) < 0.1  # The photo, barely moved.
  inside = (jnp.abs(plain) < 0.85)[..., 0]
  assert float(jnp.abs(jnp.where(inside, redder[..., 0] - plain[..., 0] - 0.1, 0)).max()) < 1e-5
  np.testing.assert_allclose(redder[..., 1:], plain[..., 1:], atol=1e-6)
  with pytest.raises(ValueError, match="pass encode's background"):
    def without_background(params):
      latents = residual.apply({"params": params}, image, method=residual.encode)
      return residual.apply({"params": params}, latents["v_app"], latents["z_id"],
                            latents["z_pose"], latents["z_dyn"], method=residual.decode)

    jax.eval_shape(without_background, params)
  # The renderer's last layer starts at zero (its own init, not only the zeroed test weights).
  renderer = networks.Renderer(residual.config)
  volume = jnp.ones((1, *TINY.volume_shape, TINY.volume_channels))
  init = jax.jit(renderer.init)(_key(), volume)["params"]["to_rgba"]
  assert float(jnp.abs(init["kernel"]).max()) == 0.0


def test_the_pose_head_reads_the_landmarks_geometry_when_asked():
  image = _images(3)
  landmarks = jnp.broadcast_to(jnp.asarray(
      [(0.35, 0.3), (0.55, 0.3), (0.45, 0.4), (0.45, 0.55), (0.45, 0.65), (0.45, 0.2)]),
      (BATCH, 6, 2))
  turned = landmarks.at[:, 2, 0].add(0.05)  # the nose moved to one side: a turned head
  encoder = networks.MotionEncoder(networks.make_config("tiny", pose_landmarks=True))
  params = jax.jit(encoder.init)(_key(0), image, landmarks)
  motion = jax.jit(encoder.apply)
  assert float(jnp.abs(motion(params, image, turned)[0] - motion(params, image, landmarks)[0]
                       ).max()) > 1e-5
  features = alignment.landmark_features(jnp.stack([landmarks[0], jnp.full((6, 2), jnp.nan)]), 2)
  assert features.shape == (2, 24) and bool(jnp.all(jnp.isfinite(features)))
  np.testing.assert_allclose(  # Unknown landmarks: the canonical positions.
      features[1], alignment.landmark_features(None, 1)[0], atol=1e-6)
  # Off (the default, and runs from before the switch): the pose ignores the landmarks.
  plain = networks.MotionEncoder(TINY)
  plain_params = jax.jit(plain.init)(_key(0), image)
  np.testing.assert_array_equal(plain.apply(plain_params, image, turned)[0],
                                plain.apply(plain_params, image, landmarks)[0])
