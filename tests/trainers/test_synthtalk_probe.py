"""The SynthTalk probe: samples, a short training on SynthTalk tiny, reading a probe back."""

import json

import jax
import numpy as np
import pytest

from tests.helpers import EXPERIMENTS
from vasa_jax import configs, evaluators, runs
from vasa_jax.data import pipelines, schema
from vasa_jax.errors import UserError
from vasa_jax.evaluators import probe_errors
from vasa_jax.models import synthtalk_probe as probe_net
from vasa_jax.trainers import synthtalk_probe

PROBE_CONFIG = (f"{EXPERIMENTS / 'probes' / 'synthtalk_probe.py'}"
                ":variant=tiny,dataset=synthtalk/tiny")
STEPS = 250


def _config(data_dir, *overrides):
  return configs.load_config(PROBE_CONFIG, [f"--config.data.data_dir={data_dir}", *overrides])


@pytest.fixture(scope="module")
def trained(synthtalk_tiny_dir, tmp_path_factory):
  """(config, workdir, in-memory parameters) of a tiny probe trained for STEPS steps on 1 device."""
  workdir = tmp_path_factory.mktemp("probe")
  config = _config(synthtalk_tiny_dir, f"--config.total_steps={STEPS}", "--config.batch_size=32",
                   "--config.mesh.data=1", f"--config.log_every={STEPS}",
                   f"--config.checkpoint.every={STEPS}", "--config.evals.heldout.num_examples=256")
  result = synthtalk_probe.train(config, workdir)
  assert result.final_step == STEPS
  return config, workdir, jax.device_get(result.state.params)


def test_probe_frames_shapes_and_labels(synthtalk_tiny_dir):
  source = pipelines.open_split(synthtalk_tiny_dir, "synthtalk/tiny", "train")
  clip = source[3]
  all_labels = schema.stack_labels(clip["labels"])
  columns = [schema.LABEL_NAMES.index(name) for name in probe_net.PROBE_LABELS]
  mirrored = 0
  for seed in range(16):
    plain = synthtalk_probe.ProbeFrames(64, augment=False)(clip, np.random.default_rng(seed))
    augmented = synthtalk_probe.ProbeFrames(64, augment=True)(clip, np.random.default_rng(seed))
    for example in (plain, augmented):
      assert example["image"].shape == (64, 64, 3) and example["image"].dtype == np.uint8
      assert example["labels"].shape == (len(probe_net.PROBE_LABELS),)
      assert example["labels"].dtype == np.float32
    # The frame's own labels, whatever the augmentation; a mirror only negates yaw and roll.
    assert any(np.array_equal(plain["labels"], all_labels[t, columns])
               for t in range(len(all_labels)))
    flip = synthtalk_probe.MIRROR_SIGNS
    assert (np.array_equal(augmented["labels"], plain["labels"])
            or np.array_equal(augmented["labels"], plain["labels"] * flip))
    mirrored += not np.array_equal(augmented["labels"], plain["labels"])
    assert not np.array_equal(augmented["image"], plain["image"])
  assert 0 < mirrored < 16
  assert list(flip) == [-1, 1, -1, 1, 1, 1, 1]  # yaw, pitch, roll, jaw, lips, blink, brows.
  resized = synthtalk_probe.ProbeFrames(32, augment=True)(clip, np.random.default_rng(0))
  assert resized["image"].shape == (32, 32, 3)


def _mean_predictor_mae(data_dir, labels):
  """MAE per label of predicting every frame's labels by the training split's mean."""
  source = pipelines.open_split(data_dir, "synthtalk/tiny", "train")
  columns = [schema.LABEL_NAMES.index(name) for name in probe_net.PROBE_LABELS]
  train_mean = np.concatenate([schema.stack_labels(source[i]["labels"])[:, columns]
                               for i in range(len(source))]).mean(axis=0)
  return dict(zip(probe_net.PROBE_LABELS, np.abs(labels - train_mean).mean(axis=0)))


@pytest.mark.slow
def test_held_out_pitch_beats_the_training_mean(trained, synthtalk_tiny_dir):
  """On the validation split's identities, none seen in training, pitch is read at least 15%
  better than by predicting the training split's mean. (Tiny has 12 training identities and 2
  held-out ones: too few for yaw or the mouth to generalise reliably in a test-sized run.)"""
  config, workdir, _ = trained
  report = json.loads((workdir / "eval" / f"heldout_{STEPS:07d}.json").read_text())
  assert report["step"] == STEPS and report["split"] == "validation"
  assert report["labels"] == list(probe_net.PROBE_LABELS)
  assert set(report["mae"]) == set(report["mean_predictor_mae"]) == set(report["labels"])
  task = synthtalk_probe.make_task(config)
  _, labels = probe_errors.held_out_frames(task, "validation", report["num_examples"])
  mean_mae = _mean_predictor_mae(synthtalk_tiny_dir, labels)
  print({name: f"{report['mae'][name]:.4f} vs {mean_mae[name]:.4f}" for name in mean_mae})
  assert report["mae"]["pitch"] < 0.85 * mean_mae["pitch"]
  # The run read back scores the same (what `vasa evaluate --workdir` runs).
  run = runs.load_run(workdir)
  (heldout,) = evaluators.make_evaluators(run.config, run.task)
  again = heldout.evaluator.run(run.params).report
  assert again["mae"] == pytest.approx(report["mae"], abs=1e-5)


@pytest.mark.slow
def test_training_identities_are_read(trained, synthtalk_tiny_dir):
  """Unaugmented frames of the training identities: yaw at less than half the mean predictor's
  error, and every label below it."""
  config, _, params = trained
  task = synthtalk_probe.make_task(config)
  mae = probe_errors.evaluate(task, params, split="train", num_examples=256)
  _, labels = probe_errors.held_out_frames(task, "train", 256)
  mean_mae = _mean_predictor_mae(synthtalk_tiny_dir, labels)
  print({name: f"{mae[name]:.4f} vs {mean_mae[name]:.4f}" for name in mean_mae})
  assert mae["yaw"] < 0.5 * mean_mae["yaw"]
  for name in ("yaw", "pitch", "roll"):
    assert mae[name] < mean_mae[name], name


@pytest.mark.slow
def test_load_probe_predicts_like_the_trained_parameters(trained):
  config, workdir, params = trained
  task = synthtalk_probe.make_task(config)
  images, labels = probe_errors.held_out_frames(task, "validation", 8)
  signed = images.astype(np.float32) / 127.5 - 1.0
  expected = np.asarray(jax.jit(task.predict)(params, signed))

  probe = synthtalk_probe.load_probe(workdir)
  assert probe.image_size == 64 and probe.labels == probe_net.PROBE_LABELS
  assert probe.step == STEPS
  predicted = probe.predict(signed)
  assert predicted.shape == (8, len(probe_net.PROBE_LABELS))
  assert predicted.dtype == np.float32
  np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-5)
  # Other sizes are resized to the probe's: a 2x nearest-neighbour upsampling reads about the same
  # (the antialiased resize back blurs a little).
  upsampled = np.repeat(np.repeat(signed, 2, axis=1), 2, axis=2)
  difference = np.abs(probe.predict(upsampled) - predicted)
  assert np.all(difference < 0.25 * probe_net.LABEL_STD), difference.max(axis=0)


def test_load_probe_refuses_other_workdirs(tmp_path, reference_config):
  configs.write_json(reference_config(), tmp_path / "config.json")
  with pytest.raises(UserError, match="reference_autoencoder.*not a SynthTalk probe"):
    synthtalk_probe.load_probe(tmp_path)
  with pytest.raises(UserError, match="config.json"):
    synthtalk_probe.load_probe(tmp_path / "missing")


@pytest.mark.slow
def test_predict_rejects_non_square_images(trained):
  _, workdir, _ = trained
  probe = synthtalk_probe.load_probe(workdir)
  with pytest.raises(ValueError, match="size, size, 3"):
    probe.predict(np.zeros((1, 64, 32, 3), np.float32))
