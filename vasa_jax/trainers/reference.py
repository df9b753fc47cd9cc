"""The reference task: a small convolutional autoencoder on generated images.

It is not part of VASA-1. It exists so that the trainer core (mesh, sharding, accumulation, EMA,
checkpoints, resume, multi-host) can be run, tested and timed on any machine in seconds, with data that
needs no files. Each image is a deterministic function of (seed, index): a colour gradient with a few
ellipses and rectangles, so reconstructions are easy to judge by eye.
"""

from __future__ import annotations

import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vasa_jax.data import pipelines, video_io
from vasa_jax.errors import UserError
from vasa_jax.trainers import common

# Encoder widths per downsampling stage; the decoder mirrors them.
VARIANTS = {
    "tiny": dict(widths=(16, 32), latent_channels=8),
    "small": dict(widths=(32, 64, 128), latent_channels=16),
    "base": dict(widths=(64, 128, 256, 512), latent_channels=32),
}


def decode_variant(variant: str) -> dict:
  if variant not in VARIANTS:
    raise UserError(f"config.model.variant={variant!r} is unknown; use one of {sorted(VARIANTS)}")
  return dict(VARIANTS[variant])


class ConvAutoencoder(nn.Module):
  """Images [batch, height, width, 3] in [0, 1] to a latent grid and back."""

  widths: tuple[int, ...]
  latent_channels: int
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  def _conv(self, features, name, stride=1):
    return nn.Conv(features, (3, 3), strides=stride, padding="SAME", dtype=self.dtype,
                   param_dtype=self.param_dtype, name=name)

  def _norm(self, name):
    return nn.GroupNorm(num_groups=None, group_size=8, dtype=self.dtype,
                        param_dtype=self.param_dtype, name=name)

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = images.astype(self.dtype) * 2.0 - 1.0
    for i, width in enumerate(self.widths):
      x = nn.silu(self._norm(f"enc_norm{i}")(self._conv(width, f"enc_conv{i}", stride=2)(x)))
    latent = self._conv(self.latent_channels, "to_latent")(x)
    x = latent
    for i, width in reversed(list(enumerate(self.widths))):
      x = nn.ConvTranspose(width, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype,
                           param_dtype=self.param_dtype, name=f"dec_up{i}")(x)
      x = nn.silu(self._norm(f"dec_norm{i}")(x))
    x = nn.Conv(3, (3, 3), padding="SAME", dtype=self.dtype, param_dtype=self.param_dtype,
                name="to_rgb")(x)
    return (jnp.tanh(x.astype(jnp.float32)) + 1.0) * 0.5


class GeneratedImages:
  """A grain random-access source of `num_examples` images `[size, size, 3]` float32 in [0, 1]."""

  def __init__(self, num_examples: int, image_size: int, seed: int):
    self.num_examples, self.image_size, self.seed = num_examples, image_size, seed

  def __len__(self) -> int:
    return self.num_examples

  def __getitem__(self, index: int) -> dict:
    index = int(index)
    rng = np.random.default_rng([self.seed, index])
    size = self.image_size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    start, end = rng.uniform(0, 1, (2, 3)).astype(np.float32)
    image = start + (end - start) * (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    for _ in range(rng.integers(1, 4)):
      color = rng.uniform(0, 1, 3).astype(np.float32)
      cx, cy = rng.uniform(0.15, 0.85, 2)
      rx, ry = rng.uniform(0.08, 0.3, 2)
      if rng.random() < 0.5:
        mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
      else:
        mask = (np.abs(xx - cx) <= rx) & (np.abs(yy - cy) <= ry)
      image = np.where(mask[..., None], color, image)
    return {"image": image.astype(np.float32), "index": np.int32(index)}


class ReferenceAutoencoderTask:
  """`common.Task` for the reference autoencoder: mean squared reconstruction error."""

  name = "reference_autoencoder"

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    dtype = jnp.dtype(config.compute_dtype)
    self.model = ConvAutoencoder(**decode_variant(config.model.variant), dtype=dtype,
                                 param_dtype=jnp.float32)
    self.image_size = int(config.data.image_size)
    downsampling = 2 ** len(self.model.widths)
    if self.image_size % downsampling:
      raise UserError(f"config.data.image_size={self.image_size} must be a multiple of "
                      f"{downsampling} for model variant {config.model.variant!r}")

  def model_summary(self) -> dict:
    return {"name": "conv_autoencoder", "variant": self.config.model.variant,
            "image_size": self.image_size}

  def init_params(self, rng: jax.Array):
    images = jnp.zeros((1, self.image_size, self.image_size, 3), jnp.float32)
    return self.model.init(rng, images)["params"]

  def reconstruct(self, params, images: jax.Array) -> jax.Array:
    return self.model.apply({"params": params}, images)

  def loss_fn(self, params, batch, rng):
    del rng  # Deterministic model.
    images = batch["image"].astype(jnp.float32)
    mse = jnp.mean((self.reconstruct(params, images) - images) ** 2)
    return mse, {"psnr": -10.0 * jnp.log10(mse + 1e-10)}

  def make_data_iterator(self, process_index: int, process_count: int):
    data = self.config.data
    source = GeneratedImages(data.num_examples, data.image_size, seed=data.seed)
    return pipelines.global_batch_iterator(
        source, seed=self.config.seed, global_batch_size=self.config.batch_size,
        process_index=process_index, process_count=process_count,
        worker_count=data.worker_count)


def make_task(config: ml_collections.ConfigDict) -> ReferenceAutoencoderTask:
  return ReferenceAutoencoderTask(config)


def train(config: ml_collections.ConfigDict, workdir: str) -> common.TrainResult:
  """Trains the reference autoencoder and writes `reconstructions.png` for held-out images."""
  task = make_task(config)
  result = common.train(config, workdir, task)
  params = result.state.ema_params if result.state.ema_params is not None else result.state.params
  if jax.process_count() > 1:  # Parameters may be sharded over hosts: every process takes part.
    from jax.experimental import multihost_utils

    params = multihost_utils.process_allgather(params, tiled=True)
  if jax.process_index() == 0:
    held_out = GeneratedImages(8, config.data.image_size, seed=config.data.seed + 1)
    images = np.stack([held_out[i]["image"] for i in range(len(held_out))])
    recon = np.asarray(jax.jit(task.reconstruct)(jax.device_get(params), images))
    mse = float(np.mean((recon - images) ** 2))
    path = video_io.write_image_grid([images, recon], result.workdir / "reconstructions.png")
    logging.info("Held-out reconstruction PSNR %.2f dB (%d images); top row inputs, bottom row "
                 "reconstructions: %s", -10 * np.log10(mse + 1e-10), len(images), path)
  return result

