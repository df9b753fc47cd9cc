"""A procedural 3D head renderer in numpy: an identity and a face state in, an RGB image out.

The head is a union of quadrics (ellipsoids, elliptic cylinders, hyperboloids, planes) seen by an
orthographic camera. Every pixel casts one ray; ray-quadric intersections are solved in closed form
(for parallel rays the discriminant is a quadratic polynomial in the pixel coordinates), a z-buffer
keeps the nearest surface, and the hit point, taken back to canonical head coordinates, decides the
colour: eyes, brows, lips, mouth interior, teeth, nostrils, beard and hairline are functions of that
canonical point, so they move, turn and foreshorten with the head exactly. Shading is Lambertian +
ambient (+ a little specular) under a per-identity light; the normals of the face parts are blended
near their seams so the face reads as one smooth surface.

Coordinates and conventions
  Canonical head coordinates: x right (viewer's right in a frontal view), y up, z towards the
  camera, in head units of about 10 cm. Eyes are at y ~ +0.1, the nose tip at y ~ -0.25, the
  mouth at y ~ -0.6, the chin at y ~ -1.05 and the top of the skull at y ~ +1.2. The head centre,
  about which the head turns and which tx, ty place, is HEAD_CENTRE = (0, -0.2, 0), mid-nose.
  Face state (FACE_STATE_FIELDS), one float each:
    yaw, pitch, roll: radians. yaw > 0 turns the face towards the viewer's right (image +x);
      pitch > 0 tilts the face up (chin forward/up, the face moves towards the image top); roll > 0
      rotates the face counter-clockwise in the image. R = R_roll @ R_pitch @ R_yaw maps canonical
      head coordinates (relative to the head centre) to camera coordinates (x right, y up, z towards
      the camera).
    tx, ty: offset of the head centre from the image centre, in fractions of the image size
      (+x right, +y down).
    scale: apparent head size; 1.0 is the default framing, where brow to chin is about 45% of the
      image height. Distance to the camera is 1 / scale (the camera is orthographic, so only the
      size changes).
    gaze_theta, gaze_phi: eye rotation relative to the head, radians (theta > 0 towards the viewer's
      right, phi > 0 up).
    blink: 0 open .. 1 closed.  jaw_open: 0 .. 1.  lip_width: 0 .. 1 (0.5 neutral).
    lip_round: 0 .. 1.  brow_raise: -1 .. 1 (0 neutral).  smile: -1 .. 1 (mouth corners down .. up).
    Values outside these ranges are clipped to them.
  Pixel coordinates: (x, y) with x to the right and y down; pixel (col, row) is centred at
  (col, row), so the image centre is ((W - 1) / 2, (H - 1) / 2). `project` uses the renderer's
  camera.
  Landmarks: "left_eye" is the eye at canonical x < 0, i.e. on the image left in a frontal view.

The shoulders stay upright (they follow tx, ty and scale but not the head rotation); the neck turns
with the head. The face, open jaw included, stays inside the image for |yaw| <= 0.8, |pitch| <= 0.3,
|roll| <= 0.3, |tx| <= 0.1, scale <= 1.2 and ty + 0.4 * scale <= 0.52 (scale 1.2: ty <= 0.04;
scale 1.0: ty <= 0.1), short of a pixel or two where everything pushes towards one edge at once.
The top of the hair may leave the image at scale > 1.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

FACE_STATE_FIELDS = ("yaw", "pitch", "roll", "tx", "ty", "scale", "gaze_theta", "gaze_phi", "blink",
                     "jaw_open", "lip_width", "lip_round", "brow_raise", "smile")
HAIR_STYLES = ("bald", "buzz", "short", "fringe", "long", "bob", "bun", "afro", "receding")
BEARDS = ("none", "stubble", "full", "moustache", "goatee")
GLASSES = ("none", "clear", "sunglasses")
HATS = ("none", "beanie", "cap")
EARRINGS = ("none", "studs", "drops")
BACKGROUNDS = ("gradient", "blobs", "stripes", "radial", "room", "tiles")
CLOTHING_PATTERNS = ("plain", "stripes", "collar")
# Label map values of `render_frame_and_labels`.
PART_LABELS = {"background": 0, "skin": 1, "nose": 2, "ear": 3, "neck": 4, "eye_white": 5,
               "iris": 6, "brow": 7, "lips": 8, "mouth_interior": 9, "teeth": 10, "hair": 11,
               "beard": 12, "clothes": 13, "accessory": 14}
# The mouth interior is drawn unlit in this exact colour (uint8 RGB), so it can be found in images.
MOUTH_INTERIOR_RGB = (52, 10, 22)
# Pixels per head unit at scale 1, as a fraction of the image size: brow (y ~ 0.25) to chin
# (y ~ -1.05) is then ~45% of the image height.
FOCAL = 0.35
# Canonical point about which the head turns and which tx, ty place: the middle of the nose, so the
# face (brow to chin) sits a little below the image centre with room for hair above.
HEAD_CENTRE = np.array([0.0, -0.2, 0.0])

_HEAD, _BODY = 0, 1
_L = PART_LABELS


# ----------------------------------------------------------------------------------------- identity

Color = tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class Identity:
  """Everything that makes one synthetic person look like themselves (plain JSON-able values).

  Shape fields are multipliers around 1 or signed offsets in -1 .. 1 (chin_forward, mouth_height,
  brow_height, hairline; eye_height is in head units); colours are display RGB triples in [0, 1];
  style fields index HAIR_STYLES, BEARDS, GLASSES, HATS, EARRINGS, BACKGROUNDS and
  CLOTHING_PATTERNS; light_azimuth and light_elevation are radians; seed drives the background.
  """

  seed: int
  head_width: float
  head_height: float
  head_depth: float
  jaw_width: float
  jaw_length: float
  chin_forward: float
  eye_spacing: float
  eye_size: float
  eye_height: float
  eye_open: float
  eye_tilt: float
  nose_length: float
  nose_width: float
  nose_depth: float
  mouth_width: float
  mouth_height: float
  lip_thickness: float
  ear_size: float
  brow_height: float
  brow_thickness: float
  brow_arch: float
  brow_color: Color
  skin_color: Color
  lip_color: Color
  blush: float
  iris_color: Color
  hair_color: Color
  hair_style: int
  hair_volume: float
  hairline: float
  beard: int
  glasses: int
  glasses_color: Color
  glasses_shape: float
  hat: int
  hat_color: Color
  earrings: int
  earring_color: Color
  clothing_color: Color
  clothing_color2: Color
  clothing_pattern: int
  background: int
  bg_colors: tuple[Color, Color, Color]
  bg_angle: float
  bg_scale: float
  light_azimuth: float
  light_elevation: float
  ambient: float
  light_warmth: float


_SKIN_TONES = np.array([
    (0.98, 0.86, 0.77), (0.95, 0.79, 0.68), (0.90, 0.71, 0.58), (0.82, 0.61, 0.47),
    (0.70, 0.50, 0.36), (0.56, 0.38, 0.26), (0.42, 0.28, 0.19), (0.30, 0.20, 0.14)])
# (colour, weight) of natural hair; some identities get a dyed colour instead.
_HAIR_COLORS = [
    ((0.05, 0.04, 0.04), 5), ((0.14, 0.09, 0.06), 5), ((0.28, 0.18, 0.11), 4),
    ((0.45, 0.32, 0.20), 3), ((0.78, 0.64, 0.40), 2), ((0.90, 0.84, 0.68), 1),
    ((0.50, 0.18, 0.08), 1.5), ((0.78, 0.38, 0.15), 1), ((0.50, 0.50, 0.50), 1),
    ((0.82, 0.82, 0.80), 1)]
_DYED_HAIR = [(0.16, 0.28, 0.65), (0.85, 0.38, 0.62), (0.30, 0.60, 0.45), (0.55, 0.25, 0.70)]
_IRIS_COLORS = [((0.22, 0.12, 0.06), 5), ((0.40, 0.25, 0.12), 3), ((0.45, 0.40, 0.20), 1.5),
                ((0.25, 0.45, 0.25), 1), ((0.25, 0.45, 0.70), 2), ((0.45, 0.52, 0.58), 1)]


def _choice(rng: np.random.Generator, options: list) -> Any:
  weights = np.array([w for _, w in options], np.float64)
  return options[int(rng.choice(len(options), p=weights / weights.sum()))][0]


def _jitter(rng: np.random.Generator, color, amount: float) -> Color:
  c = np.clip(np.asarray(color) * (1.0 + rng.uniform(-amount, amount, 3)), 0.0, 1.0)
  return tuple(round(float(v), 4) for v in c)


def _random_color(rng: np.random.Generator, lo: float = 0.1, hi: float = 0.9) -> Color:
  return tuple(round(float(v), 4) for v in rng.uniform(lo, hi, 3))


def sample_identity(rng: np.random.Generator) -> Identity:
  """Draws one identity; the result is a deterministic function of the generator's state."""
  u = rng.uniform
  tone = u(0.0, 1.0) * (len(_SKIN_TONES) - 1)
  i = min(int(tone), len(_SKIN_TONES) - 2)
  skin = _SKIN_TONES[i] + (tone - i) * (_SKIN_TONES[i + 1] - _SKIN_TONES[i])
  skin = _jitter(rng, skin * np.array([1.0, 1.0 + u(-0.03, 0.03), 1.0 + u(-0.05, 0.05)]), 0.03)
  lip = _jitter(rng, np.asarray(skin) * np.array([0.86, 0.58, 0.60]) + np.array([0.06, 0.0, 0.02]),
                0.08)
  natural = _jitter(rng, _choice(rng, _HAIR_COLORS), 0.12)
  dyed = rng.uniform() < 0.05
  hair = _jitter(rng, _DYED_HAIR[int(rng.integers(len(_DYED_HAIR)))], 0.12) if dyed else natural
  # Brows are natural and a little darker than light hair.
  brow = _jitter(rng, np.asarray(natural) * (0.65 if np.mean(natural) > 0.5 else 0.9), 0.08)
  style = int(rng.choice(len(HAIR_STYLES), p=[0.06, 0.1, 0.2, 0.13, 0.18, 0.11, 0.07, 0.07, 0.08]))
  # About half the identities can have facial hair at all.
  bearded = rng.uniform() < 0.5
  beard = int(rng.choice(len(BEARDS), p=[0.3, 0.25, 0.2, 0.12, 0.13])) if bearded else 0
  glasses = int(rng.choice(3, p=[0.72, 0.2, 0.08]))
  hat = int(rng.choice(3, p=[0.84, 0.08, 0.08]))
  earrings = int(rng.choice(3, p=[0.72, 0.16, 0.12]))
  bg_colors = tuple(_random_color(rng, 0.08, 0.95) for _ in range(3))
  metal = ((0.85, 0.68, 0.30), (0.80, 0.80, 0.82), (0.72, 0.45, 0.35))[int(rng.integers(3))]
  return Identity(
      seed=int(rng.integers(0, 2**31 - 1)),
      head_width=round(u(0.9, 1.1), 4), head_height=round(u(0.94, 1.06), 4),
      head_depth=round(u(0.94, 1.06), 4),
      jaw_width=round(u(0.85, 1.12), 4), jaw_length=round(u(0.9, 1.1), 4),
      chin_forward=round(u(-1.0, 1.0), 4),
      eye_spacing=round(u(0.92, 1.08), 4), eye_size=round(u(0.88, 1.15), 4),
      eye_height=round(u(-0.03, 0.03), 4), eye_open=round(u(0.8, 1.2), 4),
      eye_tilt=round(u(-0.12, 0.22), 4),
      nose_length=round(u(0.85, 1.15), 4), nose_width=round(u(0.8, 1.25), 4),
      nose_depth=round(u(0.8, 1.2), 4),
      mouth_width=round(u(0.85, 1.15), 4), mouth_height=round(u(-1.0, 1.0), 4),
      lip_thickness=round(u(0.7, 1.35), 4), ear_size=round(u(0.85, 1.15), 4),
      brow_height=round(u(-1.0, 1.0), 4), brow_thickness=round(u(0.6, 1.5), 4),
      brow_arch=round(u(0.0, 1.0), 4), brow_color=brow,
      skin_color=skin, lip_color=lip, blush=round(u(0.0, 1.0), 4),
      iris_color=_jitter(rng, _choice(rng, _IRIS_COLORS), 0.12),
      hair_color=hair, hair_style=style, hair_volume=round(u(0.8, 1.25), 4),
      hairline=round(u(-1.0, 1.0), 4), beard=beard,
      glasses=glasses, glasses_color=_random_color(rng, 0.02, 0.7),
      glasses_shape=round(u(2.0, 5.0), 4),
      hat=hat, hat_color=_random_color(rng, 0.05, 0.9),
      earrings=earrings, earring_color=_jitter(rng, metal, 0.05),
      clothing_color=_random_color(rng, 0.05, 0.9), clothing_color2=_random_color(rng, 0.05, 0.95),
      clothing_pattern=int(rng.choice(3, p=[0.55, 0.25, 0.2])),
      background=int(rng.integers(len(BACKGROUNDS))), bg_colors=bg_colors,
      bg_angle=round(u(0.0, 2 * math.pi), 4), bg_scale=round(u(0.5, 2.0), 4),
      light_azimuth=round(u(-0.8, 0.8), 4), light_elevation=round(u(0.1, 0.7), 4),
      ambient=round(u(0.38, 0.55), 4), light_warmth=round(u(-1.0, 1.0), 4))


def identity_to_dict(identity: Identity) -> dict:
  """The identity as a dict of plain values (JSON turns its tuples into lists)."""
  return dataclasses.asdict(identity)


def _tuplify(value: Any) -> Any:
  if isinstance(value, (list, tuple)):
    return tuple(_tuplify(v) for v in value)
  return value


def identity_from_dict(d: Mapping[str, Any]) -> Identity:
  """Inverse of `identity_to_dict` (accepts lists where the identity has tuples)."""
  names = {f.name for f in dataclasses.fields(Identity)}
  unknown = set(d) - names
  if unknown:
    raise ValueError(f"unknown identity fields {sorted(unknown)}")
  return Identity(**{k: _tuplify(v) for k, v in d.items()})


# ------------------------------------------------------------------------------------- face state

def neutral_state() -> dict[str, float]:
  """Every face-state field at its neutral value: frontal, centred, eyes open, mouth shut."""
  state = {k: 0.0 for k in FACE_STATE_FIELDS}
  state["scale"] = 1.0
  state["lip_width"] = 0.5
  return state


_STATE_RANGES = (("blink", 0.0, 1.0), ("jaw_open", 0.0, 1.0), ("lip_width", 0.0, 1.0),
                 ("lip_round", 0.0, 1.0), ("brow_raise", -1.0, 1.0), ("smile", -1.0, 1.0))


def _full_state(state: Mapping[str, float]) -> dict[str, float]:
  unknown = set(state) - set(FACE_STATE_FIELDS)
  if unknown:
    raise ValueError(f"unknown face-state fields {sorted(unknown)}; known: {FACE_STATE_FIELDS}")
  full = neutral_state()
  full.update({k: float(v) for k, v in state.items()})
  for name, lo, hi in _STATE_RANGES:
    full[name] = min(max(full[name], lo), hi)
  if not full["scale"] > 0:
    raise ValueError(f"scale must be positive, got {full['scale']}")
  return full


def head_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
  """R = R_roll @ R_pitch @ R_yaw, head to camera coordinates (radians in, float64 [3, 3] out)."""
  cy, sy = math.cos(yaw), math.sin(yaw)
  cp, sp = math.cos(pitch), math.sin(pitch)
  cr, sr = math.cos(roll), math.sin(roll)
  r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])     # +z towards +x
  r_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])  # +z towards +y
  r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])   # +x towards +y
  return r_roll @ r_pitch @ r_yaw


@dataclasses.dataclass(frozen=True)
class _Camera:
  """Orthographic camera: camera point (X, Y, Z) lands on pixel (cx + f X, cy - f Y)."""

  rot: np.ndarray   # [3, 3] head -> camera
  focal: float      # pixels per head unit
  cx: float         # pixel position of the head centre
  cy: float
  res: int

  def frame_rot(self, frame: int) -> np.ndarray:
    return self.rot if frame == _HEAD else np.eye(3)

  def bbox(self, center: np.ndarray, radius: float, frame: int) -> tuple[int, int, int, int] | None:
    """Pixel rows/cols [r0, r1) x [c0, c1) covering a sphere given in `frame` coordinates."""
    p = self.frame_rot(frame) @ (center - HEAD_CENTRE)
    u, v, r = self.cx + self.focal * p[0], self.cy - self.focal * p[1], self.focal * radius
    c0, c1 = max(0, int(math.floor(u - r))), min(self.res, int(math.ceil(u + r)) + 1)
    r0, r1 = max(0, int(math.floor(v - r))), min(self.res, int(math.ceil(v + r)) + 1)
    if c0 >= c1 or r0 >= r1:
      return None
    return r0, r1, c0, c1


def _camera(state: Mapping[str, float], res: int) -> _Camera:
  rot = head_rotation(state["yaw"], state["pitch"], state["roll"])
  centre = (res - 1) / 2.0
  return _Camera(rot=rot, focal=FOCAL * state["scale"] * res, cx=centre + state["tx"] * res,
                 cy=centre + state["ty"] * res, res=res)


def project(identity: Identity, state: Mapping[str, float], points: np.ndarray,
            resolution: int) -> np.ndarray:
  """Canonical head points to pixel coordinates with the renderer's camera.

  Args:
    identity: unused by the camera (kept so callers need not know that).
    state: face state (missing fields are neutral).
    points: float [N, 3] canonical head coordinates.
    resolution: image size in pixels.

  Returns:
    float32 [N, 2] pixel (x, y); pixel (col, row) is centred at (col, row).
  """
  del identity
  cam = _camera(_full_state(state), resolution)
  p = (np.asarray(points, np.float64).reshape(-1, 3) - HEAD_CENTRE) @ cam.rot.T
  return np.stack([cam.cx + cam.focal * p[:, 0], cam.cy - cam.focal * p[:, 1]], -1).astype(
      np.float32)


# --------------------------------------------------------------------------------------- primitives

Clip = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True, eq=False)
class _Quadric:
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
class _Plane:
  """n . p = offset in `frame` coordinates, kept where `clip` holds."""

  kind: str
  frame: int
  normal: np.ndarray
  offset: float
  bound_center: np.ndarray
  bound_radius: float
  clip: Clip


def _axes(rx: float = 0.0, ry: float = 0.0, rz: float = 0.0) -> np.ndarray:
  """Local axes Q (columns) from rotations about x, then y, then z (radians)."""
  cx, sx, cy, sy, cz, sz = (math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz),
                            math.sin(rz))
  mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
  my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
  mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
  return mz @ my @ mx


def _ellipsoid(kind: str, frame: int, center, radii, axes: np.ndarray | None = None,
               clip: Clip | None = None, two_sided: bool = False, weights=(1.0, 1.0, 1.0),
               bound: tuple[Any, float] | None = None) -> _Quadric:
  center = np.asarray(center, np.float64)
  radii = np.asarray(radii, np.float64)
  axes = np.eye(3) if axes is None else axes
  if bound is None:
    bound = (center, float(radii.max()))
  return _Quadric(kind, frame, center, (axes / radii[None, :]).T, tuple(weights),
                  np.asarray(bound[0], np.float64), float(bound[1]), clip, two_sided)


@dataclasses.dataclass
class _Hit:
  r0: int
  r1: int
  c0: int
  c1: int
  t: np.ndarray            # float32 [r1 - r0, c1 - c0], inf where missed
  back: np.ndarray | None  # bool, same shape: the hit is on the inside of the surface


def _pixel_axes(cam: _Camera, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
  """Camera X of columns c0..c1-1 and Y of rows r0..r1-1, head units, float32."""
  xs = (np.arange(c0, c1, dtype=np.float32) - np.float32(cam.cx)) / np.float32(cam.focal)
  ys = (np.float32(cam.cy) - np.arange(r0, r1, dtype=np.float32)) / np.float32(cam.focal)
  return xs, ys


def _points(rf: np.ndarray, x: np.ndarray, y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
  """Frame coordinates of the points at parameter t on the rays through camera (x, y)."""
  return tuple(float(HEAD_CENTRE[k]) + float(rf[0, k]) * x + float(rf[1, k]) * y
               - float(rf[2, k]) * t for k in range(3))


def _intersect_quadric(q: _Quadric, cam: _Camera) -> _Hit | None:
  box = cam.bbox(q.bound_center, q.bound_radius, q.frame)
  if box is None:
    return None
  r0, r1, c0, c1 = box
  xs, ys = _pixel_axes(cam, r0, r1, c0, c1)
  rf = cam.frame_rot(q.frame)
  # Local unit coordinates along the ray: l = a X + b Y + e + t d (rays start on the plane Z = 0).
  m, w = q.matrix, np.asarray(q.weights)
  a, b, e, d = m @ rf[0], m @ rf[1], m @ (HEAD_CENTRE - q.center), -(m @ rf[2])

  def dot(u, v):
    return float(np.sum(w * u * v))

  aa = dot(d, d)
  if abs(aa) < 1e-9:
    return None
  # Hyperboloids can have aa < 0, which swaps the near and far roots.
  near = 1.0 if aa > 0 else -1.0
  p, q_, s = dot(a, d), dot(b, d), dot(e, d)
  # Quarter discriminant beta^2 - aa (|l0|^2 - 1), with beta = p X + q Y + s: a quadratic in X, Y.
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
  if q.clip is not None:
    rr, cc = np.nonzero(hit)
    x, y, tf = xs[cc], ys[rr], t[rr, cc]
    keep = q.clip(*_points(rf, x, y, tf))
    if q.two_sided:
      tb = (-beta[rr, cc] + near * root[rr, cc]) * (1.0 / aa)
      keep_back = np.zeros_like(keep)
      rest = np.nonzero(~keep)[0]
      keep_back[rest] = q.clip(*_points(rf, x[rest], y[rest], tb[rest]))
      t[rr, cc] = np.where(keep, tf, np.where(keep_back, tb, np.inf))
      back = np.zeros(hit.shape, bool)
      back[rr, cc] = keep_back
    else:
      t[rr[~keep], cc[~keep]] = np.inf
  return _Hit(r0, r1, c0, c1, t.astype(np.float32, copy=False), back)


def _intersect_plane(pl: _Plane, cam: _Camera) -> _Hit | None:
  box = cam.bbox(pl.bound_center, pl.bound_radius, pl.frame)
  if box is None:
    return None
  r0, r1, c0, c1 = box
  rf = cam.frame_rot(pl.frame)
  nd = -float(rf[2] @ pl.normal)
  if abs(nd) < 1e-6:
    return None
  xs, ys = _pixel_axes(cam, r0, r1, c0, c1)
  t = (pl.offset - float(HEAD_CENTRE @ pl.normal) - (float(rf[0] @ pl.normal) * xs)[None, :]
       - (float(rf[1] @ pl.normal) * ys)[:, None]) * (1.0 / nd)
  rr, cc = np.indices(t.shape).reshape(2, -1)
  keep = pl.clip(*_points(rf, xs[cc], ys[rr], t.reshape(-1))).reshape(t.shape)
  t = np.where(keep, t, np.inf).astype(np.float32)
  return _Hit(r0, r1, c0, c1, t, None)


def _gradient(q: _Quadric, x, y, z) -> tuple[np.ndarray, ...]:
  """Implicit value sum w l^2 - 1 and its gradient (frame coordinates) at frame points."""
  m = q.matrix
  px, py, pz = x - float(q.center[0]), y - float(q.center[1]), z - float(q.center[2])
  loc = [float(m[i, 0]) * px + float(m[i, 1]) * py + float(m[i, 2]) * pz for i in range(3)]
  wl = [float(q.weights[i]) * loc[i] for i in range(3)]
  value = wl[0] * loc[0] + wl[1] * loc[1] + wl[2] * loc[2] - 1.0
  grad = [float(m[0, k]) * wl[0] + float(m[1, k]) * wl[1] + float(m[2, k]) * wl[2]
          for k in range(3)]
  return value, grad[0], grad[1], grad[2]


def _normalize(x, y, z):
  inv = 1.0 / np.sqrt(x * x + y * y + z * z + 1e-12)
  return x * inv, y * inv, z * inv


# -------------------------------------------------------------------------------------------- scene

def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
  s = np.clip((x - e0) * (1.0 / (e1 - e0)), 0.0, 1.0)
  return s * s * (3.0 - 2.0 * s)


def _ellipsoid_front_z(center, radii, x: float, y: float) -> float:
  q = 1.0 - ((x - center[0]) / radii[0]) ** 2 - ((y - center[1]) / radii[1]) ** 2
  return center[2] + radii[2] * math.sqrt(q) if q > 0 else -np.inf


@dataclasses.dataclass(frozen=True, eq=False)
class _Scene:
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
  glasses: _Plane | None
  lens: tuple[float, float, float, float, float]   # lens centre x (right), y, half axes, exponent
  colors: dict


def _surface_z(cc, cr, jc, jr, x: float, y: float) -> float:
  return max(_ellipsoid_front_z(cc, cr, x, y), _ellipsoid_front_z(jc, jr, x, y))


def _jaw(ident: Identity, drop: float) -> tuple[np.ndarray, np.ndarray]:
  jl = ident.jaw_length
  center = np.array([0.0, -0.42 - 0.3 * (jl - 1.0) - drop, 0.0 + 0.03 * ident.chin_forward])
  radii = np.array([0.6 * ident.jaw_width * ident.head_width ** 0.5, 0.62 * jl + 0.3 * drop,
                    0.8 + 0.03 * ident.chin_forward])
  return center, radii


@functools.lru_cache(maxsize=256)
def _scene(ident: Identity) -> _Scene:
  """The identity's geometry and colours; the renderer adds the jaw, which moves, per frame."""
  cc = np.array([0.0, 0.22, -0.12])
  cr = np.array([0.74 * ident.head_width, 1.0 * ident.head_height, 0.98 * ident.head_depth])
  jc, jr = _jaw(ident, 0.0)
  zs = functools.partial(_surface_z, cc, cr, jc, jr)

  ey = 0.1 + ident.eye_height
  ex = 0.3 * ident.eye_spacing * ident.head_width ** 0.5
  eyes = tuple(np.array([s * ex, ey, zs(s * ex, ey)]) for s in (-1.0, 1.0))
  eyeball_r = 0.15
  eye_hw = 0.115 * ident.eye_size

  # Nose: a ridge ellipsoid tilted so its lower end comes forward, a tip and two nostril wings.
  base = -0.3 * ident.nose_length
  top = 0.06
  nl, nw, nd = ident.nose_length, ident.nose_width, ident.nose_depth
  ridge_cy = 0.5 * (base + top)
  ridge_r = np.array([0.062 * nw, 0.5 * (top - base) + 0.03, 0.12 * nd])
  ridge_c = np.array([0.0, ridge_cy, zs(0.0, ridge_cy) - 0.035 + 0.06 * nd])
  tilt = -0.32   # the lower end comes forward
  tip_r = 0.068 * (0.5 + 0.5 * nw)
  tip_c = np.array([0.0, base + 0.075, zs(0.0, base + 0.075) + 0.17 * nd + 0.03 - tip_r])
  wing_r = np.array([0.05 * nw, 0.045, 0.05])
  wings = [np.array([s * 0.062 * nw, base + 0.05, zs(s * 0.062 * nw, base + 0.05) + 0.005])
           for s in (-1.0, 1.0)]
  nose_tip = tip_c + np.array([0.0, 0.0, tip_r])

  mouth_y = -0.6 + 0.025 * ident.mouth_height - 0.03 * (nl - 1.0)
  mouth_hw = 0.2 * ident.mouth_width * ident.jaw_width ** 0.3

  prims = [
      _ellipsoid("cranium", _HEAD, cc, cr, bound=(cc, float(cr.max()) + 0.01)),
      _ellipsoid("nose", _HEAD, ridge_c, ridge_r, axes=_axes(rx=tilt)),
      _ellipsoid("nose", _HEAD, tip_c, (tip_r, tip_r * 0.9, tip_r)),
      _ellipsoid("nose", _HEAD, wings[0], wing_r),
      _ellipsoid("nose", _HEAD, wings[1], wing_r),
  ]
  # Ears: flat ellipsoids on the sides, turned a little forward.
  es = ident.ear_size
  ears = []
  for s in (-1.0, 1.0):
    ear_y = ey - 0.1
    ear_x = s * cr[0] * math.sqrt(max(0.0, 1 - ((ear_y - cc[1]) / cr[1]) ** 2 - 0.02))
    ears.append(_ellipsoid("ear", _HEAD, (ear_x, ear_y, -0.12), (0.05, 0.19 * es, 0.12 * es),
                           axes=_axes(ry=s * 0.35, rx=0.15)))
  prims += ears
  neck_c = np.array([0.0, -1.2, -0.14])
  prims.append(_ellipsoid(
      "neck", _HEAD, neck_c, (0.42 * ident.jaw_width ** 0.5, 1.0, 0.36), weights=(1.0, 0.0, 1.0),
      clip=lambda x, y, z: (y < -0.35) & (y > -2.4), bound=(np.array([0.0, -1.4, -0.14]), 1.05)))
  # Shoulders (a flat ellipsoid) over a chest that runs straight down out of the image.
  shoulder_c = np.array([0.0, -1.78, -0.35])
  prims.append(_ellipsoid("torso", _BODY, shoulder_c, (1.75, 0.53, 0.68), bound=(shoulder_c, 1.75)))
  prims.append(_ellipsoid("torso", _BODY, shoulder_c, (1.75, 1.0, 0.68), weights=(1.0, 0.0, 1.0),
                          clip=lambda x, y, z: y < -1.78,
                          bound=(np.array([0.0, -3.2, -0.35]), 2.3)))
  prims += _hair_primitives(ident, cc, cr)
  prims += _hat_primitives(ident, cc, cr)
  if ident.earrings:
    for s, ear in zip((-1.0, 1.0), ears):
      lobe = ear.center + np.array([s * 0.02, -0.16 * es, 0.03])
      if ident.earrings == 1:
        prims.append(_ellipsoid("earring", _HEAD, lobe + np.array([s * 0.02, 0.0, 0.0]),
                                (0.028, 0.028, 0.028)))
      else:
        prims.append(_ellipsoid("earring", _HEAD, lobe + np.array([s * 0.02, -0.09, 0.0]),
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
  return _Scene(ident=ident, cranium_c=cc, cranium_r=cr, jaw_c=jc, jaw_r=jr, eyes=eyes,
                eyeball_r=eyeball_r, eye_hw=eye_hw,
                brow_y=ey + 0.13 + 0.025 * ident.brow_height, nose_base=base, nose_tip=nose_tip,
                mouth_y=mouth_y, mouth_hw=mouth_hw, mouth_z=zs(0.0, mouth_y),
                static=tuple(prims), glasses=glasses, lens=lens, colors=colors)


def _azimuth(x: np.ndarray, z: np.ndarray, zc: float) -> np.ndarray:
  """|angle| around the vertical axis through (0, *, zc): 0 straight ahead, pi at the back."""
  return np.abs(np.arctan2(x, z - zc))


def _hair_primitives(ident: Identity, cc: np.ndarray, cr: np.ndarray) -> list:
  """Hair: a shell round the skull (cranium centre cc, radii cr) cut along the style's hairline,
  a flaring drape for long hair and bobs, a bun."""
  style = HAIR_STYLES[ident.hair_style]
  if style == "bald":
    return []
  vol = ident.hair_volume
  thick = {"buzz": 0.025, "short": 0.07, "fringe": 0.08, "long": 0.08, "bob": 0.09, "bun": 0.06,
           "afro": 0.26, "receding": 0.05}[style] * vol
  hairline = 0.7 + 0.06 * ident.hairline
  zc = float(cc[2])
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
    s1 = _smoothstep(0.5, 1.05, az)
    s2 = _smoothstep(1.5, 2.3, az)
    front = front_y + 0.22 * (x * x) * (1.0 / 0.36)
    if fringe:
      front = front + 0.018 * np.sin(x * 60.0) + 0.06 * (x * x) * (1.0 / 0.36)
    bottom = (1.0 - s1) * front + s1 * ((1.0 - s2) * side_y + s2 * back_y)
    if receding:
      return (y > bottom) & (y < float(cc[1]) + 0.3 + 0.4 * _smoothstep(1.2, 2.8, az))
    return y > bottom

  radii = cr + np.array([thick, 0.6 * thick, thick])
  center = cc + np.array([0.0, 0.4 * thick, -0.2 * thick])
  prims = [_ellipsoid("hair", _HEAD, center, radii, clip=shell_clip, two_sided=True,
                      bound=(center, float(radii.max()) + 0.01))]
  if style in ("long", "bob"):
    end = -1.75 if style == "long" else -0.95
    # A hyperboloid of one sheet, as wide as the skull shell where they meet and flaring below.
    top = float(center[1])
    cyl_r = np.array([cr[0] + thick, 2.0 if style == "long" else 1.5, cr[2] + thick])
    cyl_c = np.array([0.0, top, float(center[2])])

    def drape_clip(x, y, z):
      az = _azimuth(x, z, float(cyl_c[2]))
      # The opening for the face narrows towards the top, where the drape meets the skull shell.
      opening = 1.05 - 0.25 * _smoothstep(-0.2, top, y)
      return (y < top) & (y > end + 0.04 * np.cos(x * 9.0)) & (az > opening)

    mid = 0.5 * (top + end)
    flare = math.sqrt(1.0 + ((top - end) / cyl_r[1]) ** 2)
    prims.append(_ellipsoid("hair", _HEAD, cyl_c, cyl_r, weights=(1.0, -1.0, 1.0),
                            clip=drape_clip, two_sided=True,
                            bound=(np.array([0.0, mid, zc]), math.hypot(
                                0.5 * (top - end), flare * max(cyl_r[0], cyl_r[2])))))
  if style == "bun":
    prims.append(_ellipsoid("hair", _HEAD, cc + np.array([0.0, 0.75, -0.62]),
                            (0.3 * vol, 0.27 * vol, 0.27 * vol)))
  return prims


def _hat_primitives(ident: Identity, cc: np.ndarray, cr: np.ndarray) -> list:
  """A beanie (a shell with a ribbed cuff) or a cap (a shell and a brim)."""
  if not ident.hat:
    return []
  zc = float(cc[2])
  if HATS[ident.hat] == "beanie":
    radii = cr + 0.1 + 0.05 * ident.hair_volume
    center = cc + np.array([0.0, 0.06, -0.03])

    def beanie_clip(x, y, z):
      return y > 0.5 + 0.16 * np.cos(np.arctan2(x, z - zc))

    return [_ellipsoid("hat", _HEAD, center, radii, clip=beanie_clip, two_sided=True,
                       bound=(center, float(radii.max()) + 0.01))]
  radii = cr + np.array([0.09, 0.05, 0.09])
  center = cc + np.array([0.0, 0.02, 0.0])
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

  brim = _Plane("brim", _HEAD, normal, float(normal @ anchor),
                anchor + np.array([0.0, -0.08, 0.3]), 0.72, brim_clip)
  return [_ellipsoid("hat", _HEAD, center, radii, clip=cap_clip, two_sided=True,
                     bound=(center, float(radii.max()) + 0.01)), brim]


def _lens_radius(lens, x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Superellipse radius about the nearer lens centre (< 1 inside the lens)."""
  lx, ly, a, b, p = lens
  return np.abs((np.abs(x) - lx) * (1.0 / a)) ** p + np.abs((y - ly) * (1.0 / b)) ** p


_RIM = 1.22   # outer edge of the frame, in lens radii


def _glasses_plane(eyes, lens) -> _Plane:
  zg = float(max(eyes[0][2], eyes[1][2])) + 0.1
  lx, ly, a, _, p = lens

  def clip(x, y, z):
    bridge = (np.abs(x) < lx - a + 0.02) & (np.abs(y - ly - 0.045) < 0.016)
    return (_lens_radius(lens, x, y) < _RIM ** p) | bridge

  return _Plane("glasses", _HEAD, np.array([0.0, 0.0, 1.0]), zg, np.array([0.0, ly, zg]),
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

    arms.append(_Plane("glasses_arm", _HEAD, normal, float(normal @ front), 0.5 * (front + back),
                       0.5 * float(np.linalg.norm(back - front)) + 0.05, clip))
  return arms


# ----------------------------------------------------------------------------------------- shading

@dataclasses.dataclass
class _Ctx:
  sc: _Scene
  state: dict
  cam: _Camera
  light_head: np.ndarray   # [3] unit, towards the light
  light_body: np.ndarray
  half_head: np.ndarray    # [3] unit, halfway between light and view
  half_body: np.ndarray
  view_head: np.ndarray    # [3] unit, towards the camera


def _lit(ctx: _Ctx, albedo: np.ndarray, nx, ny, nz, frame: int, spec: float | np.ndarray = 0.0,
         shininess: float = 20.0, ambient: float | None = None) -> np.ndarray:
  """Ambient + Lambertian (+ Blinn specular) shading of albedo [N, 3]; normals in `frame`."""
  light = ctx.light_head if frame == _HEAD else ctx.light_body
  amb = ctx.sc.ident.ambient if ambient is None else ambient
  ndl = np.maximum(float(light[0]) * nx + float(light[1]) * ny + float(light[2]) * nz, 0.0)
  shade = (amb + (1.0 - amb) * 1.15 * ndl)[:, None] * ctx.sc.colors["light"]
  out = albedo * shade
  if np.any(spec > 0):
    half = ctx.half_head if frame == _HEAD else ctx.half_body
    ndh = np.maximum(float(half[0]) * nx + float(half[1]) * ny + float(half[2]) * nz, 0.0)
    out = out + (spec * ndh ** shininess)[:, None]
  return out


def _blend(base: np.ndarray, idx: np.ndarray, color, alpha=1.0) -> None:
  """base[idx] = lerp(base[idx], color, alpha) in place; alpha a scalar or [len(idx)]."""
  if idx.size == 0:
    return
  a = alpha if np.isscalar(alpha) else np.asarray(alpha, np.float32)[:, None]
  base[idx] = base[idx] * (1.0 - a) + np.asarray(color, np.float32) * a


def _face_normals(ctx: _Ctx, prims: list, x, y, z, own: np.ndarray):
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
  for i, q in enumerate(prims):
    near = ((x - float(q.bound_center[0])) ** 2 + (y - float(q.bound_center[1])) ** 2
            + (z - float(q.bound_center[2])) ** 2) < (q.bound_radius + k) ** 2
    sel = np.nonzero(near)[0]
    if sel.size == 0:
      continue
    v, gx, gy, gz = _gradient(q, x[sel], y[sel], z[sel])
    glen = np.sqrt(gx * gx + gy * gy + gz * gz) + 1e-9
    dist = np.maximum(v, 0.0) / (2.0 * glen)
    w = np.clip(1.0 - dist * (1.0 / k), 0.0, 1.0) ** 2
    w = np.where(own[sel] == i, 1.0, w) / glen
    sx[sel] += w * gx
    sy[sel] += w * gy
    sz[sel] += w * gz
  return _normalize(sx, sy, sz)


def _shade_face(ctx: _Ctx, x, y, z, nx, ny, nz, is_nose: np.ndarray):
  """Skin of the head, face and nose with every painted feature. Returns rgb [N, 3], labels [N]."""
  sc, ident = ctx.sc, ctx.sc.ident
  n = x.shape[0]
  albedo = np.broadcast_to(sc.colors["skin"], (n, 3)).copy()
  labels = np.where(is_nose, _L["nose"], _L["skin"]).astype(np.uint8)
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
  sel = np.nonzero(is_nose & (y < sc.nose_base + 0.06))[0]
  if sel.size:
    nw = ident.nose_width
    for s in (-1.0, 1.0):
      r = (((x[sel] - s * 0.034 * nw) * (1.0 / (0.026 * nw))) ** 2
           + ((y[sel] - sc.nose_base - 0.012) * (1.0 / 0.018)) ** 2)
      hole = sel[(r < 1.0) & (ny[sel] < -0.15)]
      _blend(albedo, hole, (0.12, 0.05, 0.05), 0.85)

  rgb = _lit(ctx, albedo, nx, ny, nz, _HEAD, spec=spec, shininess=24.0)
  rgb[unlit] = np.asarray(MOUTH_INTERIOR_RGB, np.float32) / 255.0
  if eye_idx.size:
    rgb[eye_idx] = eye_rgb
    labels[eye_idx] = eye_lab
  return rgb, labels


def _eye_geometry(ctx: _Ctx, s: float):
  """Opening outline of one eye: centre, half width, upper/lower lid heights (head units)."""
  sc, st, ident = ctx.sc, ctx.state, ctx.sc.ident
  c = sc.eyes[0 if s < 0 else 1]
  blink = st["blink"]
  up = 0.052 * ident.eye_open * ident.eye_size
  lo = 0.036 * ident.eye_open * ident.eye_size
  # A raised brow opens the eye a little, a smile narrows it.
  up *= 1.0 + 0.15 * st["brow_raise"] - 0.12 * max(st["smile"], 0.0)
  lo *= 1.0 - 0.2 * max(st["smile"], 0.0)
  return c, sc.eye_hw, up, lo, blink


def _paint_eyes(ctx: _Ctx, x, y, front, albedo):
  """Eye openings with sclera, iris, pupil and catchlight of a virtual eyeball behind the skin.

  Returns the lit colours [M, 3], labels [M] and indices [M] of the open-eye pixels; lids, lashes
  and creases are painted into `albedo` directly.
  """
  sc, st, ident = ctx.sc, ctx.state, ctx.sc.ident
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
    re = sc.eyeball_r
    dx, dy = (x[idx] - c[0]) * (1.0 / re), (y[idx] - c[1]) * (1.0 / re)
    dz = np.sqrt(np.maximum(1.0 - dx * dx - dy * dy, 0.0))
    dx, dy, dz = _normalize(dx, dy, dz)
    cosg = float(gaze[0]) * dx + float(gaze[1]) * dy + float(gaze[2]) * dz
    ang = np.arccos(np.clip(cosg, -1.0, 1.0))
    iris_a, pupil_a = 0.42, 0.16
    col = np.empty((idx.size, 3), np.float32)
    col[:] = (0.93, 0.91, 0.88)
    # Pinker towards the corners.
    corner = np.abs(u[opening])
    pink = np.nonzero(corner > 0.7)[0]
    _blend(col, pink, (0.9, 0.7, 0.68), np.minimum((corner[pink] - 0.7) * 2.0, 0.6))
    lab = np.full(idx.size, _L["eye_white"], np.uint8)
    iris = ang < iris_a
    ii = np.nonzero(iris)[0]
    if ii.size:
      rel = ang[ii] * (1.0 / iris_a)
      # Radial fibres and a darker rim.
      shade = (1.0 + 0.09 * np.cos(rel * 40.0 + dx[ii] * 30.0) - 0.5 * rel ** 6)[:, None]
      col[ii] = sc.colors["iris"] * shade
      pupil = ii[ang[ii] < pupil_a]
      col[pupil] = (0.02, 0.02, 0.03)
      lab[ii] = _L["iris"]
    # Shadow of the upper lid on the eyeball.
    vv = v[opening]
    lid_shadow = 1.0 - 0.35 * _smoothstep(-0.02, 0.0, vv - lid_up[opening])
    rgb = _lit(ctx, col, dx, dy, dz, _HEAD, ambient=0.6) * lid_shadow[:, None]
    hx, hy, hz = ctx.half_head
    ndh = np.maximum(float(hx) * dx + float(hy) * dy + float(hz) * dz, 0.0)
    rgb += (0.9 * (ndh > 0.985)).astype(np.float32)[:, None]
    out_rgb.append(rgb)
    out_lab.append(lab)
    out_idx.append(idx)
  if not out_idx:
    return np.zeros((0, 3), np.float32), np.zeros(0, np.uint8), np.zeros(0, np.int64)
  return np.concatenate(out_rgb), np.concatenate(out_lab), np.concatenate(out_idx)


def _paint_brows(ctx: _Ctx, x, y, front, albedo, labels) -> None:
  """Brows into albedo [N, 3] and labels [N], in place; x, y: head coordinates of the points [N]."""
  sc, st, ident = ctx.sc, ctx.state, ctx.sc.ident
  raise_ = st["brow_raise"]
  for s in (-1.0, 1.0):
    c = sc.eyes[0 if s < 0 else 1]
    bx = c[0] + s * 0.015
    bw = sc.eye_hw * 1.55
    sel = np.nonzero(front & (np.abs(x - bx) < bw) & (np.abs(y - sc.brow_y) < 0.15))[0]
    if sel.size == 0:
      continue
    u = (x[sel] - bx) * (s / bw)   # -1 inner .. +1 outer
    arch = (0.012 + 0.03 * ident.brow_arch) * (1.0 - u * u)
    # Raised brows go up (more at the inner end); lowered brows also pull the inner end down.
    lift = 0.055 * raise_ * (1.0 - 0.3 * u) if raise_ > 0 else 0.04 * raise_ * (1.0 - 0.6 * u)
    centre = sc.brow_y + arch - 0.012 * u + lift
    half = 0.5 * 0.034 * ident.brow_thickness * (1.0 - 0.45 * (u + 1.0) * 0.5) * (1.0 - 0.3 * u * u)
    inside = np.abs(y[sel] - centre) < half
    idx = sel[inside]
    _blend(albedo, idx, sc.colors["brow"], 0.9)
    labels[idx] = _L["brow"]


def _paint_beard(ctx: _Ctx, x, y, z, albedo, labels, spec) -> None:
  """Facial hair into albedo, labels and specular strength spec [N], in place."""
  sc, ident = ctx.sc, ctx.sc.ident
  kind = BEARDS[ident.beard]
  if kind == "none":
    return
  my, hw = sc.mouth_y, sc.mouth_hw
  hair = sc.colors["hair"]
  sel = np.nonzero((y < my + 0.1 + 0.6 * (np.abs(x) > 0.3)) & (z > -0.3))[0]
  xs, ys = x[sel], y[sel]
  ax = np.abs(xs)
  # Beard line: from the sideburns down the cheeks to above the mouth corners.
  line = my + 0.16 + 0.5 * _smoothstep(0.32, 0.68, ax)
  below = line - ys
  moustache = (ax < hw * 1.15) & (ys > my + 0.005) & (ys < my + 0.08 - 0.035 * (xs / hw) ** 2)
  if kind == "stubble":
    grain = 0.5 + 0.5 * np.sin(xs * 173.0) * np.sin(ys * 211.0)
    alpha = (0.2 + 0.12 * grain) * _smoothstep(0.0, 0.08, below)
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
  labels[idx] = _L["beard"]
  spec[idx] = 0.0


def _paint_mouth(ctx: _Ctx, x, y, front, albedo, labels, unlit, spec) -> None:
  """Lips, teeth and the mouth opening, in place; unlit [N] marks the interior (drawn flat)."""
  sc, st, ident = ctx.sc, ctx.state, ctx.sc.ident
  jaw, width, rnd, smile = st["jaw_open"], st["lip_width"], st["lip_round"], st["smile"]
  drop = 0.09 * jaw
  my = sc.mouth_y - 0.45 * drop
  hw = sc.mouth_hw * (0.78 + 0.44 * width) * (1.0 - 0.32 * rnd) * (1.0 + 0.08 * max(smile, 0.0))
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
  lip_col = np.broadcast_to(sc.colors["lip"], (lip_idx.size, 3)).copy()
  lip_col[~lower] *= 0.9
  albedo[lip_idx] = lip_col
  labels[lip_idx] = _L["lips"]
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
  labels[t_idx] = _L["teeth"]
  spec[t_idx] = 0.3
  m_idx = idx[~teeth]
  labels[m_idx] = _L["mouth_interior"]
  unlit[m_idx] = True


def _shade_part(ctx: _Ctx, prim: _Quadric | _Plane, x, y, z,
                back: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | int]:
  """Colour [N, 3] and label(s) of the visible points of one primitive other than the face's."""
  sc, ident, kind = ctx.sc, ctx.sc.ident, prim.kind
  if isinstance(prim, _Plane):
    # Planes are seen from both sides: light the side that faces the camera.
    sign = 1.0 if float(ctx.view_head @ prim.normal) >= 0 else -1.0
    nx, ny, nz = (np.full_like(x, sign * float(v)) for v in prim.normal)
  else:
    _, gx, gy, gz = _gradient(prim, x, y, z)
    nx, ny, nz = _normalize(gx, gy, gz)
    if back is not None:
      nx, ny, nz = (np.where(back, -v, v) for v in (nx, ny, nz))
  n = x.shape[0]
  if kind == "hair":
    az = np.arctan2(x, z - float(sc.cranium_c[2]))
    strands = 0.92 + 0.08 * np.sin(az * 70.0 + 5.0 * np.sin(y * 4.0 + az * 3.0))
    color = sc.colors["hair"]
    sheen = 0.18 * (0.3 + float(np.mean(color)))
    rgb = _lit(ctx, color[None, :] * strands[:, None], nx, ny, nz, _HEAD, spec=sheen,
               shininess=12.0)
    if back is not None:
      rgb[back] *= 0.6   # the inside of the hair gets less light
    return rgb, _L["hair"]
  if kind in ("hat", "brim"):
    albedo = np.broadcast_to(sc.colors["hat"], (n, 3))
    if kind == "hat" and HATS[ident.hat] == "beanie":
      az = np.arctan2(x, z - float(sc.cranium_c[2]))
      rib = 0.9 + 0.1 * np.sign(np.sin(az * 40.0))
      cuff = y < 0.65 + 0.16 * np.cos(az)
      albedo = albedo * np.where(cuff, rib * 0.85, 1.0)[:, None]
    rgb = _lit(ctx, albedo, nx, ny, nz, _HEAD, spec=0.05)
    if back is not None:
      rgb[back] *= 0.5
    return rgb, _L["accessory"]
  if kind == "ear":
    albedo = np.broadcast_to(sc.colors["skin"], (n, 3)).copy()
    # The hollow of the ear: the outward-facing middle, darker.
    loc = prim.matrix @ np.stack([x - prim.center[0], y - prim.center[1], z - prim.center[2]])
    hollow = (loc[1] ** 2 + loc[2] ** 2 < 0.45) & (nx * np.sign(prim.center[0]) > 0.3)
    albedo[hollow] *= 0.72
    return _lit(ctx, albedo, nx, ny, nz, _HEAD, spec=0.04), _L["ear"]
  if kind == "neck":
    shadow = 0.72 + 0.28 * _smoothstep(-0.8, -1.3, y)   # under the jaw
    return (_lit(ctx, sc.colors["skin"][None, :] * shadow[:, None], nx, ny, nz, _HEAD, spec=0.03),
            _L["neck"])
  if kind == "torso":
    return _shade_torso(ctx, x, y, z, nx, ny, nz)
  if kind == "glasses_arm":
    return (_lit(ctx, np.broadcast_to(sc.colors["frame"], (n, 3)), nx, ny, nz, _HEAD, spec=0.3),
            _L["accessory"])
  if kind == "earring":
    return (_lit(ctx, np.broadcast_to(sc.colors["metal"], (n, 3)), nx, ny, nz, _HEAD, spec=0.9,
                 shininess=40.0, ambient=0.5), _L["accessory"])
  raise AssertionError(f"no shading for {kind!r}")


def _shade_torso(ctx: _Ctx, x, y, z, nx, ny, nz) -> tuple[np.ndarray, np.ndarray]:
  """Clothes with their pattern and a neckline of skin: rgb [N, 3], labels [N]."""
  sc, ident = ctx.sc, ctx.sc.ident
  n = x.shape[0]
  albedo = np.broadcast_to(sc.colors["cloth"], (n, 3)).copy()
  labels = np.full(n, _L["clothes"], np.uint8)
  pattern = CLOTHING_PATTERNS[ident.clothing_pattern]
  if pattern == "stripes":
    on = np.sin(y * 38.0) > 0.3
    albedo[on] = sc.colors["cloth2"]
  # Neckline: skin in a scoop at the top middle; a collar in the second colour around it.
  depth = 0.28 if pattern != "collar" else 0.16
  top = -1.22 - depth * np.clip(1.0 - (x * (1.0 / 0.42)) ** 2, 0.0, 1.0)
  skin = (y > top) & (np.abs(x) < 0.42) & (z > -0.3)
  if pattern == "collar":
    collar = (y > top - 0.07) & ~skin & (np.abs(x) < 0.5) & (z > -0.3)
    albedo[collar] = sc.colors["cloth2"]
  albedo[skin] = sc.colors["skin"] * 0.9
  labels[skin] = _L["neck"]
  return _lit(ctx, albedo, nx, ny, nz, _BODY, spec=0.03), labels


# -------------------------------------------------------------------------------------- background

@functools.lru_cache(maxsize=8)
def _background(ident: Identity, res: int) -> np.ndarray:
  """The identity's backdrop, float32 [res, res, 3] (read-only; callers copy)."""
  g = (np.arange(res, dtype=np.float32) + 0.5) * (2.0 / res) - 1.0
  u, v = g[None, :], g[:, None]
  c = [np.asarray(k, np.float32) for k in ident.bg_colors]
  kind = BACKGROUNDS[ident.background]
  ca, sa = math.cos(ident.bg_angle), math.sin(ident.bg_angle)
  along = u * ca + v * sa
  rng = np.random.default_rng(ident.seed)
  if kind == "gradient":
    t = np.clip(0.5 + 0.5 * along, 0, 1)[..., None]
    img = c[0] * (1 - t) + c[1] * t
  elif kind == "blobs":
    img = np.broadcast_to(c[0], (res, res, 3)).copy()
    for i in range(6):
      px, py = rng.uniform(-1, 1, 2)
      r = rng.uniform(0.2, 0.6) * ident.bg_scale ** 0.5
      a = np.exp(-((u - px) ** 2 + (v - py) ** 2) / (r * r))[..., None] * 0.85
      img = img * (1 - a) + c[1 + i % 2] * a
  elif kind == "stripes":
    t = np.clip(np.sin(along * (6.0 * ident.bg_scale) * math.pi) * 3.0, -1, 1)[..., None]
    img = c[0] * (0.5 - 0.5 * t) + c[1] * (0.5 + 0.5 * t)
    img = img * (0.9 + 0.1 * np.clip(0.5 + 0.5 * (u * sa - v * ca), 0, 1)[..., None])
  elif kind == "radial":
    cx, cy = rng.uniform(-0.5, 0.5, 2)
    t = np.clip(np.sqrt((u - cx) ** 2 + (v - cy) ** 2) / (1.2 * ident.bg_scale ** 0.5), 0, 1)
    img = c[0] * (1 - t[..., None]) + c[1] * t[..., None]
  elif kind == "room":
    horizon = rng.uniform(0.2, 0.7)
    wall = c[0] * (0.85 + 0.15 * np.clip(0.5 - 0.5 * v, 0, 1))[..., None]
    img = np.where((v > horizon)[..., None], c[1] * (0.8 + 0.2 * (1 - v))[..., None], wall)
    wx, wy = rng.uniform(-0.9, 0.3), rng.uniform(-0.9, -0.2)
    ww, wh = rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.6)
    win = (u > wx) & (u < wx + ww) & (v > wy) & (v < min(wy + wh, horizon))
    bar = win & ((np.abs(u - wx - ww / 2) < 0.015) | (np.abs(v - wy - wh / 2) < 0.015))
    img = np.where(win[..., None], c[2] * 0.5 + 0.5, img)
    img = np.where(bar[..., None], c[0] * 0.6, img)
  else:
    k = 3.0 * ident.bg_scale
    cu, cv = np.floor(k * (u * ca - v * sa)), np.floor(k * (u * sa + v * ca))
    t = (np.mod(cu + cv, 2.0))[..., None]
    img = c[0] * (1 - t) + (c[0] * 0.6 + c[1] * 0.4) * t
  img = np.clip(img, 0, 1).astype(np.float32)
  img.setflags(write=False)
  return img


# ----------------------------------------------------------------------------------------- drawing

def _render(ident: Identity, state: Mapping[str, float], res: int) -> tuple[np.ndarray, np.ndarray]:
  """float32 [res, res, 3] RGB in [0, 1] and uint8 [res, res] part labels of one frame."""
  st = _full_state(state)
  sc = _scene(ident)
  cam = _camera(st, res)
  jc, jr = _jaw(ident, 0.09 * st["jaw_open"])
  jaw = _ellipsoid("jaw", _HEAD, jc, jr, bound=(jc, float(jr.max()) + 0.01))
  prims = [sc.static[0], jaw] + list(sc.static[1:])

  lw = np.array([math.sin(ident.light_azimuth) * math.cos(ident.light_elevation),
                 math.sin(ident.light_elevation),
                 math.cos(ident.light_azimuth) * math.cos(ident.light_elevation)])
  view = np.array([0.0, 0.0, 1.0])
  hw = (lw + view) / np.linalg.norm(lw + view)
  ctx = _Ctx(sc=sc, state=st, cam=cam, light_head=cam.rot.T @ lw, light_body=lw,
             half_head=cam.rot.T @ hw, half_body=hw, view_head=cam.rot.T @ view)

  img = _background(ident, res).copy()
  depth = np.full((res, res), np.inf, np.float32)
  owner = np.full((res, res), -1, np.int16)
  labels = np.zeros((res, res), np.uint8)
  hits: list[_Hit | None] = []
  for i, prim in enumerate(prims):
    hit = (_intersect_plane(prim, cam) if isinstance(prim, _Plane)
           else _intersect_quadric(prim, cam))
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
    xs, ys = _pixel_axes(cam, hit.r0, hit.r1, hit.c0, hit.c1)
    x, y, z = _points(cam.frame_rot(prim.frame), xs[cc], ys[rr], depth[rows, cols])
    back = hit.back[rr, cc] if hit.back is not None else None
    rgb, lab = _shade_part(ctx, prim, x, y, z, back)
    img[rows, cols] = rgb
    labels[rows, cols] = lab

  if face_rows:
    rows, cols, own = (np.concatenate(face_rows), np.concatenate(face_cols),
                       np.concatenate(face_own))
    xs, ys = _pixel_axes(cam, 0, res, 0, res)
    x, y, z = _points(cam.rot, xs[cols], ys[rows], depth[rows, cols])
    parts = [prims[i] for i in face_parts]
    nx, ny, nz = _face_normals(ctx, parts, x, y, z, own)
    is_nose = np.array([p.kind == "nose" for p in parts])[own]
    rgb, lab = _shade_face(ctx, x, y, z, nx, ny, nz, is_nose)
    img[rows, cols] = rgb
    labels[rows, cols] = lab

  if sc.glasses is not None:
    _draw_glasses(ctx, sc.glasses, img, depth, labels)
  return img, labels


def _draw_glasses(ctx: _Ctx, plane: _Plane, img: np.ndarray, depth: np.ndarray,
                  labels: np.ndarray) -> None:
  """Frames (opaque) and lenses (tinted see-through) in front of whatever the z-buffer holds."""
  cam, sc, ident = ctx.cam, ctx.sc, ctx.sc.ident
  hit = _intersect_plane(plane, cam)
  if hit is None:
    return
  box = (slice(hit.r0, hit.r1), slice(hit.c0, hit.c1))
  rr, cc = np.nonzero(hit.t < depth[box])
  if rr.size == 0:
    return
  rows, cols = rr + hit.r0, cc + hit.c0
  xs, ys = _pixel_axes(cam, hit.r0, hit.r1, hit.c0, hit.c1)
  x, y, _ = _points(cam.rot, xs[cc], ys[rr], hit.t[rr, cc])
  lens = _lens_radius(sc.lens, x, y) < 1.0
  n = np.ones_like(x)
  frame_rgb = _lit(ctx, np.broadcast_to(sc.colors["frame"], (x.size, 3)), 0 * n, 0 * n, n, _HEAD,
                   spec=0.3)
  fr = ~lens
  img[rows[fr], cols[fr]] = frame_rgb[fr]
  labels[rows[fr], cols[fr]] = _L["accessory"]
  lr, lc = rows[lens], cols[lens]
  if GLASSES[ident.glasses] == "sunglasses":
    tint = sc.colors["frame"] * 0.25
    img[lr, lc] = img[lr, lc] * 0.15 + tint * 0.85
    labels[lr, lc] = _L["accessory"]
  else:
    sheen = 0.06 + 0.1 * _smoothstep(0.4, 1.0, (x[lens] - y[lens] * 0.5 + 1.0) % 0.5 * 2.0)
    img[lr, lc] = img[lr, lc] * (1.0 - sheen[:, None]) + sheen[:, None]


# ------------------------------------------------------------------------------------------ public

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
  sc = _scene(identity)
  z = functools.partial(_surface_z, sc.cranium_c, sc.cranium_r, sc.jaw_c, sc.jaw_r)
  chin_y = float(sc.jaw_c[1] - 0.85 * sc.jaw_r[1])
  fore_y = sc.brow_y + 0.22
  pts = {
      "left_eye": sc.eyes[0] + np.array([0.0, 0.004, 0.0]),
      "right_eye": sc.eyes[1] + np.array([0.0, 0.004, 0.0]),
      "nose_tip": sc.nose_tip,
      "mouth_center": np.array([0.0, sc.mouth_y, sc.mouth_z]),
      "chin": np.array([0.0, chin_y, z(0.0, chin_y)]),
      "forehead": np.array([0.0, fore_y, z(0.0, fore_y)]),
  }
  return {k: np.asarray(v, np.float32) for k, v in pts.items()}
