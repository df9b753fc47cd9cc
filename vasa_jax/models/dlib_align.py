"""Face chips for dlib's face recogniser (`models.dlib_resnet`), aligned the way dlib aligns them.

dlib's recogniser was trained on chips cut by `get_face_chip_details(shape, 150, 0.25)` and
`extract_image_chip`: a similarity transform (Umeyama least squares) from a mean-face template to
5 landmarks (the two corners of each eye and the point below the nose), the template padded by 25%
on every side, sampled bilinearly. Its descriptors are only meaningful on chips cut that way, so
this module reproduces that cut:

  chip_transform(points_5)       the 2x3 matrix chip pixel (col, row, 1) -> image (x, y) that
                                 dlib's extraction uses (numpy, float64);
  dlib_points_from_mesh(points)  our MediaPipe face mesh (`data.faces.FaceLandmarks.points`) ->
                                 the 5 points, in the order of dlib's 5-point shape predictor;
  extract_chip(image, transform) the chip itself, `[150, 150, 3]` uint8, pixel for pixel as
                                 dlib cuts it (bilinear, black outside the image, dlib's image
                                 pyramid for faces over twice the chip's size);
  canonical_chip(images)         differentiable JAX version for training: the chip's region of the
                                 project's canonical face crops (`data.faces.crop_box`).

The canonical crop is axis-aligned and fixes only the eye midpoint (41% of the height) and the
inner-lip centre (63.2%), so `canonical_chip` maps those two onto the template's: dlib's 5-point
template gives the eye midpoint (mean of the four eye corners) and dlib's 68-point mean face (of
which the 5-point template is a subset, to within 0.002) the inner-lip centre (mean of points 62
and 66), the same two points `data.faces.crop_box` places.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.models.dlib_resnet import CHIP_SIZE

CHIP_PADDING = 0.25
# dlib's 5-point template in [0, 1] chip units, in the predictor's order: image-right eye outer
# and inner corner, image-left eye outer and inner corner, the point below the nose.
TEMPLATE_5 = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                       [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                       [0.4901123135679, 0.6277975316475]])
# dlib's 68-point mean face: inner-lip top (62) and bottom (66) centres.
_TEMPLATE_MOUTH = np.array([0.490127, (0.785343 + 0.831803) / 2])

# MediaPipe face-mesh vertices at dlib's 5 points, in the same order: 263/362 and 33/133 are the
# eye-lid corners (`data.faces`' eye corners). For the point below the nose, 164 (on the philtrum
# just under the columella) was measured against dlib's 5-point predictor on the astronaut photo
# (plain, mirrored, shifted, 1.5x): 0.009-0.018 eye widths away, where the subnasale 2 is
# 0.04-0.06 and 94 0.05-0.07; dlib's annotation sits a little lower than MediaPipe's subnasale.
# The corners agree within 0.025 eye widths.
MESH_INDICES: tuple[int, ...] = (263, 362, 33, 133, 164)


def _template(size: int, padding: float) -> np.ndarray:
  return (padding + TEMPLATE_5) / (2 * padding + 1) * size


def _similarity(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Umeyama's least-squares similarity `target ~ m @ source + t`: (m [2, 2], t [2])."""
  mean_s, mean_t = source.mean(0), target.mean(0)
  s, t = source - mean_s, target - mean_t
  var_s = np.mean(np.sum(s * s, axis=1))
  cov = t.T @ s / len(source)
  u, d, vt = np.linalg.svd(cov)
  sign = np.eye(2)
  if np.linalg.det(cov) < 0 or (np.linalg.det(cov) == 0 and np.linalg.det(u @ vt) < 0):
    sign[1, 1] = -1  # d is sorted, so the smaller singular value flips.
  rotation = u @ sign @ vt
  scale = np.trace(np.diag(d) @ sign) / var_s if var_s else 1.0
  m = scale * rotation
  return m, mean_t - m @ mean_s


def chip_transform(points_5: np.ndarray, size: int = CHIP_SIZE,
                   padding: float = CHIP_PADDING) -> np.ndarray:
  """dlib's chip -> image map for 5 landmarks: float64 `[2, 3]`, (col, row, 1) -> (x, y).

  Args:
    points_5: `[5, 2]` image (x, y) of the points dlib's 5-point predictor gives, in its order
      (see `TEMPLATE_5`; `dlib_points_from_mesh` gives them from our face mesh).

  dlib fits the similarity, keeps only its angle, scale and the image point under the chip's
  centre, and then maps the chip's corner pixels onto a rectangle of side 150 * scale - 1 around
  that point; this reproduces that last step too (it stretches by (150 * scale - 1) / 149 rather
  than by `scale`), so the same pixels are sampled.
  """
  points = np.asarray(points_5, np.float64).reshape(5, 2)
  m, t = _similarity(_template(size, padding), points)
  angle = math.atan2(m[1, 0], m[0, 0])
  scale = math.hypot(m[0, 0], m[1, 0])
  centre = m @ np.array([size / 2, size / 2]) + t
  half = (size * scale - 1) / 2
  step = (size * scale - 1) / (size - 1)
  c, s = math.cos(angle), math.sin(angle)
  rotation = np.array([[c, -s], [s, c]])
  linear = rotation * step
  offset = centre + rotation @ np.array([-half, -half])
  return np.concatenate([linear, offset[:, None]], axis=1)


def dlib_points_from_mesh(mesh_points: np.ndarray) -> np.ndarray:
  """Our face mesh `[468 or 478, 2 or 3]` (pixels) -> dlib's 5 points `[5, 2]` float64 (x, y)."""
  points = np.asarray(mesh_points, np.float64)
  return points[list(MESH_INDICES), :2].copy()


_PYRAMID_WEIGHTS = (1, 4, 6, 4, 1)


def _pyramid_down(image: np.ndarray) -> np.ndarray:
  """dlib's pyramid_down<2> of a uint8 image `[h, w, c]` -> `[(h - 3) // 2, (w - 3) // 2, c]`: a
  [1 4 6 4 1]^2 / 256 filter on every other pixel, in integers, truncated."""
  pixels = image.astype(np.int64)
  height, width = image.shape[:2]
  rows, cols = (height - 3) // 2, (width - 3) // 2
  across = sum(w * pixels[:, k:k + 2 * cols:2] for k, w in enumerate(_PYRAMID_WEIGHTS))
  down = sum(w * across[k:k + 2 * rows:2] for k, w in enumerate(_PYRAMID_WEIGHTS))
  return (down // 256).astype(np.uint8)


def _sample(image: np.ndarray, transform: np.ndarray, size: int) -> np.ndarray:
  """Bilinear samples at `transform` of the chip grid, float64 arithmetic truncated to uint8,
  black where the 2x2 neighbourhood leaves the image (dlib's interpolate_bilinear)."""
  height, width = image.shape[:2]
  rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
  x = transform[0, 0] * cols + transform[0, 1] * rows + transform[0, 2]
  y = transform[1, 0] * cols + transform[1, 1] * rows + transform[1, 2]
  left, top = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
  inside = (left >= 0) & (top >= 0) & (left + 1 < width) & (top + 1 < height)
  left, top = np.clip(left, 0, max(width - 2, 0)), np.clip(top, 0, max(height - 2, 0))
  fx, fy = (x - left)[..., None], (y - top)[..., None]
  pixels = image.astype(np.float64)
  value = ((1 - fy) * ((1 - fx) * pixels[top, left] + fx * pixels[top, left + 1])
           + fy * ((1 - fx) * pixels[top + 1, left] + fx * pixels[top + 1, left + 1]))
  return np.where(inside[..., None], value, 0.0).astype(np.uint8)


def extract_chip(image: np.ndarray, transform: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
  """The chip `[size, size, 3]` uint8 at `transform` (`chip_transform`'s) of an RGB uint8 image
  `[h, w, 3]`, pixel for pixel as dlib's `extract_image_chip` cuts it.

  Bilinear in float64, truncated to uint8, black where a sample's 2x2 neighbourhood leaves the
  image. A face region more than twice the chip's side is sampled, as dlib does, from its image
  pyramid (the region's bounding box, halved by `_pyramid_down` until one more halving would leave
  fewer pixels than the chip has), so large faces are not aliased.
  """
  image = np.asarray(image)
  transform = np.asarray(transform, np.float64)
  # The chip's rectangle, side 150 * scale - 1 as dlib keeps it; pyramid_down<2> maps a point p
  # to p / 2 - (1.25, 0.75) and a rectangle by its corners.
  side = math.hypot(transform[0, 0], transform[1, 0]) * (size - 1)
  area, levels = ((side / 2 + 1) ** 2), 0
  while area > size * size:
    side /= 2
    area = (side / 2 + 1) ** 2
    levels += 1
  if not levels:
    return _sample(image, transform, size)
  grow = 2.0
  for _ in range(levels):
    grow = grow * 2 + 2
  corners = np.array([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]])
  corners = corners @ transform.T
  height, width = image.shape[:2]
  low = np.maximum(corners.min(0) - grow, 0)
  high = np.minimum(corners.max(0) + grow, [width - 1, height - 1])
  (left, top), (right, bottom) = [[int(math.floor(v + 0.5)) for v in p] for p in (low, high)]
  level = image[top:bottom + 1, left:right + 1]
  linear, offset = transform[:, :2], transform[:, 2] - [left, top]
  for _ in range(levels):
    level = _pyramid_down(level)
    linear, offset = linear / 2, offset / 2 - [1.25, 0.75]
  return _sample(level, np.concatenate([linear, offset[:, None]], axis=1), size)


def canonical_chip_geometry(resolution: int, size: int = CHIP_SIZE,
                            padding: float = CHIP_PADDING) -> tuple[float, np.ndarray]:
  """(scale, translation [2] (x, y)) of `jax.image.scale_and_translate` that maps a canonical crop
  of `resolution` pixels onto dlib's chip: chip = crop * scale + translation (continuous pixel
  coordinates, x then y)."""
  from vasa_jax import framing

  template = _template(size, padding)
  eyes = template[:4].mean(0)
  mouth = (padding + _TEMPLATE_MOUTH) / (2 * padding + 1) * size
  crop_eyes = np.array([0.5, framing.CROP_EYES_FRACTION]) * resolution
  crop_mouth = np.array([0.5, framing.CROP_MOUTH_FRACTION]) * resolution
  scale = float((mouth[1] - eyes[1]) / (crop_mouth[1] - crop_eyes[1]))
  # dlib's pixel i is the continuous point i + 0.5 here, on both sides.
  translation = (eyes + 0.5) - crop_eyes * scale
  return scale, translation


def canonical_chip(images: jax.Array, input_range: tuple[float, float] = (-1.0, 1.0),
                   size: int = CHIP_SIZE) -> jax.Array:
  """dlib's chip out of canonical face crops, differentiably: `[b, h, w, 3]` in `input_range`
  -> `[b, 150, 150, 3]` float32 in 0..255 (black outside the crop, as dlib's chips are).

  Bilinear, antialiased where the chip shrinks the crop (crops over 264 px: the chip spans 57% of
  the crop's side, which stays inside it).
  """
  batch, height, width, channels = images.shape
  if height != width:
    raise ValueError(f"canonical crops are square, got {height}x{width}")
  scale, translation = canonical_chip_geometry(height, size)
  low, high = input_range
  pixels = (images.astype(jnp.float32) - low) * (255.0 / (high - low))
  # scale_and_translate's spatial dims are (rows, cols): translation is (y, x).
  return jax.image.scale_and_translate(
      pixels, (batch, size, size, channels), (1, 2), jnp.array([scale, scale], jnp.float32),
      jnp.array([translation[1], translation[0]], jnp.float32), method="linear", antialias=True)
