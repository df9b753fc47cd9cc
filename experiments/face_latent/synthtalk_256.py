"""Stage 1 on SynthTalk `base` at 256x256 (variant "base", about 83M parameters): an accelerator run.

  vasa synthtalk build --config base --data_dir DATA
  vasa train --config experiments/face_latent/synthtalk_256.py --workdir runs/face_256 \
      --config.data.data_dir=DATA --config.evals.transfer.probe_workdir=runs/probe256
  vasa evaluate --workdir runs/face_256

The probe for the transfer evaluator: experiments/probes/synthtalk_probe.py with
dataset=synthtalk/base. `sweep()` ablates VASA-1's consistency and cross-identity losses.
"""

import ml_collections

from vasa_jax.configs import parse_arg
from vasa_jax.trainers import face_latent


def get_config(arg=None):
  arg = parse_arg(arg, variant="base", runlocal=False)
  config = ml_collections.ConfigDict()
  config.task = "face_latent"
  config.seed = 0
  config.model = face_latent.default_model(arg.variant)
  config.data = ml_collections.ConfigDict(
      dict(data_dir="", dataset="synthtalk/base", worker_count=8, cross_clip=0.5))
  config.batch_size = 16
  config.grad_accum_steps = 1
  config.compute_dtype = "bfloat16"
  face_latent.default_optimization(config, total_steps=20 if arg.runlocal else 100_000,
                                   peak_value=5e-4, warmup_steps=1000)
  config.losses = face_latent.default_losses()
  config.losses.start = face_latent.curriculum(config.total_steps)
  config.ema_decay = 0.999
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, fsdp_min_size=2**14))
  config.log_every = 5 if arg.runlocal else 100
  config.checkpoint = ml_collections.ConfigDict(dict(every=2000, keep=3, async_save=True))
  config.evals = face_latent.default_evals(every=0 if arg.runlocal else 5000, num_examples=256)
  return config


def sweep():
  """The recipe with each of its ingredients off alone, and VASA-1's two losses ablated."""
  return face_latent.ablations()
