"""Face geometry from landmarks: the dynamics encoder's aligned crop and the face mask.

At 64 px a mouth is about 6 pixels wide and opens by 1 to 3 of them, and head pose, hair and
backdrop vary far more across frames than the mouth does. Trained alone on the jaw opening, the
dynamics trunk reading the whole frame stays below r 0.1 on held-out identities, and reading this
crop it reaches r 0.89 in 500 steps (`benchmarks/motion_encoder_probe.py`). So the dynamics trunk
reads such a crop (ours: MegaPortraits and VASA-1 encode the whole image): a square on the line
from the point between the eyes to the mouth centre, sized by that distance and rotated with it,
so that translation, scale and roll are taken out and the eyes and mouth land at the same pixels
in every frame.

Landmarks are `[batch, len(LANDMARK_NAMES), 2]` ((x, y) / image size, `schema.LANDMARK_NAMES`
order: left eye, right eye, nose tip, mouth centre, chin, forehead), as SynthTalk stores them and
`prepare.named_landmarks` derives them from the face mesh. A row that is unknown (None or NaN) uses
`DEFAULT_LANDMARKS`: where the canonical face crop (`faces.crop_box`) puts the eyes and mouth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Rows of `schema.LANDMARK_NAMES`.
_LEFT_EYE, _RIGHT_EYE, _MOUTH, _CHIN, _FOREHEAD = 0, 1, 3, 4, 5
# (x, y) / size of the eyes and mouth in the canonical crop (`framing.CROP_EYES_FRACTION` 0.41 and
# `CROP_MOUTH_FRACTION` 0.632 of its height, centred; eyes 0.2 apart, SynthTalk's mean); the other
# rows are not used by the alignment.
DEFAULT_LANDMARKS = ((0.4, 0.41), (0.6, 0.41), (0.5, 0.52), (0.5, 0.632), (0.5, 0.75),
                     (0.5, 0.28))
# The crop's centre lies this far along from the eyes to the mouth (in eye-to-mouth distances), so
# the brows above and the chin below both fit.
_CENTRE = 0.6


def fill_unknown(landmarks: jax.Array | None, batch: int) -> jax.Array:
  """`landmarks` `[batch, 6, 2]` with rows that are None or not finite replaced by the defaults."""
  default = jnp.broadcast_to(jnp.asarray(DEFAULT_LANDMARKS, jnp.float32), (batch, 6, 2))
  if landmarks is None:
    return default
  landmarks = jnp.asarray(landmarks, jnp.float32)
  needed = landmarks[:, (_LEFT_EYE, _RIGHT_EYE, _MOUTH)]
  known = jnp.all(jnp.isfinite(needed), axis=(1, 2))[:, None, None]
  return jnp.where(known, jnp.nan_to_num(landmarks), default)


def landmark_features(landmarks: jax.Array | None, batch: int) -> jax.Array:
  """`[batch, 24]` numbers that describe where the face is and how it is turned: the six
  landmarks' positions (centred on the image), and their offsets from the point between the eyes
  in eye-to-mouth distances. Unknown rows take the defaults (`fill_unknown`); no gradient reaches
  the landmarks."""
  landmarks = jax.lax.stop_gradient(fill_unknown(landmarks, batch))
  between = 0.5 * (landmarks[:, _LEFT_EYE] + landmarks[:, _RIGHT_EYE])
  scale = jnp.linalg.norm(landmarks[:, _MOUTH] - between, axis=-1)
  shape = (landmarks - between[:, None]) / jnp.maximum(scale, 1e-3)[:, None, None]
  return jnp.concatenate([(landmarks - 0.5).reshape(batch, -1), shape.reshape(batch, -1)],
                         axis=-1)


def crop_grid(landmarks: jax.Array, size: int, extent: float) -> jax.Array:
  """Sampling positions `[batch, size, size, 2]` ((x, y) / image size) of the aligned crop.

  The crop's vertical axis runs from the point between the eyes to the mouth centre; it is centred
  `_CENTRE` of the way along and reaches `extent` eye-to-mouth distances to each side.
  """
  between = 0.5 * (landmarks[:, _LEFT_EYE] + landmarks[:, _RIGHT_EYE])
  down = landmarks[:, _MOUTH] - between  # [batch, 2]
  across = jnp.stack([down[:, 1], -down[:, 0]], axis=-1)  # down turned a quarter anticlockwise
  centre = between + _CENTRE * down
  t = ((jnp.arange(size, dtype=jnp.float32) + 0.5) / size * 2.0 - 1.0) * extent
  return (centre[:, None, None] + t[None, None, :, None] * across[:, None, None]
          + t[None, :, None, None] * down[:, None, None])


def bilinear_sample(image: jax.Array, points: jax.Array) -> jax.Array:
  """`image` `[batch, H, W, C]` at `points` `[batch, h, w, 2]` ((x, y) / size, pixel centres at
  (i + 0.5) / size) -> `[batch, h, w, C]`; outside the image the border pixel repeats."""
  height, width = image.shape[1:3]
  x = jnp.clip(points[..., 0] * width - 0.5, 0.0, width - 1.0)
  y = jnp.clip(points[..., 1] * height - 0.5, 0.0, height - 1.0)
  x0, y0 = jnp.floor(x), jnp.floor(y)
  wx, wy = (x - x0)[..., None], (y - y0)[..., None]
  x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
  x1, y1 = jnp.minimum(x0 + 1, width - 1), jnp.minimum(y0 + 1, height - 1)
  rows = jnp.arange(image.shape[0])[:, None, None]

  def at(yi, xi):
    return image[rows, yi, xi]

  top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
  bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
  return top * (1 - wy) + bottom * wy


def aligned_crop(image: jax.Array, landmarks: jax.Array | None, size: int, extent: float
                 ) -> jax.Array:
  """The face-aligned crop `[batch, size, size, C]` of `image` `[batch, H, W, C]` (module
  docstring); gradients flow to the image, not to the landmarks."""
  landmarks = jax.lax.stop_gradient(fill_unknown(landmarks, image.shape[0]))
  return bilinear_sample(image, crop_grid(landmarks, size, extent).astype(jnp.float32)
                         ).astype(image.dtype)


# The face ellipse (`face_mask`), in forehead-to-chin distances: centred between the two, reaching
# this far to each side along that line and across it. On SynthTalk's faces it covers brows, eyes,
# cheeks, mouth and jaw, not the hair or the neck.
_MASK_ALONG, _MASK_ACROSS = 0.6, 0.42


def face_mask(landmarks: jax.Array | None, size: int, softness: float = 0.1) -> jax.Array:
  """A soft ellipse over the face `[batch, size, size, 1]` in [0, 1], placed by the forehead and
  chin landmarks and turned with them (1 well inside, falling to 0 over `softness` of its radius
  at the edge); all zeros for a row (or `landmarks` None) whose forehead or chin is unknown."""
  if landmarks is None:
    return jnp.zeros((1, size, size, 1), jnp.float32)
  landmarks = jax.lax.stop_gradient(jnp.asarray(landmarks, jnp.float32))
  top, bottom = landmarks[:, _FOREHEAD], landmarks[:, _CHIN]
  known = jnp.all(jnp.isfinite(top) & jnp.isfinite(bottom), axis=-1)
  top, bottom = jnp.nan_to_num(top), jnp.nan_to_num(bottom)
  centre = 0.5 * (top + bottom)
  down = bottom - top
  length = jnp.maximum(jnp.linalg.norm(down, axis=-1), 1e-3)  # [batch]
  unit = down / length[:, None]
  grid = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size
  dx = grid[None, None, :] - centre[:, 0, None, None]
  dy = grid[None, :, None] - centre[:, 1, None, None]
  along = (dx * unit[:, 0, None, None] + dy * unit[:, 1, None, None]) / (
      _MASK_ALONG * length[:, None, None])
  across = (dx * unit[:, 1, None, None] - dy * unit[:, 0, None, None]) / (
      _MASK_ACROSS * length[:, None, None])
  radius = jnp.sqrt(along ** 2 + across ** 2)
  mask = jax.nn.sigmoid((1.0 - radius) / softness * 4.0)
  return jnp.where(known[:, None, None], mask, 0.0)[..., None]
