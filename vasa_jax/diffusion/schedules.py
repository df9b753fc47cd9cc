"""DDPM noise schedules and the forward process q(x_t | x_0).

Timesteps are 0-based: step t in 0..T-1 applies beta[t], and
  alphas_cumprod[t] = prod_{s <= t} (1 - beta[s]),
  x_t = sqrt(alphas_cumprod[t]) x_0 + sqrt(1 - alphas_cumprod[t]) eps,  eps ~ N(0, I).
So x_{T-1} is (almost) pure noise and "t = -1" is the clean signal (alphas_cumprod = 1), which is
where the last sampling step lands (`vasa_jax.diffusion.sampler`).

Schedules (`make_schedule`):
  "linear": beta from `beta_start` to `beta_end` (Ho et al. 2020: 1e-4 to 0.02 at T = 1000; other T
    scale both by 1000 / T, as Nichol & Dhariwal 2021 do, unless given explicitly);
  "cosine": alphas_cumprod[t] = f(t + 1) / f(0), f(u) = cos((u / T + s) / (1 + s) * pi / 2)^2, with
    each beta capped at `max_beta` (Nichol & Dhariwal 2021, s = 0.008, cap 0.999).
Values are computed in float64 and stored as float32 arrays.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.errors import UserError

SCHEDULES = ("linear", "cosine")


@dataclasses.dataclass(frozen=True)
class NoiseSchedule:
  """betas and alphas_cumprod, float32 `[T]`."""

  betas: np.ndarray
  alphas_cumprod: np.ndarray
  name: str = ""

  @property
  def num_steps(self) -> int:
    return len(self.betas)

  def alpha_bar(self, t: jax.Array) -> jax.Array:
    """alphas_cumprod at integer steps `t` (any shape); t = -1 gives 1 (the clean signal)."""
    table = jnp.concatenate([jnp.ones((1,), jnp.float32), jnp.asarray(self.alphas_cumprod)])
    return table[jnp.asarray(t) + 1]


def linear_betas(num_steps: int, beta_start: float | None = None,
                 beta_end: float | None = None) -> np.ndarray:
  scale = 1000.0 / num_steps
  beta_start = 1e-4 * scale if beta_start is None else beta_start
  beta_end = 0.02 * scale if beta_end is None else beta_end
  return np.linspace(beta_start, beta_end, num_steps, dtype=np.float64)


def cosine_betas(num_steps: int, offset: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
  u = np.arange(num_steps + 1, dtype=np.float64)
  f = np.cos((u / num_steps + offset) / (1.0 + offset) * np.pi / 2.0) ** 2
  alpha_bar = f / f[0]
  return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], max_beta)


def make_schedule(name: str, num_steps: int, **kwargs) -> NoiseSchedule:
  """The schedule `name` ("linear" or "cosine") with `num_steps` (T) steps.

  kwargs: `beta_start`, `beta_end` for "linear"; `offset`, `max_beta` for "cosine".
  """
  if num_steps < 1:
    raise UserError(f"a noise schedule needs at least one step, not {num_steps}")
  if name == "linear":
    betas = linear_betas(num_steps, **kwargs)
  elif name == "cosine":
    betas = cosine_betas(num_steps, **kwargs)
  else:
    raise UserError(f"noise schedule {name!r} is unknown; use one of {', '.join(SCHEDULES)}")
  if not np.all((betas > 0) & (betas < 1)):
    raise UserError(f"the {name} schedule with T={num_steps} and {kwargs} has betas outside (0, 1)")
  alphas_cumprod = np.cumprod(1.0 - betas)
  return NoiseSchedule(betas=betas.astype(np.float32),
                       alphas_cumprod=alphas_cumprod.astype(np.float32), name=name)


def q_sample(schedule: NoiseSchedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
  """x_t from x_0 `[batch, ...]`, integer steps `t` `[batch]` and Gaussian `noise` like x_0."""
  alpha_bar = schedule.alpha_bar(t).reshape((-1,) + (1,) * (x0.ndim - 1))
  return jnp.sqrt(alpha_bar) * x0 + jnp.sqrt(1.0 - alpha_bar) * noise
