"""Stage 1 at the paper's size: 512x512, appearance volume 96x16x64x64, on prepared VoxCeleb2.

  vasa prepare --input VoxCeleb2/dev/mp4 --output PREPARED --resolution 512
  vasa train --config experiments/face_latent/vox2_512.py --workdir runs/face_512 \
      --config.data.data_dir=PREPARED --config.losses.vgg19_path=vgg19.safetensors \
      --config.losses.arcface_path=arcface_r50.safetensors

The MegaPortraits recipe METHOD.md gives: AdamW, cosine schedule 2e-4 to 1e-6, batch 16, 300K steps.
"""

import ml_collections

from vasa_jax.configs import common, face_latent, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, variant="paper")
  config = ml_collections.ConfigDict(dict(task="face_latent", seed=0))
  config.model = face_latent.default_model(arg.variant)
  config.data = ml_collections.ConfigDict(
      dict(data_dir="", dataset="talking_videos", worker_count=8, cross_clip=0.5))
  common.training(config, batch_size=16, total_steps=300_000, compute_dtype="bfloat16",
                  ema_decay=0.999, log_every=100, checkpoint_every=5000)
  face_latent.optimization(config, peak_value=2e-4, warmup_steps=1000)
  config.losses = face_latent.default_losses()
  config.losses.start = face_latent.curriculum(config.total_steps)
  # `vasa prepare` puts a share of the identities in "validation" (held out by identity).
  config.evals = face_latent.default_evals(every=10_000, num_examples=256, synthtalk=False)
  return config
