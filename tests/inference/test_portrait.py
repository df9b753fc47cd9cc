"""The photo side of generation: reading photos of every kind, finding and cropping the face (on
scikit-image's astronaut), and pasting crops back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vasa_jax.data import faces
from vasa_jax.errors import UserError
from vasa_jax.inference import portrait

skimage_data = pytest.importorskip("skimage.data",
                                   reason="the real test photos come with scikit-image")

GREY = np.array([128, 128, 128])  # the documented background of transparent pixels


def _pattern(height: int = 48, width: int = 64) -> np.ndarray:
  """uint8 [height, width, 3] smooth colour ramps, different along x and y."""
  y, x = np.mgrid[0:height, 0:width]
  return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 2 % 256],
                  -1).astype(np.uint8)


# load_photo


@pytest.mark.parametrize("suffix, options", [
    ("png", {}), ("bmp", {}), ("tif", {}), ("webp", {"lossless": True}), ("gif", None)])
def test_lossless_rgb_formats_read_exactly(tmp_path, suffix, options):
  rgb = _pattern()
  path = tmp_path / f"photo.{suffix}"
  if options is None:
    # GIF holds a palette: compare with the palette's colours.
    image = Image.fromarray(rgb).quantize(64)
    image.save(path)
    expected = np.asarray(image.convert("RGB"))
  else:
    Image.fromarray(rgb).save(path, **options)
    expected = rgb
  loaded = portrait.load_photo(path)
  assert loaded.dtype == np.uint8 and loaded.shape == (48, 64, 3)
  np.testing.assert_array_equal(loaded, expected)


def test_jpeg_reads_close(tmp_path):
  rgb = _pattern()
  Image.fromarray(rgb).save(tmp_path / "photo.jpg", quality=95)
  loaded = portrait.load_photo(str(tmp_path / "photo.jpg"))
  assert loaded.shape == (48, 64, 3)
  assert np.abs(loaded.astype(int) - rgb).mean() < 3


def test_grayscale_repeats_into_three_channels(tmp_path):
  gray = _pattern()[..., 0]
  Image.fromarray(gray).save(tmp_path / "gray.png")
  loaded = portrait.load_photo(tmp_path / "gray.png")
  np.testing.assert_array_equal(loaded, np.repeat(gray[..., None], 3, -1))


def test_16_bit_scales_to_8_bits(tmp_path):
  ramp = np.linspace(0, 65535, 64).round().astype(np.uint16)[None].repeat(40, 0)
  image = Image.fromarray(ramp)
  assert image.mode == "I;16"
  image.save(tmp_path / "deep.png")
  loaded = portrait.load_photo(tmp_path / "deep.png")
  assert loaded.shape == (40, 64, 3)
  row = loaded[0, :, 0].astype(int)
  assert row[0] == 0 and row[-1] == 255
  assert np.all(np.diff(row) >= 0) and len(np.unique(row)) == 64
  np.testing.assert_array_equal(row, np.rint(ramp[0] / 257))
  assert np.all(loaded == loaded[:1, :, :1])
  # A dim 16-bit photo stays dim: the scale is fixed, not stretched to the values present.
  Image.fromarray((ramp // 4).astype(np.uint16)).save(tmp_path / "dim.png")
  dim = portrait.load_photo(tmp_path / "dim.png")[0, :, 0].astype(int)
  assert dim[0] == 0 and dim[-1] == 64


def test_32_bit_integer_and_float(tmp_path):
  ramp = np.linspace(0, 65535, 64)[None].repeat(40, 0)
  Image.fromarray(ramp.astype(np.int32)).save(tmp_path / "int.tif")
  assert Image.open(tmp_path / "int.tif").mode == "I"
  np.testing.assert_array_equal(portrait.load_photo(tmp_path / "int.tif")[0, :, 1],
                                np.rint(ramp[0] / 257))
  Image.fromarray((ramp // 2).astype(np.int32)).save(tmp_path / "dim.tif")
  assert portrait.load_photo(tmp_path / "dim.tif")[0, -1, 0] == round(32767 / 257)
  unit = (ramp / 65535).astype(np.float32)
  Image.fromarray(unit).save(tmp_path / "float.tif")
  assert Image.open(tmp_path / "float.tif").mode == "F"
  np.testing.assert_array_equal(portrait.load_photo(tmp_path / "float.tif")[0, :, 2],
                                np.rint(unit[0].astype(np.float64) * 255))


def test_palette(tmp_path):
  image = Image.fromarray(_pattern()).quantize(32)
  assert image.mode == "P"
  image.save(tmp_path / "palette.png")
  np.testing.assert_array_equal(portrait.load_photo(tmp_path / "palette.png"),
                                np.asarray(image.convert("RGB")))


def test_palette_with_transparent_colour(tmp_path):
  index = np.zeros((40, 40), np.uint8)
  index[10:30, 10:30] = 1
  image = Image.fromarray(index, "P")
  image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
  image.save(tmp_path / "sticker.png", transparency=0)
  loaded = portrait.load_photo(tmp_path / "sticker.png")
  np.testing.assert_array_equal(loaded[0, 0], GREY)           # transparent red
  np.testing.assert_array_equal(loaded[20, 20], [0, 0, 255])  # opaque blue


def test_alpha_is_composited_over_grey(tmp_path):
  rgb = _pattern()
  alpha = np.full((48, 64), 255, np.uint8)
  alpha[:8, :8] = alpha[-8:, -8:] = 0  # transparent corners
  alpha[20:28, :] = 128
  Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "cutout.png")
  loaded = portrait.load_photo(tmp_path / "cutout.png").astype(int)
  assert np.all(loaded[:8, :8] == GREY) and np.all(loaded[-8:, -8:] == GREY)
  np.testing.assert_array_equal(loaded[30:, 8:-8], rgb[30:, 8:-8])
  half = rgb[20:28].astype(float) * 128 / 255 + GREY * 127 / 255
  assert np.abs(loaded[20:28] - half).max() <= 1

  gray = rgb[..., 0]
  Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "cutout_gray.png")
  loaded = portrait.load_photo(tmp_path / "cutout_gray.png")
  assert np.all(loaded[:8, :8] == GREY)
  np.testing.assert_array_equal(loaded[30:, 8:-8], np.repeat(gray[30:, 8:-8, None], 3, -1))


@pytest.mark.parametrize("suffix", ["tif", "jpg"])
def test_cmyk(tmp_path, suffix):
  image = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # red
  image.paste((255, 0, 0, 0), (0, 20, 40, 40))             # cyan below
  image.save(tmp_path / f"print.{suffix}")
  loaded = portrait.load_photo(tmp_path / f"print.{suffix}").astype(int)
  assert np.abs(loaded[5, 5] - [255, 0, 0]).max() <= 3
  assert np.abs(loaded[35, 35] - [0, 255, 255]).max() <= 3


def test_exif_orientation_turns_the_photo_upright(tmp_path):
  upright = np.zeros((80, 48, 3), np.uint8)  # tall
  upright[:20, :24] = (255, 0, 0)            # red block top-left
  upright[60:, :] = (0, 0, 255)              # blue band at the bottom
  # Orientation 6: the camera stored the picture turned 90 degrees counter-clockwise; viewers turn
  # it 90 degrees clockwise.
  stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
  assert stored.size == (80, 48)
  exif = Image.Exif()
  exif[0x0112] = 6
  stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
  loaded = portrait.load_photo(tmp_path / "phone.jpg")
  assert loaded.shape == (80, 48, 3)
  assert np.abs(loaded.astype(int) - upright).mean() < 4
  assert loaded[5, 5, 0] > 200 and loaded[5, 40, 0] < 50 and loaded[75, 24, 2] > 200


def _bad_file(tmp_path, kind):
  if kind == "missing":
    return tmp_path / "nowhere.jpg"
  if kind == "directory":
    (tmp_path / "photos.jpg").mkdir()
    return tmp_path / "photos.jpg"
  path = tmp_path / f"{kind}.jpg"
  if kind == "empty":
    path.write_bytes(b"")
  elif kind == "text":
    path.write_text("not a photo, just some words\n" * 20)
  elif kind == "truncated":
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), np.uint8)
    Image.fromarray(noise).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
  elif kind == "tiny":
    Image.fromarray(_pattern(20, 200)).save(path)
  return path


@pytest.mark.parametrize("kind, words", [
    ("missing", "not found"), ("directory", "folder"), ("empty", "empty"),
    ("text", "not an image"), ("truncated", "truncated"), ("tiny", "at least 32 pixels")])
def test_bad_files_are_user_errors_naming_the_file(tmp_path, kind, words):
  path = _bad_file(tmp_path, kind)
  with pytest.raises(UserError) as error:
    portrait.load_photo(path)
  message = str(error.value)
  assert str(path) in message and words in message and "\n" not in message


# Finding the face


def test_find_portrait_crops_the_canonical_box(analyzer, astronaut):
  found = portrait.find_portrait(astronaut, 256, analyzer=analyzer)
  assert (found.face_index, found.num_faces) == (0, 1)
  np.testing.assert_array_equal(found.image, astronaut)
  (_, marks), = analyzer.analyze(astronaut)
  np.testing.assert_allclose(found.box, faces.crop_box(marks.points), atol=1e-3)
  assert found.box.dtype == np.float32 and found.box.shape == (3,)
  assert found.crop.dtype == np.uint8 and found.crop.shape == (256, 256, 3)
  np.testing.assert_array_equal(found.crop, faces.crop(astronaut, found.box, 256))
  # The crop shows the face where training crops had it: the detector, run on the crop, puts the
  # eyes at CROP_EYES_FRACTION of its height, centred across, and the mouth below them.
  (detection, _), = analyzer.analyze(found.crop)
  eyes = detection.keypoints[:2].mean(0) / 256
  assert abs(eyes[1] - faces.CROP_EYES_FRACTION) < 0.03 and abs(eyes[0] - 0.5) < 0.03
  mouth = detection.keypoints[3] / 256
  assert abs(mouth[1] - faces.CROP_MOUTH_FRACTION) < 0.04


def test_crop_photo_from_a_file(analyzer, astronaut, tmp_path):
  Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
  found = portrait.crop_photo(tmp_path / "astronaut.png", 128, analyzer=analyzer)
  np.testing.assert_array_equal(found.image, astronaut)
  np.testing.assert_array_equal(found.crop, portrait.find_portrait(astronaut, 128, analyzer).crop)

  Image.fromarray(skimage_data.coffee()).save(tmp_path / "coffee.png")
  with pytest.raises(UserError, match="no face") as error:
    portrait.crop_photo(tmp_path / "coffee.png", 128, analyzer=analyzer)
  assert str(tmp_path / "coffee.png") in str(error.value)


@pytest.mark.parametrize("image", ["coffee", "gradient"])
def test_no_face_is_a_user_error(analyzer, image):
  pixels = skimage_data.coffee() if image == "coffee" else _pattern(240, 320)
  with pytest.raises(UserError, match="no face found in my photo") as error:
    portrait.find_portrait(pixels, 128, analyzer=analyzer, name="my photo")
  assert "tenth" in str(error.value) and "\n" not in str(error.value)


@pytest.fixture(scope="module")
def two_faces(astronaut):
  """The astronaut on the left and a dimmer mirror image of her on the right (which the detector
  scores higher, so left to right is not best first)."""
  dimmer = (astronaut[:, ::-1] * 0.8).astype(np.uint8)
  return np.concatenate([astronaut, dimmer], axis=1)


def test_several_faces_need_a_face_index(analyzer, two_faces):
  with pytest.raises(UserError) as error:
    portrait.find_portrait(two_faces, 128, analyzer=analyzer)
  message = str(error.value)
  assert "2 faces" in message and "--face_index" in message
  assert "0 at x=2" in message and "1 at x=7" in message  # centres near x 225 and 800


def test_face_index_counts_left_to_right(analyzer, two_faces, astronaut):
  best = analyzer.analyze(two_faces)[0][0]
  assert best.box[0] > 512  # the detector's order is right to left here
  left = portrait.find_portrait(two_faces, 128, analyzer=analyzer, face_index=0)
  right = portrait.find_portrait(two_faces, 128, analyzer=analyzer, face_index=1)
  assert left.num_faces == right.num_faces == 2
  assert (left.face_index, right.face_index) == (0, 1)
  assert left.box[0] < 512 < right.box[0]
  alone = portrait.find_portrait(astronaut, 128, analyzer=analyzer)
  np.testing.assert_allclose(left.box, alone.box, atol=2)
  # The right face is the mirror image: same size, mirrored centre, dimmer.
  assert abs(right.box[0] - (1023 - alone.box[0])) < 3 and abs(right.box[2] - alone.box[2]) < 3
  assert right.crop.mean() < 0.9 * left.crop.mean()
  for index in (2, 5, -1):
    with pytest.raises(UserError, match="0 to 1"):
      portrait.find_portrait(two_faces, 128, analyzer=analyzer, face_index=index)


# Pasting back


def _ramps(height: int, width: int) -> np.ndarray:
  """An image linear in x and y, which bilinear and area resampling reproduce (up to rounding), so
  any misplacement of a pasted crop shows as a systematic error."""
  y, x = np.mgrid[0:height, 0:width]
  return np.stack([2 * x + 3, 2 * y + 5, x + y], -1).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("box, resolution", [
    ((60.0, 45.0, 60.0), 64),      # enlarging the photo's pixels
    ((60.3, 44.6, 61.7), 256),     # shrinking (averaged first), off the pixel grid
    ((8.0, 80.0, 50.0), 64),       # partly outside the photo
])
def test_pasting_the_photos_own_crop_changes_nothing(box, resolution):
  image = _ramps(90, 120)
  paste = portrait.PasteBack(image, np.array(box), resolution)
  out = paste(faces.crop(image, np.array(box), resolution))
  assert out.shape == image.shape and out.dtype == np.uint8 and paste.frame_size == (120, 90)
  x0, y0, x1, y1 = paste.region
  changed = out.astype(int) - image
  outside = np.ones(image.shape[:2], bool)
  outside[y0:y1, x0:x1] = False
  assert not changed[outside].any()
  inside = changed[y0:y1, x0:x1][paste.mask > 0]
  assert len(inside) > 400 and np.abs(inside).max() <= 1
  assert np.all(np.abs(inside.mean(0)) < 0.15)  # no shift of the pasted crop
  # The region is the box clipped to the photo.
  cx, cy, size = box
  assert x0 == max(0, np.ceil(cx - size / 2)) and x1 == min(120, np.floor(cx + size / 2) + 1)
  assert y0 == max(0, np.ceil(cy - size / 2)) and y1 == min(90, np.floor(cy + size / 2) + 1)


def test_solid_crop_fills_the_face_and_fades_out(analyzer, astronaut):
  found = portrait.find_portrait(astronaut, 128, analyzer=analyzer)
  paste = portrait.PasteBack(astronaut, found.box, 128, feather=0.1)
  green = np.zeros((128, 128, 3), np.uint8)
  green[...] = (0, 255, 0)
  out = paste(green)
  cx, cy, size = found.box
  # The face's centre, eyes and mouth are the crop's colour.
  (_, marks), = analyzer.analyze(astronaut)
  for point in [(cx, cy), *marks.points[[33, 263, 13, 152], :2]]:
    x, y = np.round(point).astype(int)
    np.testing.assert_array_equal(out[y, x], (0, 255, 0))
  # The box's corners and rim keep the photo; the band between blends smoothly.
  x0, y0, x1, y1 = paste.region
  for ys, xs in [(slice(y0, y0 + 12), slice(x0, x0 + 12)),
                 (slice(y1 - 12, y1), slice(x1 - 12, x1))]:
    np.testing.assert_array_equal(out[ys, xs], astronaut[ys, xs])
  np.testing.assert_array_equal(out[y0:y1, x0], astronaut[y0:y1, x0])
  row = paste.mask[paste.mask.shape[0] // 2]
  assert row[0] == 0 and row[len(row) // 2] == 1
  rising = row[:len(row) // 2]
  assert np.all(np.diff(rising) >= 0)
  assert 0.06 * size < np.sum((rising > 0) & (rising < 1)) < 0.14 * size  # the feather's width
  assert not (out[:y0] != astronaut[:y0]).any() and not (out[y1:] != astronaut[y1:]).any()
  # The mask is the crop's weight: mask * crop + (1 - mask) * photo, rounded.
  weight = paste.mask[..., None]
  expected = weight * green[0, 0] + (1 - weight) * astronaut[y0:y1, x0:x1]
  assert np.abs(out[y0:y1, x0:x1] - expected).max() <= 0.5 + 1e-3


def test_batch_is_frame_by_frame():
  image = _ramps(90, 120)
  paste = portrait.PasteBack(image, np.array((50.0, 40.0, 70.0)), 96, feather=0.2)
  crops = np.random.default_rng(1).integers(0, 256, (3, 96, 96, 3), np.uint8)
  frames = paste(crops)
  assert frames.shape == (3, 90, 120, 3) and frames.dtype == np.uint8
  for crop, frame in zip(crops, frames):
    np.testing.assert_array_equal(frame, paste(crop))
  assert not np.array_equal(frames[0], frames[1])
  with pytest.raises(ValueError):
    paste(crops[:, :64])


def test_odd_sizes_round_down_to_even():
  image = _ramps(91, 121)
  paste = portrait.PasteBack(image, np.array((60.0, 45.0, 40.0)), 64)
  assert paste.frame_size == (120, 90)
  out = paste(faces.crop(image, np.array((60.0, 45.0, 40.0)), 64))
  assert out.shape == (90, 120, 3)
  assert np.abs(out.astype(int) - image[:90, :120]).max() <= 1


@pytest.mark.parametrize("options, frame_size", [
    ({"out_size": (61, 45)}, (60, 44)), ({"scale": 1.5}, (180, 134))])
def test_resized_output_moves_the_box_with_the_photo(options, frame_size):
  import cv2

  image = _ramps(90, 120)
  box = np.array((62.0, 43.0, 50.0))
  paste = portrait.PasteBack(image, box, 80, **options)
  assert paste.frame_size == frame_size
  width, height = (61, 45) if "out_size" in options else (180, 135)
  resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if width < 120
                       else cv2.INTER_CUBIC)[:frame_size[1], :frame_size[0]]
  np.testing.assert_array_equal(paste.background, resized)
  out = paste(faces.crop(image, box, 80))
  assert out.shape == (frame_size[1], frame_size[0], 3)
  x0, y0, x1, y1 = paste.region
  scale = width / 120
  assert abs((x0 + x1 - 1) / 2 - ((62 + 0.5) * scale - 0.5)) <= 1
  inside = out[y0:y1, x0:x1].astype(int) - resized[y0:y1, x0:x1]
  assert np.abs(inside[paste.mask > 0.5]).max() <= 2
  # A solid crop lands on the moved box's centre.
  solid = paste(np.full((80, 80, 3), 7, np.uint8))
  cx, cy = (62 + 0.5) * scale - 0.5, (43 + 0.5) * height / 90 - 0.5
  np.testing.assert_array_equal(solid[round(cy), round(cx)], (7, 7, 7))
  outside = np.ones(out.shape[:2], bool)
  outside[y0:y1, x0:x1] = False
  np.testing.assert_array_equal(solid[outside], resized[outside])
