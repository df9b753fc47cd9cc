"""Audio features of a dataset split: computed in batches, cached, resumable."""

import json

import numpy as np
import pytest

from vasa_jax.data import audio_features, pipelines
from vasa_jax.errors import UserError

MEL = {"wav2vec2_path": ""}


def test_split_features_are_cached_per_clip_and_resume(synthtalk_tiny_dir, tmp_path):
  folder = audio_features.extract_split(synthtalk_tiny_dir, "synthtalk/tiny", "validation",
                                        str(tmp_path), MEL, batch_size=3, shard_size=3)
  shards = sorted(folder.glob("features-*.npz"))
  assert len(shards) == 3  # 8 clips in shards of 3.
  cache = audio_features.FeatureCache(folder)
  source = pipelines.open_split(synthtalk_tiny_dir, "synthtalk/tiny", "validation")
  encoder = audio_features.make_audio_encoder(MEL)
  for i in (0, 7):
    clip = source[i]
    cached = cache[clip["meta"]["clip_id"]]
    assert cached.shape == (clip["meta"]["num_frames"], encoder.dim)
    # Padding to whole seconds leaves each clip's own frames as they are alone.
    alone = np.asarray(encoder(np.asarray(clip["audio"], np.float32)[None] / 32767.0))[0]
    np.testing.assert_allclose(cached[:-1], alone[:-1], rtol=1e-4, atol=1e-4)

  kept = {p.name: p.stat().st_mtime_ns for p in shards[1:]}
  shards[0].unlink()
  audio_features.extract_split(synthtalk_tiny_dir, "synthtalk/tiny", "validation", str(tmp_path),
                               MEL, batch_size=3, shard_size=3)
  assert shards[0].exists()
  assert {p.name: p.stat().st_mtime_ns for p in shards[1:]} == kept
  assert json.loads((folder / "meta.json").read_text())["dim"] == encoder.dim


def test_cache_of_another_encoder_is_refused(synthtalk_tiny_dir, tmp_path):
  audio_features.extract_split(synthtalk_tiny_dir, "synthtalk/tiny", "test", str(tmp_path), MEL)
  with pytest.raises(UserError, match="features of another encoder"):
    audio_features.extract_split(synthtalk_tiny_dir, "synthtalk/tiny", "test", str(tmp_path),
                                 {"wav2vec2_path": "", "n_mels": 40})
