"""The reference task: a small conv autoencoder on generated images, to exercise the trainer core.

  vasa train --config experiments/reference_autoencoder.py --workdir /tmp/ref
  vasa train --config experiments/reference_autoencoder.py:variant=base,image_size=64 --workdir ...

Arguments (comma-separated): variant (tiny | small | base), image_size, runlocal (a few steps only).
"""

import ml_collections

from vasa_jax.configs import common, parse_arg


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

  # The keys of the trainer core (see `common.training`): batch_size is global, over all devices
  # and processes; compute_dtype "bfloat16" on accelerators; ema_decay 0.999 would keep an EMA.
  common.training(config, batch_size=32, total_steps=20 if arg.runlocal else 300,
                  optimizer=common.adamw(b2=0.99),
                  schedule=common.cosine(3e-3, end_value=1e-4, warmup_steps=20),
                  log_every=5 if arg.runlocal else 25, checkpoint_every=100)
  return config

