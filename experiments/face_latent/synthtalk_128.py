"""Stage 1 on SynthTalk `small` at 128x128 (variant "small"): the disentanglement run on a CPU.

`synthtalk.py:size=128` under its own name; see synthtalk.py.

  vasa synthtalk build --config small --data_dir DATA
  vasa train --config experiments/probes/synthtalk_probe.py --workdir runs/probe128 \
      --config.data.data_dir=DATA
  vasa train --config experiments/face_latent/synthtalk_128.py --workdir runs/face_128 \
      --config.data.data_dir=DATA --config.evals.transfer.probe_workdir=runs/probe128
  vasa evaluate --workdir runs/face_128
"""

import pathlib

from vasa_jax import configs

_SYNTHTALK = configs.load_module(str(pathlib.Path(__file__).with_name("synthtalk.py")))


def get_config(arg=None):
  """`arg` as synthtalk.py takes it (variant=..., runlocal), at size 128."""
  return _SYNTHTALK.get_config(",".join(filter(None, ["size=128", arg])))


sweep = _SYNTHTALK.sweep
