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


def sampling_settings(sampling: Any, **overrides) -> dict[str, Any]:
  """`MotionGenerator`'s sampler settings (num_steps, method, eta, scales) from a motion config's
  `sampling` block (steps, method, eta, guidance), then `overrides`; eta only for DDIM."""
  method = str(overrides.get("method", sampling["method"]))
  eta = sampling.get("eta")
  settings = dict(num_steps=int(sampling["steps"]), method=method,
                  eta=None if eta is None else float(eta),
                  scales={k: float(v) for k, v in dict(sampling["guidance"]).items()})
  settings.update(overrides)
  if method != "ddim":
    settings["eta"] = None
  return settings


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

  def stream(self, rng: jax.Array, batch: int = 1, *, gaze: np.ndarray | None = None,
             distance: np.ndarray | None = None, emotion: np.ndarray | None = None,
             previous_motion: np.ndarray | None = None,
             previous_audio: np.ndarray | None = None) -> MotionStream:
    """A `MotionStream`: motion for audio that arrives over time, window after window.

    Args: as `generate`.
    """
    def given(value, shape, dtype):
      if value is None:
        return np.zeros(shape, dtype), np.zeros((batch,), bool)
      return np.asarray(value, dtype).reshape(shape), np.ones((batch,), bool)

    controls = {}
    for name, value, shape, dtype in (("gaze", gaze, (batch, 2), np.float32),
                                      ("distance", distance, (batch,), np.float32),
                                      ("emotion", emotion, (batch,), np.int32)):
      controls[name], controls[f"keep_{name}"] = given(value, shape, dtype)
    K, motion_dim = self.context, self.model.config.motion_dim
    audio_dim = self.model.config.audio_dim
    if previous_motion is None:
      history_motion = np.zeros((batch, K, motion_dim), np.float32)
      history_audio = np.zeros((batch, K, audio_dim), np.float32)
      has_previous = np.zeros((batch,), bool)
    else:
      history_motion = self.normalize_motion(previous_motion).reshape(batch, K, motion_dim)
      history_audio = self.normalize_audio(previous_audio).reshape(batch, K, audio_dim)
      has_previous = np.ones((batch,), bool)
    return MotionStream(self, rng, controls, history_motion, history_audio, has_previous)

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
    audio = np.asarray(audio, np.float32)
    batch, total, _ = audio.shape
    num_frames = np.full((batch,), total) if num_frames is None else np.asarray(num_frames)
    present = (np.arange(total)[None] < num_frames[:, None]) & (not without_audio)
    stream = self.stream(rng, batch, gaze=gaze, distance=distance, emotion=emotion,
                         previous_motion=previous_motion, previous_audio=previous_audio)
    W = self.window
    motion = np.concatenate([stream.next(audio[:, s:s + W], present[:, s:s + W])
                             for s in range(0, total, W)], axis=1)
    motion[~(np.arange(total)[None] < num_frames[:, None])] = 0.0
    return motion


@dataclasses.dataclass
class MotionStream:
  """Sampling state between windows: the controls and the last K frames of motion and audio.

  Build one with `MotionGenerator.stream`. Each `next` call samples one window whose first frames
  have audio (the rest is marked absent, as training's dropped audio tail), keeps its first
  `commit` frames and continues the next window from the last K frames kept so far. With whole
  windows committed this is exactly `MotionGenerator.generate`; committing fewer frames than a window
  gives motion for audio as it arrives, a few frames at a time, at the cost of sampling more windows.
  """

  generator: MotionGenerator
  rng: jax.Array
  controls: dict[str, np.ndarray]
  history_motion: np.ndarray  # [B, K, M] normalised
  history_audio: np.ndarray  # [B, K, A] normalised
  has_previous: np.ndarray  # [B] bool
  windows: int = 0

  def next(self, audio: np.ndarray, present: np.ndarray | None = None,
           commit: int | None = None) -> np.ndarray:
    """Samples one window.

    Args:
      audio: `[batch, n, audio_dim]` features (not normalised) of the window's first n <= W frames.
      present: `[batch, n]` which of those frames have audio (default all); the remaining W - n
        frames of the window hear nothing.
      commit: how many frames of the window to return and continue from (default n).

    Returns:
      `[batch, commit, motion_dim]` motion in the cache's units.
    """
    g = self.generator
    W, K = g.window, g.context
    audio = g.normalize_audio(audio)
    batch, n, audio_dim = audio.shape
    commit = n if commit is None else int(commit)
    if not 0 < n <= W or not 0 < commit <= W:
      raise ValueError(f"a window takes 1..{W} frames of audio and commits 1..{W}; got {n}, "
                       f"{commit}")
    window_audio = np.zeros((batch, W, audio_dim), np.float32)
    window_audio[:, :n] = audio
    keep_audio = np.zeros((batch, W), bool)
    keep_audio[:, :n] = True if present is None else np.asarray(present, bool)
    c = self.controls
    conditions = {"previous_motion": jnp.asarray(self.history_motion),
                  "previous_audio": jnp.asarray(self.history_audio),
                  "audio": jnp.asarray(window_audio), "gaze": jnp.asarray(c["gaze"]),
                  "distance": jnp.asarray(c["distance"]), "emotion": jnp.asarray(c["emotion"])}
    keep = {"audio": jnp.asarray(keep_audio), "gaze": jnp.asarray(c["keep_gaze"]),
            "distance": jnp.asarray(c["keep_distance"]),
            "emotion": jnp.asarray(c["keep_emotion"]), "previous": jnp.asarray(self.has_previous)}
    x0 = np.asarray(g._window(g.params, jax.random.fold_in(self.rng, self.windows), conditions,
                              keep))
    self.windows += 1
    kept = x0[:, :commit]
    if K:
      history_motion, history_audio = self.history_motion, self.history_audio
      if commit < K:
        # Rows without earlier frames start as if the head had been still at the first frame
        # (and silent: normalised audio 0 is the mean feature) before it.
        fresh = ~self.has_previous
        history_motion = np.where(fresh[:, None, None], kept[:, :1], history_motion)
        history_audio = np.where(fresh[:, None, None], 0.0, history_audio)
      self.history_motion = np.concatenate([history_motion, kept], axis=1)[:, -K:]
      self.history_audio = np.concatenate([history_audio, window_audio[:, :commit]],
                                          axis=1)[:, -K:]
      self.has_previous = np.ones((batch,), bool)
    return g.denormalize_motion(kept)
