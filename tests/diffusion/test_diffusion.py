"""Noise schedules against hand-computed values, one DDIM step on known inputs, the samplers on
models whose right answer is known, and the multi-condition guidance formula."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.diffusion import guidance, sampler, schedules
from vasa_jax.errors import UserError


def small_schedule():
  # betas 0.1, 0.2, 0.3, 0.4 -> alphas_cumprod 0.9, 0.72, 0.504, 0.3024.
  return schedules.make_schedule("linear", 4, beta_start=0.1, beta_end=0.4)


def test_linear_schedule_values():
  s = small_schedule()
  np.testing.assert_allclose(s.betas, [0.1, 0.2, 0.3, 0.4], rtol=1e-6)
  np.testing.assert_allclose(s.alphas_cumprod, [0.9, 0.72, 0.504, 0.3024], rtol=1e-6)
  np.testing.assert_allclose(s.alpha_bar(jnp.array([-1, 0, 3])), [1.0, 0.9, 0.3024], rtol=1e-6)
  ho = schedules.make_schedule("linear", 1000)  # Ho et al.: 1e-4 .. 0.02.
  assert ho.betas[0] == pytest.approx(1e-4) and ho.betas[-1] == pytest.approx(0.02)
  assert ho.betas[1] == pytest.approx(1e-4 + 0.0199 / 999)
  assert ho.alphas_cumprod[1] == pytest.approx(0.9999 * (1 - 1e-4 - 0.0199 / 999), rel=1e-6)
  # Other T scale both ends by 1000 / T.
  assert schedules.make_schedule("linear", 100).betas[-1] == pytest.approx(0.2)


def test_cosine_schedule_values():
  # offset 0, T = 2: f = 1, 1/2, 0 -> alphas_cumprod 1/2 then 0, the last beta capped at 0.999.
  s = schedules.make_schedule("cosine", 2, offset=0.0)
  np.testing.assert_allclose(s.betas, [0.5, 0.999], rtol=1e-6)
  np.testing.assert_allclose(s.alphas_cumprod, [0.5, 0.0005], rtol=1e-5)
  s = schedules.make_schedule("cosine", 1000)
  f = lambda u: math.cos((u / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
  assert s.alphas_cumprod[0] == pytest.approx(f(1) / f(0), rel=1e-6)
  assert s.alphas_cumprod[499] == pytest.approx(f(500) / f(0), rel=1e-5)
  assert s.betas[-1] == pytest.approx(0.999)


def test_bad_schedules_are_refused():
  with pytest.raises(UserError, match="unknown"):
    schedules.make_schedule("sigmoid", 10)
  with pytest.raises(UserError, match="outside"):
    schedules.make_schedule("linear", 4, beta_start=0.5, beta_end=1.5)


def test_q_sample():
  s = small_schedule()
  x = schedules.q_sample(s, jnp.ones((2, 3)), jnp.array([1, 3]), jnp.full((2, 3), 2.0))
  np.testing.assert_allclose(x[0], math.sqrt(0.72) + 2 * math.sqrt(0.28), rtol=1e-6)
  np.testing.assert_allclose(x[1], math.sqrt(0.3024) + 2 * math.sqrt(0.6976), rtol=1e-6)


def test_sampling_timesteps():
  np.testing.assert_array_equal(sampler.sampling_timesteps(4, 4), [3, 2, 1, 0, -1])
  np.testing.assert_array_equal(sampler.sampling_timesteps(1000, 10),
                                [999, 899, 799, 699, 599, 499, 399, 299, 199, 99, -1])
  steps = sampler.sampling_timesteps(1000, 50)
  assert steps[0] == 999 and steps[1] == 979 and steps[-2] == 19 and len(steps) == 51
  with pytest.raises(UserError):
    sampler.sampling_timesteps(10, 11)


def test_one_ddim_step_on_known_inputs():
  s = small_schedule()
  x_t, x0_hat, noise = jnp.array([1.0, -2.0]), jnp.array([0.5, 0.25]), jnp.array([0.3, -1.0])
  a_t, a_s = 0.3024, 0.72
  eps = (np.array([1.0, -2.0]) - math.sqrt(a_t) * np.array([0.5, 0.25])) / math.sqrt(1 - a_t)
  deterministic = sampler.ddim_step(s, x_t, x0_hat, 3, 1, 0.0, noise)
  np.testing.assert_allclose(deterministic, math.sqrt(a_s) * np.array([0.5, 0.25])
                             + math.sqrt(1 - a_s) * eps, rtol=1e-5)
  sigma = math.sqrt((1 - a_s) / (1 - a_t)) * math.sqrt(1 - a_t / a_s)
  stochastic = sampler.ddim_step(s, x_t, x0_hat, 3, 1, 1.0, noise)
  np.testing.assert_allclose(stochastic, math.sqrt(a_s) * np.array([0.5, 0.25])
                             + math.sqrt(1 - a_s - sigma**2) * eps
                             + sigma * np.array([0.3, -1.0]), rtol=1e-5)
  # The last step lands on the prediction itself.
  np.testing.assert_allclose(sampler.ddim_step(s, x_t, x0_hat, 0, -1, 1.0, noise), x0_hat)


@pytest.mark.parametrize("t", [1, 2, 3])
def test_ddpm_is_ddim_with_eta_one_on_the_full_schedule(t):
  s = small_schedule()
  x_t, x0, noise = jnp.array([0.7, -1.3]), jnp.array([0.2, 0.9]), jnp.array([1.1, -0.4])
  mean, variance = sampler.ddpm_posterior(s, x_t, x0, t)
  np.testing.assert_allclose(sampler.ddim_step(s, x_t, x0, t, t - 1, 1.0, noise),
                             mean + jnp.sqrt(variance) * noise, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["ddim", "ddpm"])
def test_a_model_that_always_returns_the_same_x0_is_reproduced(method):
  target = jnp.linspace(-2.0, 3.0, 12).reshape(2, 3, 2)
  s = schedules.make_schedule("cosine", 1000)
  calls = []

  def constant(x_t, t):
    calls.append(t.shape)
    return target

  out = sampler.sample(constant, s, target.shape, jax.random.key(0), num_steps=10, method=method)
  np.testing.assert_allclose(out, target, rtol=1e-6)
  assert calls == [(2,)]  # Traced once inside the scan, with a per-example step.


@pytest.mark.parametrize("method,steps", [("ddpm", 100), ("ddim", 50)])
def test_samplers_draw_the_data_distribution_with_the_exact_x0_predictor(method, steps):
  # Data N(mu, s^2): E[x0 | x_t] = mu + sqrt(a) s^2 / (a s^2 + 1 - a) (x_t - sqrt(a) mu). A sampler
  # that mistook x0 for the noise (or the reverse) would not give back mu and s.
  mu, std = 1.5, 0.5
  s = schedules.make_schedule("cosine", 1000)

  def exact(x_t, t):
    a = s.alpha_bar(t)[:, None]
    return mu + jnp.sqrt(a) * std**2 / (a * std**2 + 1 - a) * (x_t - jnp.sqrt(a) * mu)

  out = np.asarray(sampler.sample(exact, s, (4000, 1), jax.random.key(1), steps, method))
  assert out.mean() == pytest.approx(mu, abs=0.04)
  assert out.std() == pytest.approx(std, rel=0.06)


def test_sampling_is_seeded():
  s = schedules.make_schedule("cosine", 100)
  model = lambda x, t: 0.5 * x  # noqa: E731
  a = sampler.sample(model, s, (2, 4), jax.random.key(3), 10, "ddpm")
  b = sampler.sample(model, s, (2, 4), jax.random.key(3), 10, "ddpm")
  c = sampler.sample(model, s, (2, 4), jax.random.key(4), 10, "ddpm")
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


def fake_predict(x_t, t, conditions, keep):
  """Returns a different value for each set of present conditions: 1 + 10 audio + 100 gaze."""
  del t
  value = 1.0 + 10.0 * keep["audio"].all(axis=1) + 100.0 * keep["gaze"] + conditions["bias"]
  return jnp.broadcast_to(value[:, None], x_t.shape)


def test_multi_condition_guidance_formula():
  batch = 3
  keep = {"audio": jnp.ones((batch, 5), bool), "gaze": jnp.ones((batch,), bool)}
  conditions = {"bias": jnp.arange(batch, dtype=jnp.float32)}
  x_t, t = jnp.zeros((batch, 2)), jnp.zeros((batch,), jnp.int32)
  out = guidance.guided_x0(fake_predict, x_t, t, conditions, keep, {"audio": 0.5, "gaze": 1.0})
  full = 111.0 + np.arange(batch)
  no_audio, no_gaze = 101.0 + np.arange(batch), 11.0 + np.arange(batch)
  expected = (1 + 0.5 + 1.0) * full - 0.5 * no_audio - 1.0 * no_gaze
  np.testing.assert_allclose(out[:, 0], expected, rtol=1e-6)
  plain = guidance.guided_x0(fake_predict, x_t, t, conditions, keep, {"audio": 0.0, "gaze": 0.0})
  np.testing.assert_allclose(plain[:, 0], full)


def test_condition_dropout_rates_and_whole_window_audio():
  batch = 20000
  keep = {"audio": jnp.ones((batch, 6), bool), "gaze": jnp.ones((batch,), bool),
          "previous": jnp.ones((batch,), bool)}
  kept = guidance.drop_conditions(jax.random.key(0), keep,
                                  {"audio": 0.1, "gaze": 0.1, "previous": 0.5})
  audio = np.asarray(kept["audio"])
  assert np.all(audio.all(axis=1) | ~audio.any(axis=1))  # All of a window's frames, or none.
  assert audio[:, 0].mean() == pytest.approx(0.9, abs=0.01)
  assert np.asarray(kept["gaze"]).mean() == pytest.approx(0.9, abs=0.01)
  assert np.asarray(kept["previous"]).mean() == pytest.approx(0.5, abs=0.015)
  # Independent draws per condition.
  both = (audio[:, 0] & np.asarray(kept["gaze"])).mean()
  assert both == pytest.approx(0.81, abs=0.012)
  # A condition already absent stays absent.
  again = guidance.drop_conditions(jax.random.key(1), guidance.without(keep, "gaze"), {"gaze": 0.0})
  assert not np.asarray(again["gaze"]).any()
