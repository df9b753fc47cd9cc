"""The dynamics encoder's face-aligned crop: where it puts the face, what it takes out, defaults."""

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.models.face_latent import alignment

SIZE, CROP, EXTENT = 64, 32, 0.9
# Eyes 0.2 apart at y 0.4, mouth at y 0.64: an upright face at the canonical crop's place.
LANDMARKS = np.array([(0.4, 0.4), (0.6, 0.4), (0.5, 0.52), (0.5, 0.64), (0.5, 0.75), (0.5, 0.28)],
                     np.float32)


def _face(landmarks, size=SIZE):
  """A grey image with a white dot on each eye and a black bar on the mouth."""
  image = np.full((size, size, 3), 128, np.uint8)
  for x, y in landmarks[:2] * size:
    cv2.circle(image, (int(round(x - 0.5)), int(round(y - 0.5))), 2, (255, 255, 255), -1)
  mx, my = landmarks[3] * size
  cv2.rectangle(image, (int(mx - 5), int(my - 1.5)), (int(mx + 4), int(my + 0.5)), (0, 0, 0), -1)
  return image


def _crop(image, landmarks):
  signed = jnp.asarray(image, jnp.float32)[None] / 127.5 - 1.0
  lm = None if landmarks is None else jnp.asarray(landmarks)[None]
  return np.asarray(alignment.aligned_crop(signed, lm, CROP, EXTENT))[0]


def test_the_crop_puts_the_eyes_and_the_mouth_where_the_geometry_says():
  crop = _crop(_face(LANDMARKS), LANDMARKS)
  # Rows: the centre is 0.6 of the way from the eyes to the mouth, the crop reaches EXTENT
  # eye-to-mouth distances each way.
  eye_row = (1 - 0.6 / EXTENT) / 2 * CROP
  mouth_row = (1 + 0.4 / EXTENT) / 2 * CROP
  rows, cols = np.mgrid[:CROP, :CROP] + 0.5
  bright, dark = np.clip(crop[..., 0], 0, None), np.clip(-crop[..., 0], 0, None)
  assert abs((rows * bright).sum() / bright.sum() - eye_row) < 1.0
  assert abs((rows * dark).sum() / dark.sum() - mouth_row) < 1.0
  assert abs((cols * dark).sum() / dark.sum() - CROP / 2) < 1.0


def test_translation_scale_and_roll_are_taken_out():
  reference = _crop(_face(LANDMARKS), LANDMARKS)
  # The same face turned by 20 degrees, 20% larger and moved: the image and its landmarks alike.
  matrix = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), 20.0, 1.2)
  matrix[:, 2] += (4.0, -3.0)
  moved = cv2.warpAffine(_face(LANDMARKS), matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
  pixels = LANDMARKS * SIZE
  moved_landmarks = (np.c_[pixels, np.ones(len(pixels))] @ matrix.T / SIZE).astype(np.float32)
  aligned = _crop(moved, moved_landmarks)
  unaligned = _crop(moved, LANDMARKS)
  error, baseline = np.abs(aligned - reference).mean(), np.abs(unaligned - reference).mean()
  assert error < 0.4 * baseline, (error, baseline)


def test_unknown_landmarks_use_the_canonical_positions():
  image = _face(LANDMARKS)
  default = np.asarray(alignment.DEFAULT_LANDMARKS, np.float32)
  np.testing.assert_allclose(_crop(image, None), _crop(image, default), atol=1e-6)
  partly = LANDMARKS.copy()
  partly[3] = np.nan  # No mouth: the row falls back whole.
  np.testing.assert_allclose(_crop(image, partly), _crop(image, default), atol=1e-6)
  batch = jnp.asarray(np.stack([LANDMARKS, partly]))
  filled = np.asarray(alignment.fill_unknown(batch, 2))
  np.testing.assert_allclose(filled[0], LANDMARKS)
  np.testing.assert_allclose(filled[1], default)


def test_gradients_reach_the_image_not_the_landmarks():
  image = jnp.asarray(_face(LANDMARKS), jnp.float32)[None] / 127.5 - 1.0
  landmarks = jnp.asarray(LANDMARKS)[None]
  grad_image, grad_landmarks = jax.grad(
      lambda x, lm: jnp.sum(alignment.aligned_crop(x, lm, CROP, EXTENT) ** 2), argnums=(0, 1))(
          image, landmarks)
  assert float(jnp.abs(grad_image).sum()) > 0
  assert float(jnp.abs(grad_landmarks).sum()) == 0


@pytest.mark.parametrize("shape", [(2, 16, 16, 3), (1, 20, 12, 1)])
def test_bilinear_sample_at_pixel_centres_returns_the_pixels(shape):
  image = jax.random.uniform(jax.random.key(0), shape)
  height, width = shape[1:3]
  ys, xs = np.meshgrid((np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width,
                       indexing="ij")
  points = jnp.broadcast_to(jnp.asarray(np.stack([xs, ys], -1), jnp.float32),
                            (shape[0], height, width, 2))
  np.testing.assert_allclose(alignment.bilinear_sample(image, points), image, atol=1e-6)


def test_the_face_mask_covers_the_face_turns_with_it_and_is_empty_when_unknown():
  mask = np.asarray(alignment.face_mask(jnp.asarray(LANDMARKS)[None], SIZE))[0, ..., 0]
  assert mask.shape == (SIZE, SIZE)
  at = lambda point: mask[int(point[1] * SIZE), int(point[0] * SIZE)]  # noqa: E731
  for name in (0, 1, 2, 3):  # eyes, nose, mouth: inside
    assert at(LANDMARKS[name]) > 0.95, name
  assert mask[1, 1] < 0.01 and mask[SIZE - 2, 1] < 0.01  # corners: outside
  # Forehead at y 0.28, chin at 0.75: the ellipse is taller than wide.
  rows, cols = np.nonzero(mask > 0.5)
  assert np.ptp(rows) > 1.2 * np.ptp(cols)
  # A face turned by 90 degrees (forehead to the left, chin to the right): wider than tall.
  turned = LANDMARKS[:, ::-1].copy()
  rows, cols = np.nonzero(np.asarray(alignment.face_mask(jnp.asarray(turned)[None], SIZE))[0, ..., 0]
                          > 0.5)
  assert np.ptp(cols) > 1.2 * np.ptp(rows)
  unknown = LANDMARKS.copy()
  unknown[4] = np.nan  # the chin
  both = np.asarray(alignment.face_mask(jnp.asarray(np.stack([LANDMARKS, unknown])), SIZE))
  assert both[0].max() > 0.99 and both[1].max() == 0.0
  assert float(jnp.max(alignment.face_mask(None, SIZE))) == 0.0
