"""Stage 1 (face latent space) on SynthTalk's tiny config at 64x64: trains on a CPU in minutes.

`synthtalk.py:size=64` under its own name (`make demo` and the tests run it); see synthtalk.py.

  vasa synthtalk build --config tiny --data_dir DATA
  vasa train --config experiments/face_latent/synthtalk_tiny.py --workdir runs/face_tiny \
      --config.data.data_dir=DATA
  vasa evaluate --workdir runs/face_tiny
"""

import pathlib

from vasa_jax import configs

_SYNTHTALK = configs.load_module(str(pathlib.Path(__file__).with_name("synthtalk.py")))


def get_config(arg=None):
  """`arg` as synthtalk.py takes it (variant=..., runlocal), at size 64."""
  return _SYNTHTALK.get_config(",".join(filter(None, ["size=64", arg])))


sweep = _SYNTHTALK.sweep
