"""CAPP, the contrastive audio-pose model behind VASA-1's CAPP score (`vasa_jax.trainers.capp`).

Default ("small"): 3-second windows (the paper's), SynthTalk small's exact head pose; any dataset
the motion task can cache works, e.g. real video prepared by `vasa prepare` (pose from landmarks):

  vasa synthtalk build --config small --data_dir DATA
  vasa train --config experiments/evals/capp.py --workdir runs/capp --config.data.data_dir=DATA
  vasa train --config experiments/evals/capp.py --workdir runs/capp_real \
      --config.data.dataset=talking_videos --config.data.data_dir=PREPARED

`variant=tiny` trains a tiny model on SynthTalk tiny on a CPU in about a minute. Its clips are 2.6
to 5 s long (64 to 127 frames; a fifth of them are shorter than 3 s), so its windows are 2 s (50
frames): every clip holds a whole window, and the two windows of a clip that training draws a few
frames apart always fit. Add `,runlocal` for 20 steps.

  vasa train --config experiments/evals/capp.py:variant=tiny --workdir runs/capp_tiny \
      --config.data.data_dir=DATA

Audio: log-mel features by default, or a converted Wav2Vec2 with
`--config.audio.wav2vec2_path=HF_FOLDER` (frozen; the audio tower's transformer learns on top of
it). Audio features and head pose are cached once per split under `config.data.cache_dir` (default:
the data folder), shared with the motion task's labels cache. After the last step the
`heldout` evaluator writes eval/heldout_<step>.json (held-out retrieval, paired score, and the
shift and scale sanity curves); score
videos with it through `config.evals.capp = dict(type="capp", workdir=RUN)`.
"""

import ml_collections

from vasa_jax.configs import capp, common, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, variant="small", runlocal=False)
  tiny = arg.variant == "tiny"
  config = ml_collections.ConfigDict()
  config.task = "capp"
  config.seed = 0
  config.data = ml_collections.ConfigDict(dict(
      data_dir="", dataset="synthtalk/tiny" if tiny else "synthtalk/small", cache_dir="",
      train_split="train", worker_count=0, extract_batch_size=32))
  config.audio = ml_collections.ConfigDict(dict(wav2vec2_path="", layer="last"))
  config.model = ml_collections.ConfigDict(dict(variant=arg.variant,
                                                window_seconds=2.0 if tiny else 3.0))
  # The pose tower's fixed input divisors (radians, radians per frame), kept in the run's config.
  config.pose = ml_collections.ConfigDict(dict(scale=list(capp.POSE_SCALE),
                                               velocity_scale=list(capp.VELOCITY_SCALE)))
  # Hard negatives beside the batch's other clips (`trainers.capp.CappWindows`): `shifted`, two
  # windows of each clip up to max_shift frames apart; `scaled` copies of each window's pose with
  # its motion scaled by f or 1/f, f in scale_range. batch_size counts clips.
  config.negatives = ml_collections.ConfigDict(dict(shifted=True, max_shift=4, scaled=1,
                                                    scale_range=[1.5, 4.0]))
  common.training(config, batch_size=16 if tiny else 32,
                  total_steps=20 if arg.runlocal else (300 if tiny else 3000),
                  optimizer=common.adamw(b2=0.98, eps=1e-6, weight_decay=0.05),
                  schedule=common.cosine(1e-3 if tiny else 5e-4, end_value=1e-5,
                                         warmup_steps=5 if arg.runlocal else 50),
                  log_every=5 if arg.runlocal else 50, checkpoint_every=500)
  # The held-out report after the last step (every 0; eval/heldout_<step>.json): retrieval, the
  # pose delayed by 0..shifts frames, and its deviation from the first frame scaled by scales.
  config.evals = ml_collections.ConfigDict(dict(heldout=dict(
      type="capp_retrieval", split="validation", shifts=4, scales=[0.2, 0.5, 1.0, 1.5, 3.0],
      every=0)))
  return config
