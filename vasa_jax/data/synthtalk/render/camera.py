"""The face state, the head rotation and the orthographic camera; `project` puts points of the
head in the image."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from vasa_jax.data.synthtalk.render.identity import Identity


# The two rigid frames a primitive belongs to: the head (turns) and the body (stays upright).
HEAD_FRAME, BODY_FRAME = 0, 1

FACE_STATE_FIELDS = ("yaw", "pitch", "roll", "tx", "ty", "scale", "gaze_theta", "gaze_phi", "blink",
                     "jaw_open", "lip_width", "lip_round", "brow_raise", "smile")
# Pixels per head unit at scale 1, as a fraction of the image size: brow (y ~ 0.25) to chin
# (y ~ -1.05) is then ~45% of the image height.
FOCAL = 0.35
# Canonical point about which the head turns and which tx, ty place: the middle of the nose, so the
# face (brow to chin) sits a little below the image centre with room for hair above.
HEAD_CENTRE = np.array([0.0, -0.2, 0.0])


def neutral_state() -> dict[str, float]:
  """Every face-state field at its neutral value: frontal, centred, eyes open, mouth shut."""
  state = {k: 0.0 for k in FACE_STATE_FIELDS}
  state["scale"] = 1.0
  state["lip_width"] = 0.5
  return state


_STATE_RANGES = (("blink", 0.0, 1.0), ("jaw_open", 0.0, 1.0), ("lip_width", 0.0, 1.0),
                 ("lip_round", 0.0, 1.0), ("brow_raise", -1.0, 1.0), ("smile", -1.0, 1.0))


def full_state(state: Mapping[str, float]) -> dict[str, float]:
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
class Camera:
  """Orthographic camera: camera point (X, Y, Z) lands on pixel (cx + f X, cy - f Y)."""

  rot: np.ndarray   # [3, 3] head -> camera
  focal: float      # pixels per head unit
  cx: float         # pixel position of the head centre
  cy: float
  res: int

  def frame_rot(self, frame: int) -> np.ndarray:
    return self.rot if frame == HEAD_FRAME else np.eye(3)

  def bbox(self, center: np.ndarray, radius: float, frame: int) -> tuple[int, int, int, int] | None:
    """Pixel rows/cols [r0, r1) x [c0, c1) covering a sphere given in `frame` coordinates."""
    p = self.frame_rot(frame) @ (center - HEAD_CENTRE)
    u, v, r = self.cx + self.focal * p[0], self.cy - self.focal * p[1], self.focal * radius
    c0, c1 = max(0, int(math.floor(u - r))), min(self.res, int(math.ceil(u + r)) + 1)
    r0, r1 = max(0, int(math.floor(v - r))), min(self.res, int(math.ceil(v + r)) + 1)
    if c0 >= c1 or r0 >= r1:
      return None
    return r0, r1, c0, c1


def make_camera(state: Mapping[str, float], res: int) -> Camera:
  rot = head_rotation(state["yaw"], state["pitch"], state["roll"])
  centre = (res - 1) / 2.0
  return Camera(rot=rot, focal=FOCAL * state["scale"] * res, cx=centre + state["tx"] * res,
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
  cam = make_camera(full_state(state), resolution)
  p = (np.asarray(points, np.float64).reshape(-1, 3) - HEAD_CENTRE) @ cam.rot.T
  return np.stack([cam.cx + cam.focal * p[:, 0], cam.cy - cam.focal * p[:, 1]], -1).astype(
      np.float32)
