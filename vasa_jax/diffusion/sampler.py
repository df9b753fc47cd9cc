"""Samplers for a model that predicts the clean signal x0 (not the noise): DDPM and DDIM.

Both walk a descending list of timesteps t_0 = T-1 > t_1 > ... > t_{n-1} > -1 (`sampling_timesteps`,
evenly spaced and starting at the last step, so the first step sees pure noise). One step from t to
s < t, given the model's x0_hat, is DDIM's (Song et al. 2021, eq. 12):
  eps_hat = (x_t - sqrt(a_t) x0_hat) / sqrt(1 - a_t)                      (a = alphas_cumprod)
  sigma   = eta sqrt((1 - a_s) / (1 - a_t)) sqrt(1 - a_t / a_s)
  x_s     = sqrt(a_s) x0_hat + sqrt(1 - a_s - sigma^2) eps_hat + sigma z
eta = 0 is deterministic DDIM; eta = 1 is ancestral DDPM sampling on the (respaced) schedule: with
all T steps it is exactly the DDPM posterior q(x_{t-1} | x_t, x0_hat) (`ddpm_posterior`, tested
equal). The last step lands on s = -1 (a_s = 1), where x_s = x0_hat.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.diffusion.schedules import NoiseSchedule
from vasa_jax.errors import UserError

METHODS = {"ddpm": 1.0, "ddim": 0.0}  # method -> eta


def sampling_timesteps(num_train_steps: int, num_sampling_steps: int) -> np.ndarray:
  """int32 `[num_sampling_steps + 1]`: T-1, ..., evenly spaced, ..., and -1 last."""
  if not 1 <= num_sampling_steps <= num_train_steps:
    raise UserError(f"{num_sampling_steps} sampling steps: use 1 to {num_train_steps} (the "
                    "schedule's T)")
  spacing = num_train_steps / num_sampling_steps
  steps = np.round(num_train_steps - spacing * np.arange(num_sampling_steps)).astype(np.int32) - 1
  return np.concatenate([steps, np.array([-1], np.int32)])


def ddpm_posterior(schedule: NoiseSchedule, x_t: jax.Array, x0: jax.Array,
                   t: int) -> tuple[jax.Array, jax.Array]:
  """(mean, variance) of q(x_{t-1} | x_t, x_0), one step of the full schedule (Ho et al. eq. 7)."""
  beta = schedule.betas[t]
  a_t, a_prev = schedule.alpha_bar(t), schedule.alpha_bar(t - 1)
  mean = (jnp.sqrt(a_prev) * beta / (1.0 - a_t)) * x0 + \
      (jnp.sqrt(1.0 - beta) * (1.0 - a_prev) / (1.0 - a_t)) * x_t
  return mean, (1.0 - a_prev) / (1.0 - a_t) * beta


def ddim_step(schedule: NoiseSchedule, x_t: jax.Array, x0_hat: jax.Array, t: jax.Array,
              t_prev: jax.Array, eta: float, noise: jax.Array) -> jax.Array:
  """x at step `t_prev` (< t; -1 for the clean signal) from x_t and the model's x0_hat."""
  a_t, a_s = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
  eps_hat = (x_t - jnp.sqrt(a_t) * x0_hat) / jnp.sqrt(1.0 - a_t)
  sigma = eta * jnp.sqrt((1.0 - a_s) / (1.0 - a_t)) * jnp.sqrt(1.0 - a_t / a_s)
  direction = jnp.sqrt(jnp.maximum(1.0 - a_s - sigma**2, 0.0))
  return jnp.sqrt(a_s) * x0_hat + direction * eps_hat + sigma * noise


def sample(predict_x0: Callable[[jax.Array, jax.Array], jax.Array], schedule: NoiseSchedule,
           shape: tuple[int, ...], rng: jax.Array, num_steps: int = 50,
           method: str = "ddim", eta: float | None = None) -> jax.Array:
  """Draws x0 `shape` (`[batch, ...]`) by running `predict_x0(x_t, t [batch]) -> x0_hat`.

  Args:
    predict_x0: the (guided) model; called once per step.
    schedule: the schedule the model was trained with.
    shape: the sample's shape; the leading axis is the batch.
    rng: fixes the starting noise and every step's noise: same rng, same sample.
    num_steps: sampling steps (<= T).
    method: "ddim" (eta 0 unless given) or "ddpm" (eta 1).
    eta: overrides the method's eta.
  """
  if method not in METHODS:
    raise UserError(f"sampler {method!r} is unknown; use one of {', '.join(METHODS)}")
  eta = METHODS[method] if eta is None else float(eta)
  timesteps = jnp.asarray(sampling_timesteps(schedule.num_steps, num_steps))
  start_rng, step_rng = jax.random.split(rng)
  x_start = jax.random.normal(start_rng, shape, jnp.float32)

  def step(x, inputs):
    index, t, t_prev = inputs
    x0_hat = predict_x0(x, jnp.full((shape[0],), t, jnp.int32)).astype(jnp.float32)
    noise = jax.random.normal(jax.random.fold_in(step_rng, index), shape, jnp.float32)
    return ddim_step(schedule, x, x0_hat, t, t_prev, eta, noise), None

  x0, _ = jax.lax.scan(step, x_start, (jnp.arange(num_steps), timesteps[:-1], timesteps[1:]))
  return x0
