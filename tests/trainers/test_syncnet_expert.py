"""The sync expert: its samples, a short training on SynthTalk tiny, and the metric reading it."""

import json

import numpy as np
import pytest

from tests.helpers import EXPERIMENTS
from vasa_jax import configs
from vasa_jax.data import pipelines
from vasa_jax.data.synthtalk.clip import decode_frames
from vasa_jax.errors import UserError
from vasa_jax.evaluators import sync_accuracy
from vasa_jax.evaluators import syncnet as metric
from vasa_jax.models import syncnet
from vasa_jax.trainers import common, syncnet_expert

CONFIG = f"{EXPERIMENTS / 'evals' / 'syncnet_expert.py'}:variant=tiny,runlocal"
STEPS = 4


def test_sync_windows_are_the_clip_s_windows(synthtalk_tiny_dir):
  source = pipelines.open_split(synthtalk_tiny_dir, "synthtalk/tiny", "train")
  clip = source[5]
  count = syncnet.num_windows(len(clip["frames"]), len(clip["audio"]))
  every_window = syncnet.audio_windows(syncnet.mfcc(clip["audio"]), np.arange(count))
  frames = decode_frames(clip["frames"])
  for seed in range(4):
    plain = syncnet_expert.SyncWindows(syncnet_expert.MOUTH_WINDOW, 32, max_shift=6,
                                       augment=False)(clip, np.random.default_rng(seed))
    assert plain["video"].shape == (5, 32, 32, 3) and plain["video"].dtype == np.uint8
    assert plain["audio"].shape == (13, 13, 20) and plain["shift"][0] == 0
    assert sorted(plain["shift"]) == list(range(-6, 7)) and plain["valid"].all()
    # Index 0 is the in-sync window t; index j the window t + shift[j] of the whole clip's MFCCs.
    t = int(np.argmin(np.abs(every_window - plain["audio"][0]).sum(axis=(1, 2))))
    np.testing.assert_allclose(plain["audio"], every_window[t + plain["shift"]], atol=1e-4)
    np.testing.assert_array_equal(
        plain["video"], syncnet_expert.mouth_crop(frames[t:t + 5], syncnet_expert.MOUTH_WINDOW,
                                                  32))
    trained = syncnet_expert.SyncWindows(syncnet_expert.MOUTH_WINDOW, 32, max_shift=6,
                                         negatives=4)(clip, np.random.default_rng(seed))
    assert trained["audio"].shape == (5, 13, 20) and trained["shift"][0] == 0
    assert len(set(trained["shift"])) == 5 and 0 < np.abs(trained["shift"][1:]).min()
    assert np.abs(trained["shift"]).max() <= 6


@pytest.fixture(scope="module")
def trained(synthtalk_tiny_dir, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("sync_expert")
  config = configs.load_config(CONFIG, [
      f"--config.data.data_dir={synthtalk_tiny_dir}", f"--config.total_steps={STEPS}",
      "--config.batch_size=8", "--config.log_every=2", f"--config.checkpoint.every={STEPS}",
      "--config.evals.heldout.num_examples=16", "--config.evals.heldout.num_videos=2"])
  result = syncnet_expert.train(config, workdir, mesh=common.create_mesh({"data": 1, "fsdp": 1}))
  return config, workdir, result


def test_trains_and_reports_held_out_sync(trained):
  _, workdir, result = trained
  assert result.final_step == STEPS
  for key in ("loss", "sync_accuracy", "within_one", "logit_scale", "cosine_in_sync"):
    assert np.isfinite(result.last_metrics[key]), key
  # 8 examples of 13 audio windows each: the loss starts near log(13) + log(8 * 13).
  assert abs(result.first_metrics["loss"] - np.log(13) - np.log(104)) < 1.0
  report = json.loads((workdir / "eval" / f"heldout_{STEPS:07d}.json").read_text())
  assert report["step"] == STEPS and report["split"] == "validation"
  assert report["num_examples"] == 16 and report["num_videos"] == 2
  assert 0 <= report["sync_accuracy"] <= report["within_one"] <= 1
  assert report["chance_sync_accuracy"] == pytest.approx(1 / 13)
  for group in ("in_sync", "audio_delayed_5"):
    assert len(report[group]["offsets"]) == 2
    assert 0 <= report[group]["S_D"] <= 2 + 1e-5 and report[group]["S_C"] >= 0


def test_loaded_expert_scores_videos(trained, synthtalk_tiny_dir, tmp_path):
  _, workdir, result = trained
  scorer = metric.Metric(expert=str(workdir), batch_size=8)
  assert scorer.weights == {"syncnet_expert": f"{workdir} step {STEPS}"}
  assert scorer.embedder.step == STEPS
  video = sync_accuracy.held_out_videos(synthtalk_tiny_dir, "synthtalk/tiny", "test", 1)[0]
  scores = scorer.score([video])
  assert set(scores) == {"S_C", "S_D", "offset_abs"}
  assert all(np.isfinite(v) for v in scores.values())
  (name, clip_result), = scorer.results
  assert name == video.name and clip_result.curve.shape == (31,)
  # The padding lies at distance 2 from every video embedding, pairs of windows at most 2 apart.
  assert clip_result.curve.max() <= 2 + 1e-5 and 0 <= scores["S_D"] <= 2
  features, _ = metric.clip_features(scorer.embedder, video.frames, video.audio, 8)
  np.testing.assert_allclose(np.linalg.norm(features[:, :-1], axis=1), 1, atol=1e-5)
  # The same parameters as in memory; a missing step or another task's run are user errors.
  np.testing.assert_array_equal(scorer.embedder.params["log_scale"],
                                np.asarray(result.state.params["log_scale"]))
  with pytest.raises(UserError, match="no checkpoint of step 3"):
    metric.Metric(expert=str(workdir), expert_step=3)
  (tmp_path / "config.json").write_text(json.dumps({"task": "synthtalk_probe"}))
  with pytest.raises(UserError, match="not a sync expert"):
    syncnet_expert.load_expert(tmp_path)
