"""The SynthTalk probe's own errors (`type="probe_errors"`): each label's mean absolute error, in
the label's units, on unaugmented frames of `split` (identities training never saw), beside that of
predicting `LABEL_MEAN` for every frame ("mean_predictor_mae"): a label whose two are close is not
read. The probe's experiment runs it after the last step.

  config.evals.heldout = dict(type="probe_errors", split="validation", num_examples=256, every=0)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.evaluators import EvalResult, host_params
from vasa_jax.evaluators.image_metrics import to_signed
from vasa_jax.models.synthtalk_probe import LABEL_MEAN, PROBE_LABELS


def held_out_frames(task: Any, split: str = "validation", num_examples: int = 256,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """`num_examples` random frames of `split` (held-out identities), not augmented: (images uint8
  [N, S, S, 3], labels float32 [N, len(PROBE_LABELS)]); the same ones for the same seed."""
  batch_size = min(num_examples, 64)
  iterator = task.make_data_iterator(0, 1, split=split, augment=False, seed=seed,
                                     batch_size=batch_size)
  images, labels = [], []
  for _ in range(-(-num_examples // batch_size)):
    batch = next(iterator)
    images.append(batch["image"])
    labels.append(batch["labels"])
  return (np.concatenate(images)[:num_examples], np.concatenate(labels)[:num_examples])


def errors(task: Any, params, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
  """Mean absolute error per label ({name: MAE} in natural units) of the probe on `images`."""
  predict = jax.jit(task.predict)
  predictions = np.concatenate([
      np.asarray(predict(params, to_signed(jnp.asarray(images[i:i + 64]))))
      for i in range(0, len(images), 64)])
  return per_label(np.mean(np.abs(predictions - labels), axis=0))


def per_label(values: np.ndarray) -> dict[str, float]:
  return {name: float(values[i]) for i, name in enumerate(PROBE_LABELS)}


def evaluate(task: Any, params, split: str = "validation", num_examples: int = 256
             ) -> dict[str, float]:
  """The probe's MAE per label on `held_out_frames`."""
  return errors(task, params, *held_out_frames(task, split, num_examples))


class Evaluator:
  """The probe (`trainers.synthtalk_probe`) scored on `num_examples` frames of `split`."""

  def __init__(self, task: Any, split: str = "validation", num_examples: int = 256):
    self.task, self.split, self.num_examples = task, split, int(num_examples)

  def run(self, params: Any) -> EvalResult:
    params = host_params(params)
    images, labels = held_out_frames(self.task, self.split, self.num_examples)
    mae = errors(self.task, params, images, labels)
    mean_mae = per_label(np.mean(np.abs(labels - LABEL_MEAN), axis=0))
    report = {"split": self.split, "num_examples": self.num_examples,
              "labels": list(PROBE_LABELS), "mae": mae, "mean_predictor_mae": mean_mae}
    scalars = {**{f"mae_{k}": v for k, v in mae.items()},
               **{f"mean_predictor_mae_{k}": v for k, v in mean_mae.items()}}
    return EvalResult(scalars=scalars, report=report)
