"""Stage 2 (motion diffusion transformer) on SynthTalk tiny: trains on a CPU in minutes.

  vasa synthtalk build --config tiny --data_dir DATA
  vasa train --config experiments/face_latent/synthtalk_tiny.py --workdir runs/face_tiny \
      --config.data.data_dir=DATA
  vasa train --config experiments/motion/synthtalk_tiny.py --workdir runs/motion_tiny \
      --config.data.data_dir=DATA --config.stage1.workdir=runs/face_tiny
  vasa evaluate --workdir runs/motion_tiny

The stage-1 run's motion latents and the audio features are cached on first use under
`config.data.cache_dir` (default: the data folder). Without `config.stage1.workdir` the model trains
on SynthTalk's ground-truth motion labels instead. Audio: log-mel features, or Wav2Vec2 with
`--config.audio.wav2vec2_path=HF_FOLDER`.
"""

import ml_collections

from vasa_jax.configs import common, motion, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, variant="tiny", runlocal=False)
  config = ml_collections.ConfigDict()
  config.task = "motion"
  config.seed = 0
  config.stage1 = ml_collections.ConfigDict(dict(workdir="", step=-1))  # -1: the latest.
  config.data = ml_collections.ConfigDict(dict(
      data_dir="", dataset="synthtalk/tiny", cache_dir="", train_split="train", worker_count=0,
      extract_batch_size=32))
  config.audio = ml_collections.ConfigDict(dict(wav2vec2_path="", layer="last"))
  config.model = ml_collections.ConfigDict(
      dict(variant=arg.variant, conditioning="adaln_zero", audio_filter=0))
  config.motion = ml_collections.ConfigDict(dict(window=25, context=5))  # W, K frames.
  config.diffusion = ml_collections.ConfigDict(dict(schedule="cosine", num_steps=1000))
  config.dropout = motion.default_dropout()
  config.losses = ml_collections.ConfigDict(dict(velocity=0.0))
  config.sampling = motion.default_sampling()
  common.training(config, batch_size=32, total_steps=20 if arg.runlocal else 3000,
                  optimizer=common.adamw(weight_decay=1e-2),
                  schedule=common.cosine(3e-4, end_value=1e-6, warmup_steps=100),
                  ema_decay=0.0 if arg.runlocal else 0.999, log_every=5 if arg.runlocal else 50,
                  checkpoint_every=500)
  config.evals = motion.default_evals(every=0 if arg.runlocal else 1000, num_clips=8,
                                      sampling_steps=10 if arg.runlocal else 0)
  config.evaluation = motion.default_evaluation()
  return config


def sweep():
  """Training ablations: W and K, the velocity loss, conditioning by tokens instead of adaLN-Zero,
  and a temporal filter on the audio tokens. Sampling settings need no training: `vasa evaluate --workdir RUN --evals
  audio_0,audio_1,audio_2,steps_10` (see `motion.default_evals`)."""
  return [
      {},
      {"motion.window": 50, "motion.context": 10},
      {"motion.window": 25, "motion.context": 0},
      {"losses.velocity": 1.0},
      {"model.conditioning": "tokens"},
      {"model.audio_filter": 5},
  ]
