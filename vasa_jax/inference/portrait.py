"""The photo side of video generation: load the user's photo, find the face, crop it the way the
training data was cropped, and paste generated crops back into the full photo.

Faces in a photo are numbered left to right by the x of their detector box's centre, so a user
looking at the photo can tell which `face_index` picks which face.

Paste-back mask: a rounded square covering the whole crop except a thin rim, its edge falling
smoothly (smoothstep of the distance to the edge) from 1 to 0 over a band `feather` of the crop
size wide, reaching 0 one crop pixel inside the crop's edge, corners rounded with a radius of a
quarter of the crop. The canonical crop (`vasa_jax.data.faces.crop_box`) puts head, hair and neck
well inside it, so the band lies on background and shoulders, where the generated frame differs
from the photo least; a mask hugging the face (an ellipse) would cut through the hair and the moving
head and show the photo's head beside the generated one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib

import numpy as np

from vasa_jax.data import faces, prepare
from vasa_jax.errors import UserError

# The face models need a few dozen pixels; anything smaller is a thumbnail or an icon.
MIN_PHOTO_SIZE = 32
# Transparent pixels are composited over this plain mid-grey: neutral, close to the studio-like
# backgrounds of talking-head videos, and neither glaring white nor a black hole around a cut-out.
BACKGROUND = (128, 128, 128)
_FORMATS = "JPEG, PNG, WebP, BMP or TIFF"
_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
# Enlarging the crop, or shrinking it by less than this, is one bilinear warp; shrinking more
# averages the crop down to about the target's size first, so fine detail does not alias.
_AREA_FROM = 1.25
# Corner radius of the paste-back mask, as a fraction of the crop; also the largest feather.
_MASK_CORNER = 0.25


def _one_line(error: BaseException) -> str:
  return " ".join(str(error).split()) or type(error).__name__


def load_photo(path: str | os.PathLike) -> np.ndarray:
  """Reads an image file as RGB, upright.

  Any format Pillow reads works; a multi-frame file (GIF, animated WebP) gives its first frame. The
  EXIF orientation is applied, so a phone photo stored sideways comes out upright. Colour modes:
  grayscale and palette images become RGB; CMYK is converted by Pillow's formula (embedded colour
  profiles are not applied); 16-bit integers (modes I;16*, and I when within 0..65535) are scaled
  by 255 / 65535, other integer ranges are stretched from their minimum to their maximum; floats
  within 0..1 are scaled by 255, within 0..255 kept, otherwise stretched likewise. Transparency
  (an alpha channel, or a palette's or a PNG's transparent colour) is composited over BACKGROUND,
  a plain mid-grey.

  Args:
    path: the image file.

  Returns:
    uint8 [height, width, 3] RGB.

  Raises:
    UserError: the file is missing, a folder, empty, unreadable, not an image, corrupt or
      truncated, or smaller than MIN_PHOTO_SIZE pixels on its shorter side.
  """
  from PIL import Image, ImageOps, UnidentifiedImageError

  path = pathlib.Path(path).expanduser()
  if path.is_dir():
    raise UserError(f"{path} is a folder, not a photo: give an image file ({_FORMATS})")
  if not path.exists():
    raise UserError(f"photo not found: {path} (check the path)")
  try:
    data = open(path, "rb")
  except OSError as e:
    raise UserError(f"cannot read photo {path}: {e.strerror or _one_line(e)} (check its "
                    f"permissions)") from e
  with data:
    if os.fstat(data.fileno()).st_size == 0:
      raise UserError(f"photo {path} is empty (0 bytes): give a {_FORMATS} file, or copy it again")
    try:
      with Image.open(data) as opened:
        opened.load()
        try:
          image = ImageOps.exif_transpose(opened)
        except Exception:  # A broken EXIF block must not lose the photo: keep it as stored.
          image = opened.copy()
    except Image.DecompressionBombError as e:
      raise UserError(f"photo {path} is too large to read safely ({_one_line(e)}): scale it down "
                      f"to a few megapixels") from e
    except UnidentifiedImageError as e:
      raise UserError(f"{path} is not an image file that can be read: give a {_FORMATS} "
                      f"file") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
      raise UserError(f"photo {path} is corrupt or truncated ({_one_line(e)}): export or copy it "
                      f"again") from e
  try:
    rgb = _to_rgb(image)
  except ValueError as e:
    raise UserError(f"photo {path} has colour mode {image.mode}, which cannot be converted to RGB: "
                    f"save it as an 8-bit RGB {_FORMATS} file") from e
  height, width = rgb.shape[:2]
  if min(height, width) < MIN_PHOTO_SIZE:
    raise UserError(f"photo {path} is {width}x{height} pixels: give a photo at least "
                    f"{MIN_PHOTO_SIZE} pixels on its shorter side (a few hundred is better)")
  return rgb


def _to_rgb(image) -> np.ndarray:
  """A Pillow image of any mode as uint8 [H, W, 3] RGB (see `load_photo`)."""
  if image.mode in _HIGH_DEPTH_MODES:
    values = np.asarray(image).astype(np.float64)
    gray = np.rint(np.clip(_to_unit(values, image.mode), 0.0, 1.0) * 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)
  if image.has_transparency_data:
    rgba = np.asarray(image.convert("RGBA"), np.float32)
    alpha = rgba[..., 3:] / 255
    rgb = rgba[..., :3] * alpha + np.asarray(BACKGROUND, np.float32) * (1 - alpha)
    return np.rint(rgb).astype(np.uint8)
  return np.ascontiguousarray(np.asarray(image.convert("RGB"), np.uint8))


def _to_unit(values: np.ndarray, mode: str) -> np.ndarray:
  """One-channel 16-bit, 32-bit integer or float pixel values mapped to 0..1."""
  values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
  low, high = float(values.min()), float(values.max())
  if mode.startswith("I;16") or (mode == "I" and low >= 0 and high <= 65535):
    return values / 65535
  if mode == "F" and low >= 0 and high <= 1:
    return values
  if mode == "F" and low >= 0 and high <= 255:
    return values / 255
  return (values - low) / max(high - low, 1e-12)


@dataclasses.dataclass
class Portrait:
  """One face of a photo and its canonical crop.

  Attributes:
    image: uint8 [H, W, 3] the whole RGB photo.
    box: float32 [3] cx, cy, size: the crop's square in photo pixels (`faces.crop_box`); it may
      extend past the photo's borders.
    crop: uint8 [resolution, resolution, 3] the square resampled (`faces.crop`); None when found
      without a resolution (`at` crops it).
    face_index: which face, counting from 0 left to right.
    num_faces: how many faces the photo shows.
    landmarks: float32 [len(LANDMARK_NAMES), 2] the face's eyes, nose, mouth, chin and forehead in
      the crop, (x, y) / crop size (`prepare.landmarks_in_box`); None when not known.
  """

  image: np.ndarray
  box: np.ndarray
  crop: np.ndarray | None
  face_index: int
  num_faces: int
  landmarks: np.ndarray | None = None

  def at(self, resolution: int) -> Portrait:
    """This portrait with its crop at `resolution` pixels."""
    if self.crop is not None and self.crop.shape[0] == resolution:
      return self
    return dataclasses.replace(self, crop=faces.crop(self.image, self.box, int(resolution)))


def find_portrait(image: np.ndarray, resolution: int | None,
                  analyzer: faces.FaceAnalyzer | None = None, face_index: int | None = None,
                  name: str = "the photo") -> Portrait:
  """Finds the face to animate and crops it as the training data was cropped.

  Faces are numbered left to right by the x of their detector box's centre. The crop box comes
  from the face's mesh (`faces.crop_box`), the crop from `faces.crop`.

  Args:
    image: uint8 [H, W, 3] RGB photo (`load_photo`).
    resolution: side of the crop in pixels; None: find the face, crop later (`Portrait.at`).
    analyzer: the face analyzer to use; None builds one.
    face_index: which face (0 is the leftmost); None accepts only a photo with a single face.
    name: how error messages call the photo, e.g. its path.

  Returns:
    The Portrait.

  Raises:
    UserError: no face; several faces and no face_index; face_index out of range.
  """
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
    raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {image.dtype} {image.shape}")
  if analyzer is None:
    analyzer = faces.FaceAnalyzer()
  found = sorted(analyzer.analyze(image), key=lambda face: float(face[0].box[0] + face[0].box[2]))
  count = len(found)
  if count == 0:
    raise UserError(f"no face found in {name}: use a photo with one clearly visible, roughly "
                    f"frontal face at least about a tenth of the picture's shorter side wide "
                    f"(crop the photo around the face if it is small)")
  if face_index is None and count > 1:
    listing = ", ".join(
        f"{i} at x={(d.box[0] + d.box[2]) / 2:.0f}, y={(d.box[1] + d.box[3]) / 2:.0f} "
        f"({d.box[2] - d.box[0]:.0f} px wide)" for i, (d, _) in enumerate(found))
    raise UserError(f"{name} shows {count} faces, numbered left to right: {listing}; choose one "
                    f"with --face_index N")
  index = 0 if face_index is None else int(face_index)
  if not 0 <= index < count:
    valid = "0" if count == 1 else f"0 to {count - 1}"
    raise UserError(f"--face_index {face_index} is out of range: {name} shows {count} "
                    f"face{'s' if count > 1 else ''}; use {valid} (numbered left to right)")
  _, landmarks = found[index]
  box = faces.crop_box(landmarks.points)
  found = Portrait(image=image, box=box, crop=None, face_index=index, num_faces=count,
                   landmarks=prepare.landmarks_in_box(landmarks.points, landmarks.iris, box))
  return found if resolution is None else found.at(resolution)


def crop_photo(photo: str | os.PathLike | np.ndarray, resolution: int | None,
               analyzer: faces.FaceAnalyzer | None = None, face_index: int | None = None
               ) -> Portrait:
  """`find_portrait` on a photo file (`load_photo`; errors name the file) or an RGB array."""
  if isinstance(photo, np.ndarray):
    return find_portrait(photo, resolution, analyzer, face_index)
  return find_portrait(load_photo(photo), resolution, analyzer, face_index, name=str(photo))


def _axis_map(centre: float, size: float, scale: float, extent: int, resolution: int
              ) -> tuple[int, int, int, float, float, np.ndarray]:
  """One axis of the crop's square in the output frame.

  Returns (lo, hi, source, slope, offset, p): output pixels lo..hi - 1 have their centres inside the
  square; the crop is resampled to `source` pixels (`resolution`, or fewer when it shrinks a lot);
  output pixel lo + i reads source pixel slope * i + offset; p [hi - lo] are those pixels' positions
  across the crop, -0.5 at its low edge to 0.5 at its high edge.
  """
  # Output pixel x' is photo pixel (x' + 0.5) / scale - 0.5 (pixel centres at integers).
  edges = (np.array([centre - size / 2, centre + size / 2]) + 0.5) * scale - 0.5
  lo = int(np.clip(math.ceil(edges[0]), 0, extent))
  hi = int(np.clip(math.floor(edges[1]) + 1, lo, extent))
  span = size * scale  # output pixels across the crop
  source = max(1, round(span)) if resolution / span > _AREA_FROM else resolution
  p = ((np.arange(lo, hi) + 0.5) / scale - 0.5 - centre) / size
  # Source pixel a covers p in [(a - 0.5) / source - 0.5, (a + 0.5) / source - 0.5].
  slope = source / (scale * size)
  offset = ((lo + 0.5) / scale - 0.5 - centre) / size * source + (source - 1) / 2
  return lo, hi, source, slope, offset, p


def _rounded_square(px: np.ndarray, py: np.ndarray, half: float, radius: float, feather: float
                    ) -> np.ndarray:
  """float32 [len(py), len(px)]: 1 deeper than `feather` inside a square of half-side `half` with
  corners of `radius` (all centred at p = 0), 0 outside it, smoothstep between."""
  qx = np.abs(px)[None, :] - (half - radius)
  qy = np.abs(py)[:, None] - (half - radius)
  outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
  depth = radius - outside
  if feather == 0:
    return (depth > 0).astype(np.float32)
  t = np.clip(depth / feather, 0.0, 1.0)
  return (t * t * (3 - 2 * t)).astype(np.float32)


class PasteBack:
  """Pastes generated face crops back into the full photo through a soft mask.

  Built once per video (region, mask and resampling precomputed); each frame then costs one bilinear
  warp of the crop into the box's region of the frame (after an area-averaging shrink when the crop
  is over 1.25 times larger than its place in the frame) and one blend there.

  The crop is the axis-aligned square `box` of the photo (it may extend past the photo's borders;
  only the part inside is pasted). The mask is a rounded square over the whole crop with a smooth
  edge `feather` of the crop wide (module docstring); output pixels outside the box are exactly the
  photo's.

  The photo can be resized for the video: `out_size` (width, height) or `scale`, the box following
  it. H.264 in yuv420p stores colour at half resolution, so both sides of the output must be even:
  an odd width or height loses the photo's last column or row (after resizing).

  Args:
    image: uint8 [H, W, 3] the RGB photo.
    box: float [3] cx, cy, size: the crop's square in photo pixels (`Portrait.box`).
    resolution: side of the crops in pixels.
    feather: width of the mask's soft edge as a fraction of the crop's side, 0 (a hard edge) to
      0.25.
    out_size: (width, height) to resize the photo to; None keeps its size.
    scale: resize factor of the photo, instead of out_size.

  Attributes:
    frame_size: (width, height) of the output frames, both even.
    background: uint8 [height, width, 3] the photo at the output size.
    region: (x0, y0, x1, y1) the output pixels the box covers (x1, y1 exclusive); only these change.
    mask: float32 [y1 - y0, x1 - x0] the crop's weight in the region.
  """

  def __init__(self, image: np.ndarray, box: np.ndarray, resolution: int, feather: float = 0.1,
               out_size: tuple[int, int] | None = None, scale: float | None = None):
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
      raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {image.dtype} {image.shape}")
    cx, cy, size = (float(v) for v in np.asarray(box, np.float64).reshape(3))
    if not (math.isfinite(cx) and math.isfinite(cy) and math.isfinite(size) and size > 0):
      raise ValueError(f"the box {[cx, cy, size]} is not a square of positive size")
    if not 0 <= feather <= _MASK_CORNER:
      raise ValueError(f"feather {feather} is outside 0..{_MASK_CORNER}")
    if out_size is not None and scale is not None:
      raise ValueError("give out_size or scale, not both")
    height, width = image.shape[:2]
    if scale is not None:
      out_size = (round(width * scale), round(height * scale))
    out_width, out_height = (width, height) if out_size is None else (int(v) for v in out_size)
    if out_width < 2 or out_height < 2:
      raise ValueError(f"output size {out_width}x{out_height} is below 2x2")
    if (out_width, out_height) != (width, height):
      shrinks = out_width <= width and out_height <= height
      image = cv2.resize(image, (out_width, out_height),
                         interpolation=cv2.INTER_AREA if shrinks else cv2.INTER_CUBIC)
    self.frame_size = (out_width - out_width % 2, out_height - out_height % 2)
    self.background = np.ascontiguousarray(image[:self.frame_size[1], :self.frame_size[0]])
    self.resolution = int(resolution)
    if self.resolution < 2:
      raise ValueError(f"crop resolution {resolution} is below 2")

    x0, x1, source_w, slope_x, offset_x, px = _axis_map(
        cx, size, out_width / width, self.frame_size[0], self.resolution)
    y0, y1, source_h, slope_y, offset_y, py = _axis_map(
        cy, size, out_height / height, self.frame_size[1], self.resolution)
    self.region = (x0, y0, x1, y1)
    # The mask reaches 0 one crop pixel inside the crop's edge: no sample it keeps needs pixels past
    # the crop.
    self.mask = _rounded_square(px, py, 0.5 - 1 / self.resolution, _MASK_CORNER, feather)
    self._shrink = None
    if (source_w, source_h) != (self.resolution, self.resolution):
      self._shrink = (source_w, source_h)
    self._matrix = np.array([[slope_x, 0, offset_x], [0, slope_y, offset_y]], np.float64)
    self._weight = self.mask[..., None]
    self._base = self.background[y0:y1, x0:x1].astype(np.float32) * (1 - self._weight)

  def __call__(self, crops: np.ndarray) -> np.ndarray:
    """Pastes crops, uint8 [R, R, 3] or a batch [N, R, R, 3], into the photo: uint8 [height, width,
    3] or [N, height, width, 3] (height, width = frame_size reversed)."""
    crops = np.asarray(crops)
    single = crops.ndim == 3
    batch = crops[None] if single else crops
    r = self.resolution
    if batch.ndim != 4 or batch.shape[1:] != (r, r, 3) or batch.dtype != np.uint8:
      raise ValueError(f"expected uint8 crops [{r}, {r}, 3] or [N, {r}, {r}, 3], got "
                       f"{crops.dtype} {crops.shape}")
    frames = np.empty((len(batch),) + self.background.shape, np.uint8)
    frames[:] = self.background
    for crop, frame in zip(batch, frames):
      self._paste(crop, frame)
    return frames[0] if single else frames

  def _paste(self, crop: np.ndarray, frame: np.ndarray) -> None:
    """Blends one crop into `frame` (the background) in place."""
    import cv2

    x0, y0, x1, y1 = self.region
    if x1 <= x0 or y1 <= y0:
      return
    if self._shrink is not None:
      crop = cv2.resize(crop, self._shrink, interpolation=cv2.INTER_AREA)
    warped = cv2.warpAffine(np.ascontiguousarray(crop), self._matrix, (x1 - x0, y1 - y0),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    blended = warped.astype(np.float32) * self._weight + self._base
    # Where the mask is 0 this is the background exactly; the weights sum to 1, so no overflow.
    frame[y0:y1, x0:x1] = (blended + 0.5).astype(np.uint8)
