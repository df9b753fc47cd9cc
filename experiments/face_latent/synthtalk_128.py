"""Stage 1 on SynthTalk `small` at 128x128 (variant "small"): the disentanglement run on a CPU.

  vasa synthtalk build --config small --data_dir DATA
  vasa train --config experiments/probes/synthtalk_probe.py --workdir runs/probe128 \
      --config.data.data_dir=DATA
  vasa train --config experiments/face_latent/synthtalk_128.py --workdir runs/face_128 \
      --config.data.data_dir=DATA --config.evals.transfer.probe_workdir=runs/probe128
  vasa evaluate --workdir runs/face_128

Evaluators (`config.evals`): held-out reconstruction PSNR/SSIM, a cross-reenactment grid, and
SynthTalk transfer: identity A driven by identity B's frame, scored against SynthTalk's own render of
A in B's state, with pose and mouth read back by a probe trained on SynthTalk frames.
`sweep()` ablates VASA-1's two extra losses (the cross-identity loss needs ArcFace weights,
config.losses.arcface_path, and is off without them).
"""

import ml_collections

from vasa_jax.configs import parse_arg
from vasa_jax.trainers import face_latent


def get_config(arg=None):
  arg = parse_arg(arg, variant="small", runlocal=False)
  config = ml_collections.ConfigDict()
  config.task = "face_latent"
  config.seed = 0
  config.model = face_latent.default_model(arg.variant)
  config.data = ml_collections.ConfigDict(
      dict(data_dir="", dataset="synthtalk/small", worker_count=0, cross_clip=0.5))
  config.batch_size = 8
  config.grad_accum_steps = 1
  config.compute_dtype = "float32"
  face_latent.default_optimization(config, total_steps=20 if arg.runlocal else 4000,
                                   peak_value=1e-3, warmup_steps=50)
  config.losses = face_latent.default_losses()
  config.losses.start = face_latent.curriculum(config.total_steps)
  config.ema_decay = 0.0
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, fsdp_min_size=2**14))
  config.log_every = 5 if arg.runlocal else 25
  config.checkpoint = ml_collections.ConfigDict(dict(every=100, keep=3, async_save=True))
  config.evals = face_latent.default_evals(every=0 if arg.runlocal else 250, num_examples=64)
  return config


def sweep():
  """The recipe with each of its ingredients off alone, and VASA-1's two losses ablated."""
  return face_latent.ablations()
