"""Audio to motion: the trained motion generator sampled window after window, for audio of any length.

Window w covers frames [w W, (w + 1) W). It is sampled (DDPM or DDIM, with multi-condition
classifier-free guidance) conditioned on its audio and on the last K frames of motion and audio of
window w - 1, exactly as training showed the model a window and the K frames before it; the first
window has no previous frames (its "previous" condition is absent, or `previous_motion` is given).
Frames of the last window past the end of the audio have their audio marked absent, which is what
training's random dropping of the audio tail prepares the model for; they are cut from the output.

Everything here works on normalised motion and audio (`MotionGenerator.normalize_audio`,
`denormalize_motion`); the caller gets motion in the cache's units.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.diffusion import guidance, sampler
from vasa_jax.diffusion.schedules import NoiseSchedule
from vasa_jax.models import motion_dit


@dataclasses.dataclass
class MotionGenerator:
  """A trained motion model and how to sample it.

  Attributes:
    model: the `MotionDiT`; params: its parameters (EMA ones for sampling).
    schedule: the training noise schedule.
    stats: {"motion_mean", "motion_std", "audio_mean", "audio_std"} of the training cache.
    num_steps, method, eta: sampler settings (`vasa_jax.diffusion.sampler.sample`).
    scales: guidance scale per condition, e.g. {"audio": 0.5, "gaze": 1.0}.
  """

  model: motion_dit.MotionDiT
  params: Any
  schedule: NoiseSchedule
  stats: Mapping[str, np.ndarray]
  num_steps: int = 50
  method: str = "ddim"
  eta: float | None = None
  scales: Mapping[str, float] = dataclasses.field(
      default_factory=lambda: {"audio": 0.5, "gaze": 1.0})

  def __post_init__(self):
    self._window = jax.jit(self._sample_window)

  @property
  def window(self) -> int:
    return self.model.config.window

  @property
  def context(self) -> int:
    return self.model.config.context

  def normalize_audio(self, audio: np.ndarray) -> np.ndarray:
    return (np.asarray(audio, np.float32) - self.stats["audio_mean"]) / self.stats["audio_std"]

  def normalize_motion(self, motion: np.ndarray) -> np.ndarray:
    return (np.asarray(motion, np.float32) - self.stats["motion_mean"]) / self.stats["motion_std"]

  def denormalize_motion(self, motion: np.ndarray) -> np.ndarray:
    return np.asarray(motion, np.float32) * self.stats["motion_std"] + self.stats["motion_mean"]

  def _sample_window(self, params, rng, conditions, keep):
    def predict(x_t, t, conds, kept):
      return self.model.apply({"params": params}, x_t, t, conds, kept)

    def guided(x_t, t):
      return guidance.guided_x0(predict, x_t, t, conditions, keep, self.scales)

    shape = (conditions["audio"].shape[0], self.window, self.model.config.motion_dim)
    return sampler.sample(guided, self.schedule, shape, rng, self.num_steps, self.method, self.eta)

  def generate(self, audio: np.ndarray, num_frames: np.ndarray | None, rng: jax.Array, *,
               gaze: np.ndarray | None = None, distance: np.ndarray | None = None,
               emotion: np.ndarray | None = None, previous_motion: np.ndarray | None = None,
               previous_audio: np.ndarray | None = None, without_audio: bool = False
               ) -> np.ndarray:
    """Motion for audio features, window after window.

    Args:
      audio: `[batch, frames, audio_dim]` audio features (not normalised), one row per video frame.
      num_frames: `[batch]` real frames of each row (the rest is padding); None: all.
      rng: the same key gives the same motion.
      gaze `[batch, 2]` (theta, phi radians), distance `[batch]`, emotion int `[batch]`: the
        controls; None leaves a control absent (the model's own choice).
      previous_motion `[batch, K, motion_dim]` / previous_audio `[batch, K, audio_dim]`: motion
        to continue from (e.g. the end of an earlier call); None: the first window has none.
      without_audio: mark all audio absent (the model's motion when it hears nothing).

    Returns:
      `[batch, frames, motion_dim]` float32 motion in the cache's units; frames past `num_frames`
      are zero.
    """
    audio = self.normalize_audio(audio)
    batch, total, audio_dim = audio.shape
    num_frames = np.full((batch,), total) if num_frames is None else np.asarray(num_frames)
    W, K = self.window, self.context
    motion_dim = self.model.config.motion_dim
    num_windows = -(-total // W)
    padded = np.zeros((batch, num_windows * W, audio_dim), np.float32)
    padded[:, :total] = audio
    frame = np.arange(num_windows * W)
    audio_present = (frame[None] < num_frames[:, None]) & (not without_audio)

    def given(value, shape, dtype):
      if value is None:
        return np.zeros(shape, dtype), np.zeros((batch,), bool)
      return np.asarray(value, dtype).reshape(shape), np.ones((batch,), bool)

    gaze, keep_gaze = given(gaze, (batch, 2), np.float32)
    distance, keep_distance = given(distance, (batch,), np.float32)
    emotion, keep_emotion = given(emotion, (batch,), np.int32)
    if previous_motion is None:
      prev_motion = np.zeros((batch, K, motion_dim), np.float32)
      prev_audio = np.zeros((batch, K, audio_dim), np.float32)
      keep_previous = np.zeros((batch,), bool)
    else:
      prev_motion = self.normalize_motion(previous_motion)
      prev_audio = self.normalize_audio(previous_audio)
      keep_previous = np.ones((batch,), bool)

    windows = []
    for w in range(num_windows):
      span = slice(w * W, (w + 1) * W)
      conditions = {"previous_motion": jnp.asarray(prev_motion),
                    "previous_audio": jnp.asarray(prev_audio),
                    "audio": jnp.asarray(padded[:, span]), "gaze": jnp.asarray(gaze),
                    "distance": jnp.asarray(distance), "emotion": jnp.asarray(emotion)}
      keep = {"audio": jnp.asarray(audio_present[:, span]), "gaze": jnp.asarray(keep_gaze),
              "distance": jnp.asarray(keep_distance), "emotion": jnp.asarray(keep_emotion),
              "previous": jnp.asarray(keep_previous)}
      x0 = np.asarray(self._window(self.params, jax.random.fold_in(rng, w), conditions, keep))
      windows.append(x0)
      if K:
        prev_motion, prev_audio = x0[:, W - K:], padded[:, span][:, W - K:]
        keep_previous = np.ones((batch,), bool)
    motion = self.denormalize_motion(np.concatenate(windows, axis=1)[:, :total])
    motion[frame[None, :total] >= num_frames[:, None]] = 0.0
    return motion
