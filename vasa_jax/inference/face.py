"""Stage 1 at generation time: a face photo's appearance and identity, rendered with new motion.

`FaceRenderer` holds a trained face latent model (`vasa_jax.models.face_latent`). `encode` turns the
canonical crop of a photo into its latents once; `render` decodes that appearance volume and
identity with per-frame motion [z_pose, z_dyn] into frames, `batch_size` frames per jitted call (the
last call is filled up, so one shape compiles once); `encode_motion` turns frames of a driving video
into motion.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.models.face_latent import networks, warping


@dataclasses.dataclass(frozen=True)
class FaceLatents:
  """The latents of one face photo: appearance volume, identity, and the photo's own motion."""

  v_app: jax.Array  # [1, D, H, W, C]
  z_id: jax.Array  # [1, id_dim]
  z_pose: np.ndarray  # [7]
  z_dyn: np.ndarray  # [dyn_dim]
  # [1, H, W, 3] in [-1, 1]: the photo as the unwarped background path composites the head over
  # (None for a model without that path).
  background: jax.Array | None = None
  # [1, D, h, w, 3]: the photo's flow into canonical space, which with z_pose carries the
  # background to each frame's motion (a model with `background_warp`; else None).
  background_flow: jax.Array | None = None

  @property
  def motion(self) -> np.ndarray:
    """The photo's motion [7 + dyn_dim]: z_pose then z_dyn, as stage 2 generates it."""
    return np.concatenate([self.z_pose, self.z_dyn])


def _to_signed(images: jax.Array) -> jax.Array:
  """uint8 [0, 255] to [-1, 1] (`image_metrics.to_signed`, kept here so that generation needs
  nothing of the training code)."""
  return images.astype(jnp.float32) / 127.5 - 1.0


def _to_uint8(images: jax.Array) -> jax.Array:
  return jnp.clip(jnp.round((images.astype(jnp.float32) + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


@dataclasses.dataclass
class FaceRenderer:
  """A face latent model with parameters, ready to encode photos and render frames.

  Attributes:
    model: the `FaceLatentModel`; params: its generator's parameters.
    batch_size: frames per `render` / `encode_motion` call.
  """

  model: networks.FaceLatentModel
  params: Any
  batch_size: int = 8

  def __post_init__(self):
    model = self.model

    def encode(params, image, landmarks):
      return model.apply({"params": params}, _to_signed(image), landmarks, method=model.encode)

    def render(params, v_app, z_id, z_pose, z_dyn, background, background_flow, background_pose):
      batch = z_pose.shape[0]

      def tile(x):
        return None if x is None else jnp.broadcast_to(x, (batch,) + x.shape[1:])

      images = model.apply({"params": params}, tile(v_app), tile(z_id), z_pose, z_dyn,
                           tile(background), tile(background_flow), tile(background_pose),
                           method=model.decode)
      return _to_uint8(images)

    def encode_motion(params, images, landmarks):
      return model.apply({"params": params}, _to_signed(images), landmarks,
                         method=model.encode_motion)

    self._encode = jax.jit(encode)
    self._render = jax.jit(render)
    self._encode_motion = jax.jit(encode_motion)

  @classmethod
  def from_stage1(cls, stage1, batch_size: int = 8) -> FaceRenderer:
    """From a loaded stage-1 run (`vasa_jax.data.motion_latents.load_stage1`)."""
    return cls(stage1.task.model, stage1.params["generator"], batch_size)

  @property
  def image_size(self) -> int:
    return self.model.config.image_size

  @property
  def motion_dim(self) -> int:
    return warping.POSE_DIM + self.model.config.dyn_dim

  def _check_images(self, images: np.ndarray, what: str) -> np.ndarray:
    images = np.asarray(images)
    shape = (self.image_size, self.image_size, 3)
    if images.dtype != np.uint8 or images.shape[-3:] != shape:
      raise ValueError(f"{what} takes uint8 [..., {self.image_size}, {self.image_size}, 3]; got "
                       f"{images.dtype} {list(images.shape)}")
    return images

  def _landmarks(self, landmarks: np.ndarray | None, count: int) -> np.ndarray:
    """Landmarks [count, 6, 2] ((x, y) / size), NaN (the canonical crop's positions) for None."""
    if landmarks is None:
      return np.full((count, 6, 2), np.nan, np.float32)
    landmarks = np.asarray(landmarks, np.float32).reshape(-1, 6, 2)
    if len(landmarks) != count:
      raise ValueError(f"{len(landmarks)} landmark rows for {count} images")
    return landmarks

  def encode(self, crop: np.ndarray, landmarks: np.ndarray | None = None) -> FaceLatents:
    """Latents of one canonical face crop, uint8 [image_size, image_size, 3]; `landmarks`
    [6, 2] ((x, y) / size, `schema.LANDMARK_NAMES`) place the dynamics encoder's face crop
    (None: where the canonical crop puts the eyes and mouth)."""
    crop = self._check_images(crop, "encode")
    latents = self._encode(self.params, jnp.asarray(crop)[None],
                           jnp.asarray(self._landmarks(landmarks, 1)))
    return FaceLatents(v_app=latents["v_app"], z_id=latents["z_id"],
                       z_pose=np.asarray(latents["z_pose"][0], np.float32),
                       z_dyn=np.asarray(latents["z_dyn"][0], np.float32),
                       background=latents.get("background"),
                       background_flow=latents.get("background_flow"))

  def _batches(self, count: int):
    for start in range(0, count, self.batch_size):
      yield start, min(count, start + self.batch_size)

  def render(self, latents: FaceLatents, motion: np.ndarray) -> np.ndarray:
    """Frames of the photo's face with per-frame motion.

    Args:
      latents: the photo's (`encode`).
      motion: float32 [N, 7 + dyn_dim], z_pose then z_dyn per frame.

    Returns:
      uint8 [N, image_size, image_size, 3].
    """
    return self.fetch(self.dispatch(latents, motion))

  def dispatch(self, latents: FaceLatents, motion: np.ndarray) -> list[tuple[int, jax.Array]]:
    """Starts rendering (`render`'s arguments) and returns at once: the frames are computed while
    the caller goes on, and `fetch` waits for them."""
    motion = np.asarray(motion, np.float32)
    if motion.ndim != 2 or motion.shape[1] != self.motion_dim:
      raise ValueError(f"render takes motion [N, {self.motion_dim}]; got {list(motion.shape)}")
    pending = []
    for start, end in self._batches(len(motion)):
      chunk = np.zeros((self.batch_size, self.motion_dim), np.float32)
      chunk[:end - start] = motion[start:end]
      pending.append((end - start, self._render(
          self.params, latents.v_app, latents.z_id, jnp.asarray(chunk[:, :warping.POSE_DIM]),
          jnp.asarray(chunk[:, warping.POSE_DIM:]), latents.background,
          latents.background_flow, jnp.asarray(latents.z_pose)[None])))
    return pending

  def fetch(self, pending: list[tuple[int, jax.Array]]) -> np.ndarray:
    """The frames of a `dispatch`, uint8 [N, image_size, image_size, 3]."""
    if not pending:
      return np.zeros((0, self.image_size, self.image_size, 3), np.uint8)
    return np.concatenate([np.asarray(frames)[:n] for n, frames in pending])

  def encode_motion(self, frames: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
    """Motion [N, 7 + dyn_dim] of canonical crops uint8 [N, image_size, image_size, 3], with
    their landmarks [N, 6, 2] as in `encode` (None: the canonical positions)."""
    frames = self._check_images(frames, "encode_motion")
    landmarks = self._landmarks(landmarks, len(frames))
    out = []
    for start, end in self._batches(len(frames)):
      chunk = np.zeros((self.batch_size,) + frames.shape[1:], np.uint8)
      chunk[:end - start] = frames[start:end]
      chunk_landmarks = np.full((self.batch_size, 6, 2), np.nan, np.float32)
      chunk_landmarks[:end - start] = landmarks[start:end]
      z_pose, z_dyn = self._encode_motion(self.params, jnp.asarray(chunk),
                                          jnp.asarray(chunk_landmarks))
      out.append(np.concatenate([np.asarray(z_pose), np.asarray(z_dyn)], -1)[:end - start])
    if not out:
      return np.zeros((0, self.motion_dim), np.float32)
    return np.concatenate(out).astype(np.float32)
