"""Head pose matrices and differentiable trilinear warping of 3D feature volumes.

Conventions (shared by everything that reads or writes a face volume or a head pose):

  Head frame: x right (the viewer's right in a frontal view), y up, z towards the camera, the
  same frame as `vasa_jax.data.synthtalk.render`. A volume spans the cube [-1, 1]^3 of this frame,
  centred on the head centre, about which the head turns.

  Volume: `[batch, depth, height, width, channels]`.
    width  index 0 .. W-1  <->  x = -1 .. +1 (left to right, as in the image);
    height index 0 .. H-1  <->  y = +1 .. -1 (array rows run DOWN, the head frame's y runs up);
    depth  index 0 .. D-1  <->  z = -1 .. +1 (the last depth slice is nearest the camera).

  Sampling grid: `[..., 3]` holding (gx, gy, gz) in [-1, 1], one per array axis in the order
  (width, height, depth) and each increasing with its index, as in PyTorch's `grid_sample`
  (align_corners=True: -1 and +1 are the centres of the first and last voxels). So a head-frame
  point (x, y, z) has grid coordinates (x, -y, z); `head_to_grid` / `grid_to_head` convert.

  Head pose `z_pose = [yaw, pitch, roll, tx, ty, tz, log_scale]` (7 numbers):
    yaw, pitch, roll: radians, as `render.head_rotation`: yaw > 0 turns the face towards the
      viewer's right, pitch > 0 tilts it up, roll > 0 rotates it counter-clockwise in the image;
      R = R_roll @ R_pitch @ R_yaw.
    tx, ty, tz: translation in the head frame (y UP, unlike the renderer's image-space ty) in
      volume units: the cube is 2 wide, so one voxel along the width is 2 / (W - 1).
    log_scale: the head is scaled by exp(log_scale) about the volume centre.
  The pose maps canonical (pose-free) points to posed points: p_posed = s R p_canonical + t.

Warps are written as backward sampling: an output voxel at point p reads the input volume at some
point q(p). Moving a volume by an affine A means reading the source at A^{-1}(p). The non-rigid flow
is an offset field `[batch, D, H, W, 3]` in grid units, defined on the CANONICAL grid and added once
to canonical sampling coordinates:

  warp_to_canonical:   V_can(p)   = V_src(A(p + flow(p)))            undo the pose, then the flow;
  warp_from_canonical: V_posed(p) = V_can(q + flow(q)), q = A^{-1}(p) the flow, then the pose.

Warping runs in float32 whatever the volume's dtype: bf16 coordinates are off by a voxel at 64^3.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

POSE_DIM = 7
POSE_FIELDS = ("yaw", "pitch", "roll", "tx", "ty", "tz", "log_scale")

# Head frame (x, y, z) <-> grid (gx, gy, gz): only y flips, and the flip is its own inverse.
_FLIP = jnp.array([1.0, -1.0, 1.0], jnp.float32)


def rotation_matrix(yaw: jax.Array, pitch: jax.Array, roll: jax.Array) -> jax.Array:
  """R = R_roll @ R_pitch @ R_yaw, head to camera coordinates: angles `[...]` -> `[..., 3, 3]`."""
  angles = (jnp.asarray(a, jnp.float32) for a in (yaw, pitch, roll))
  yaw, pitch, roll = jnp.broadcast_arrays(*angles)
  cy, sy = jnp.cos(yaw), jnp.sin(yaw)
  cp, sp = jnp.cos(pitch), jnp.sin(pitch)
  cr, sr = jnp.cos(roll), jnp.sin(roll)
  one, zero = jnp.ones_like(yaw), jnp.zeros_like(yaw)

  def mat(rows):
    return jnp.stack([jnp.stack(row, axis=-1) for row in rows], axis=-2)

  r_yaw = mat([[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
  r_pitch = mat([[one, zero, zero], [zero, cp, sp], [zero, -sp, cp]])
  r_roll = mat([[cr, -sr, zero], [sr, cr, zero], [zero, zero, one]])
  return r_roll @ r_pitch @ r_yaw


def pose_to_affine(z_pose: jax.Array) -> jax.Array:
  """`[..., 7]` head pose -> `[..., 3, 4]` = [s R | t], canonical to posed head-frame points."""
  z_pose = jnp.asarray(z_pose, jnp.float32)
  rot = rotation_matrix(z_pose[..., 0], z_pose[..., 1], z_pose[..., 2])
  scale = jnp.exp(z_pose[..., 6])[..., None, None]
  return jnp.concatenate([scale * rot, z_pose[..., 3:6, None]], axis=-1)


def invert_affine(affine: jax.Array) -> jax.Array:
  """Inverse of a `[..., 3, 4]` affine [M | t]: [M^-1 | -M^-1 t]."""
  inv = jnp.linalg.inv(affine[..., :3])
  return jnp.concatenate([inv, -(inv @ affine[..., 3:])], axis=-1)


def apply_affine(affine: jax.Array, points: jax.Array) -> jax.Array:
  """`[batch, 3, 4]` affine on head-frame points `[batch, ..., 3]`."""
  batch = affine.shape[0]
  flat = points.reshape(batch, -1, 3)
  out = jnp.einsum("bij,bnj->bni", affine[:, :, :3], flat) + affine[:, None, :, 3]
  return out.reshape(points.shape)


def head_to_grid(points: jax.Array) -> jax.Array:
  """Head-frame (x, y up, z) -> grid (gx, gy down, gz); the same map converts back."""
  return points * _FLIP


grid_to_head = head_to_grid


def identity_grid(depth: int, height: int, width: int) -> jax.Array:
  """`[depth, height, width, 3]` grid whose entry at voxel (k, i, j) is the centre of that voxel."""
  gz = jnp.linspace(-1.0, 1.0, depth, dtype=jnp.float32)
  gy = jnp.linspace(-1.0, 1.0, height, dtype=jnp.float32)
  gx = jnp.linspace(-1.0, 1.0, width, dtype=jnp.float32)
  z, y, x = jnp.meshgrid(gz, gy, gx, indexing="ij")
  return jnp.stack([x, y, z], axis=-1)


def _to_index(coord: jax.Array, size: int) -> jax.Array:
  # A single voxel along an axis sits at 0 whatever the coordinate says.
  return (coord + 1.0) * (0.5 * (size - 1)) if size > 1 else jnp.zeros_like(coord)


def trilinear_sample(volume: jax.Array, grid: jax.Array) -> jax.Array:
  """Trilinear interpolation of `volume` at `grid`, zero outside (align_corners=True).

  Voxels beyond the volume count as zeros, so it fades to zero over one voxel spacing past its edge
  (PyTorch's `grid_sample(padding_mode="zeros", align_corners=True)`).

  Args:
    volume: `[batch, D, H, W, channels]`.
    grid: `[batch, d, h, w, 3]` (or `[d, h, w, 3]`, shared by the batch) of (gx, gy, gz).

  Returns:
    `[batch, d, h, w, channels]` in the volume's dtype; differentiable in both arguments.
  """
  batch, depth, height, width, channels = volume.shape
  if grid.ndim == 4:
    grid = jnp.broadcast_to(grid, (batch,) + grid.shape)
  out_shape = grid.shape[:-1]
  grid = grid.reshape(batch, -1, 3).astype(jnp.float32)
  flat = volume.reshape(batch, depth * height * width, channels).astype(jnp.float32)
  ix = _to_index(grid[..., 0], width)
  iy = _to_index(grid[..., 1], height)
  iz = _to_index(grid[..., 2], depth)
  x0, y0, z0 = jnp.floor(ix), jnp.floor(iy), jnp.floor(iz)
  fx, fy, fz = ix - x0, iy - y0, iz - z0
  x0, y0, z0 = x0.astype(jnp.int32), y0.astype(jnp.int32), z0.astype(jnp.int32)

  out = jnp.zeros((batch, grid.shape[1], channels), jnp.float32)
  for dz in (0, 1):
    zi, wz = z0 + dz, fz if dz else 1.0 - fz
    for dy in (0, 1):
      yi, wy = y0 + dy, fy if dy else 1.0 - fy
      for dx in (0, 1):
        xi, wx = x0 + dx, fx if dx else 1.0 - fx
        inside = ((xi >= 0) & (xi < width) & (yi >= 0) & (yi < height) & (zi >= 0) & (zi < depth))
        index = (jnp.clip(zi, 0, depth - 1) * height + jnp.clip(yi, 0, height - 1)) * width
        index = index + jnp.clip(xi, 0, width - 1)
        corner = jnp.take_along_axis(flat, index[..., None], axis=1)
        weight = jnp.where(inside, wx * wy * wz, 0.0)
        out = out + weight[..., None] * corner
  return out.reshape(out_shape + (channels,)).astype(volume.dtype)


def canonical_to_source(z_pose: jax.Array, flow: jax.Array | None, points: jax.Array
                        ) -> jax.Array:
  """Canonical grid points `[batch, d, h, w, 3]` -> the source points they read
  (`warp_to_canonical`): A(p + flow(p)), the flow read at p by trilinear interpolation (none
  outside the volume)."""
  points = points.astype(jnp.float32)
  if flow is not None:
    points = points + trilinear_sample(flow.astype(jnp.float32), points)
  return head_to_grid(apply_affine(pose_to_affine(z_pose), grid_to_head(points)))


def posed_to_canonical(z_pose: jax.Array, flow: jax.Array | None, points: jax.Array
                       ) -> jax.Array:
  """Grid points `[batch, d, h, w, 3]` of the posed (target) volume -> the canonical points they
  read (`warp_from_canonical`): q + flow(q), q = A^{-1}(p)."""
  affine = invert_affine(pose_to_affine(z_pose))
  canonical = head_to_grid(apply_affine(affine, grid_to_head(points.astype(jnp.float32))))
  if flow is not None:
    canonical = canonical + trilinear_sample(flow.astype(jnp.float32), canonical)
  return canonical


def warp_to_canonical(volume: jax.Array, z_pose: jax.Array, flow: jax.Array | None = None
                      ) -> jax.Array:
  """Posed (source) volume -> canonical: undo the head pose, then apply the non-rigid flow.

  Args:
    volume: `[batch, D, H, W, channels]` in the source pose.
    z_pose: `[batch, 7]` source head pose.
    flow: `[batch, D, H, W, 3]` grid-unit offsets on the canonical grid, or None for none.

  Returns:
    `[batch, D, H, W, channels]`, V_can(p) = V_src(A(p + flow(p))).
  """
  shape = volume.shape[1:4]
  canonical = identity_grid(*shape)[None]
  if flow is not None:
    canonical = canonical + flow.astype(jnp.float32)
  affine = pose_to_affine(z_pose)
  source = head_to_grid(apply_affine(affine, grid_to_head(
      jnp.broadcast_to(canonical, (volume.shape[0],) + canonical.shape[1:]))))
  return trilinear_sample(volume, source)


def warp_from_canonical(volume: jax.Array, z_pose: jax.Array, flow: jax.Array | None = None
                        ) -> jax.Array:
  """Canonical volume -> posed: apply the non-rigid flow in canonical space, then the head pose.

  Args:
    volume: `[batch, D, H, W, channels]` canonical volume.
    z_pose: `[batch, 7]` target head pose.
    flow: `[batch, D, H, W, 3]` grid-unit offsets on the canonical grid, or None for none.

  Returns:
    `[batch, D, H, W, channels]`, V_posed(p) = V_can(q + flow(q)) with q = A^{-1}(p); the flow is
    read at q by trilinear interpolation (zero outside the cube, where the volume is empty anyway).
  """
  z_pose = jnp.broadcast_to(jnp.asarray(z_pose, jnp.float32), (volume.shape[0], POSE_DIM))
  points = jnp.broadcast_to(identity_grid(*volume.shape[1:4]), volume.shape[:4] + (3,))
  return trilinear_sample(volume, posed_to_canonical(z_pose, flow, points))


def pixel_grid(depth: int, image_size: int, volume_size: int) -> jax.Array:
  """`[depth, image_size, image_size, 3]` grid points of a volume of `volume_size`^2 x `depth` at
  the image's pixel centres: the volume spans the image, voxel j of `volume_size` lying over the
  pixels' fraction (j + 0.5) / volume_size (`grid_to_image` is the inverse)."""
  fraction = (jnp.arange(image_size, dtype=jnp.float32) + 0.5) / image_size
  g = (fraction * volume_size - 0.5) / max(volume_size - 1, 1) * 2.0 - 1.0
  gz = jnp.linspace(-1.0, 1.0, depth, dtype=jnp.float32)
  z, y, x = jnp.meshgrid(gz, g, g, indexing="ij")
  return jnp.stack([x, y, z], axis=-1)


def grid_to_image(grid_xy: jax.Array, volume_size: int) -> jax.Array:
  """Grid (gx, gy) `[..., 2]` of a volume of `volume_size`^2 spanning the image -> (x, y) / image
  size (the convention of `alignment.bilinear_sample`)."""
  return ((grid_xy + 1.0) * 0.5 * max(volume_size - 1, 1) + 0.5) / volume_size
