"""The reference task: a small conv autoencoder on generated images, to exercise the trainer core.

  vasa train --config experiments/reference_autoencoder.py --workdir /tmp/ref
  vasa train --config experiments/reference_autoencoder.py:variant=base,image_size=64 --workdir ...

Arguments (comma-separated): variant (tiny | small | base), image_size, runlocal (a few steps only).
"""

import ml_collections

from vasa_jax.configs import parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, variant="tiny", image_size=32, runlocal=False)
  config = ml_collections.ConfigDict()
  config.task = "reference_autoencoder"
  config.seed = 0

  config.model = ml_collections.ConfigDict()
  config.model.variant = arg.variant

  config.data = ml_collections.ConfigDict()
  config.data.image_size = arg.image_size
  config.data.num_examples = 4096
  config.data.seed = 1234
  config.data.worker_count = 0

  config.batch_size = 32  # Global, over all devices and processes.
  config.total_steps = 20 if arg.runlocal else 300
  config.grad_accum_steps = 1
  config.compute_dtype = "float32"  # "bfloat16" on accelerators; parameters stay float32.

  config.optimizer = ml_collections.ConfigDict(
      dict(name="adamw", b1=0.9, b2=0.99, eps=1e-8, weight_decay=1e-4))
  config.schedule = ml_collections.ConfigDict(
      dict(name="cosine", peak_value=3e-3, end_value=1e-4, warmup_steps=20, decay_steps=0))
  config.grad_clip_norm = 1.0
  config.ema_decay = 0.0  # e.g. 0.999 keeps an EMA of the parameters (0 = off).

  # -1 = all devices. fsdp > 1 shards parameters and optimizer state (arrays >= fsdp_min_size).
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, fsdp_min_size=2**14))

  config.log_every = 5 if arg.runlocal else 25
  config.checkpoint = ml_collections.ConfigDict(dict(every=100, keep=3, async_save=True))
  return config

