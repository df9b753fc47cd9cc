"""Image similarity in JAX: PSNR and SSIM (Wang et al. 2004, 11-tap Gaussian window, sigma 1.5).

Images are float `[batch, H, W, C]` with values in [0, `data_range`]; both functions return one value
per image. SSIM is computed per channel over the windows that fit inside the image and averaged, as
`skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, channel_axis=-1)` does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_K1, _K2 = 0.01, 0.03


def to_signed(images) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1], the range the models take and give."""
  return jnp.asarray(images).astype(jnp.float32) / 127.5 - 1.0


def to_unit(images) -> jax.Array:
  """[-1, 1] -> float32 [0, 1], the range these metrics take."""
  return (jnp.asarray(images).astype(jnp.float32) + 1.0) / 2.0


def psnr(pred: jax.Array, target: jax.Array, data_range: float = 1.0) -> jax.Array:
  mse = jnp.mean(jnp.square(pred.astype(jnp.float32) - target.astype(jnp.float32)),
                 axis=(1, 2, 3))
  return 10.0 * jnp.log10(data_range**2 / jnp.maximum(mse, 1e-12))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2
  g = np.exp(-x**2 / (2 * sigma**2))
  return (g / g.sum()).astype(np.float32)


def _blur_valid(x: jax.Array, window: np.ndarray) -> jax.Array:
  """Separable filter of each channel, keeping only positions where the window fits."""
  channels = x.shape[-1]
  size = len(window)
  kw = dict(window_strides=(1, 1), padding="VALID", feature_group_count=channels,
            dimension_numbers=("NHWC", "HWIO", "NHWC"))
  rows = jnp.tile(jnp.asarray(window).reshape(size, 1, 1, 1), (1, 1, 1, channels))
  cols = jnp.tile(jnp.asarray(window).reshape(1, size, 1, 1), (1, 1, 1, channels))
  x = jax.lax.conv_general_dilated(x, rows, **kw)
  return jax.lax.conv_general_dilated(x, cols, **kw)


def ssim(pred: jax.Array, target: jax.Array, data_range: float = 1.0,
         window_size: int = 11, sigma: float = 1.5) -> jax.Array:
  a, b = pred.astype(jnp.float32), target.astype(jnp.float32)
  if min(a.shape[1:3]) < window_size:
    raise ValueError(f"SSIM needs images of at least {window_size}x{window_size}, got {a.shape}")
  window = gaussian_window(window_size, sigma)
  mu_a, mu_b = _blur_valid(a, window), _blur_valid(b, window)
  var_a = _blur_valid(a * a, window) - mu_a**2
  var_b = _blur_valid(b * b, window) - mu_b**2
  cov = _blur_valid(a * b, window) - mu_a * mu_b
  c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
  score = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
  return jnp.mean(score, axis=(1, 2, 3))
