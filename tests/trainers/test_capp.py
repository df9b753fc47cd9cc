"""CAPP's training samples and loss: windows avoid frames without a pose, short clips are padded
and masked, hard negatives are what they claim, and the loss ignores windows drawn twice."""

import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.data import schema
from vasa_jax.trainers import capp

W = 50


def _clip(num_frames, missing=()):
  rng = np.random.default_rng(0)
  labels = rng.normal(0.0, 0.1, (num_frames, len(schema.LABEL_NAMES))).astype(np.float32)
  labels[list(missing), :] = np.nan
  audio = np.arange(num_frames, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
  return {"labels": labels, "audio": audio, "clip_id": "clip"}


def _windows(**kwargs):
  return capp.CappWindows(W, np.zeros(4, np.float32), np.ones(4, np.float32), **kwargs)


def test_windows_avoid_frames_without_a_pose_and_pairs_are_a_few_frames_apart():
  clip = _clip(120, missing=range(10, 20))
  sample = _windows(windows_per_clip=2, max_shift=4)
  firsts, moves = set(), set()
  for seed in range(200):
    out = sample(clip, np.random.default_rng(seed))
    first, second = out["start"]
    firsts.add(int(first))
    moves.add(int(second - first))
    assert out["valid"][0].all()
    np.testing.assert_array_equal(out["audio"][:, :, 0], out["start"][:, None] + np.arange(W))
    np.testing.assert_array_equal(out["valid"][1], np.isfinite(
        clip["labels"][second:second + W, 0]))
    np.testing.assert_array_equal(
        out["pose"][1], np.nan_to_num(clip["labels"][second:second + W, :3]))
  assert min(firsts) == 20 and max(firsts) == 70  # Only windows whose frames all have a pose.
  assert moves == {-4, -3, -2, -1, 1, 2, 3, 4}


def test_a_short_clip_is_padded_and_masked_and_its_second_window_is_the_first():
  out = _windows(windows_per_clip=2)(_clip(30), np.random.default_rng(0))
  assert out["valid"].shape == (2, W)
  assert out["valid"][:, :30].all() and not out["valid"][:, 30:].any()
  assert not out["pose"][:, 30:].any() and not out["audio"][:, 30:].any()
  assert list(out["start"]) == [0, 0]  # The loss does not count these as negatives.


def test_scaled_negatives_scale_the_motion_about_the_first_frame():
  clip = _clip(80)
  out = _windows(scale_negatives=3, scale_range=(1.5, 4.0))(clip, np.random.default_rng(1))
  pose, scaled = out["pose"][0], out["scaled_pose"][0]
  for negative in scaled:
    np.testing.assert_allclose(negative[0], pose[0], atol=1e-6)
    factor = (negative[1:] - pose[0]) / (pose[1:] - pose[0])
    assert np.allclose(factor, factor.flat[0], rtol=1e-3)
    assert 1.5 <= max(factor.flat[0], 1 / factor.flat[0]) <= 4.0


def test_contrastive_loss_ignores_windows_drawn_twice():
  embeddings = jnp.eye(4)
  aligned, metrics = capp.contrastive_loss(embeddings, embeddings, jnp.float32(10.0))
  assert float(metrics["accuracy"]) == 1.0 and float(metrics["paired_cosine"]) == 1.0
  # Windows 0 and 1 are the same window: without `exclude` each is a perfect negative of the other.
  twice = embeddings.at[1].set(embeddings[0])
  confused, _ = capp.contrastive_loss(twice, twice, jnp.float32(10.0))
  exclude = jnp.zeros((4, 4), bool).at[0, 1].set(True).at[1, 0].set(True)
  fixed, _ = capp.contrastive_loss(twice, twice, jnp.float32(10.0), exclude)
  assert float(confused) > float(fixed) + 0.3
  assert float(fixed) <= float(aligned) < 1e-3
  # A scaled negative as close to the audio as the true pose halves the audio-to-pose probability.
  tied, metrics = capp.contrastive_loss(embeddings, embeddings, jnp.float32(10.0),
                                        scaled_emb=embeddings[:, None])
  assert float(tied) - float(aligned) == pytest.approx(0.5 * np.log(2), abs=1e-3)
  assert float(metrics["scaled_margin"]) == pytest.approx(0.0, abs=1e-6)
