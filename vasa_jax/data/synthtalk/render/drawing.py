"""One frame: every primitive intersected, z-buffered and shaded, glasses over the face, supersampled;
the public rendering functions."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import numpy as np

from vasa_jax.data.synthtalk.render.identity import GLASSES, Identity
from vasa_jax.data.synthtalk.render.camera import full_state, HEAD_FRAME, make_camera
from vasa_jax.data.synthtalk.render.primitives import (ellipsoid, Hit, hit_points, intersect_plane,
                                                       intersect_quadric, pixel_axes, Plane,
                                                       smoothstep)
from vasa_jax.data.synthtalk.render.scene import build_scene, jaw_ellipsoid, lens_radius, surface_z
from vasa_jax.data.synthtalk.render.shading import (face_normals, LABEL, lit,
                                                    shade_face, shade_part, ShadingContext)
from vasa_jax.data.synthtalk.render.background import backdrop


def _render(ident: Identity, state: Mapping[str, float], res: int) -> tuple[np.ndarray, np.ndarray]:
  """float32 [res, res, 3] RGB in [0, 1] and uint8 [res, res] part labels of one frame."""
  face_state = full_state(state)
  scene = build_scene(ident)
  cam = make_camera(face_state, res)
  jaw_centre, jaw_radii = jaw_ellipsoid(ident, 0.09 * face_state["jaw_open"])
  jaw = ellipsoid("jaw", HEAD_FRAME, jaw_centre, jaw_radii, bound=(jaw_centre, float(jaw_radii.max()) + 0.01))
  prims = [scene.static[0], jaw] + list(scene.static[1:])

  lw = np.array([math.sin(ident.light_azimuth) * math.cos(ident.light_elevation),
                 math.sin(ident.light_elevation),
                 math.cos(ident.light_azimuth) * math.cos(ident.light_elevation)])
  view = np.array([0.0, 0.0, 1.0])
  hw = (lw + view) / np.linalg.norm(lw + view)
  ctx = ShadingContext(scene=scene, state=face_state, cam=cam, light_head=cam.rot.T @ lw, light_body=lw,
             half_head=cam.rot.T @ hw, half_body=hw, view_head=cam.rot.T @ view)

  img = backdrop(ident, res).copy()
  depth = np.full((res, res), np.inf, np.float32)
  owner = np.full((res, res), -1, np.int16)
  labels = np.zeros((res, res), np.uint8)
  hits: list[Hit | None] = []
  for i, prim in enumerate(prims):
    hit = (intersect_plane(prim, cam) if isinstance(prim, Plane)
           else intersect_quadric(prim, cam))
    hits.append(hit)
    if hit is None:
      continue
    box = (slice(hit.r0, hit.r1), slice(hit.c0, hit.c1))
    sub = depth[box]
    better = hit.t < sub
    sub[better] = hit.t[better]
    owner[box][better] = i

  face_parts = [i for i, p in enumerate(prims) if p.kind in ("cranium", "jaw", "nose")]
  face_rows, face_cols, face_own = [], [], []
  for i, (prim, hit) in enumerate(zip(prims, hits)):
    if hit is None:
      continue
    mine = owner[hit.r0:hit.r1, hit.c0:hit.c1] == i
    rr, cc = np.nonzero(mine)
    if rr.size == 0:
      continue
    rows, cols = rr + hit.r0, cc + hit.c0
    if prim.kind in ("cranium", "jaw", "nose"):
      face_rows.append(rows)
      face_cols.append(cols)
      face_own.append(np.full(rows.size, face_parts.index(i), np.int16))
      continue
    xs, ys = pixel_axes(cam, hit.r0, hit.r1, hit.c0, hit.c1)
    x, y, z = hit_points(cam.frame_rot(prim.frame), xs[cc], ys[rr], depth[rows, cols])
    back = hit.back[rr, cc] if hit.back is not None else None
    rgb, lab = shade_part(ctx, prim, x, y, z, back)
    img[rows, cols] = rgb
    labels[rows, cols] = lab

  if face_rows:
    rows, cols, own = (np.concatenate(face_rows), np.concatenate(face_cols),
                       np.concatenate(face_own))
    xs, ys = pixel_axes(cam, 0, res, 0, res)
    x, y, z = hit_points(cam.rot, xs[cols], ys[rows], depth[rows, cols])
    parts = [prims[i] for i in face_parts]
    nx, ny, nz = face_normals(ctx, parts, x, y, z, own)
    is_nose = np.array([p.kind == "nose" for p in parts])[own]
    rgb, lab = shade_face(ctx, x, y, z, nx, ny, nz, is_nose)
    img[rows, cols] = rgb
    labels[rows, cols] = lab

  if scene.glasses is not None:
    _draw_glasses(ctx, scene.glasses, img, depth, labels)
  return img, labels


def _draw_glasses(ctx: ShadingContext, plane: Plane, img: np.ndarray, depth: np.ndarray,
                  labels: np.ndarray) -> None:
  """Frames (opaque) and lenses (tinted see-through) in front of whatever the z-buffer holds."""
  cam, scene, ident = ctx.cam, ctx.scene, ctx.scene.ident
  hit = intersect_plane(plane, cam)
  if hit is None:
    return
  box = (slice(hit.r0, hit.r1), slice(hit.c0, hit.c1))
  rr, cc = np.nonzero(hit.t < depth[box])
  if rr.size == 0:
    return
  rows, cols = rr + hit.r0, cc + hit.c0
  xs, ys = pixel_axes(cam, hit.r0, hit.r1, hit.c0, hit.c1)
  x, y, _ = hit_points(cam.rot, xs[cc], ys[rr], hit.t[rr, cc])
  lens = lens_radius(scene.lens, x, y) < 1.0
  n = np.ones_like(x)
  frame_rgb = lit(ctx, np.broadcast_to(scene.colors["frame"], (x.size, 3)), 0 * n, 0 * n, n, HEAD_FRAME,
                   spec=0.3)
  fr = ~lens
  img[rows[fr], cols[fr]] = frame_rgb[fr]
  labels[rows[fr], cols[fr]] = LABEL["accessory"]
  lr, lc = rows[lens], cols[lens]
  if GLASSES[ident.glasses] == "sunglasses":
    tint = scene.colors["frame"] * 0.25
    img[lr, lc] = img[lr, lc] * 0.15 + tint * 0.85
    labels[lr, lc] = LABEL["accessory"]
  else:
    sheen = 0.06 + 0.1 * smoothstep(0.4, 1.0, (x[lens] - y[lens] * 0.5 + 1.0) % 0.5 * 2.0)
    img[lr, lc] = img[lr, lc] * (1.0 - sheen[:, None]) + sheen[:, None]




def _supersampling(resolution: int) -> int:
  # Small images are drawn at twice the size and averaged, so eyes and lips do not flicker.
  return 2 if resolution <= 96 else 1


def _check_resolution(resolution: int) -> None:
  if not 16 <= resolution <= 2048:
    raise ValueError(f"resolution must be in 16..2048, got {resolution}")


def render_frame_and_labels(identity: Identity, state: Mapping[str, float],
                            resolution: int) -> tuple[np.ndarray, np.ndarray]:
  """One frame and its part labels.

  Returns:
    (uint8 [H, W, 3] RGB, uint8 [H, W] part labels, values of PART_LABELS). Where the image is
    supersampled (resolution <= 96), the labels come from one of the samples of each pixel.
  """
  _check_resolution(resolution)
  k = _supersampling(resolution)
  img, labels = _render(identity, state, resolution * k)
  if k > 1:
    img = img.reshape(resolution, k, resolution, k, 3).mean(axis=(1, 3))
    labels = labels[k // 2::k, k // 2::k]
  rgb = np.clip(img * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
  return rgb, np.ascontiguousarray(labels)


def render_frame(identity: Identity, state: Mapping[str, float], resolution: int) -> np.ndarray:
  """One frame: uint8 [resolution, resolution, 3] RGB. Missing state fields are neutral."""
  return render_frame_and_labels(identity, state, resolution)[0]


def render_frames(identity: Identity, states: Mapping[str, np.ndarray],
                  resolution: int) -> np.ndarray:
  """A clip: `states` maps fields to [T] arrays (missing fields neutral).

  Returns:
    uint8 [T, resolution, resolution, 3] RGB.
  """
  arrays = {k: np.asarray(v, np.float64).reshape(-1) for k, v in states.items()}
  lengths = {a.shape[0] for a in arrays.values()}
  if len(lengths) > 1:
    raise ValueError(f"state fields have different lengths {sorted(lengths)}")
  num = lengths.pop() if lengths else 0
  out = np.empty((num, resolution, resolution, 3), np.uint8)
  for t in range(num):
    out[t] = render_frame(identity, {k: a[t] for k, a in arrays.items()}, resolution)
  return out


def landmarks_3d(identity: Identity) -> dict[str, np.ndarray]:
  """Canonical 3D points (float32 [3] each) on the neutral face, for `project`.

  They are rigid points of the head: the mouth and chin points do not follow jaw_open.
  "left_eye" / "right_eye": centres of the eye openings at canonical x < 0 / x > 0 (image left /
  right in a frontal view); "nose_tip": the front of the nose; "mouth_center": between the lips;
  "chin": the front of the chin; "forehead": the midline above the brows.
  """
  scene = build_scene(identity)
  z = functools.partial(surface_z, scene.cranium_c, scene.cranium_r, scene.jaw_c, scene.jaw_r)
  chin_y = float(scene.jaw_c[1] - 0.85 * scene.jaw_r[1])
  fore_y = scene.brow_y + 0.22
  pts = {
      "left_eye": scene.eyes[0] + np.array([0.0, 0.004, 0.0]),
      "right_eye": scene.eyes[1] + np.array([0.0, 0.004, 0.0]),
      "nose_tip": scene.nose_tip,
      "mouth_center": np.array([0.0, scene.mouth_y, scene.mouth_z]),
      "chin": np.array([0.0, chin_y, z(0.0, chin_y)]),
      "forehead": np.array([0.0, fore_y, z(0.0, fore_y)]),
  }
  return {k: np.asarray(v, np.float32) for k, v in pts.items()}
