"""Cross-frame reconstruction on held-out identities: PSNR, SSIM and L1.

Each example is a source and a driving frame of one clip of `split` (identities no training clip
has): the source's appearance and identity driven by the driving frame's motion must give the
driving frame. The examples are drawn once, without augmentation, so every evaluation of a run sees
the same ones.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.evaluators import EvalResult, image_metrics
from vasa_jax.evaluators.image_metrics import to_signed, to_unit


class Evaluator:
  def __init__(self, task, split: str = "validation", num_examples: int = 64,
               batch_size: int = 16, seed: int = 0):
    self.examples = task.eval_examples(split, num_examples, seed)
    self.batch_size = batch_size

    def scores(params, source, driving):
      pred = to_unit(task.reenact(params, to_signed(source), to_signed(driving)))
      target = to_unit(to_signed(driving))
      return dict(psnr=image_metrics.psnr(pred, target), ssim=image_metrics.ssim(pred, target),
                  l1=jnp.mean(jnp.abs(pred - target), axis=(1, 2, 3)))

    self._scores = jax.jit(scores)

  def run(self, params) -> EvalResult:
    source, driving = self.examples["source"], self.examples["driving"]
    parts = [jax.device_get(self._scores(params, source[i:i + self.batch_size],
                                         driving[i:i + self.batch_size]))
             for i in range(0, len(source), self.batch_size)]
    return EvalResult({name: float(np.mean(np.concatenate([p[name] for p in parts])))
                       for name in parts[0]})
