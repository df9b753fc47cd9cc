"""Colouring the hit points: lighting, the face's blended normals, and the painted features (eyes,
brows, beard, mouth), parts and the torso, each a function of the canonical point."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from vasa_jax.data.synthtalk.render.identity import BEARDS, CLOTHING_PATTERNS, HATS
from vasa_jax.data.synthtalk.render.camera import BODY_FRAME, Camera, HEAD_FRAME
from vasa_jax.data.synthtalk.render.primitives import (normalize, Plane, Quadric, quadric_gradient,
                                                       smoothstep)
from vasa_jax.data.synthtalk.render.scene import Scene


# Label map values of `render_frame_and_labels`.
PART_LABELS = {"background": 0, "skin": 1, "nose": 2, "ear": 3, "neck": 4, "eye_white": 5,
               "iris": 6, "brow": 7, "lips": 8, "mouth_interior": 9, "teeth": 10, "hair": 11,
               "beard": 12, "clothes": 13, "accessory": 14}
# The mouth interior is drawn unlit in this exact colour (uint8 RGB), so it can be found in images.
MOUTH_INTERIOR_RGB = (52, 10, 22)
LABEL = PART_LABELS


@dataclasses.dataclass
class ShadingContext:
  scene: Scene
  state: dict
  cam: Camera
  light_head: np.ndarray   # [3] unit, towards the light
  light_body: np.ndarray
  half_head: np.ndarray    # [3] unit, halfway between light and view
  half_body: np.ndarray
  view_head: np.ndarray    # [3] unit, towards the camera


def lit(ctx: ShadingContext, albedo: np.ndarray, nx, ny, nz, frame: int, spec: float | np.ndarray = 0.0,
         shininess: float = 20.0, ambient: float | None = None) -> np.ndarray:
  """Ambient + Lambertian (+ Blinn specular) shading of albedo [N, 3]; normals in `frame`."""
  light = ctx.light_head if frame == HEAD_FRAME else ctx.light_body
  amb = ctx.scene.ident.ambient if ambient is None else ambient
  ndl = np.maximum(float(light[0]) * nx + float(light[1]) * ny + float(light[2]) * nz, 0.0)
  shade = (amb + (1.0 - amb) * 1.15 * ndl)[:, None] * ctx.scene.colors["light"]
  out = albedo * shade
  if np.any(spec > 0):
    half = ctx.half_head if frame == HEAD_FRAME else ctx.half_body
    ndh = np.maximum(float(half[0]) * nx + float(half[1]) * ny + float(half[2]) * nz, 0.0)
    out = out + (spec * ndh ** shininess)[:, None]
  return out


def _blend(base: np.ndarray, idx: np.ndarray, color, alpha=1.0) -> None:
  """base[idx] = lerp(base[idx], color, alpha) in place; alpha a scalar or [len(idx)]."""
  if idx.size == 0:
    return
  a = alpha if np.isscalar(alpha) else np.asarray(alpha, np.float32)[:, None]
  base[idx] = base[idx] * (1.0 - a) + np.asarray(color, np.float32) * a


def face_normals(ctx: ShadingContext, prims: list, x, y, z, own: np.ndarray):
  """Normals of the face parts, blended where the parts meet.

  Each part's normal is weighted by how close the point is to that part's surface (its implicit
  value over gradient length, a distance estimate), so seams such as cheek-to-jaw and nose-to-face
  are soft. `own` gives, per point, the index (into prims) of the part the ray hit. Points and
  normals are 1-D arrays in head coordinates.
  """
  k = 0.09
  sx = np.zeros_like(x)
  sy = np.zeros_like(x)
  sz = np.zeros_like(x)
  for i, quadric in enumerate(prims):
    near = ((x - float(quadric.bound_center[0])) ** 2 + (y - float(quadric.bound_center[1])) ** 2
            + (z - float(quadric.bound_center[2])) ** 2) < (quadric.bound_radius + k) ** 2
    sel = np.nonzero(near)[0]
    if sel.size == 0:
      continue
    v, gx, gy, gz = quadric_gradient(quadric, x[sel], y[sel], z[sel])
    glen = np.sqrt(gx * gx + gy * gy + gz * gz) + 1e-9
    dist = np.maximum(v, 0.0) / (2.0 * glen)
    w = np.clip(1.0 - dist * (1.0 / k), 0.0, 1.0) ** 2
    w = np.where(own[sel] == i, 1.0, w) / glen
    sx[sel] += w * gx
    sy[sel] += w * gy
    sz[sel] += w * gz
  return normalize(sx, sy, sz)


def shade_face(ctx: ShadingContext, x, y, z, nx, ny, nz, is_nose: np.ndarray):
  """Skin of the head, face and nose with every painted feature. Returns rgb [N, 3], labels [N]."""
  scene, ident = ctx.scene, ctx.scene.ident
  n = x.shape[0]
  albedo = np.broadcast_to(scene.colors["skin"], (n, 3)).copy()
  labels = np.where(is_nose, LABEL["nose"], LABEL["skin"]).astype(np.uint8)
  unlit = np.zeros(n, bool)
  spec = np.full(n, 0.06, np.float32)
  front = z > 0.15

  # A touch of colour on the cheeks.
  if ident.blush > 0.05:
    for s in (-1.0, 1.0):
      sel = np.nonzero(front & (np.abs(x - s * 0.4) < 0.25) & (np.abs(y + 0.22) < 0.2))[0]
      r2 = ((x[sel] - s * 0.4) ** 2 + (y[sel] + 0.22) ** 2) * (1.0 / 0.02)
      _blend(albedo, sel, (0.85, 0.35, 0.35), 0.12 * ident.blush * np.exp(-r2))

  eye_rgb, eye_lab, eye_idx = _paint_eyes(ctx, x, y, front, albedo)
  _paint_brows(ctx, x, y, front, albedo, labels)
  _paint_beard(ctx, x, y, z, albedo, labels, spec)
  _paint_mouth(ctx, x, y, front & ~is_nose, albedo, labels, unlit, spec)

  # Nostrils: dark ovals under the nose, visible when the head tilts back.
  sel = np.nonzero(is_nose & (y < scene.nose_base + 0.06))[0]
  if sel.size:
    nw = ident.nose_width
    for s in (-1.0, 1.0):
      r = (((x[sel] - s * 0.034 * nw) * (1.0 / (0.026 * nw))) ** 2
           + ((y[sel] - scene.nose_base - 0.012) * (1.0 / 0.018)) ** 2)
      hole = sel[(r < 1.0) & (ny[sel] < -0.15)]
      _blend(albedo, hole, (0.12, 0.05, 0.05), 0.85)

  rgb = lit(ctx, albedo, nx, ny, nz, HEAD_FRAME, spec=spec, shininess=24.0)
  rgb[unlit] = np.asarray(MOUTH_INTERIOR_RGB, np.float32) / 255.0
  if eye_idx.size:
    rgb[eye_idx] = eye_rgb
    labels[eye_idx] = eye_lab
  return rgb, labels


def _eye_geometry(ctx: ShadingContext, s: float):
  """Opening outline of one eye: centre, half width, upper/lower lid heights (head units)."""
  scene, st, ident = ctx.scene, ctx.state, ctx.scene.ident
  c = scene.eyes[0 if s < 0 else 1]
  blink = st["blink"]
  up = 0.052 * ident.eye_open * ident.eye_size
  lo = 0.036 * ident.eye_open * ident.eye_size
  # A raised brow opens the eye a little, a smile narrows it.
  up *= 1.0 + 0.15 * st["brow_raise"] - 0.12 * max(st["smile"], 0.0)
  lo *= 1.0 - 0.2 * max(st["smile"], 0.0)
  return c, scene.eye_hw, up, lo, blink


def _paint_eyes(ctx: ShadingContext, x, y, front, albedo):
  """Eye openings with sclera, iris, pupil and catchlight of a virtual eyeball behind the skin.

  Returns the lit colours [M, 3], labels [M] and indices [M] of the open-eye pixels; lids, lashes
  and creases are painted into `albedo` directly.
  """
  scene, st, ident = ctx.scene, ctx.state, ctx.scene.ident
  th, ph = st["gaze_theta"], st["gaze_phi"]
  gaze = np.array([math.sin(th) * math.cos(ph), math.sin(ph), math.cos(th) * math.cos(ph)])
  out_rgb, out_lab, out_idx = [], [], []
  for side, s in enumerate((-1.0, 1.0)):
    c, hw, up, lo, blink = _eye_geometry(ctx, s)
    sel = np.nonzero(front & (np.abs(x - c[0]) < hw * 1.9) & (np.abs(y - c[1]) < hw * 1.5))[0]
    if sel.size == 0:
      continue
    u = (x[sel] - c[0]) * (s / hw)      # +1 at the outer corner
    v = y[sel] - c[1] - ident.eye_tilt * 0.04 * (u + 1.0) * 0.5
    inside = np.abs(u) < 1.0
    uu = np.clip(1.0 - u * u, 0.0, 1.0)
    # The lids' highest point sits a little towards the inner corner.
    shape_up = uu ** 0.75 * (1.0 - 0.18 * u)
    shape_lo = uu ** 0.95 * (1.0 + 0.1 * u)
    lid_up_open = up * shape_up
    lid_lo = -lo * shape_lo + 0.25 * lo * blink * shape_lo
    lid_up = lid_lo + (lid_up_open - lid_lo) * (1.0 - blink)
    opening = inside & (v < lid_up) & (v > lid_lo)

    # Socket shading, the lid crease and the lash lines.
    r2 = u * u * 0.6 + (v * (1.0 / (2.2 * up))) ** 2
    albedo[sel] *= (1.0 - 0.13 * np.exp(-r2 * 1.5))[:, None]
    crease = inside & (np.abs(v - lid_up_open - 0.45 * up * uu ** 0.5 - 0.012) < 0.006)
    _blend(albedo, sel[crease], albedo[sel[crease]] * 0.7, 1.0)
    lash_w = 0.009 + 0.006 * uu
    lash = (np.abs(u) < 1.06) & (v >= lid_up - 0.002) & (v < lid_up + lash_w) & (
        v > lid_lo - 0.004)
    _blend(albedo, sel[lash], (0.06, 0.04, 0.04), 0.92)
    lower = inside & (v <= lid_lo) & (v > lid_lo - 0.007)
    _blend(albedo, sel[lower], albedo[sel[lower]] * 0.6, 1.0)

    idx = sel[opening]
    if idx.size == 0:
      continue
    # The eyeball as seen from straight ahead in head coordinates: each opening pixel shows the
    # sphere point with its (x, y), so the iris sits centred at rest whatever the skin's slant.
    re = scene.eyeball_r
    dx, dy = (x[idx] - c[0]) * (1.0 / re), (y[idx] - c[1]) * (1.0 / re)
    dz = np.sqrt(np.maximum(1.0 - dx * dx - dy * dy, 0.0))
    dx, dy, dz = normalize(dx, dy, dz)
    cosg = float(gaze[0]) * dx + float(gaze[1]) * dy + float(gaze[2]) * dz
    ang = np.arccos(np.clip(cosg, -1.0, 1.0))
    iris_a, pupil_a = 0.42, 0.16
    col = np.empty((idx.size, 3), np.float32)
    col[:] = (0.93, 0.91, 0.88)
    # Pinker towards the corners.
    corner = np.abs(u[opening])
    pink = np.nonzero(corner > 0.7)[0]
    _blend(col, pink, (0.9, 0.7, 0.68), np.minimum((corner[pink] - 0.7) * 2.0, 0.6))
    lab = np.full(idx.size, LABEL["eye_white"], np.uint8)
    iris = ang < iris_a
    ii = np.nonzero(iris)[0]
    if ii.size:
      rel = ang[ii] * (1.0 / iris_a)
      # Radial fibres and a darker rim.
      shade = (1.0 + 0.09 * np.cos(rel * 40.0 + dx[ii] * 30.0) - 0.5 * rel ** 6)[:, None]
      col[ii] = scene.colors["iris"] * shade
      pupil = ii[ang[ii] < pupil_a]
      col[pupil] = (0.02, 0.02, 0.03)
      lab[ii] = LABEL["iris"]
    # Shadow of the upper lid on the eyeball.
    vv = v[opening]
    lid_shadow = 1.0 - 0.35 * smoothstep(-0.02, 0.0, vv - lid_up[opening])
    rgb = lit(ctx, col, dx, dy, dz, HEAD_FRAME, ambient=0.6) * lid_shadow[:, None]
    hx, hy, hz = ctx.half_head
    ndh = np.maximum(float(hx) * dx + float(hy) * dy + float(hz) * dz, 0.0)
    rgb += (0.9 * (ndh > 0.985)).astype(np.float32)[:, None]
    out_rgb.append(rgb)
    out_lab.append(lab)
    out_idx.append(idx)
  if not out_idx:
    return np.zeros((0, 3), np.float32), np.zeros(0, np.uint8), np.zeros(0, np.int64)
  return np.concatenate(out_rgb), np.concatenate(out_lab), np.concatenate(out_idx)


def _paint_brows(ctx: ShadingContext, x, y, front, albedo, labels) -> None:
  """Brows into albedo [N, 3] and labels [N], in place; x, y: head coordinates of the points [N]."""
  scene, st, ident = ctx.scene, ctx.state, ctx.scene.ident
  raise_ = st["brow_raise"]
  for s in (-1.0, 1.0):
    c = scene.eyes[0 if s < 0 else 1]
    bx = c[0] + s * 0.015
    bw = scene.eye_hw * 1.55
    sel = np.nonzero(front & (np.abs(x - bx) < bw) & (np.abs(y - scene.brow_y) < 0.15))[0]
    if sel.size == 0:
      continue
    u = (x[sel] - bx) * (s / bw)   # -1 inner .. +1 outer
    arch = (0.012 + 0.03 * ident.brow_arch) * (1.0 - u * u)
    # Raised brows go up (more at the inner end); lowered brows also pull the inner end down.
    lift = 0.055 * raise_ * (1.0 - 0.3 * u) if raise_ > 0 else 0.04 * raise_ * (1.0 - 0.6 * u)
    centre = scene.brow_y + arch - 0.012 * u + lift
    half = 0.5 * 0.034 * ident.brow_thickness * (1.0 - 0.45 * (u + 1.0) * 0.5) * (1.0 - 0.3 * u * u)
    inside = np.abs(y[sel] - centre) < half
    idx = sel[inside]
    _blend(albedo, idx, scene.colors["brow"], 0.9)
    labels[idx] = LABEL["brow"]


def _paint_beard(ctx: ShadingContext, x, y, z, albedo, labels, spec) -> None:
  """Facial hair into albedo, labels and specular strength spec [N], in place."""
  scene, ident = ctx.scene, ctx.scene.ident
  kind = BEARDS[ident.beard]
  if kind == "none":
    return
  my, hw = scene.mouth_y, scene.mouth_hw
  hair = scene.colors["hair"]
  sel = np.nonzero((y < my + 0.1 + 0.6 * (np.abs(x) > 0.3)) & (z > -0.3))[0]
  xs, ys = x[sel], y[sel]
  ax = np.abs(xs)
  # Beard line: from the sideburns down the cheeks to above the mouth corners.
  line = my + 0.16 + 0.5 * smoothstep(0.32, 0.68, ax)
  below = line - ys
  moustache = (ax < hw * 1.15) & (ys > my + 0.005) & (ys < my + 0.08 - 0.035 * (xs / hw) ** 2)
  if kind == "stubble":
    grain = 0.5 + 0.5 * np.sin(xs * 173.0) * np.sin(ys * 211.0)
    alpha = (0.2 + 0.12 * grain) * smoothstep(0.0, 0.08, below)
    _blend(albedo, sel, hair, alpha)
    return
  if kind == "moustache":
    keep = moustache
  elif kind == "goatee":
    chin = ((xs / (0.6 * hw)) ** 2 + ((ys - my + 0.14) / 0.085) ** 2) < 1.0
    keep = moustache | chin | ((ax < hw * 1.12) & (ax > hw * 0.95) & (ys < my + 0.05)
                               & (ys > my - 0.1))
  else:
    # Full: everything under the beard line, except skin left between the moustache and the nose.
    keep = (below > 0) & ~((ax < hw * 0.9) & (ys > my + 0.085))
  idx = sel[keep]
  tex = 0.85 + 0.15 * np.sin(x[idx] * 150.0 + np.sin(y[idx] * 90.0) * 3.0)
  _blend(albedo, idx, hair[None, :] * tex[:, None], 0.93)
  labels[idx] = LABEL["beard"]
  spec[idx] = 0.0


def _paint_mouth(ctx: ShadingContext, x, y, front, albedo, labels, unlit, spec) -> None:
  """Lips, teeth and the mouth opening, in place; unlit [N] marks the interior (drawn flat)."""
  scene, st, ident = ctx.scene, ctx.state, ctx.scene.ident
  jaw, width, rnd, smile = st["jaw_open"], st["lip_width"], st["lip_round"], st["smile"]
  drop = 0.09 * jaw
  my = scene.mouth_y - 0.45 * drop
  hw = scene.mouth_hw * (0.78 + 0.44 * width) * (1.0 - 0.32 * rnd) * (1.0 + 0.08 * max(smile, 0.0))
  tu = 0.042 * ident.lip_thickness * (1.0 + 0.35 * rnd)
  tl = 0.055 * ident.lip_thickness * (1.0 + 0.35 * rnd)
  height = 0.18 * jaw + 0.035 * rnd * (0.3 + jaw)
  sel = np.nonzero(front & (np.abs(x) < hw * 1.25 + 0.02) & (y > my - 0.28) & (y < my + 0.16))[0]
  if sel.size == 0:
    return
  xs, ys = x[sel], y[sel]
  u = xs * (1.0 / hw)
  curve = smile * 0.045 * (u * u - 0.35)          # corners up for a smile, down for a frown
  yc = my + np.clip(curve, -0.06, 0.06)
  uu = np.clip(1.0 - u * u, 0.0, 1.0)
  k = 0.85 - 0.4 * rnd
  prof = uu ** k
  open_up = yc + 0.32 * height * prof
  open_lo = yc - 0.68 * height * prof
  uo = np.clip(1.0 - (xs * (1.0 / (hw * 1.06 + 0.012))) ** 2, 0.0, 1.0)
  po = uo ** 0.55
  bow = 1.0 - 0.3 * np.exp(-(xs * (1.0 / 0.022)) ** 2) + 0.12 * np.exp(
      -((np.abs(xs) - 0.045) * (1.0 / 0.03)) ** 2)
  outer_up = open_up + tu * po * bow
  outer_lo = open_lo - tl * po
  lips = (ys < outer_up) & (ys > outer_lo)
  interior = (ys < open_up) & (ys > open_lo) & (np.abs(u) < 1.0)

  lip_idx = sel[lips & ~interior]
  lower = (ys < yc)[lips & ~interior]
  lip_col = np.broadcast_to(scene.colors["lip"], (lip_idx.size, 3)).copy()
  lip_col[~lower] *= 0.9
  albedo[lip_idx] = lip_col
  labels[lip_idx] = LABEL["lips"]
  spec[lip_idx] = 0.25
  # The line between closed lips, and the shadow under the lower lip.
  seam = lips & ~interior & (np.abs(ys - yc) < 0.008 + 0.3 * height) & (np.abs(u) < 1.04)
  _blend(albedo, sel[seam], (0.2, 0.07, 0.08), 0.75)
  under = ~lips & (ys < outer_lo) & (ys > outer_lo - 0.018) & (np.abs(u) < 0.7)
  _blend(albedo, sel[under], albedo[sel[under]] * 0.9, 1.0)

  idx = sel[interior]
  if idx.size == 0:
    return
  # Teeth: the upper row hangs from the upper lip; the lower row shows once the jaw is well open.
  yi, ui = ys[interior], u[interior]
  teeth_h = min(0.03, 0.25 * height) if height > 0.03 else 0.0
  upper = (yi > open_up[interior] - teeth_h) & (np.abs(ui) < 0.8)
  low_h = min(0.02, 0.12 * height) if jaw > 0.6 else 0.0
  lower_t = (yi < open_lo[interior] + low_h) & (np.abs(ui) < 0.6)
  teeth = upper | lower_t
  t_idx = idx[teeth]
  albedo[t_idx] = (0.94, 0.92, 0.85)
  labels[t_idx] = LABEL["teeth"]
  spec[t_idx] = 0.3
  m_idx = idx[~teeth]
  labels[m_idx] = LABEL["mouth_interior"]
  unlit[m_idx] = True


def shade_part(ctx: ShadingContext, prim: Quadric | Plane, x, y, z,
                back: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | int]:
  """Colour [N, 3] and label(s) of the visible points of one primitive other than the face's."""
  scene, ident, kind = ctx.scene, ctx.scene.ident, prim.kind
  if isinstance(prim, Plane):
    # Planes are seen from both sides: light the side that faces the camera.
    sign = 1.0 if float(ctx.view_head @ prim.normal) >= 0 else -1.0
    nx, ny, nz = (np.full_like(x, sign * float(v)) for v in prim.normal)
  else:
    _, gx, gy, gz = quadric_gradient(prim, x, y, z)
    nx, ny, nz = normalize(gx, gy, gz)
    if back is not None:
      nx, ny, nz = (np.where(back, -v, v) for v in (nx, ny, nz))
  n = x.shape[0]
  if kind == "hair":
    az = np.arctan2(x, z - float(scene.cranium_c[2]))
    strands = 0.92 + 0.08 * np.sin(az * 70.0 + 5.0 * np.sin(y * 4.0 + az * 3.0))
    color = scene.colors["hair"]
    sheen = 0.18 * (0.3 + float(np.mean(color)))
    rgb = lit(ctx, color[None, :] * strands[:, None], nx, ny, nz, HEAD_FRAME, spec=sheen,
               shininess=12.0)
    if back is not None:
      rgb[back] *= 0.6   # the inside of the hair gets less light
    return rgb, LABEL["hair"]
  if kind in ("hat", "brim"):
    albedo = np.broadcast_to(scene.colors["hat"], (n, 3))
    if kind == "hat" and HATS[ident.hat] == "beanie":
      az = np.arctan2(x, z - float(scene.cranium_c[2]))
      rib = 0.9 + 0.1 * np.sign(np.sin(az * 40.0))
      cuff = y < 0.65 + 0.16 * np.cos(az)
      albedo = albedo * np.where(cuff, rib * 0.85, 1.0)[:, None]
    rgb = lit(ctx, albedo, nx, ny, nz, HEAD_FRAME, spec=0.05)
    if back is not None:
      rgb[back] *= 0.5
    return rgb, LABEL["accessory"]
  if kind == "ear":
    albedo = np.broadcast_to(scene.colors["skin"], (n, 3)).copy()
    # The hollow of the ear: the outward-facing middle, darker.
    loc = prim.matrix @ np.stack([x - prim.center[0], y - prim.center[1], z - prim.center[2]])
    hollow = (loc[1] ** 2 + loc[2] ** 2 < 0.45) & (nx * np.sign(prim.center[0]) > 0.3)
    albedo[hollow] *= 0.72
    return lit(ctx, albedo, nx, ny, nz, HEAD_FRAME, spec=0.04), LABEL["ear"]
  if kind == "neck":
    shadow = 0.72 + 0.28 * smoothstep(-0.8, -1.3, y)   # under the jaw
    return (lit(ctx, scene.colors["skin"][None, :] * shadow[:, None], nx, ny, nz, HEAD_FRAME, spec=0.03),
            LABEL["neck"])
  if kind == "torso":
    return _shade_torso(ctx, x, y, z, nx, ny, nz)
  if kind == "glasses_arm":
    return (lit(ctx, np.broadcast_to(scene.colors["frame"], (n, 3)), nx, ny, nz, HEAD_FRAME, spec=0.3),
            LABEL["accessory"])
  if kind == "earring":
    return (lit(ctx, np.broadcast_to(scene.colors["metal"], (n, 3)), nx, ny, nz, HEAD_FRAME, spec=0.9,
                 shininess=40.0, ambient=0.5), LABEL["accessory"])
  raise AssertionError(f"no shading for {kind!r}")


def _shade_torso(ctx: ShadingContext, x, y, z, nx, ny, nz) -> tuple[np.ndarray, np.ndarray]:
  """Clothes with their pattern and a neckline of skin: rgb [N, 3], labels [N]."""
  scene, ident = ctx.scene, ctx.scene.ident
  n = x.shape[0]
  albedo = np.broadcast_to(scene.colors["cloth"], (n, 3)).copy()
  labels = np.full(n, LABEL["clothes"], np.uint8)
  pattern = CLOTHING_PATTERNS[ident.clothing_pattern]
  if pattern == "stripes":
    on = np.sin(y * 38.0) > 0.3
    albedo[on] = scene.colors["cloth2"]
  # Neckline: skin in a scoop at the top middle; a collar in the second colour around it.
  depth = 0.28 if pattern != "collar" else 0.16
  top = -1.22 - depth * np.clip(1.0 - (x * (1.0 / 0.42)) ** 2, 0.0, 1.0)
  skin = (y > top) & (np.abs(x) < 0.42) & (z > -0.3)
  if pattern == "collar":
    collar = (y > top - 0.07) & ~skin & (np.abs(x) < 0.5) & (z > -0.3)
    albedo[collar] = scene.colors["cloth2"]
  albedo[skin] = scene.colors["skin"] * 0.9
  labels[skin] = LABEL["neck"]
  return lit(ctx, albedo, nx, ny, nz, BODY_FRAME, spec=0.03), labels
