"""One identity's geometry and colours in canonical head units: skull, jaw, nose, ears, neck,
shoulders, hair, hat, earrings and glasses, built once per identity."""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from vasa_jax.data.synthtalk.render.identity import HAIR_STYLES, HATS, Identity
from vasa_jax.data.synthtalk.render.camera import BODY_FRAME, HEAD_FRAME
from vasa_jax.data.synthtalk.render.primitives import ellipsoid, Plane, rotation_axes, smoothstep


def _ellipsoid_front_z(center, radii, x: float, y: float) -> float:
  q = 1.0 - ((x - center[0]) / radii[0]) ** 2 - ((y - center[1]) / radii[1]) ** 2
  return center[2] + radii[2] * math.sqrt(q) if q > 0 else -np.inf


@dataclasses.dataclass(frozen=True, eq=False)
class Scene:
  """Per-identity geometry and colours, built once (everything in canonical head units)."""

  ident: Identity
  cranium_c: np.ndarray
  cranium_r: np.ndarray
  jaw_c: np.ndarray
  jaw_r: np.ndarray
  eyes: tuple[np.ndarray, np.ndarray]     # centres of the eye openings on the skin
  eyeball_r: float
  eye_hw: float                           # half width of the eye opening
  brow_y: float
  nose_base: float                        # y of the nose base
  nose_tip: np.ndarray
  mouth_y: float
  mouth_hw: float
  mouth_z: float
  static: tuple                           # primitives that do not depend on the face state
  glasses: Plane | None
  lens: tuple[float, float, float, float, float]   # lens centre x (right), y, half axes, exponent
  colors: dict


def surface_z(cranium_centre, cranium_radii, jaw_centre, jaw_radii, x: float, y: float) -> float:
  return max(_ellipsoid_front_z(cranium_centre, cranium_radii, x, y), _ellipsoid_front_z(jaw_centre, jaw_radii, x, y))


def jaw_ellipsoid(ident: Identity, drop: float) -> tuple[np.ndarray, np.ndarray]:
  jaw_length = ident.jaw_length
  center = np.array([0.0, -0.42 - 0.3 * (jaw_length - 1.0) - drop, 0.0 + 0.03 * ident.chin_forward])
  radii = np.array([0.6 * ident.jaw_width * ident.head_width ** 0.5, 0.62 * jaw_length + 0.3 * drop,
                    0.8 + 0.03 * ident.chin_forward])
  return center, radii


@functools.lru_cache(maxsize=256)
def build_scene(ident: Identity) -> Scene:
  """The identity's geometry and colours; the renderer adds the jaw, which moves, per frame."""
  cranium_centre = np.array([0.0, 0.22, -0.12])
  cranium_radii = np.array([0.74 * ident.head_width, 1.0 * ident.head_height, 0.98 * ident.head_depth])
  jaw_centre, jaw_radii = jaw_ellipsoid(ident, 0.0)
  surface_depth = functools.partial(surface_z, cranium_centre, cranium_radii, jaw_centre, jaw_radii)

  eye_y = 0.1 + ident.eye_height
  eye_x = 0.3 * ident.eye_spacing * ident.head_width ** 0.5
  eyes = tuple(np.array([s * eye_x, eye_y, surface_depth(s * eye_x, eye_y)]) for s in (-1.0, 1.0))
  eyeball_r = 0.15
  eye_hw = 0.115 * ident.eye_size

  # Nose: a ridge ellipsoid tilted so its lower end comes forward, a tip and two nostril wings.
  base = -0.3 * ident.nose_length
  top = 0.06
  nose_length, nose_width, nose_depth = ident.nose_length, ident.nose_width, ident.nose_depth
  ridge_cy = 0.5 * (base + top)
  ridge_r = np.array([0.062 * nose_width, 0.5 * (top - base) + 0.03, 0.12 * nose_depth])
  ridge_c = np.array([0.0, ridge_cy, surface_depth(0.0, ridge_cy) - 0.035 + 0.06 * nose_depth])
  tilt = -0.32   # the lower end comes forward
  tip_r = 0.068 * (0.5 + 0.5 * nose_width)
  tip_c = np.array([0.0, base + 0.075, surface_depth(0.0, base + 0.075) + 0.17 * nose_depth + 0.03 - tip_r])
  wing_r = np.array([0.05 * nose_width, 0.045, 0.05])
  wings = [np.array([s * 0.062 * nose_width, base + 0.05, surface_depth(s * 0.062 * nose_width, base + 0.05) + 0.005])
           for s in (-1.0, 1.0)]
  nose_tip = tip_c + np.array([0.0, 0.0, tip_r])

  mouth_y = -0.6 + 0.025 * ident.mouth_height - 0.03 * (nose_length - 1.0)
  mouth_hw = 0.2 * ident.mouth_width * ident.jaw_width ** 0.3

  prims = [
      ellipsoid("cranium", HEAD_FRAME, cranium_centre, cranium_radii, bound=(cranium_centre, float(cranium_radii.max()) + 0.01)),
      ellipsoid("nose", HEAD_FRAME, ridge_c, ridge_r, axes=rotation_axes(rx=tilt)),
      ellipsoid("nose", HEAD_FRAME, tip_c, (tip_r, tip_r * 0.9, tip_r)),
      ellipsoid("nose", HEAD_FRAME, wings[0], wing_r),
      ellipsoid("nose", HEAD_FRAME, wings[1], wing_r),
  ]
  # Ears: flat ellipsoids on the sides, turned a little forward.
  ear_scale = ident.ear_size
  ears = []
  for s in (-1.0, 1.0):
    ear_y = eye_y - 0.1
    ear_x = s * cranium_radii[0] * math.sqrt(max(0.0, 1 - ((ear_y - cranium_centre[1]) / cranium_radii[1]) ** 2 - 0.02))
    ears.append(ellipsoid("ear", HEAD_FRAME, (ear_x, ear_y, -0.12), (0.05, 0.19 * ear_scale, 0.12 * ear_scale),
                           axes=rotation_axes(ry=s * 0.35, rx=0.15)))
  prims += ears
  neck_c = np.array([0.0, -1.2, -0.14])
  prims.append(ellipsoid(
      "neck", HEAD_FRAME, neck_c, (0.42 * ident.jaw_width ** 0.5, 1.0, 0.36), weights=(1.0, 0.0, 1.0),
      clip=lambda x, y, z: (y < -0.35) & (y > -2.4), bound=(np.array([0.0, -1.4, -0.14]), 1.05)))
  # Shoulders (a flat ellipsoid) over a chest that runs straight down out of the image.
  shoulder_c = np.array([0.0, -1.78, -0.35])
  prims.append(ellipsoid("torso", BODY_FRAME, shoulder_c, (1.75, 0.53, 0.68), bound=(shoulder_c, 1.75)))
  prims.append(ellipsoid("torso", BODY_FRAME, shoulder_c, (1.75, 1.0, 0.68), weights=(1.0, 0.0, 1.0),
                          clip=lambda x, y, z: y < -1.78,
                          bound=(np.array([0.0, -3.2, -0.35]), 2.3)))
  prims += _hair_primitives(ident, cranium_centre, cranium_radii)
  prims += _hat_primitives(ident, cranium_centre, cranium_radii)
  if ident.earrings:
    for s, ear in zip((-1.0, 1.0), ears):
      lobe = ear.center + np.array([s * 0.02, -0.16 * ear_scale, 0.03])
      if ident.earrings == 1:
        prims.append(ellipsoid("earring", HEAD_FRAME, lobe + np.array([s * 0.02, 0.0, 0.0]),
                                (0.028, 0.028, 0.028)))
      else:
        prims.append(ellipsoid("earring", HEAD_FRAME, lobe + np.array([s * 0.02, -0.09, 0.0]),
                                (0.035, 0.055, 0.035)))
  lens = (float(eyes[1][0]), float(eyes[1][1]) - 0.01, eye_hw * 1.45, eye_hw, ident.glasses_shape)
  glasses = None
  if ident.glasses:
    glasses = _glasses_plane(eyes, lens)
    prims += _glasses_arms(eyes, lens, ears)

  def col(c):
    return np.asarray(c, np.float32)

  warm = ident.light_warmth
  colors = dict(
      skin=col(ident.skin_color), lip=col(ident.lip_color), hair=col(ident.hair_color),
      brow=col(ident.brow_color), iris=col(ident.iris_color), hat=col(ident.hat_color),
      cloth=col(ident.clothing_color), cloth2=col(ident.clothing_color2),
      metal=col(ident.earring_color), frame=col(ident.glasses_color),
      light=col((1.0 + 0.06 * warm, 1.0, 1.0 - 0.08 * warm)))
  return Scene(ident=ident, cranium_c=cranium_centre, cranium_r=cranium_radii, jaw_c=jaw_centre, jaw_r=jaw_radii, eyes=eyes,
                eyeball_r=eyeball_r, eye_hw=eye_hw,
                brow_y=eye_y + 0.13 + 0.025 * ident.brow_height, nose_base=base, nose_tip=nose_tip,
                mouth_y=mouth_y, mouth_hw=mouth_hw, mouth_z=surface_depth(0.0, mouth_y),
                static=tuple(prims), glasses=glasses, lens=lens, colors=colors)


def _azimuth(x: np.ndarray, z: np.ndarray, zc: float) -> np.ndarray:
  """|angle| around the vertical axis through (0, *, zc): 0 straight ahead, pi at the back."""
  return np.abs(np.arctan2(x, z - zc))


def _hair_primitives(ident: Identity, cranium_centre: np.ndarray, cranium_radii: np.ndarray) -> list:
  """Hair: a shell round the skull (cranium centre cranium_centre, radii cranium_radii) cut along the style's hairline,
  a flaring drape for long hair and bobs, a bun."""
  style = HAIR_STYLES[ident.hair_style]
  if style == "bald":
    return []
  vol = ident.hair_volume
  thick = {"buzz": 0.025, "short": 0.07, "fringe": 0.08, "long": 0.08, "bob": 0.09, "bun": 0.06,
           "afro": 0.26, "receding": 0.05}[style] * vol
  hairline = 0.7 + 0.06 * ident.hairline
  zc = float(cranium_centre[2])
  front_y = {"fringe": 0.36, "receding": 1.6}.get(style, hairline)
  side_y = {"buzz": 0.22, "short": 0.18, "long": -0.35, "bob": -0.35, "afro": -0.2,
            "receding": 0.2}.get(style, 0.15)
  back_y = {"long": -0.6, "bob": -0.6, "afro": -0.5}.get(style, -0.45)
  fringe = style == "fringe"
  # Receding hair keeps only a band round the back, below the crown, so the inside of the shell
  # never shows over the bald top.
  receding = style == "receding"

  def shell_clip(x, y, z):
    az = _azimuth(x, z, zc)
    s1 = smoothstep(0.5, 1.05, az)
    s2 = smoothstep(1.5, 2.3, az)
    front = front_y + 0.22 * (x * x) * (1.0 / 0.36)
    if fringe:
      front = front + 0.018 * np.sin(x * 60.0) + 0.06 * (x * x) * (1.0 / 0.36)
    bottom = (1.0 - s1) * front + s1 * ((1.0 - s2) * side_y + s2 * back_y)
    if receding:
      return (y > bottom) & (y < float(cranium_centre[1]) + 0.3 + 0.4 * smoothstep(1.2, 2.8, az))
    return y > bottom

  radii = cranium_radii + np.array([thick, 0.6 * thick, thick])
  center = cranium_centre + np.array([0.0, 0.4 * thick, -0.2 * thick])
  prims = [ellipsoid("hair", HEAD_FRAME, center, radii, clip=shell_clip, two_sided=True,
                      bound=(center, float(radii.max()) + 0.01))]
  if style in ("long", "bob"):
    end = -1.75 if style == "long" else -0.95
    # A hyperboloid of one sheet, as wide as the skull shell where they meet and flaring below.
    top = float(center[1])
    cyl_r = np.array([cranium_radii[0] + thick, 2.0 if style == "long" else 1.5, cranium_radii[2] + thick])
    cyl_c = np.array([0.0, top, float(center[2])])

    def drape_clip(x, y, z):
      az = _azimuth(x, z, float(cyl_c[2]))
      # The opening for the face narrows towards the top, where the drape meets the skull shell.
      opening = 1.05 - 0.25 * smoothstep(-0.2, top, y)
      return (y < top) & (y > end + 0.04 * np.cos(x * 9.0)) & (az > opening)

    mid = 0.5 * (top + end)
    flare = math.sqrt(1.0 + ((top - end) / cyl_r[1]) ** 2)
    prims.append(ellipsoid("hair", HEAD_FRAME, cyl_c, cyl_r, weights=(1.0, -1.0, 1.0),
                            clip=drape_clip, two_sided=True,
                            bound=(np.array([0.0, mid, zc]), math.hypot(
                                0.5 * (top - end), flare * max(cyl_r[0], cyl_r[2])))))
  if style == "bun":
    prims.append(ellipsoid("hair", HEAD_FRAME, cranium_centre + np.array([0.0, 0.75, -0.62]),
                            (0.3 * vol, 0.27 * vol, 0.27 * vol)))
  return prims


def _hat_primitives(ident: Identity, cranium_centre: np.ndarray, cranium_radii: np.ndarray) -> list:
  """A beanie (a shell with a ribbed cuff) or a cap (a shell and a brim)."""
  if not ident.hat:
    return []
  zc = float(cranium_centre[2])
  if HATS[ident.hat] == "beanie":
    radii = cranium_radii + 0.1 + 0.05 * ident.hair_volume
    center = cranium_centre + np.array([0.0, 0.06, -0.03])

    def beanie_clip(x, y, z):
      return y > 0.5 + 0.16 * np.cos(np.arctan2(x, z - zc))

    return [ellipsoid("hat", HEAD_FRAME, center, radii, clip=beanie_clip, two_sided=True,
                       bound=(center, float(radii.max()) + 0.01))]
  radii = cranium_radii + np.array([0.09, 0.05, 0.09])
  center = cranium_centre + np.array([0.0, 0.02, 0.0])
  edge = 0.6

  def cap_clip(x, y, z):
    return y > edge + 0.1 * np.cos(np.arctan2(x, z - zc)) - 0.05

  front = _ellipsoid_front_z(center, radii, 0.0, edge + 0.1)
  slope = 0.25   # the brim falls towards its front edge
  normal = np.array([0.0, 1.0, slope]) / math.hypot(1.0, slope)
  anchor = np.array([0.0, edge + 0.08, front - 0.25])
  length = 0.62

  def brim_clip(x, y, z):
    return ((x * x) * (1.0 / 0.36) + ((z - float(anchor[2])) * (1.0 / length)) ** 2 < 1.0) & (
        z > float(anchor[2]))

  brim = Plane("brim", HEAD_FRAME, normal, float(normal @ anchor),
                anchor + np.array([0.0, -0.08, 0.3]), 0.72, brim_clip)
  return [ellipsoid("hat", HEAD_FRAME, center, radii, clip=cap_clip, two_sided=True,
                     bound=(center, float(radii.max()) + 0.01)), brim]


def lens_radius(lens, x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Superellipse radius about the nearer lens centre (< 1 inside the lens)."""
  lx, ly, a, b, p = lens
  return np.abs((np.abs(x) - lx) * (1.0 / a)) ** p + np.abs((y - ly) * (1.0 / b)) ** p


_RIM = 1.22   # outer edge of the frame, in lens radii


def _glasses_plane(eyes, lens) -> Plane:
  zg = float(max(eyes[0][2], eyes[1][2])) + 0.1
  lx, ly, a, _, p = lens

  def clip(x, y, z):
    bridge = (np.abs(x) < lx - a + 0.02) & (np.abs(y - ly - 0.045) < 0.016)
    return (lens_radius(lens, x, y) < _RIM ** p) | bridge

  return Plane("glasses", HEAD_FRAME, np.array([0.0, 0.0, 1.0]), zg, np.array([0.0, ly, zg]),
                lx + a * _RIM + 0.05, clip)


def _glasses_arms(eyes, lens, ears) -> list:
  """The arms: strips in vertical planes from the outer corners of the frame back to the ears."""
  zg = float(max(eyes[0][2], eyes[1][2])) + 0.1
  lx, ly, a, _, _ = lens
  arms = []
  for s, ear in zip((-1.0, 1.0), ears):
    front = np.array([s * (lx + a * (_RIM - 0.05)), ly + 0.03, zg])
    back = np.array([ear.center[0] + s * 0.01, ly + 0.03, float(ear.center[2])])
    normal = np.cross(back - front, np.array([0.0, 1.0, 0.0]))
    normal /= np.linalg.norm(normal)
    z0, z1, y0 = float(back[2]), float(front[2]), float(front[1])

    def clip(x, y, z, z0=z0, z1=z1, y0=y0):
      return (np.abs(y - y0) < 0.013) & (z > z0) & (z < z1)

    arms.append(Plane("glasses_arm", HEAD_FRAME, normal, float(normal @ front), 0.5 * (front + back),
                       0.5 * float(np.linalg.norm(back - front)) + 0.05, clip))
  return arms
