"""The SynthTalk probe: a small CNN that reads head pose and mouth state back from a face image.

The SynthTalk transfer evaluator of stage 1 (config.evals.transfer.probe_workdir) uses it to check
that identity A driven by identity B's motion shows B's pose and mouth.

  vasa synthtalk build --config small --data_dir DATA
  vasa train --config experiments/probes/synthtalk_probe.py --workdir runs/probe128 \
      --config.data.data_dir=DATA

At 64x64 on the tiny dataset (trains on a CPU in minutes; add `,runlocal` for 20 steps):

  vasa synthtalk build --config tiny --data_dir DATA
  vasa train --config experiments/probes/synthtalk_probe.py:variant=tiny,dataset=synthtalk/tiny \
      --workdir runs/probe_tiny --config.data.data_dir=DATA

The input size is the dataset's resolution unless --config.data.image_size says otherwise. After the
last step the `heldout` evaluator writes eval/heldout_<step>.json in the workdir: each label's mean
absolute error, in the label's own units, on frames of the validation split's identities, which
training never sees, beside that of predicting the mean (`vasa evaluate --workdir RUN` scores any
checkpoint the same way).
"""

import ml_collections

from vasa_jax.configs import common, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, variant="small", dataset="synthtalk/small", runlocal=False)
  config = ml_collections.ConfigDict()
  config.task = "synthtalk_probe"
  config.seed = 0
  config.model = ml_collections.ConfigDict(dict(variant=arg.variant))
  # image_size 0: the dataset's resolution.
  config.data = ml_collections.ConfigDict(
      dict(data_dir="", dataset=arg.dataset, image_size=0, worker_count=0))
  common.training(config, batch_size=32, total_steps=20 if arg.runlocal else 1500,
                  optimizer=common.adamw(),
                  schedule=common.cosine(2e-3, end_value=1e-5,
                                         warmup_steps=5 if arg.runlocal else 50),
                  log_every=5 if arg.runlocal else 50, checkpoint_every=250)
  # Held-out errors after the last step (every 0), in eval/heldout_<step>.json.
  config.evals = ml_collections.ConfigDict(dict(heldout=dict(
      type="probe_errors", split="validation", num_examples=256, every=0)))
  return config
