"""The shapes heads are made of (quadrics, planes) and their closed-form ray intersections."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from vasa_jax.data.synthtalk.render.camera import Camera, HEAD_CENTRE


Clip = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True, eq=False)
class Quadric:
  """sum_i w_i (M (p - c))_i^2 = 1 in `frame` coordinates.

  w = (1, 1, 1) is an ellipsoid, (1, 0, 1) an elliptic cylinder along local y, (1, -1, 1) a
  hyperboloid of one sheet (a tube flaring away from its waist). A clip keeps only part of the
  surface; where the front hit is clipped away and `two_sided` is set, the ray goes on to the back
  hit (the inside of a shell, e.g. hair seen past the face).
  """

  kind: str
  frame: int
  center: np.ndarray              # [3]
  matrix: np.ndarray              # [3, 3] M = diag(1 / radii) @ Q^T, Q the local axes
  weights: tuple[float, float, float]
  bound_center: np.ndarray        # [3] bounding sphere, frame coordinates
  bound_radius: float
  clip: Clip | None = None
  two_sided: bool = False


@dataclasses.dataclass(frozen=True, eq=False)
class Plane:
  """n . p = offset in `frame` coordinates, kept where `clip` holds."""

  kind: str
  frame: int
  normal: np.ndarray
  offset: float
  bound_center: np.ndarray
  bound_radius: float
  clip: Clip


def rotation_axes(rx: float = 0.0, ry: float = 0.0, rz: float = 0.0) -> np.ndarray:
  """Local axes Q (columns) from rotations about x, then y, then z (radians)."""
  cx, sx, cy, sy, cz, sz = (math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz),
                            math.sin(rz))
  mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
  my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
  mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
  return mz @ my @ mx


def ellipsoid(kind: str, frame: int, center, radii, axes: np.ndarray | None = None,
               clip: Clip | None = None, two_sided: bool = False, weights=(1.0, 1.0, 1.0),
               bound: tuple[Any, float] | None = None) -> Quadric:
  center = np.asarray(center, np.float64)
  radii = np.asarray(radii, np.float64)
  axes = np.eye(3) if axes is None else axes
  if bound is None:
    bound = (center, float(radii.max()))
  return Quadric(kind, frame, center, (axes / radii[None, :]).T, tuple(weights),
                  np.asarray(bound[0], np.float64), float(bound[1]), clip, two_sided)


@dataclasses.dataclass
class Hit:
  r0: int
  r1: int
  c0: int
  c1: int
  t: np.ndarray            # float32 [r1 - r0, c1 - c0], inf where missed
  back: np.ndarray | None  # bool, same shape: the hit is on the inside of the surface


def pixel_axes(cam: Camera, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
  """Camera X of columns c0..c1-1 and Y of rows r0..r1-1, head units, float32."""
  xs = (np.arange(c0, c1, dtype=np.float32) - np.float32(cam.cx)) / np.float32(cam.focal)
  ys = (np.float32(cam.cy) - np.arange(r0, r1, dtype=np.float32)) / np.float32(cam.focal)
  return xs, ys


def hit_points(rotation: np.ndarray, x: np.ndarray, y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
  """Frame coordinates of the points at parameter t on the rays through camera (x, y)."""
  return tuple(float(HEAD_CENTRE[k]) + float(rotation[0, k]) * x + float(rotation[1, k]) * y
               - float(rotation[2, k]) * t for k in range(3))


def intersect_quadric(quadric: Quadric, cam: Camera) -> Hit | None:
  box = cam.bbox(quadric.bound_center, quadric.bound_radius, quadric.frame)
  if box is None:
    return None
  r0, r1, c0, c1 = box
  xs, ys = pixel_axes(cam, r0, r1, c0, c1)
  rotation = cam.frame_rot(quadric.frame)
  # Local unit coordinates along the ray: l = a X + b Y + e + t d (rays start on the plane Z = 0).
  m, w = quadric.matrix, np.asarray(quadric.weights)
  a, b, e, d = m @ rotation[0], m @ rotation[1], m @ (HEAD_CENTRE - quadric.center), -(m @ rotation[2])

  def dot(u, v):
    return float(np.sum(w * u * v))

  aa = dot(d, d)
  if abs(aa) < 1e-9:
    return None
  # Hyperboloids can have aa < 0, which swaps the near and far roots.
  near = 1.0 if aa > 0 else -1.0
  p, q_, s = dot(a, d), dot(b, d), dot(e, d)
  # Quarter discriminant beta^2 - aa (|l0|^2 - 1), with beta = p X + quadric Y + s: a quadratic in X, Y.
  kxx, kyy, kxy = p * p - aa * dot(a, a), q_ * q_ - aa * dot(b, b), 2 * (p * q_ - aa * dot(a, b))
  kx, ky = 2 * (p * s - aa * dot(a, e)), 2 * (q_ * s - aa * dot(b, e))
  k0 = s * s - aa * (dot(e, e) - 1.0)
  disc = (((kxx * xs + kx) * xs + k0)[None, :] + ((kyy * ys + ky) * ys)[:, None]
          + (kxy * ys)[:, None] * xs[None, :])
  hit = disc > 0
  if not hit.any():
    return None
  root = np.sqrt(np.maximum(disc, 0.0))
  beta = (p * xs)[None, :] + (q_ * ys + s)[:, None]
  t = (-beta - near * root) * (1.0 / aa)
  t[~hit] = np.inf
  back = None
  if quadric.clip is not None:
    rr, cc = np.nonzero(hit)
    x, y, tf = xs[cc], ys[rr], t[rr, cc]
    keep = quadric.clip(*hit_points(rotation, x, y, tf))
    if quadric.two_sided:
      tb = (-beta[rr, cc] + near * root[rr, cc]) * (1.0 / aa)
      keep_back = np.zeros_like(keep)
      rest = np.nonzero(~keep)[0]
      keep_back[rest] = quadric.clip(*hit_points(rotation, x[rest], y[rest], tb[rest]))
      t[rr, cc] = np.where(keep, tf, np.where(keep_back, tb, np.inf))
      back = np.zeros(hit.shape, bool)
      back[rr, cc] = keep_back
    else:
      t[rr[~keep], cc[~keep]] = np.inf
  return Hit(r0, r1, c0, c1, t.astype(np.float32, copy=False), back)


def intersect_plane(plane: Plane, cam: Camera) -> Hit | None:
  box = cam.bbox(plane.bound_center, plane.bound_radius, plane.frame)
  if box is None:
    return None
  r0, r1, c0, c1 = box
  rotation = cam.frame_rot(plane.frame)
  normal_z = -float(rotation[2] @ plane.normal)
  if abs(normal_z) < 1e-6:
    return None
  xs, ys = pixel_axes(cam, r0, r1, c0, c1)
  t = (plane.offset - float(HEAD_CENTRE @ plane.normal) - (float(rotation[0] @ plane.normal) * xs)[None, :]
       - (float(rotation[1] @ plane.normal) * ys)[:, None]) * (1.0 / normal_z)
  rr, cc = np.indices(t.shape).reshape(2, -1)
  keep = plane.clip(*hit_points(rotation, xs[cc], ys[rr], t.reshape(-1))).reshape(t.shape)
  t = np.where(keep, t, np.inf).astype(np.float32)
  return Hit(r0, r1, c0, c1, t, None)


def quadric_gradient(quadric: Quadric, x, y, z) -> tuple[np.ndarray, ...]:
  """Implicit value sum w l^2 - 1 and its gradient (frame coordinates) at frame points."""
  m = quadric.matrix
  px, py, pz = x - float(quadric.center[0]), y - float(quadric.center[1]), z - float(quadric.center[2])
  loc = [float(m[i, 0]) * px + float(m[i, 1]) * py + float(m[i, 2]) * pz for i in range(3)]
  wl = [float(quadric.weights[i]) * loc[i] for i in range(3)]
  value = wl[0] * loc[0] + wl[1] * loc[1] + wl[2] * loc[2] - 1.0
  grad = [float(m[0, k]) * wl[0] + float(m[1, k]) * wl[1] + float(m[2, k]) * wl[2]
          for k in range(3)]
  return value, grad[0], grad[1], grad[2]


def normalize(x, y, z):
  inv = 1.0 / np.sqrt(x * x + y * y + z * z + 1e-12)
  return x * inv, y * inv, z * inv


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
  s = np.clip((x - e0) * (1.0 / (e1 - e0)), 0.0, 1.0)
  return s * s * (3.0 - 2.0 * s)
