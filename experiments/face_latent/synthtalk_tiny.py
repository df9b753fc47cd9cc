"""Stage 1 (face latent space) on SynthTalk's tiny config at 64x64: trains on a CPU in minutes.

  vasa synthtalk build --config tiny --data_dir DATA
  vasa train --config experiments/face_latent/synthtalk_tiny.py --workdir runs/face_tiny \
      --config.data.data_dir=DATA
  vasa evaluate --workdir runs/face_tiny
  vasa sweep experiments/face_latent/synthtalk_tiny.py --workdir runs/face_tiny_sweep \
      --config.data.data_dir=DATA

The recipe (`vasa_jax.trainers.face_latent`): `default_model` (the design switches),
`default_losses` (weights, the curriculum's start steps, region weighting),
`default_optimization` (one optimizer per network). `sweep()` turns each ingredient off alone.
"""

import ml_collections

from vasa_jax.configs import parse_arg
from vasa_jax.trainers import face_latent


def get_config(arg=None):
  arg = parse_arg(arg, variant="tiny", runlocal=False)
  config = ml_collections.ConfigDict()
  config.task = "face_latent"
  config.seed = 0
  config.model = face_latent.default_model(arg.variant)
  # cross_clip: the share of pairs whose driving frame comes from another clip of the identity;
  # nearby: of the others, the share whose driving frame is within nearby_frames of the source.
  config.data = ml_collections.ConfigDict(
      dict(data_dir="", dataset="synthtalk/tiny", worker_count=0, cross_clip=0.5, nearby=0.0,
           nearby_frames=8))
  config.batch_size = 8
  face_latent.default_optimization(config, total_steps=20 if arg.runlocal else 2000)
  config.losses = face_latent.default_losses()
  # Reconstruction and pose alone for the first 60% of the run, then the adversarial terms, then
  # consistency, contrastive and cross-identity for the last 20% (ours). A run with another
  # --config.total_steps keeps these steps unless --config.losses.start.* moves them too.
  config.losses.start = face_latent.curriculum(config.total_steps)
  config.grad_accum_steps = 1
  config.compute_dtype = "float32"
  config.ema_decay = 0.0
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, fsdp_min_size=2**14))
  config.log_every = 5 if arg.runlocal else 50
  config.checkpoint = ml_collections.ConfigDict(dict(every=500, keep=3, async_save=True))
  # SynthTalk tiny's validation split has 8 clips of 2 identities.
  config.evals = face_latent.default_evals(every=0 if arg.runlocal else 500, num_examples=16)
  config.evals.reenactment.identities = 2
  config.evals.transfer.num_pairs = 16
  return config


def sweep():
  """The recipe with each of its ingredients off alone, and VASA-1's two losses ablated."""
  return face_latent.ablations()
