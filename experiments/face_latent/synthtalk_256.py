"""Stage 1 on SynthTalk `base` at 256x256 (variant "base", about 83M parameters): an accelerator run.

`synthtalk.py:size=256` under its own name; see synthtalk.py.

  vasa synthtalk build --config base --data_dir DATA
  vasa train --config experiments/face_latent/synthtalk_256.py --workdir runs/face_256 \
      --config.data.data_dir=DATA --config.evals.transfer.probe_workdir=runs/probe256
  vasa evaluate --workdir runs/face_256
"""

import pathlib

from vasa_jax import configs

_SYNTHTALK = configs.load_module(str(pathlib.Path(__file__).with_name("synthtalk.py")))


def get_config(arg=None):
  """`arg` as synthtalk.py takes it (variant=..., runlocal), at size 256."""
  return _SYNTHTALK.get_config(",".join(filter(None, ["size=256", arg])))


sweep = _SYNTHTALK.sweep
