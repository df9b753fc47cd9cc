"""Stage 2's cache: stage-1 motion latents and audio features per clip, equal to what the models
give clip by clip, resumable, never mixed with another checkpoint's or encoder's, read back as a
grain source."""

import json
import pickle
import re
import shutil

import numpy as np
import pytest

from vasa_jax import main, runs
from vasa_jax.data import audio_features, motion_latents, pipelines, schema
from vasa_jax.data.synthtalk.clip import decode_frames
from vasa_jax.errors import UserError
from vasa_jax.evaluators.image_metrics import to_signed

pytestmark = pytest.mark.slow

DATASET = "synthtalk/tiny"
MEL = {"wav2vec2_path": ""}
SHARD_SIZE = 3  # The 8 clips of a tiny split in shards of 3, 3 and 2.


@pytest.fixture(scope="module")
def validation_cache(synthtalk_tiny_dir, face_latent_tiny_workdir, tmp_path_factory):
  """Latents of the tiny validation split (8 clips): the folder."""
  cache_dir = tmp_path_factory.mktemp("motion_latents")
  return motion_latents.extract_split(synthtalk_tiny_dir, DATASET, "validation", str(cache_dir),
                                      MEL, stage1_workdir=face_latent_tiny_workdir, batch_size=40,
                                      shard_size=SHARD_SIZE)


def test_latents_and_features_equal_the_models_clip_by_clip(synthtalk_tiny_dir,
                                                            face_latent_tiny_workdir,
                                                            validation_cache):
  folder = validation_cache
  assert folder.parts[-4:] == ("motion_latents", "synthtalk_tiny", "tiny_step40", "validation")
  assert sorted(p.name for p in folder.glob("shard-*.npz")) == [
      "shard-00000.npz", "shard-00001.npz", "shard-00002.npz"]
  cache = motion_latents.MotionLatentSource(folder)
  dataset = pipelines.open_split(synthtalk_tiny_dir, DATASET, "validation")
  encoder = audio_features.make_audio_encoder(MEL)
  trained = runs.load_run(face_latent_tiny_workdir, task="face_latent")
  task = trained.task
  dyn_dim = task.model_config.dyn_dim
  assert cache.meta["stage1"] == {"workdir": face_latent_tiny_workdir, "step": 40, "variant": "tiny",
                                  "image_size": 64, "pose_dim": 7, "dyn_dim": dyn_dim}
  assert (cache.motion_dim, cache.audio_dim) == (7 + dyn_dim, encoder.dim)
  assert len(cache) == len(dataset) == 8

  for i in range(len(dataset)):
    clip, item = dataset[i], cache[i]
    meta = clip["meta"]
    frames = int(meta["num_frames"])
    assert item["clip_id"] == meta["clip_id"].decode()
    assert item["identity"] == meta["identity"].decode()
    assert item["motion"].shape == (frames, 7 + dyn_dim) and item["motion"].dtype == np.float32
    assert item["audio"].shape == (frames, encoder.dim)
    np.testing.assert_array_equal(item["labels"], schema.stack_labels(clip["labels"]))
    np.testing.assert_array_equal(item["gaze"], np.asarray(meta["gaze"], np.float32))
    assert item["distance"] == np.float32(meta["distance"])
    assert item["emotion"] == meta["emotion"] and item["emotion"].dtype == np.int32

  # Clip 4 is the middle one of the second shard: its frames share batches with clips 3 and 5.
  clip, item = dataset[4], cache[4]
  z_pose, z_dyn = task.model.apply({"params": trained.params["generator"]},
                                   to_signed(decode_frames(clip["frames"])),
                                   np.asarray(clip["landmarks"], np.float32),
                                   method=task.model.encode_motion)
  np.testing.assert_allclose(item["motion"][:, :7], z_pose, atol=1e-5)
  np.testing.assert_allclose(item["motion"][:, 7:], z_dyn, atol=1e-5)
  assert np.abs(np.asarray(z_dyn)).max() > 1e-3  # Not a trivial zero.
  alone = np.asarray(encoder(np.asarray(clip["audio"], np.float32)[None] / 32767.0))[0]
  # The last frame's window reaches into the padding that whole seconds add.
  np.testing.assert_allclose(item["audio"][:-1], alone[:len(item["audio"]) - 1], rtol=1e-4,
                             atol=1e-4)


def test_a_stopped_extraction_rewrites_only_its_missing_shard(synthtalk_tiny_dir,
                                                              face_latent_tiny_workdir,
                                                              validation_cache):
  shards = sorted(validation_cache.glob("shard-*.npz"))
  with np.load(shards[1]) as data:
    before = {name: data[name] for name in data.files}
  kept = {p.name: p.stat().st_mtime_ns for p in (shards[0], shards[2])}
  shards[1].unlink()
  with pytest.raises(UserError, match="incomplete.*vasa motion-latents"):
    motion_latents.MotionLatentSource(validation_cache)
  again = motion_latents.extract_split(
      synthtalk_tiny_dir, DATASET, "validation", str(validation_cache.parents[3]), MEL,
      stage1_workdir=face_latent_tiny_workdir, batch_size=40, shard_size=SHARD_SIZE)
  assert again == validation_cache
  assert {p.name: p.stat().st_mtime_ns for p in (shards[0], shards[2])} == kept
  with np.load(shards[1]) as data:
    assert sorted(data.files) == sorted(before)
    for name in data.files:
      np.testing.assert_array_equal(data[name], before[name], err_msg=name)


def test_a_cache_of_other_settings_is_refused_or_kept_apart(synthtalk_tiny_dir,
                                                            face_latent_tiny_workdir,
                                                            validation_cache, tmp_path):
  cache_dir = str(validation_cache.parents[3])
  # Another audio encoder into the same folder.
  with pytest.raises(UserError, match=re.escape(str(validation_cache)) + r".*audio.*another "
                     "--cache_dir"):
    motion_latents.extract_split(synthtalk_tiny_dir, DATASET, "validation", cache_dir,
                                 {"wav2vec2_path": "", "n_mels": 40},
                                 stage1_workdir=face_latent_tiny_workdir, shard_size=SHARD_SIZE)
  # Another stage-1 run of the same variant and step: the same folder name, refused.
  other_run = tmp_path / "other_run"
  shutil.copytree(face_latent_tiny_workdir, other_run)
  with pytest.raises(UserError, match=r"stage1.*another --cache_dir"):
    motion_latents.extract_split(synthtalk_tiny_dir, DATASET, "validation", cache_dir, MEL,
                                 stage1_workdir=str(other_run), shard_size=SHARD_SIZE)
  assert json.loads((validation_cache / "meta.json").read_text())["stage1"]["workdir"] == \
      face_latent_tiny_workdir
  # Another step of the same run: a folder of its own.
  step1 = motion_latents.load_stage1(face_latent_tiny_workdir, step=20)
  assert step1.step == 20
  assert motion_latents.cache_folder(cache_dir, DATASET, "validation", step1) == \
      validation_cache.parents[1] / "tiny_step20" / "validation"


def test_load_stage1_refuses_another_task(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps({"task": "reference_autoencoder"}))
  with pytest.raises(UserError, match=re.escape(str(tmp_path / "config.json")) + ".*face_latent"):
    motion_latents.load_stage1(tmp_path)


def test_labels_only_cache_and_its_statistics(synthtalk_tiny_dir, tmp_path):
  folder = motion_latents.extract_split(synthtalk_tiny_dir, DATASET, "test", str(tmp_path), MEL,
                                        shard_size=SHARD_SIZE)
  assert folder.parts[-3:] == ("synthtalk_tiny", "labels_only", "test")
  with np.load(folder / "shard-00000.npz") as data:
    assert "z_pose_0" not in data.files and "z_dyn_0" not in data.files
  cache = motion_latents.MotionLatentSource(folder)
  assert cache.meta["stage1"] is None and cache.motion_dim == len(schema.LABEL_NAMES)
  dataset = pipelines.open_split(synthtalk_tiny_dir, DATASET, "test")
  labels = [schema.stack_labels(dataset[i]["labels"]) for i in range(len(dataset))]
  items = [cache[i] for i in range(len(cache))]
  for item, clip_labels in zip(items, labels):
    np.testing.assert_array_equal(item["motion"], clip_labels)

  stats = motion_latents.compute_stats(folder)
  all_labels = np.concatenate(labels)
  all_audio = np.concatenate([item["audio"] for item in items])
  np.testing.assert_allclose(stats["motion_mean"], all_labels.mean(0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(stats["motion_std"], np.maximum(all_labels.std(0), 1e-6), rtol=1e-4,
                             atol=1e-6)
  np.testing.assert_array_equal(stats["labels_mean"], stats["motion_mean"])
  np.testing.assert_allclose(stats["audio_mean"], all_audio.mean(0), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(stats["audio_std"], all_audio.std(0), rtol=1e-4, atol=1e-4)
  written = (folder / "stats.npz").stat().st_mtime_ns
  again = motion_latents.compute_stats(folder)
  assert (folder / "stats.npz").stat().st_mtime_ns == written
  assert all(np.array_equal(again[name], stats[name]) for name in stats)

  # grain copies the source into its workers.
  copy = pickle.loads(pickle.dumps(cache))
  np.testing.assert_array_equal(copy[7]["audio"], items[7]["audio"])
  (folder / "meta.json").unlink()
  with pytest.raises(UserError, match="meta.json"):
    motion_latents.MotionLatentSource(folder)


def test_command_line(synthtalk_tiny_dir, face_latent_tiny_workdir, tmp_path, capsys):
  common_args = ["--data_dir", synthtalk_tiny_dir, "--dataset", DATASET, "--cache_dir",
                 str(tmp_path)]
  assert main.main(["motion-latents", "--split", "train,validation"] + common_args) == 0
  labels_only = tmp_path / "motion_latents" / "synthtalk_tiny" / "labels_only"
  assert capsys.readouterr().out.split() == [str(labels_only / "train"),
                                             str(labels_only / "validation")]
  assert len(motion_latents.MotionLatentSource(labels_only / "train")) == 48
  assert (labels_only / "train" / "stats.npz").is_file()
  assert not (labels_only / "validation" / "stats.npz").exists()  # Statistics are train's.

  assert main.main(["motion-latents", "--stage1", face_latent_tiny_workdir, "--step", "40",
                    "--split", "test", "--batch_size", "24"] + common_args) == 0
  folder = tmp_path / "motion_latents" / "synthtalk_tiny" / "tiny_step40" / "test"
  assert capsys.readouterr().out.split() == [str(folder)]
  assert motion_latents.MotionLatentSource(folder)[0]["motion"].shape[1] > 7

  assert main.main(["motion-latents", "--step", "20"] + common_args) == 2
  assert "--step needs --stage1" in capsys.readouterr().err
