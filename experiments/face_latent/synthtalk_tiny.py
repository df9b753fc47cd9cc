"""Stage 1 (face latent space) on SynthTalk's tiny config at 64x64: trains on a CPU in minutes.

  vasa synthtalk build --config tiny --data_dir DATA
  vasa train --config experiments/face_latent/synthtalk_tiny.py --workdir runs/face_tiny \
      --config.data.data_dir=DATA
  vasa evaluate --workdir runs/face_tiny

Loss weights: `vasa_jax.trainers.face_latent.default_losses`. The perceptual and cross-identity
losses need converted VGG19 / ArcFace weights (config.losses.*_path) and are off without them.
"""

import ml_collections

from vasa_jax.configs import parse_arg
from vasa_jax.trainers import face_latent


def get_config(arg=None):
  arg = parse_arg(arg, variant="tiny", runlocal=False)
  config = ml_collections.ConfigDict()
  config.task = "face_latent"
  config.seed = 0
  config.model = ml_collections.ConfigDict(dict(variant=arg.variant, remat=False))
  config.data = ml_collections.ConfigDict(
      dict(data_dir="", dataset="synthtalk/tiny", worker_count=0))
  config.losses = face_latent.default_losses()
  config.batch_size = 8
  config.total_steps = 20 if arg.runlocal else 2000
  config.grad_accum_steps = 1
  config.compute_dtype = "float32"
  config.optimizer = ml_collections.ConfigDict(
      dict(name="adamw", b1=0.5, b2=0.999, eps=1e-8, weight_decay=1e-2))
  config.schedule = ml_collections.ConfigDict(
      dict(name="cosine", peak_value=2e-4, end_value=1e-6, warmup_steps=50, decay_steps=0))
  config.grad_clip_norm = 1.0
  config.ema_decay = 0.0
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, fsdp_min_size=2**14))
  config.log_every = 5 if arg.runlocal else 50
  config.checkpoint = ml_collections.ConfigDict(dict(every=500, keep=3, async_save=True))
  # SynthTalk tiny's validation split has 8 clips of 2 identities.
  config.evals = face_latent.default_evals(every=0 if arg.runlocal else 500, num_examples=16)
  config.evals.reenactment.identities = 2
  config.evals.transfer.num_pairs = 16
  return config
