"""The sync expert's own scores (`type="sync_accuracy"`), on `split` (clips training never sees):
how often the in-sync audio window is the closest of a clip's 2 S + 1 shifted ones, and, on
`num_videos` whole held-out clips, the expert's S_C / S_D / offset as they are and with their audio
delayed by `shift` frames (the offset search should then find -shift). The expert's experiment
runs it after the last step.

  config.evals.heldout = dict(type="sync_accuracy", split="validation", num_examples=256,
                              num_videos=32, shift=5, every=0)
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax import runs
from vasa_jax.evaluators import EvalResult, host_params, numeric_leaves
from vasa_jax.models import syncnet


def evaluate(task: Any, params, split: str = "validation", num_examples: int = 256,
             seed: int = 0) -> dict[str, float]:
  """Sync accuracy on `num_examples` windows of `split`, not augmented, the same windows for the
  same seed.

  sync_accuracy: the in-sync audio window is the closest of the clip's 2 S + 1 shifted ones
  (chance 1 / (2 S + 1)); within_one: the closest is at most one frame off; pair_accuracy: the
  in-sync window is closer than an off-sync one, over all such pairs (chance 0.5).
  """
  batch_size = min(num_examples, 32)
  iterator = task.make_data_iterator(0, 1, split=split, augment=False, seed=seed,
                                     batch_size=batch_size)
  embed = jax.jit(task.embed)
  errors, pairs = [], []
  for _ in range(-(-num_examples // batch_size)):
    batch = next(iterator)
    v, a, _ = embed(params, jnp.asarray(batch["video"]), jnp.asarray(batch["audio"]))
    own = np.asarray(syncnet.own_clip_cosines(v, a, jnp.asarray(batch["valid"])))
    best = np.argmax(own, axis=-1)
    errors.append(np.abs(batch["shift"][np.arange(len(best)), best]))
    off_sync = batch["valid"].copy()
    off_sync[:, 0] = False
    pairs.append((own[:, :1] > own)[off_sync])
  errors = np.concatenate(errors)[:num_examples]
  return {"sync_accuracy": float(np.mean(errors == 0)),
          "within_one": float(np.mean(errors <= 1)),
          "pair_accuracy": float(np.mean(np.concatenate(pairs))),
          "chance_sync_accuracy": 1.0 / (2 * task.max_shift + 1)}


def held_out_videos(data_dir: str, dataset: str, split: str = "validation",
                    num_videos: int = 16) -> list:
  """The first `num_videos` clips of a split as `evaluators.videos.Video`s (real frames and
  audio, in sync)."""
  from vasa_jax.data import pipelines
  from vasa_jax.data.synthtalk.clip import decode_frames
  from vasa_jax.evaluators.videos import Video

  source = pipelines.open_split(data_dir, dataset, split)
  out = []
  for index in range(min(num_videos, len(source))):
    clip = source[index]
    name = clip["meta"]["clip_id"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    out.append(Video(name=name, frames=decode_frames(clip["frames"]),
                     audio=np.asarray(clip["audio"], np.float32) / 32768.0))
  return out


def delay_audio(video, frames: int):
  """`video` with its audio delayed by `frames` video frames (advanced when negative), silence
  filling the gap and the length kept."""
  shift = int(round(frames * syncnet.SAMPLES_PER_FRAME))
  audio = np.zeros_like(video.audio)
  if shift >= 0:
    audio[shift:] = video.audio[:len(audio) - shift]
  else:
    audio[:shift] = video.audio[-shift:]
  return dataclasses.replace(video, name=f"{video.name}_delayed{frames}", audio=audio)


def sync_report(expert: Any, videos: Sequence, shift: int) -> dict[str, Any]:
  """The expert's S_C / S_D / offsets on `videos` as they are and with their audio delayed by
  `shift` frames (the offset search should then find -shift), and the mean distance at audio
  shift 0 ("distance_unshifted"), which grows when the audio is out of sync."""
  from vasa_jax.evaluators import syncnet as metric

  report = {}
  for name, group in (("in_sync", videos), (f"audio_delayed_{shift}",
                                             [delay_audio(v, shift) for v in videos])):
    results = [r for r in (metric.score_clip(expert, v.frames, v.audio) for v in group) if r]
    report[name] = {"S_C": float(np.mean([r.confidence for r in results])),
                    "S_D": float(np.mean([r.min_dist for r in results])),
                    "offset_abs": float(np.mean([abs(r.offset) for r in results])),
                    "distance_unshifted": float(np.mean([r.curve[len(r.curve) // 2]
                                                         for r in results])),
                    "offsets": [int(r.offset) for r in results]}
  return report


class Evaluator:
  """The sync expert (`trainers.syncnet_expert`) scored on held-out windows and clips."""

  def __init__(self, task: Any, split: str = "validation", num_examples: int = 256,
               num_videos: int = 0, shift: int = 5):
    self.task, self.split = task, split
    self.num_examples, self.num_videos, self.shift = int(num_examples), int(num_videos), int(shift)

  def run(self, params: Any) -> EvalResult:
    params = host_params(params)
    report = {"split": self.split, "num_examples": self.num_examples,
              **evaluate(self.task, params, self.split, self.num_examples)}
    if self.num_videos:
      data = self.task.config.data
      videos = held_out_videos(data.data_dir, data.dataset, self.split, self.num_videos)
      expert = self.task.predictor(runs.Run(workdir=pathlib.Path(), config=self.task.config,
                                            task=self.task, params=params, step=-1))
      report.update(num_videos=len(videos), **sync_report(expert, videos, self.shift))
    scalars = numeric_leaves({k: v for k, v in report.items()
                              if k not in ("num_examples", "num_videos")})
    return EvalResult(scalars=scalars, report=report)
