"""Stage 2 at the paper's size on prepared VoxCeleb2: the motion transformer of VASA-1.

  vasa train --config experiments/motion/vox2.py --workdir runs/motion_vox2 \
      --config.data.data_dir=PREPARED --config.stage1.workdir=runs/face_512 \
      --config.audio.wav2vec2_path=WAV2VEC2_HF_FOLDER

From METHOD.md: 8 layers, width 512, 8 heads; x0 prediction with the simple loss; condition dropout
0.1 (0.5 for the previous window); guidance l_audio 0.5, l_gaze 1.0; 50 sampling steps; Wav2Vec2
audio features. Our choices where the paper is silent: W = 50 frames (2 s) and K = 10, a cosine
schedule with T = 1000, AdamW at 1e-4 after 5K warm-up steps, batch 256, EMA 0.9999, 200K steps.
The held-out evaluation reads labels `vasa prepare` measured from face landmarks.
"""

import ml_collections

from vasa_jax.configs import common, motion, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, variant="paper")
  config = ml_collections.ConfigDict()
  config.task = "motion"
  config.seed = 0
  config.stage1 = ml_collections.ConfigDict(dict(workdir="", step=-1))
  config.data = ml_collections.ConfigDict(dict(
      data_dir="", dataset="talking_videos", cache_dir="", train_split="train", worker_count=8,
      extract_batch_size=64))
  config.audio = ml_collections.ConfigDict(dict(wav2vec2_path="", layer="last"))
  config.model = ml_collections.ConfigDict(
      dict(variant=arg.variant, conditioning="adaln_zero", audio_filter=0))
  config.motion = ml_collections.ConfigDict(dict(window=50, context=10))
  config.diffusion = ml_collections.ConfigDict(dict(schedule="cosine", num_steps=1000))
  config.dropout = motion.default_dropout()
  config.losses = ml_collections.ConfigDict(dict(velocity=0.0))
  config.sampling = motion.default_sampling()
  common.training(config, batch_size=256, total_steps=200_000,
                  optimizer=common.adamw(weight_decay=0.0),
                  schedule=common.constant(1e-4, warmup_steps=5000), compute_dtype="bfloat16",
                  ema_decay=0.9999, log_every=100, checkpoint_every=5000)
  config.evals = motion.default_evals(every=10_000, num_clips=256)
  config.evaluation = motion.default_evaluation()
  return config


def sweep():
  """Training ablations at paper size (sampling ones: `vasa evaluate --evals audio_0,...`)."""
  return [
      {},
      {"motion.window": 25, "motion.context": 5},
      {"motion.window": 100, "motion.context": 25},
      {"losses.velocity": 1.0},
      {"model.conditioning": "tokens"},
      {"model.audio_filter": 5},
  ]
