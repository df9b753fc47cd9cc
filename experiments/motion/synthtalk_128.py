"""Stage 2 (motion diffusion transformer) on SynthTalk at 128x128, on the `small` stage-1 model.

  vasa synthtalk build --config small --data_dir DATA
  vasa train --config experiments/face_latent/synthtalk_128.py --workdir runs/face_128 \
      --config.data.data_dir=DATA
  vasa train --config experiments/motion/synthtalk_128.py --workdir runs/motion_128 \
      --config.data.data_dir=DATA --config.stage1.workdir=runs/face_128
  vasa evaluate --workdir runs/motion_128 --evals audio_0,audio_1,audio_2,steps_10,ddpm

The recipe of `synthtalk_tiny.py` with the `small` model, W = 50 frames (2 s; SynthTalk clips are 2.4
to 5.7 s), K = 10, 4000 steps, and all 48 held-out clips of the 128 px set scored.
"""

import pathlib

from vasa_jax import configs
from vasa_jax.configs import motion

_TINY = configs.load_module(str(pathlib.Path(__file__).with_name("synthtalk_tiny.py")))


def get_config(arg=None):
  arg = configs.parse_arg(arg, variant="small", runlocal=False)
  config = _TINY.get_config(f"variant={arg.variant}" + (",runlocal" if arg.runlocal else ""))
  config.data.dataset = "synthtalk/small"
  config.motion.window, config.motion.context = 50, 10  # W, K frames.
  config.total_steps = 20 if arg.runlocal else 4000
  config.evals = motion.default_evals(every=0 if arg.runlocal else 1000, num_clips=48,
                                      sampling_steps=10 if arg.runlocal else 0)
  config.evaluation = motion.default_evaluation()
  return config


def sweep():
  """`synthtalk_tiny.py`'s training ablations at this size."""
  return [
      {},
      {"motion.window": 25, "motion.context": 5},
      {"motion.window": 50, "motion.context": 0},
      {"losses.velocity": 1.0},
      {"model.conditioning": "tokens"},
      {"model.audio_filter": 5},
  ]
