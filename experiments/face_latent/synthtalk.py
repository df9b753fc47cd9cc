"""Stage 1 (face latent space) on SynthTalk, one size per argument: `synthtalk.py:size=64|128|256`.

  size=64   SynthTalk `tiny`, variant "tiny": trains on a CPU in minutes (`make demo` runs it)
  size=128  SynthTalk `small`, variant "small": the disentanglement run on a CPU
  size=256  SynthTalk `base`, variant "base" (about 83M parameters): an accelerator run
(`synthtalk_tiny.py`, `synthtalk_128.py` and `synthtalk_256.py` are these three.)

  vasa synthtalk build --config small --data_dir DATA
  vasa train --config experiments/probes/synthtalk_probe.py --workdir runs/probe128 \
      --config.data.data_dir=DATA
  vasa train --config experiments/face_latent/synthtalk.py:size=128 --workdir runs/face_128 \
      --config.data.data_dir=DATA --config.evals.transfer.probe_workdir=runs/probe128
  vasa evaluate --workdir runs/face_128
  vasa sweep experiments/face_latent/synthtalk.py:size=64 --workdir runs/face_tiny_sweep \
      --config.data.data_dir=DATA

The recipe (`vasa_jax.configs.face_latent`): `default_model` (the design switches),
`default_losses` (weights, the curriculum's start steps, region weighting), `optimization` (one
optimizer per network). Evaluators (`config.evals`): held-out reconstruction, a cross-reenactment
grid, latent read-outs and SynthTalk transfer (identity A driven by identity B's frame, scored
against SynthTalk's own render of A in B's state, pose and mouth read back by a probe trained on
SynthTalk frames, experiments/probes/synthtalk_probe.py with the same dataset). `sweep()` turns each
ingredient off alone and ablates VASA-1's two extra losses. `runlocal`: 20 steps, for a look.
"""

import ml_collections

from vasa_jax.configs import common, face_latent, parse_arg
from vasa_jax.errors import UserError

# size -> the dataset, the model and the run (steps, learning rate, logging, evaluation).
SIZES = {
    64: dict(dataset="tiny", variant="tiny", batch_size=8, steps=2000, peak_value=1e-3,
             warmup_steps=50, compute_dtype="float32", ema_decay=0.0, workers=0, log_every=50,
             checkpoint_every=500, eval_every=500, eval_examples=16),
    128: dict(dataset="small", variant="small", batch_size=8, steps=4000, peak_value=1e-3,
              warmup_steps=50, compute_dtype="float32", ema_decay=0.0, workers=0, log_every=25,
              checkpoint_every=100, eval_every=250, eval_examples=64),
    256: dict(dataset="base", variant="base", batch_size=16, steps=100_000, peak_value=5e-4,
              warmup_steps=1000, compute_dtype="bfloat16", ema_decay=0.999, workers=8,
              log_every=100, checkpoint_every=2000, eval_every=5000, eval_examples=256),
}


def get_config(arg=None):
  arg = parse_arg(arg, size=64, variant="", runlocal=False)
  if arg.size not in SIZES:
    raise UserError(f"experiments/face_latent/synthtalk.py: size={arg.size} is unknown; use one "
                    f"of {sorted(SIZES)}")
  size = SIZES[arg.size]
  config = ml_collections.ConfigDict(dict(task="face_latent", seed=0))
  config.model = face_latent.default_model(arg.variant or size["variant"])
  # cross_clip: the share of pairs whose driving frame comes from another clip of the identity;
  # nearby: of the others, the share whose driving frame is within nearby_frames of the source.
  config.data = ml_collections.ConfigDict(dict(
      data_dir="", dataset=f"synthtalk/{size['dataset']}", worker_count=size["workers"],
      cross_clip=0.5, nearby=0.0, nearby_frames=8))
  common.training(config, batch_size=size["batch_size"],
                  total_steps=20 if arg.runlocal else size["steps"],
                  compute_dtype=size["compute_dtype"], ema_decay=size["ema_decay"],
                  log_every=5 if arg.runlocal else size["log_every"],
                  checkpoint_every=size["checkpoint_every"])
  face_latent.optimization(config, peak_value=size["peak_value"],
                           warmup_steps=size["warmup_steps"])
  config.losses = face_latent.default_losses()
  # Reconstruction and pose alone for the first 60% of the run, then the adversarial terms, then
  # consistency, contrastive and cross-identity for the last 20% (ours). A run with another
  # --config.total_steps keeps these steps unless --config.losses.start.* moves them too.
  config.losses.start = face_latent.curriculum(config.total_steps)
  config.evals = face_latent.default_evals(every=0 if arg.runlocal else size["eval_every"],
                                           num_examples=size["eval_examples"])
  if arg.size == 64:  # SynthTalk tiny's validation split has 8 clips of 2 identities.
    config.evals.reenactment.identities = 2
    config.evals.transfer.num_pairs = 16
  return config


def sweep():
  """The recipe with each of its ingredients off alone, and VASA-1's two losses ablated."""
  return face_latent.ablations()
