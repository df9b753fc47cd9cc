"""Identity preservation on held-out identities: cosine of ArcFace embeddings.

The examples are the reconstruction evaluator's (`task.eval_examples`: a source and a driving frame
of one held-out clip, and a frame of another identity, drawn once without augmentation). Reported,
each the mean over the examples of a cosine in [-1, 1] (higher: more alike):
  identity_cosine        the source driven by the driving frame's motion vs the driving frame;
  identity_cosine_real   the source frame itself vs the driving frame: the same person in two real
                         frames, what a perfect reconstruction would reach;
  identity_cosine_cross  the source driven by the other identity's motion vs the source: whether
                         the source's identity survives a foreign driver (VASA-1's cross-identity
                         setting, which has no ground-truth frame).
Faces are in the training framing; like the cross-identity loss (`vasa_jax.losses.identity`), the
ArcFace region is cut out of it and resized to 112x112. The scores need converted published ArcFace
weights (`arcface_weights`); without them the constructor raises `videos.Unavailable`, since a
cosine of random features would mean nothing. `weights` names the file behind the scores.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.evaluators import EvalResult
from vasa_jax.evaluators.image_metrics import to_signed
from vasa_jax.evaluators.videos import Unavailable
from vasa_jax.losses import identity
from vasa_jax.losses.contrastive import cosine_similarity


class Evaluator:
  def __init__(self, task, arcface_weights: str = "", split: str = "validation",
               num_examples: int = 64, seed: int = 0, batch_size: int = 16):
    if not arcface_weights:
      raise Unavailable(
          "the identity evaluator needs ArcFace weights: set its arcface_weights "
          "(config.evals.<name>.arcface_weights) to the file that "
          "vasa_jax.convert.arcface.convert_arcface(backbone_pth, out_path) writes from "
          "insightface's arcface_torch backbone.pth")
    embed, variables = identity.load_arcface_or_none(arcface_weights)
    self._arcface_variables = jax.device_put(variables)
    self.weights: dict[str, str] = {
        "arcface": str(pathlib.Path(arcface_weights).expanduser().resolve())}
    self.examples = task.eval_examples(split, num_examples, seed)
    self.batch_size = batch_size

    def cosines(params, arcface_variables, source, driving, other):
      source, driving = to_signed(source), to_signed(driving)
      output = task.reenact(params, source, driving)
      crossed = task.reenact(params, source, to_signed(other))
      # One ArcFace pass over all four sets of faces.
      embeddings = embed(arcface_variables,
                         jnp.concatenate([output, driving, source, crossed]).astype(jnp.float32))
      e_output, e_driving, e_source, e_crossed = jnp.split(embeddings, 4)
      return dict(identity_cosine=cosine_similarity(e_output, e_driving),
                  identity_cosine_real=cosine_similarity(e_source, e_driving),
                  identity_cosine_cross=cosine_similarity(e_crossed, e_source))

    self._cosines = jax.jit(cosines)

  def run(self, params) -> EvalResult:
    source, driving, other = (self.examples[k] for k in ("source", "driving", "other"))
    b = self.batch_size
    parts = [jax.device_get(self._cosines(params, self._arcface_variables, source[i:i + b],
                                          driving[i:i + b], other[i:i + b]))
             for i in range(0, len(source), b)]
    return EvalResult({name: float(np.mean(np.concatenate([p[name] for p in parts])))
                       for name in parts[0]})
