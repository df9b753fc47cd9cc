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

The input size is the dataset's resolution unless --config.data.image_size says otherwise. A run
ends by writing probe_eval.json in its workdir: each label's mean absolute error, in the label's own
units, on frames of the validation split's identities, which training never sees.
"""

import ml_collections

from vasa_jax.configs import parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, variant="small", dataset="synthtalk/small", runlocal=False)
  config = ml_collections.ConfigDict()
  config.task = "synthtalk_probe"
  config.seed = 0
  config.model = ml_collections.ConfigDict(dict(variant=arg.variant))
  # image_size 0: the dataset's resolution.
  config.data = ml_collections.ConfigDict(
      dict(data_dir="", dataset=arg.dataset, image_size=0, worker_count=0))
  config.batch_size = 32
  config.total_steps = 20 if arg.runlocal else 1500
  config.grad_accum_steps = 1
  config.compute_dtype = "float32"
  config.optimizer = ml_collections.ConfigDict(
      dict(name="adamw", b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4))
  config.schedule = ml_collections.ConfigDict(
      dict(name="cosine", peak_value=2e-3, end_value=1e-5, warmup_steps=5 if arg.runlocal else 50,
           decay_steps=0))
  config.grad_clip_norm = 1.0
  config.ema_decay = 0.0
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, fsdp_min_size=2**14))
  config.log_every = 5 if arg.runlocal else 50
  config.checkpoint = ml_collections.ConfigDict(dict(every=250, keep=3, async_save=True))
  # Held-out errors written to probe_eval.json at the end of training.
  config.eval = ml_collections.ConfigDict(dict(split="validation", num_examples=256))
  return config
