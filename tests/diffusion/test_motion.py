"""Window-after-window generation: each window continues from the last K frames of the one before."""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vasa_jax.diffusion import schedules
from vasa_jax.diffusion.motion import MotionGenerator, sampling_settings
from vasa_jax.models import motion_dit

W, K, M, A = 10, 4, 3, 2
SLOPE = 0.1


@dataclasses.dataclass
class ContinuingModel:
  """Predicts, whatever the noise, the straight continuation of the previous K frames, or a ramp
  from 0 when there are none: a sampler that hands the model the right frames gives one straight
  line over all windows; any other frames give a jump at a boundary."""

  config: motion_dit.MotionDiTConfig

  def apply(self, variables, x_t, t, conditions, keep):
    del variables, t
    previous = conditions["previous_motion"]
    step = previous[:, -1] - previous[:, -2]
    frames = jnp.arange(1, W + 1, dtype=jnp.float32)[None, :, None]
    continuation = previous[:, -1:] + step[:, None] * frames
    ramp = jnp.broadcast_to(SLOPE * (frames - 1), x_t.shape)
    return jnp.where(keep["previous"][:, None, None], continuation, ramp)


def make_generator(**kwargs):
  config = motion_dit.make_config("tiny", motion_dim=M, audio_dim=A, window=W, context=K,
                                  num_emotions=4)
  stats = {"motion_mean": np.zeros(M, np.float32), "motion_std": np.ones(M, np.float32),
           "audio_mean": np.zeros(A, np.float32), "audio_std": np.ones(A, np.float32)}
  return MotionGenerator(ContinuingModel(config), {}, schedules.make_schedule("cosine", 100), stats,
                         **kwargs)


@pytest.mark.parametrize("method", ["ddim", "ddpm"])
def test_windows_are_stitched_on_the_previous_k_frames(method):
  generator = make_generator(num_steps=5, method=method)
  frames = 3 * W + 4  # Three whole windows and a partial one.
  audio = np.random.default_rng(0).normal(size=(2, frames, A)).astype(np.float32)
  motion = generator.generate(audio, np.array([frames, frames - 7]), jax.random.key(0),
                              gaze=np.zeros((2, 2)))
  line = SLOPE * np.arange(frames, dtype=np.float32)
  np.testing.assert_allclose(motion[0], np.repeat(line[:, None], M, axis=1), atol=1e-4)
  np.testing.assert_allclose(motion[1, :frames - 7], np.repeat(line[:frames - 7, None], M, 1),
                             atol=1e-4)
  np.testing.assert_array_equal(motion[1, frames - 7:], 0.0)  # Past that clip's audio: cut.
  # Frame-to-frame velocity across each boundary equals the velocity inside the windows.
  velocity = np.diff(motion[0, :, 0])
  boundaries = np.arange(W, frames, W) - 1
  np.testing.assert_allclose(velocity[boundaries], SLOPE, atol=1e-4)


def test_continuing_from_given_motion():
  generator = make_generator(num_steps=3)
  previous = np.repeat((-SLOPE * np.arange(K, 0, -1, dtype=np.float32))[None, :, None], M, 2)
  motion = generator.generate(np.zeros((1, 2 * W, A), np.float32), None,
                              jax.random.key(0), previous_motion=previous,
                              previous_audio=np.zeros((1, K, A), np.float32))
  np.testing.assert_allclose(motion[0, :, 0], SLOPE * np.arange(2 * W), atol=1e-4)


def test_sampling_settings_come_from_the_config_then_the_overrides():
  sampling = ml_collections.ConfigDict(dict(steps=50, method="ddim", eta=0.5,
                                            guidance={"audio": 1.5, "gaze": 1}))
  assert sampling_settings(sampling) == dict(num_steps=50, method="ddim", eta=0.5,
                                             scales={"audio": 1.5, "gaze": 1.0})
  assert sampling_settings(sampling, num_steps=4, eta=0.0)["num_steps"] == 4
  assert sampling_settings(sampling, num_steps=4, eta=0.0)["eta"] == 0.0
  assert sampling_settings(sampling, method="ddpm")["eta"] is None  # DDPM has no eta.
  sampling.method, sampling.eta = "ddpm", None
  assert sampling_settings(sampling) == dict(num_steps=50, method="ddpm", eta=None,
                                             scales={"audio": 1.5, "gaze": 1.0})
