"""Faces in real photos and videos: detection, 468-point mesh, irises, head pose, gaze, crop boxes.

Three MediaPipe TFLite models (in `DEFAULT_MODEL_DIR`, see its README) run on the CPU through
ai-edge-litert:
  BlazeFace short range: a 128x128 letterboxed copy of the image (RGB in [-1, 1]) gives 896
    anchor predictions of a box and 6 keypoints; they are decoded against SSD anchors (strides 8,
    16, 16, 16; 2 anchors per cell and layer; 16x16x2 + 8x8x6 = 896 anchors of fixed unit size) and
    merged by weighted non-maximum suppression.
  Face mesh: a 192x192 square crop (RGB in [0, 1]) around the face, 1.5 times the face's box and
    turned so the eyes are level, gives 468 points (x, y in crop pixels, z in the same units,
    relative depth, smaller is nearer the camera) and a face-presence logit. The final crop is
    placed from a first mesh, and it and its mirror image are run and averaged.
  Iris: a 64x64 square crop (RGB in [0, 1]) of one eye, 2.3 times the corner-to-corner distance
    and turned so the corners are level, gives 71 eye-contour points and 5 iris points (centre, then
    4 on the iris edge). The model knows one eye (the image-left one); the image-right eye is
    mirrored on the way in and out.

Conventions
  Pixel coordinates are (x, y), x right and y down, pixel (col, row) centred at (col, row).
  "Image-left eye" is the eye with the smaller x in an upright face: the person's right eye in an
  unmirrored photo. Mesh indices follow MediaPipe's 468-point topology (33/133: image-left eye outer
  and inner corner, 362/263: image-right eye inner and outer corner, 1: nose tip, 13/14: inner lips,
  152: chin).
  Head pose (yaw, pitch, roll, radians) follows the SynthTalk renderer: yaw > 0 turns the face
  towards the viewer's right (image +x), pitch > 0 tilts it up, roll > 0 rotates it
  counter-clockwise in the image; R = R_roll @ R_pitch @ R_yaw
  (`vasa_jax.data.synthtalk.render.head_rotation`).
  The pose is relative to the camera's axis (a pinhole with focal length = image width): a face
  seen off the image's centre, unchanged in the image, reads as turned by its angle off the axis.
  Gaze (theta, phi, radians) is the eyes' direction as the camera sees it: theta > 0 towards the
  viewer's right, phi > 0 up, i.e. eye-in-head angles plus the head's yaw and pitch.

The interpreters belong to one `FaceAnalyzer`; make one per process (a multiprocessing worker builds
its own; nothing needs pickling).
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib

import numpy as np

from vasa_jax.errors import UserError
from vasa_jax.framing import CROP_EYES_FRACTION, CROP_MOUTH_FRACTION

DEFAULT_MODEL_DIR = pathlib.Path(__file__).resolve().parents[2] / "data" / "face_models"
_MODEL_DIR_ENV = "VASA_FACE_MODELS"
_DETECTOR_FILE = "face_detection_short_range.tflite"
_MESH_FILE = "face_landmark.tflite"
_IRIS_FILE = "iris_landmark.tflite"

_DETECTOR_SIZE = 128
_MESH_SIZE = 192
_IRIS_SIZE = 64
# The mesh model was trained on crops 1.5x the detector's box; the iris model on crops 2.3x the
# eye's corner-to-corner distance (MediaPipe's graphs).
_MESH_ROI_SCALE = 1.5
# At most this many mesh rounds on crops placed from the previous mesh (a strong roll needs two).
_MAX_MESH_ROUNDS = 3
_IRIS_ROI_SCALE = 2.3
# Weighted NMS merges detections overlapping the best one by more than this IoU.
_NMS_IOU = 0.3
_CONTAINED = 0.6  # share of the smaller box inside the larger that makes them one face
# Images longer than this aspect ratio are also searched in square tiles; tile detections closer
# than this (a fraction of the tile) to a tile edge inside the image, or scoring less than this, are
# dropped.
_TILE_ASPECT = 1.2
_TILE_MARGIN = 0.01
_TILE_MIN_SCORE = 0.7
# Resampling that shrinks the image by more than this averages pixels first.
_AREA_FROM = 1.25
# Raw detector scores are clipped before the sigmoid, as in MediaPipe.
_SCORE_CLIP = 100.0

# Mesh indices.
_LEFT_EYE = (33, 133)     # image-left eye: outer corner, inner corner
_RIGHT_EYE = (362, 263)   # image-right eye: inner corner, outer corner
# Upper/lower lid pairs (three across each eye) for the lid gap.
_LEFT_LIDS = ((160, 144), (159, 145), (158, 153))
_RIGHT_LIDS = ((385, 380), (386, 374), (387, 373))
# Upper/lower inner-lip pairs (centre and either side) for the mouth gap.
_INNER_LIPS = ((82, 87), (13, 14), (312, 317))
_MOUTH_CENTRE = (13, 14)
_CHIN = 152
# Iris-model contour points 0..15 are the lids (0: outer corner, 8: inner corner); these are their
# mesh indices for the image-left eye and the image-right eye.
_LEFT_LID_CONTOUR = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
_RIGHT_LID_CONTOUR = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384,
                      398)

# The mesh's left-right correspondence: its 28 midline points are their own mirror images; the other
# points below index 248 pair, in order, with 248..467 (as matching the model's points on faces and
# on their mirror images confirms).
_MESH_MIDLINE = (0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 94, 151, 152, 164,
                 168, 175, 195, 197, 199, 200)


def _mesh_mirror() -> np.ndarray:
  """int [468]: index i of a face is index mirror[i] of its mirror image."""
  half = [i for i in range(248) if i not in _MESH_MIDLINE]
  mirror = np.arange(468)
  mirror[half] = np.arange(248, 468)
  mirror[248:] = half
  return mirror


_MESH_MIRROR = _mesh_mirror()

# A generic adult face for head pose: mesh index -> (x, y, z) millimetres in head coordinates
# (x towards the image right in a frontal view, y up, z towards the camera; origin between the inner
# eye corners). Rounded anthropometric averages: intercanthal width 32 mm, biocular width 90 mm,
# outer corners 2 mm higher and 12 mm further back than the inner ones, nose bridge 8 mm above and
# in front of them, nose tip 40 mm below and 30 mm in front, mouth width 50 mm 66 mm below the eyes,
# chin 112 mm below the eyes and level with the inner corners in depth. Symmetric, so a frontal face
# reads yaw = roll = 0.
_MEAN_FACE = {
    33: (-45.0, 2.0, -12.0),    # image-left eye, outer corner
    133: (-16.0, 0.0, 0.0),     # image-left eye, inner corner
    362: (16.0, 0.0, 0.0),      # image-right eye, inner corner
    263: (45.0, 2.0, -12.0),    # image-right eye, outer corner
    168: (0.0, 8.0, 8.0),       # nose bridge between the eyes
    1: (0.0, -40.0, 30.0),      # nose tip
    61: (-25.0, -66.0, 4.0),    # mouth corner, image left
    291: (25.0, -66.0, 4.0),    # mouth corner, image right
    152: (0.0, -112.0, 0.0),    # chin
}

# Outer eye corner to outer eye corner of the mean face, mm.
_BIOCULAR_MM = 90.0

# Eyeball model for gaze, as fractions of the eye's corner-to-corner width W (about 29 mm): the
# iris centre turns on a circle of radius 0.36 W (10.5 mm) about the eyeball's centre and, looking
# straight ahead, sits 0.09 W (2.5 mm) in front of the midpoint of the corners and level with it.
_EYE_RADIUS = 0.36
_IRIS_FORWARD = 0.09


class FaceModelsMissing(UserError):
  """The MediaPipe face models are not where they were looked for."""

  def __init__(self, folder: pathlib.Path, missing: list[str]):
    super().__init__(
        f"face models missing from {folder}: {', '.join(missing)}; restore data/face_models/ from "
        f"the repository (git checkout -- data/face_models) or point {_MODEL_DIR_ENV} at a folder "
        f"holding {_DETECTOR_FILE}, {_MESH_FILE} and {_IRIS_FILE}")
    self.folder = folder


@dataclasses.dataclass
class Detection:
  """One face found by the detector.

  Attributes:
    box: float32 [4] x0, y0, x1, y1 in pixels.
    score: detector confidence in 0..1.
    keypoints: float32 [6, 2] pixels: 0 the image-left eye (the person's right eye in an unmirrored
      photo), 1 the image-right eye, 2 the nose tip, 3 the mouth centre, 4 the image-left ear
      tragion, 5 the image-right ear tragion.
  """

  box: np.ndarray
  score: float
  keypoints: np.ndarray


@dataclasses.dataclass
class FaceLandmarks:
  """The face mesh of one face.

  Attributes:
    points: float32 [468, 3]: x, y in pixels; z relative depth in pixel units (smaller is nearer the
      camera). With the iris model run, the 16 lid points of each eye are the iris model's.
    score: face presence in 0..1.
    iris: float32 [2, 5, 2] pixels: (image-left eye, image-right eye) x (centre, 4 points on the
      iris edge); None if the iris model was not run.
  """

  points: np.ndarray
  score: float
  iris: np.ndarray | None


def _anchors() -> np.ndarray:
  """BlazeFace short-range anchor centres, float32 [896, 2] (x, y) in 0..1 of the input."""
  centres = []
  # Stride 8: one layer of 2 anchors per cell; stride 16: three layers of 2, i.e. 6 per cell.
  for stride, per_cell in ((8, 2), (16, 6)):
    cells = _DETECTOR_SIZE // stride
    ys, xs = np.mgrid[0:cells, 0:cells]
    grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 1, 2)
    centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
  return np.concatenate(centres).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class _Square:
  """A square region of the image, possibly turned and mirrored, mapped onto an n x n model input.

  Attributes:
    centre: (x, y) pixels.
    size: side in pixels.
    angle: direction of the square's x axis in the image, radians (y down, so positive turns
      clockwise on screen).
    mirror: the square's x axis points the other way (a horizontally flipped crop).
  """

  centre: tuple[float, float]
  size: float
  angle: float = 0.0
  mirror: bool = False

  def axes(self) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(self.angle), math.sin(self.angle)
    ax, ay = np.array([c, s]), np.array([-s, c])
    return (-ax if self.mirror else ax), ay

  def to_image(self, uv: np.ndarray) -> np.ndarray:
    """Normalised square coordinates [..., 2] (0..1 edge to edge) to image pixels."""
    ax, ay = self.axes()
    uv = np.asarray(uv, np.float64) - 0.5
    return (np.asarray(self.centre) + self.size * (uv[..., :1] * ax + uv[..., 1:2] * ay)).astype(
        np.float32)

  def sample(self, image: np.ndarray, n: int, border: int, value: float = 0.0) -> np.ndarray:
    """The square resampled to uint8 [n, n, C] (area-averaged where it shrinks the image)."""
    import cv2

    ax, ay = self.axes()
    k = self.size / n  # image pixels per output pixel
    # Output pixel (u, v) centre sits at normalised ((u + 0.5) / n, (v + 0.5) / n).
    lin = np.stack([ax * k, ay * k], axis=1)  # [2, 2] columns: d(image)/du, d(image)/dv
    off = np.asarray(self.centre) - lin @ np.array([(n - 1) / 2, (n - 1) / 2])
    if k > _AREA_FROM:
      # Average the source down to about the output's pixel size first, so thin details do not
      # alias; only the part of the image the square covers (plus a margin) is resized. An integer
      # factor first (OpenCV's fast path), then the rest.
      factor = math.floor(k)
      if factor >= 2:
        image, lin, off = _area_shrink(image, lin, off, n, factor)
      if k / factor > _AREA_FROM:
        image, lin, off = _area_shrink(image, lin, off, n, k / factor)
    matrix = np.concatenate([lin, off[:, None]], axis=1)
    out = cv2.warpAffine(image, matrix, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=border, borderValue=(value, value, value, value))
    return out.reshape(n, n, -1)


def _area_shrink(image: np.ndarray, lin: np.ndarray, off: np.ndarray, n: int, factor: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The part of `image` that output pixels (u, v) = lin @ (u, v) + off cover, area-shrunk by about
  `factor`, and the map from output pixels into the shrunk copy."""
  import cv2

  h, w = image.shape[:2]
  corners = off[:, None] + lin @ np.array([[-1, n, -1, n], [-1, -1, n, n]], np.float64)
  bounds = []
  for lo, hi, extent in ((corners[0].min(), corners[0].max(), w),
                         (corners[1].min(), corners[1].max(), h)):
    a = int(np.clip(math.floor(lo) - 2, 0, extent - 1))
    b = int(np.clip(math.ceil(hi) + 3, a + 1, extent))
    if factor == int(factor):
      # Whole blocks of `factor` pixels: the window grows (or, at the image's size, shrinks) to a
      # multiple of it.
      f = int(factor)
      blocks = max(1, min(math.ceil((b - a) / f), extent // f))
      a = max(0, min(a, extent - blocks * f))
      b = min(extent, a + blocks * f)
    bounds.append((a, b))
  (x0, x1), (y0, y1) = bounds
  nw, nh = max(1, round((x1 - x0) / factor)), max(1, round((y1 - y0) / factor))
  sx, sy = (x1 - x0) / nw, (y1 - y0) / nh
  small = cv2.resize(image[y0:y1, x0:x1], (nw, nh), interpolation=cv2.INTER_AREA)
  # Source pixel x maps to shrunk pixel (x - x0 + 0.5) / sx - 0.5.
  scale = np.array([1 / sx, 1 / sy])
  return small, lin * scale[:, None], (off - np.array([x0, y0]) + 0.5) * scale - 0.5


def _check_image(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
    raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {image.dtype} {image.shape}")
  return np.ascontiguousarray(image)


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -_SCORE_CLIP, _SCORE_CLIP)))


def _same_face(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
  """Whether each of `boxes` shows the face of `box`: IoU above _NMS_IOU, or one box mostly inside
  the other (the letterbox and a tile can see one face at different sizes)."""
  x0 = np.maximum(box[0], boxes[:, 0])
  y0 = np.maximum(box[1], boxes[:, 1])
  x1 = np.minimum(box[2], boxes[:, 2])
  y1 = np.minimum(box[3], boxes[:, 3])
  inter = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
  area = lambda b: np.maximum(b[..., 2] - b[..., 0], 0) * np.maximum(b[..., 3] - b[..., 1], 0)
  iou = inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)
  contained = inter / np.maximum(np.minimum(area(box), area(boxes)), 1e-12)
  return (iou > _NMS_IOU) | (contained > _CONTAINED)


def _weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray
                  ) -> list[tuple[np.ndarray, float, np.ndarray]]:
  """Merges overlapping detections into their score-weighted mean; best first."""
  order = np.argsort(-scores)
  boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
  alive = np.ones(len(scores), bool)
  merged = []
  for i in range(len(scores)):
    if not alive[i]:
      continue
    group = alive & _same_face(boxes[i], boxes)
    group[i] = True
    weights = scores[group] / scores[group].sum()
    merged.append((np.tensordot(weights, boxes[group], 1), float(scores[i]),
                   np.tensordot(weights, keypoints[group], 1)))
    alive &= ~group
  return merged


class FaceAnalyzer:
  """Face detection, face mesh and irises with MediaPipe's TFLite models on the CPU.

  Args:
    model_dir: folder of the three .tflite files; None: $VASA_FACE_MODELS, else DEFAULT_MODEL_DIR.
    num_threads: CPU threads per interpreter.
    min_score: detector score below which a face is dropped.

  Raises:
    FaceModelsMissing: a model file is not in the folder.
  """

  def __init__(self, model_dir: str | os.PathLike | None = None, num_threads: int = 1,
               min_score: float = 0.5):
    from ai_edge_litert.interpreter import Interpreter

    if model_dir is None:
      model_dir = os.environ.get(_MODEL_DIR_ENV) or DEFAULT_MODEL_DIR
    folder = pathlib.Path(model_dir).expanduser()
    files = (_DETECTOR_FILE, _MESH_FILE, _IRIS_FILE)
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
      raise FaceModelsMissing(folder, missing)
    self.model_dir = folder
    self.min_score = float(min_score)
    self._models = {}
    for name in files:
      interpreter = Interpreter(model_path=str(folder / name), num_threads=num_threads)
      interpreter.allocate_tensors()
      inputs = interpreter.get_input_details()
      outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
      self._models[name] = (interpreter, inputs[0]["index"], outputs)
    self._anchors = _anchors()

  def _run(self, name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    interpreter, index, outputs = self._models[name]
    interpreter.set_tensor(index, x[None].astype(np.float32))
    interpreter.invoke()
    return {k: interpreter.get_tensor(i)[0] for k, i in outputs.items()}

  def detect(self, image: np.ndarray) -> list[Detection]:
    """All faces in an RGB uint8 [H, W, 3] image, best first, merged by weighted NMS.

    The detector sees the whole image letterboxed (padded to a centred square) at 128x128; an image
    more than 1.2 times longer than wide (or wider than long) is also searched in overlapping
    square tiles across its longer side, so small faces in wide frames keep the resolution the
    letterbox would waste. Tile detections that touch a tile edge inside the image are dropped (the
    face is cut there; another tile or the letterbox holds it whole). Faces narrower than about a
    tenth of the image's shorter side are missed: for small faces in a large frame, detect on crops.
    """

    import cv2

    image = _check_image(image)
    h, w = image.shape[:2]
    # One shared copy at about the tiles' resolution (an integer factor: OpenCV's fast path).
    factor = min(h, w) // _DETECTOR_SIZE
    if factor >= 2:
      image = cv2.resize(image[:h - h % factor, :w - w % factor], (w // factor, h // factor),
                         interpolation=cv2.INTER_AREA)
      h, w = image.shape[:2]
    long_side, short_side = max(h, w), min(h, w)
    # (square, is a tile, whether its low / high edge along the long axis lies inside the image)
    views = [(_Square(((w - 1) / 2, (h - 1) / 2), float(long_side)), False, False, False)]
    if long_side > _TILE_ASPECT * short_side:
      count = math.ceil(long_side / short_side)
      for start in np.linspace(0.0, long_side - short_side, count):
        along, across = start + (short_side - 1) / 2, (short_side - 1) / 2
        centre = (along, across) if w >= h else (across, along)
        views.append((_Square(centre, float(short_side)), True, start > 0.5,
                      start + short_side < long_side - 0.5))
    axis = 0 if w >= h else 1
    all_boxes, all_keypoints, all_scores = [], [], []
    for square, tile, cut_low, cut_high in views:
      boxes, keypoints, scores = self._detect_square(image, square)
      inside = np.ones(len(scores), bool)
      if tile:
        # A tile is one more look at the same pixels and so one more chance of a false face; faces
        # that only a tile sees must be clear ones.
        inside &= scores >= max(self.min_score, _TILE_MIN_SCORE)
      if cut_low:
        inside &= boxes[:, axis] > _TILE_MARGIN
      if cut_high:
        inside &= boxes[:, axis + 2] < 1.0 - _TILE_MARGIN
      if inside.any():
        all_boxes.append(square.to_image(boxes[inside].reshape(-1, 2, 2)).reshape(-1, 4))
        all_keypoints.append(square.to_image(keypoints[inside]))
        all_scores.append(scores[inside])
    if not all_scores:
      return []
    merged = _weighted_nms(np.concatenate(all_boxes), np.concatenate(all_keypoints),
                           np.concatenate(all_scores))
    # Pixel x of the shrunk copy is pixel (x + 0.5) * factor - 0.5 of the image.
    back = (lambda p: (p + 0.5) * factor - 0.5) if factor >= 2 else (lambda p: p)
    return [Detection(box=back(box.reshape(2, 2)).reshape(4).astype(np.float32), score=score,
                      keypoints=back(kps).astype(np.float32)) for box, score, kps in merged]

  def _detect_square(self, image: np.ndarray, square: _Square
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector boxes [N, 4] and keypoints [N, 6, 2] (0..1 of the square) and scores [N] above
    min_score, before NMS."""
    import cv2

    x = square.sample(image, _DETECTOR_SIZE, cv2.BORDER_CONSTANT, 0.0)
    out = self._run(_DETECTOR_FILE, x.astype(np.float32) / 127.5 - 1.0)
    raw, logits = out["regressors"], out["classificators"][:, 0]
    scores = _sigmoid(logits)
    keep = np.nonzero(scores >= self.min_score)[0]
    raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep]
    # Offsets are in input pixels relative to the anchor centre; anchors have unit size.
    centre = raw[:, 0:2] / _DETECTOR_SIZE + anchors
    half = raw[:, 2:4] / _DETECTOR_SIZE / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, 6, 2) / _DETECTOR_SIZE + anchors[:, None]
    return boxes, keypoints, scores

  def _mesh(self, image: np.ndarray, square: _Square, both: bool = False
            ) -> tuple[np.ndarray, float]:
    """Mesh points [468, 3] in image pixels and the face score from one square crop.

    With `both`, the mirrored crop is run too and the two meshes averaged (point i with its mirror
    partner): the model is then exactly mirror-symmetric and half as noisy.
    """
    import cv2

    runs = []
    for mirror in ((False, True) if both else (False,)):
      sq = dataclasses.replace(square, mirror=mirror)
      x = sq.sample(image, _MESH_SIZE, cv2.BORDER_REPLICATE)
      out = self._run(_MESH_FILE, x.astype(np.float32) / 255.0)
      raw = next(v for v in out.values() if v.size == 468 * 3).reshape(468, 3)
      logit = next(v for v in out.values() if v.size == 1).reshape(())
      points = np.empty((468, 3), np.float64)
      points[:, :2] = sq.to_image(raw[:, :2] / _MESH_SIZE)
      points[:, 2] = raw[:, 2] * (sq.size / _MESH_SIZE)
      runs.append((points[_MESH_MIRROR] if mirror else points, float(_sigmoid(logit))))
    points = np.mean([r[0] for r in runs], axis=0).astype(np.float32)
    return points, float(np.mean([r[1] for r in runs]))

  def _iris(self, image: np.ndarray, points: np.ndarray, corners: tuple[int, int], mirror: bool
            ) -> tuple[np.ndarray, np.ndarray]:
    """(iris [5, 2], lid contour [16, 2]) pixels of one eye, its corners given image-left first."""
    import cv2

    a, b = points[corners[0], :2], points[corners[1], :2]
    d = b - a
    square = _Square(tuple((a + b) / 2), _IRIS_ROI_SCALE * float(np.hypot(*d)),
                     math.atan2(d[1], d[0]), mirror)
    x = square.sample(image, _IRIS_SIZE, cv2.BORDER_REPLICATE)
    out = self._run(_IRIS_FILE, x.astype(np.float32) / 255.0)
    iris = out["output_iris"].reshape(5, 3)[:, :2] / _IRIS_SIZE
    contour = out["output_eyes_contours_and_brows"].reshape(71, 3)[:16, :2] / _IRIS_SIZE
    return square.to_image(iris), square.to_image(contour)

  def landmarks(self, image: np.ndarray, box: np.ndarray, iris: bool = True,
                keypoints: np.ndarray | None = None) -> FaceLandmarks:
    """The face mesh (and irises) of the face in `box`.

    The mesh first runs on a square 1.5 times the box's longer side about its centre, turned so the
    detector's eye keypoints are level when they are given (else upright). Then it runs on a square
    placed from its own points (1.5 times their bounding box, turned so the outer eye corners are
    level), on that crop and on its mirror image, averaged; this repeats (at most 3 times) until the
    crop stops moving, which a strong roll without keypoints needs. The result hardly depends on the
    box or on the head's roll. The irises then come from crops of both eyes, and their lid contours
    replace the mesh's 16 lid points of each eye (the mesh alone hardly sees blinks).

    Args:
      image: RGB uint8 [H, W, 3].
      box: float [4] x0, y0, x1, y1 pixels, e.g. `Detection.box` (a track's previous box works).
      iris: also run the iris model on both eyes (refining the lids).
      keypoints: optional float [6, 2] detector keypoints (`Detection.keypoints`).

    Returns:
      FaceLandmarks in the image's pixel coordinates.
    """
    image = _check_image(image)
    box = np.asarray(box, np.float64).reshape(4)
    angle = 0.0
    if keypoints is not None:
      eyes = np.asarray(keypoints, np.float64)[:2]
      angle = math.atan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0])
    size = _MESH_ROI_SCALE * float(max(box[2] - box[0], box[3] - box[1]))
    if not size > 0:
      raise ValueError(f"the face box {box.tolist()} is empty")
    points, _ = self._mesh(image, _Square(tuple((box[:2] + box[2:]) / 2), size, angle))
    square = _mesh_square(points)
    # From an upright crop the mesh shows only part of a strong roll; the crop placed from its own
    # eyes turns further each time.
    for _ in range(_MAX_MESH_ROUNDS):
      points, score = self._mesh(image, square, both=True)
      previous, square = square, _mesh_square(points)
      if _similar(previous, square):
        break
    iris_points = None
    if iris:
      left, left_lids = self._iris(image, points, _LEFT_EYE, mirror=False)
      right, right_lids = self._iris(image, points, _RIGHT_EYE, mirror=True)
      points[list(_LEFT_LID_CONTOUR), :2] = left_lids
      points[list(_RIGHT_LID_CONTOUR), :2] = right_lids
      iris_points = np.stack([left, right]).astype(np.float32)
    return FaceLandmarks(points=points, score=score, iris=iris_points)

  def analyze(self, image: np.ndarray) -> list[tuple[Detection, FaceLandmarks]]:
    """Every detected face with its mesh and irises, best detection first."""
    return [(d, self.landmarks(image, d.box, keypoints=d.keypoints)) for d in self.detect(image)]


def _similar(a: _Square, b: _Square) -> bool:
  """Two mesh crops that would give the same mesh to within the model's noise."""
  turn = abs((a.angle - b.angle + math.pi) % (2 * math.pi) - math.pi)
  shift = math.hypot(a.centre[0] - b.centre[0], a.centre[1] - b.centre[1]) / a.size
  return turn < math.radians(4.0) and shift < 0.04 and abs(math.log(b.size / a.size)) < 0.06


def _mesh_square(points: np.ndarray) -> _Square:
  """The mesh model's crop from a previous mesh: turned by the outer eye corners' line."""
  a, b = points[_LEFT_EYE[0], :2], points[_RIGHT_EYE[1], :2]
  angle = math.atan2(b[1] - a[1], b[0] - a[0])
  # The bounding box in the turned frame, so the size does not change with roll.
  c, s = math.cos(angle), math.sin(angle)
  rot = np.array([[c, s], [-s, c]])
  local = points[:, :2] @ rot.T
  lo, hi = local.min(0), local.max(0)
  centre = rot.T @ ((lo + hi) / 2)
  # A collapsed mesh (no face in the crop) still gives a usable, if useless, crop.
  return _Square(tuple(centre), max(_MESH_ROI_SCALE * float(max(hi - lo)), 1.0), angle)


def _rotation_to_angles(rot: np.ndarray) -> np.ndarray:
  """R = R_roll @ R_pitch @ R_yaw (head to camera, y up, z to the camera) -> yaw, pitch, roll."""
  yaw = math.atan2(-rot[2, 0], rot[2, 2])
  pitch = math.asin(float(np.clip(-rot[2, 1], -1.0, 1.0)))
  roll = math.atan2(-rot[0, 1], rot[1, 1])
  return np.array([yaw, pitch, roll], np.float32)


def head_pose(points: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
  """Head rotation from the mesh, by PnP against a generic mean face.

  Nine mesh points (eye corners, nose bridge and tip, mouth corners, chin) are matched to
  `_MEAN_FACE` with cv2.solvePnP; the camera is a pinhole with focal length = image width and the
  principal point at the image centre.

  Args:
    points: float [468, 2 or 3] mesh points in pixels (z is not used).
    image_size: (width, height) of the image the points are in.

  Returns:
    float32 [3] yaw, pitch, roll in radians (conventions in the module docstring); a frontal,
    upright face gives about 0.
  """
  import cv2

  width, height = image_size
  points = np.asarray(points, np.float64)
  index = list(_MEAN_FACE)
  model = np.array([_MEAN_FACE[i] for i in index], np.float64)
  # OpenCV's camera looks along +z with y down; the mean face has y up and z towards the camera.
  flip = np.diag([1.0, -1.0, -1.0])
  image_points = points[index, :2]
  camera = np.array([[width, 0, (width - 1) / 2], [0, width, (height - 1) / 2], [0, 0, 1]])
  # Start from a frontal face at the distance its apparent size implies; the iterative solver then
  # converges to the right one of the mirror-ambiguous poses of a nearly flat point set.
  span = np.linalg.norm(image_points[0] - image_points[3])
  distance = width * _BIOCULAR_MM / max(span, 1e-6)
  centre = image_points.mean(0)
  t0 = np.array([(centre[0] - (width - 1) / 2) * distance / width,
                 (centre[1] - (height - 1) / 2) * distance / width, distance])
  ok, rvec, tvec = cv2.solvePnP((model @ flip.T)[:, None], image_points[:, None], camera, None,
                                rvec=np.zeros((3, 1)), tvec=t0[:, None].copy(),
                                useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
  if not ok:
    return np.full(3, np.nan, np.float32)
  rot_cv, _ = cv2.Rodrigues(rvec)
  # Head (y up, z to camera) -> OpenCV camera is rot_cv @ flip; -> camera (y up, z to camera) adds
  # flip on the left.
  return _rotation_to_angles(flip @ rot_cv @ flip)


def _eye_frame(points: np.ndarray, corners: tuple[int, int]) -> tuple[np.ndarray, np.ndarray,
                                                                    float]:
  """(midpoint [2], unit x axis [2] from image-left to image-right corner, width) of one eye."""
  a, b = points[corners[0], :2].astype(np.float64), points[corners[1], :2].astype(np.float64)
  d = b - a
  width = float(np.hypot(*d))
  return (a + b) / 2, d / max(width, 1e-9), width


def gaze(landmarks: FaceLandmarks, pose: np.ndarray) -> np.ndarray:
  """Where the eyes look, as the camera sees it.

  Per eye, the iris centre's offset from the midpoint of the eye corners is measured along the
  corners' line and across it (so the head's roll drops out), in units of the eye's corner-to-corner
  width W (its image width corrected for the head's yaw). An eyeball model turns that into
  eye-in-head angles: the iris centre moves on a sphere of radius 0.36 W and, looking straight
  ahead, lies level with the corners' midpoint and 0.09 W in front of it (typical adult eye: width
  29 mm, rotation radius 10.5 mm, iris 2.5 mm before the corners), so turning the head moves it by
  0.09 W sin(angle) in the image, which is removed first. The two eyes are averaged and the head's
  yaw and pitch added (theta = eye yaw + head yaw, phi = eye pitch + head pitch, as SynthTalk labels
  gaze). A weak-perspective approximation with a generic eye: expect errors of several degrees, more
  for strong head turns, squinting or lids that cover the iris.

  Args:
    landmarks: the face's landmarks with irises.
    pose: float [3] yaw, pitch, roll radians (`head_pose`).

  Returns:
    float32 [2] theta, phi radians (theta > 0 towards the viewer's right, phi > 0 up); NaN without
    irises.
  """
  if landmarks.iris is None:
    return np.full(2, np.nan, np.float32)
  yaw, pitch = float(pose[0]), float(pose[1])
  angles = []
  for k, corners in enumerate((_LEFT_EYE, _RIGHT_EYE)):
    centre, axis, width = _eye_frame(landmarks.points, corners)
    if width < 1e-6:
      continue
    up = np.array([axis[1], -axis[0]])  # perpendicular to the corners' line, towards the brow
    offset = np.asarray(landmarks.iris[k, 0], np.float64) - centre
    # The head's yaw foreshortens the eye's width and the iris's sideways offset alike, its pitch
    # the upward offset; the iris's forward offset shifts it by sin(head angle) besides.
    cos_yaw, cos_pitch = max(math.cos(yaw), 0.2), max(math.cos(pitch), 0.2)
    u = float(offset @ axis) / width - _IRIS_FORWARD * math.sin(yaw) / cos_yaw
    v = (float(offset @ up) / width * cos_yaw - _IRIS_FORWARD * math.sin(pitch)) / cos_pitch
    sin_phi = float(np.clip(v / _EYE_RADIUS, -1.0, 1.0))
    cos_phi = math.sqrt(max(1.0 - sin_phi * sin_phi, 1e-6))
    sin_theta = float(np.clip(u / (_EYE_RADIUS * cos_phi), -1.0, 1.0))
    angles.append((math.asin(sin_theta), math.asin(sin_phi)))
  if not angles:
    return np.full(2, np.nan, np.float32)
  theta, phi = np.mean(angles, axis=0)
  return np.array([theta + yaw, phi + pitch], np.float32)


def mouth_opening(points: np.ndarray) -> float:
  """Inner-lip gap over the face height: 0 closed, about 0.03-0.15 in speech, 0.2+ yawning.

  The gap is the mean distance of three upper/lower inner-lip pairs (centre and either side); the
  face height is the distance from the midpoint between the eyes (mean of the four corners) to the
  chin. Both are image distances, so the ratio holds under scale and roll.
  """
  p = np.asarray(points, np.float64)[:, :2]
  gap = np.mean([np.linalg.norm(p[a] - p[b]) for a, b in _INNER_LIPS])
  eyes = p[list(_LEFT_EYE + _RIGHT_EYE)].mean(0)
  height = np.linalg.norm(p[_CHIN] - eyes)
  return float(gap / max(height, 1e-6))


def eye_openness(points: np.ndarray) -> float:
  """Mean over both eyes of lid gap / corner-to-corner width: about 0.3-0.4 open, falling towards
  0.1 as the lids close.

  The lid gap is the mean of three upper/lower lid pairs across the eye. It needs the iris model's
  lids (`FaceAnalyzer.landmarks(..., iris=True)`, the default): the mesh's own lids hardly move.
  """
  p = np.asarray(points, np.float64)[:, :2]
  ratios = []
  for corners, lids in ((_LEFT_EYE, _LEFT_LIDS), (_RIGHT_EYE, _RIGHT_LIDS)):
    width = np.linalg.norm(p[corners[0]] - p[corners[1]])
    gap = np.mean([np.linalg.norm(p[a] - p[b]) for a, b in lids])
    ratios.append(gap / max(width, 1e-6))
  return float(np.mean(ratios))


def _eyes_and_mouth(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """3D (x, y, z pixel units) image-left eye, image-right eye, between the eyes, mouth centre."""
  p = np.asarray(points, np.float64)
  if p.shape[1] == 2:
    p = np.concatenate([p, np.zeros((len(p), 1))], axis=1)
  left, right = p[list(_LEFT_EYE)].mean(0), p[list(_RIGHT_EYE)].mean(0)
  return left, right, (left + right) / 2, p[list(_MOUTH_CENTRE)].mean(0)


def face_size(points: np.ndarray) -> float:
  """A scale of the face in pixels, for the head's distance: the mean of the interocular distance
  (between the eyes' corner midpoints) and the eye-to-mouth distance (between-the-eyes point to the
  inner-lip centre), both measured in 3D with the mesh's relative depth, so turning the head changes
  it little. About half the brow-to-chin height of an adult."""
  left, right, between, mouth = _eyes_and_mouth(points)
  return float((np.linalg.norm(right - left) + np.linalg.norm(mouth - between)) / 2)


def crop_box(points: np.ndarray) -> np.ndarray:
  """The canonical square crop of a face: float32 [3] cx, cy, size in pixels.

  For an upright face the point between the eyes (mean of the four eye corners) lands at
  CROP_EYES_FRACTION (41%) and the inner-lip centre at CROP_MOUTH_FRACTION (63.2%) of the crop's
  height, both centred across: size = eye-to-mouth distance / 0.222, the distance measured in 3D
  with the mesh's depth so that nodding does not change the crop's size; the centre lies on the line
  from the eyes to the mouth, so a rolled face stays centred. The crop is axis-aligned (a rolled
  head stays rolled in it). Brow to chin fills about 45% of it, like VoxCeleb2's loose crops.
  """
  _, _, between, mouth = _eyes_and_mouth(points)
  size = float(np.linalg.norm(mouth - between)) / (CROP_MOUTH_FRACTION - CROP_EYES_FRACTION)
  down = mouth[:2] - between[:2]
  down = down / max(float(np.hypot(*down)), 1e-9)
  mid = (between[:2] + mouth[:2]) / 2
  centre = mid + (0.5 - (CROP_EYES_FRACTION + CROP_MOUTH_FRACTION) / 2) * size * down
  return np.array([centre[0], centre[1], size], np.float32)


def crop(image: np.ndarray, box: np.ndarray, resolution: int) -> np.ndarray:
  """The square `box` (cx, cy, size pixels) of an RGB uint8 image resampled to [resolution,
  resolution, 3] uint8; outside the image the border pixels are replicated. Shrinking averages
  the source's pixels (INTER_AREA), enlarging interpolates bilinearly."""
  import cv2

  image = np.asarray(image)
  cx, cy, size = (float(v) for v in np.asarray(box).reshape(3))
  return _Square((cx, cy), size).sample(image, int(resolution), cv2.BORDER_REPLICATE).reshape(
      resolution, resolution, -1)
