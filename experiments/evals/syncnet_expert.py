"""Our lip-sync expert: the network behind S_C / S_D when the public SyncNet is not at hand.

The syncnet metric (config.evals.<name>: type "syncnet", expert=WORKDIR) scores videos with it.

  vasa synthtalk build --config small --data_dir DATA
  vasa train --config experiments/evals/syncnet_expert.py --workdir runs/sync_small \
      --config.data.data_dir=DATA

On real video prepared by `vasa prepare --output PREPARED`, add `:dataset=talking_videos` and
--config.data.data_dir=PREPARED. At 64x64 on the tiny dataset (trains on a CPU in minutes; add
`,runlocal` for 20 steps):

  vasa synthtalk build --config tiny --data_dir DATA
  vasa train --config experiments/evals/syncnet_expert.py:variant=tiny --workdir runs/sync_tiny \
      --config.data.data_dir=DATA

After the last step the `heldout` evaluator writes eval/heldout_<step>.json in the workdir:
held-out sync accuracy (on the validation split, whose identities training never sees) and the
expert's S_C / S_D on held-out clips in sync and with their audio delayed by 5 frames (`vasa
evaluate --workdir RUN` scores any checkpoint the same way).

Measured with the tiny command above (2000 steps, 5.5 CPU minutes on 2 shared cores): sync
accuracy 0.22 on 256 validation windows (chance 1/13 = 0.077; within one frame 0.50; the in-sync
window closer than an off-sync one in 0.72 of pairs); on the 8 validation clips, the offset search
finds 0 for 7 of them as they are and -5 for 7 of them with the audio delayed by 5 frames. It
fits its 12 training identities far better (sync accuracy about 0.9 on training batches).
"""

import ml_collections

from vasa_jax.configs import common, parse_arg

DATASETS = {"tiny": "synthtalk/tiny", "small": "synthtalk/small", "base": "synthtalk/base"}


def get_config(arg=None):
  arg = parse_arg(arg, variant="small", dataset="", runlocal=False)
  config = ml_collections.ConfigDict()
  config.task = "syncnet_expert"
  config.seed = 0
  # image_size 0: the variant's (tiny 32, small 48, base 96); window: (top, bottom, left, right)
  # of the face crop, as fractions.
  config.model = ml_collections.ConfigDict(
      dict(variant=arg.variant, image_size=0, window=(0.45, 0.95, 0.25, 0.75)))
  # Each example ranks its in-sync audio window against `negatives` off-sync ones of its clip, at
  # shifts of 1 .. max_shift frames (12: all of them), and against the other examples' windows.
  # Training frames are mirrored at random; colour_jitter and window_jitter (moves of the mouth
  # window, as a fraction of the frame) add robustness but slow the start of learning, so the tiny
  # variant, meant for a few minutes on a CPU, leaves them out.
  tiny = arg.variant == "tiny"
  config.data = ml_collections.ConfigDict(
      dict(data_dir="", dataset=arg.dataset or DATASETS.get(arg.variant, "synthtalk/small"),
           max_shift=6, negatives=12, colour_jitter=not tiny, window_jitter=0.0 if tiny else 0.03,
           worker_count=0))
  common.training(config, batch_size=32,
                  total_steps=20 if arg.runlocal else {"tiny": 2000}.get(arg.variant, 20000),
                  optimizer=common.adamw(),
                  schedule=common.cosine(1e-3, end_value=1e-5,
                                         warmup_steps=5 if arg.runlocal else 100),
                  log_every=5 if arg.runlocal else 50, checkpoint_every=500)
  # After the last step (every 0): sync accuracy on num_examples held-out windows; S_C / S_D on
  # num_videos held-out clips, in sync and with the audio delayed by shift frames.
  config.evals = ml_collections.ConfigDict(dict(heldout=dict(
      type="sync_accuracy", split="validation", num_examples=256,
      num_videos=8 if arg.runlocal else 32, shift=5, every=0)))
  return config
