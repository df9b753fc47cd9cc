"""3D warping: exact identities, hand-computed rotations and shifts, round trips, gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.data.synthtalk import render
from vasa_jax.models.face_latent import warping

SIZE = 5  # odd, so the cube's centre is a voxel


def _pose(yaw=0.0, pitch=0.0, roll=0.0, tx=0.0, ty=0.0, tz=0.0, log_scale=0.0):
  return jnp.array([[yaw, pitch, roll, tx, ty, tz, log_scale]], jnp.float32)


def _hot(depth, row, col, size=SIZE):
  volume = np.zeros((1, size, size, size, 1), np.float32)
  volume[0, depth, row, col, 0] = 1.0
  return jnp.asarray(volume)


def _random_volume(seed, shape=(2, 4, 6, 7, 3)):
  return jax.random.normal(jax.random.key(seed), shape)


def test_rotation_matrix_matches_the_renderer():
  rng = np.random.default_rng(0)
  for _ in range(20):
    yaw, pitch, roll = rng.uniform(-math.pi, math.pi, 3)
    got = np.asarray(warping.rotation_matrix(yaw, pitch, roll))
    np.testing.assert_allclose(got, render.head_rotation(yaw, pitch, roll), atol=1e-6)
  angles = rng.uniform(-1, 1, (4, 3))
  batched = warping.rotation_matrix(angles[:, 0], angles[:, 1], angles[:, 2])
  assert batched.shape == (4, 3, 3)
  np.testing.assert_allclose(batched[2], render.head_rotation(*angles[2]), atol=1e-6)


def test_pose_to_affine_layout():
  affine = warping.pose_to_affine(_pose(0.3, -0.2, 0.1, 0.5, -0.25, 0.125, math.log(2.0)))
  assert affine.shape == (1, 3, 4)
  expected = 2.0 * render.head_rotation(0.3, -0.2, 0.1)
  np.testing.assert_allclose(affine[0, :, :3], expected, atol=1e-6)
  np.testing.assert_allclose(affine[0, :, 3], [0.5, -0.25, 0.125])


def test_identity_grid_and_sample_are_exact():
  volume = _random_volume(0)
  grid = warping.identity_grid(4, 6, 7)
  assert grid.shape == (4, 6, 7, 3)
  np.testing.assert_allclose(grid[0, 0, 0], [-1, -1, -1])
  np.testing.assert_allclose(grid[3, 5, 6], [1, 1, 1])
  np.testing.assert_allclose(warping.trilinear_sample(volume, grid), volume, atol=1e-5)


def test_identity_pose_and_zero_flow_return_the_input():
  volume = _random_volume(1)
  pose = jnp.zeros((2, 7))
  flow = jnp.zeros(volume.shape[:4] + (3,))
  for warp in (warping.warp_to_canonical, warping.warp_from_canonical):
    np.testing.assert_allclose(warp(volume, pose, flow), volume, atol=1e-5)
    np.testing.assert_allclose(warp(volume, pose), volume, atol=1e-5)


def test_outside_the_cube_is_zero():
  volume = jnp.ones((1, 3, 3, 3, 2))
  # Zero padding: the volume fades out over one voxel spacing (1.0 here) beyond its edge.
  far = warping.trilinear_sample(volume, jnp.full((1, 1, 1, 3), 2.0 + 1e-3))
  assert float(jnp.abs(far).max()) == 0.0
  half = warping.trilinear_sample(volume, jnp.array([[[[1.5, 0.0, 0.0]]]]))
  np.testing.assert_allclose(half, 0.5, atol=1e-6)


@pytest.mark.parametrize("angles, expected", [
    # The nose point (0, 0, +1), front depth slice, centre row and column:
    ((math.pi / 2, 0, 0), (2, 2, 4)),   # yaw 90: nose to the viewer's right, x = +1 -> last column
    ((0, math.pi / 2, 0), (2, 0, 2)),   # pitch 90: nose up, y = +1 -> first row
    ((0, 0, math.pi / 2), (4, 2, 2)),   # roll leaves the z axis where it is
])
def test_rotation_moves_a_hot_voxel_where_the_geometry_says(angles, expected):
  volume = _hot(4, 2, 2)
  posed = warping.warp_from_canonical(volume, _pose(*angles))
  np.testing.assert_allclose(posed[0, ..., 0], _hot(*expected)[0, ..., 0], atol=1e-5)
  # And the inverse warp brings it back.
  back = warping.warp_to_canonical(posed, _pose(*angles))
  np.testing.assert_allclose(back[0, ..., 0], volume[0, ..., 0], atol=1e-5)


def test_roll_turns_right_into_up():
  # The point (x = +1, y = 0, z = 0) at roll 90 goes to y = +1: counter-clockwise in the image.
  posed = warping.warp_from_canonical(_hot(2, 2, 4), _pose(roll=math.pi / 2))
  np.testing.assert_allclose(posed[0, ..., 0], _hot(2, 0, 2)[0, ..., 0], atol=1e-5)


def test_translation_by_one_voxel_shifts_by_one_voxel():
  volume = _random_volume(2, (1, SIZE, SIZE, SIZE, 2))
  step = 2.0 / (SIZE - 1)
  right = warping.warp_from_canonical(volume, _pose(tx=step))
  np.testing.assert_allclose(right[:, :, :, 1:], volume[:, :, :, :-1], atol=1e-5)
  np.testing.assert_allclose(right[:, :, :, 0], 0.0, atol=1e-6)
  up = warping.warp_from_canonical(volume, _pose(ty=step))
  np.testing.assert_allclose(up[:, :, :-1], volume[:, :, 1:], atol=1e-5)  # rows run down
  forward = warping.warp_from_canonical(volume, _pose(tz=step))
  np.testing.assert_allclose(forward[:, 1:], volume[:, :-1], atol=1e-5)


def test_flow_is_an_offset_added_once():
  volume = _random_volume(3, (1, SIZE, SIZE, SIZE, 2))
  step = 2.0 / (SIZE - 1)
  flow = jnp.zeros((1, SIZE, SIZE, SIZE, 3)).at[..., 0].set(step)
  pose = jnp.zeros((1, 7))
  # V(p) = V_src(p + flow): every voxel reads its right-hand neighbour.
  for warp in (warping.warp_to_canonical, warping.warp_from_canonical):
    out = warp(volume, pose, flow)
    np.testing.assert_allclose(out[:, :, :, :-1], volume[:, :, :, 1:], atol=1e-5)


def test_round_trip_is_identity_in_the_interior():
  size = 9
  coords = warping.identity_grid(size, size, size)
  # A linear field: trilinear interpolation reproduces it exactly, so only the cube's edge is lost.
  volume = jnp.concatenate([coords, 1.0 + 0.0 * coords[..., :1]], axis=-1)[None]
  volume = jnp.concatenate([volume, volume], axis=0)
  pose = jnp.array([[0.3, -0.2, 0.15, 0.05, -0.04, 0.02, 0.05],
                    [-0.25, 0.1, -0.3, -0.06, 0.03, 0.0, -0.05]])
  back = warping.warp_from_canonical(warping.warp_to_canonical(volume, pose), pose)
  inside = np.asarray(back[..., 3] > 1.0 - 1e-5)
  assert inside.sum() > 0.3 * inside.size
  np.testing.assert_allclose(np.asarray(back)[inside], np.asarray(volume)[inside], atol=1e-4)


def test_gradients_flow_through_trilinear_sample():
  volume = _random_volume(4, (1, 4, 5, 6, 2))
  grid = 0.9 * jax.random.uniform(jax.random.key(5), (1, 3, 3, 3, 3), minval=-1, maxval=1)
  weights = jax.random.normal(jax.random.key(6), (1, 3, 3, 3, 2))

  def loss(volume, grid):
    return jnp.sum(warping.trilinear_sample(volume, grid) * weights)

  grad_volume, grad_grid = jax.grad(loss, argnums=(0, 1))(volume, grid)
  for grad in (grad_volume, grad_grid):
    assert bool(jnp.all(jnp.isfinite(grad)))
    assert float(jnp.abs(grad).max()) > 0.0
  # The grid gradient agrees with a finite difference.
  eps = 1e-3
  bump = jnp.zeros_like(grid).at[0, 1, 1, 1, 0].set(eps)
  numeric = (loss(volume, grid + bump) - loss(volume, grid - bump)) / (2 * eps)
  np.testing.assert_allclose(grad_grid[0, 1, 1, 1, 0], numeric, rtol=1e-2, atol=1e-3)
