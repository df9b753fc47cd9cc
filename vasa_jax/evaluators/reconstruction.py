"""Cross-frame reconstruction on held-out identities: PSNR, SSIM, L1 and, with its weights, LPIPS.

Each example is a source and a driving frame of one clip of `split` (identities no training clip
has): the source's appearance and identity driven by the driving frame's motion must give the
driving frame. The examples are drawn once, without augmentation, so every evaluation of a run sees
the same ones.

LPIPS (v0.1, VGG; `vasa_jax.models.lpips`) needs converted published weights (`lpips_weights`, the
file `vasa_jax.convert.lpips.convert_lpips` writes); without them no LPIPS is reported, since a
distance through random features would mean nothing. `weights` names the files behind the scores.
"""

from __future__ import annotations

import logging
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.evaluators import EvalResult, image_metrics
from vasa_jax.evaluators.image_metrics import to_signed, to_unit


class Evaluator:
  def __init__(self, task, split: str = "validation", num_examples: int = 64,
               batch_size: int = 16, seed: int = 0, lpips_weights: str = ""):
    self.examples = task.eval_examples(split, num_examples, seed)
    self.batch_size = batch_size
    self.weights: dict[str, str] = {}
    self._lpips_variables = None
    lpips_model = None
    if lpips_weights:
      from vasa_jax.convert.lpips import load_lpips
      from vasa_jax.models.lpips import LPIPS

      self._lpips_variables = jax.device_put(load_lpips(lpips_weights))
      self.weights["lpips"] = str(pathlib.Path(lpips_weights).expanduser().resolve())
      lpips_model = LPIPS()
    else:
      logging.warning("reconstruction: LPIPS unavailable, not reported; set lpips_weights to "
                      "the file vasa_jax.convert.lpips.convert_lpips writes")

    def scores(params, lpips_variables, source, driving):
      pred_signed = task.reenact(params, to_signed(source), to_signed(driving))
      target_signed = to_signed(driving)
      pred, target = to_unit(pred_signed), to_unit(target_signed)
      out = dict(psnr=image_metrics.psnr(pred, target), ssim=image_metrics.ssim(pred, target),
                 l1=jnp.mean(jnp.abs(pred - target), axis=(1, 2, 3)))
      if lpips_model is not None:
        out["lpips"] = lpips_model.apply(lpips_variables, pred_signed, target_signed)
      return out

    self._scores = jax.jit(scores)

  def run(self, params) -> EvalResult:
    source, driving = self.examples["source"], self.examples["driving"]
    parts = [jax.device_get(self._scores(params, self._lpips_variables,
                                         source[i:i + self.batch_size],
                                         driving[i:i + self.batch_size]))
             for i in range(0, len(source), self.batch_size)]
    return EvalResult({name: float(np.mean(np.concatenate([p[name] for p in parts])))
                       for name in parts[0]})
