"""SynthTalk clips, the tiny tfds build, and the stage 1 / stage 2 pipelines over it."""

import json

import numpy as np
import pytest

from vasa_jax.data import pipelines, schema
from vasa_jax.data.synthtalk import clip, sentences, visemes

SPEC = clip.ClipSpec(resolution=64)


@pytest.fixture
def tiny_dir(synthtalk_tiny_dir):
  return synthtalk_tiny_dir


def test_same_seed_same_bytes_and_another_seed_differs():
  a, b = (clip.generate_clip(0, "train", 5, SPEC) for _ in range(2))
  assert a["frames"] == b["frames"]
  np.testing.assert_array_equal(a["audio"], b["audio"])
  assert a["meta"]["details"] == b["meta"]["details"]
  other = clip.generate_clip(1, "train", 5, SPEC)
  assert other["frames"] != a["frames"]


def test_clip_layout_and_alignment():
  example = clip.generate_clip(0, "test", 2, SPEC)
  meta = example["meta"]
  frames = clip.decode_frames(example["frames"])
  num_frames = meta["num_frames"]
  assert frames.shape == (num_frames, 64, 64, 3)
  assert example["audio"].shape == (num_frames * schema.SAMPLES_PER_FRAME,)
  assert meta["text"] in sentences.TEST_SENTENCES and meta["identity"].startswith("test-")
  for name in schema.LABEL_NAMES:
    assert example["labels"][name].shape == (num_frames,)
  assert example["landmarks"].shape == (num_frames, len(schema.LANDMARK_NAMES), 2)
  # The viseme track follows the stored phoneme events: frame t shows the phoneme at its centre.
  phonemes = json.loads(meta["details"])["phonemes"]
  checked = 0
  for start, end, symbol, _ in phonemes:
    frame = int((start + end) / 2 * schema.FPS)
    if end - start >= 1.0 / schema.FPS and symbol != "_":
      assert example["viseme"][frame] == visemes.viseme_for(symbol), (symbol, start, end)
      checked += 1
  assert checked > 5
  # And the audio: voiced where phonemes are, silent in the lead-in before the first one.
  audio = example["audio"].astype(np.float32) / 32767
  first = phonemes[0][0]
  lead = audio[:int(first * schema.SAMPLE_RATE) - 160]
  speech_part = audio[int(first * schema.SAMPLE_RATE):int(phonemes[-1][1] * schema.SAMPLE_RATE)]
  assert np.abs(lead).max(initial=0) < 0.01 < np.sqrt(np.mean(speech_part ** 2))


def test_tiny_build_has_disjoint_splits(tiny_dir):
  seen = {}
  for split, count in (("train", 48), ("validation", 8), ("test", 8)):
    source = pipelines.open_split(tiny_dir, "synthtalk/tiny", split)
    assert len(source) == count
    metas = [source[i]["meta"] for i in range(len(source))]
    seen[split] = ({m["identity"] for m in metas}, {m["text"] for m in metas})
  for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
    assert not seen[a][0] & seen[b][0], f"{a} and {b} share identities"
    assert not seen[a][1] & seen[b][1], f"{a} and {b} share sentences"
  assert len(seen["train"][0]) == 12


def test_missing_dataset_is_a_clear_error(tmp_path):
  from vasa_jax.errors import UserError

  with pytest.raises(UserError, match="not built in .*vasa synthtalk build --config tiny"):
    pipelines.open_split(str(tmp_path), "synthtalk/tiny", "train")


def face_batches(source, worker_count=0):
  return pipelines.global_batch_iterator(
      source, seed=0, global_batch_size=4, worker_count=worker_count,
      random_transform=pipelines.FaceFrameTriplets(source, image_size=48))


def test_stage1_triplets(tiny_dir):
  source = pipelines.open_split(tiny_dir, "synthtalk/tiny", "train")
  batch = next(face_batches(source))
  for key in ("source", "driving", "other"):
    assert batch[key].shape == (4, 48, 48, 3) and batch[key].dtype == np.uint8
  assert batch["source_labels"].shape == (4, len(schema.LABEL_NAMES))
  for key in ("source_landmarks", "driving_landmarks", "other_landmarks"):
    assert batch[key].shape == (4, len(schema.LANDMARK_NAMES), 2)
    assert np.isfinite(batch[key]).all()  # SynthTalk stores every frame's landmarks.
  assert not np.array_equal(batch["source"], batch["other"])


def test_stage1_pairs_cross_clips_of_one_identity(tiny_dir):
  """With cross_clip=1 every driving frame comes from another clip of the source's identity (its
  labels are that clip's: another base pose); with 0, from the source's clip."""
  source = pipelines.open_split(tiny_dir, "synthtalk/tiny", "train")
  clip = source[0]
  rng = np.random.default_rng(0)
  across = pipelines.FaceFrameTriplets(source, 48, augment=False, cross_clip=1.0)
  for _ in range(3):
    other = across._same_identity(clip, rng)
    assert other["meta"]["identity"] == clip["meta"]["identity"]
    assert other["meta"]["clip_id"] != clip["meta"]["clip_id"]
  within = pipelines.FaceFrameTriplets(source, 48, augment=False, cross_clip=0.0)
  example = within(clip, np.random.default_rng(1))
  clip_labels = schema.stack_labels(clip["labels"])
  assert any(np.array_equal(example["driving_labels"], row) for row in clip_labels)
  example = across(clip, np.random.default_rng(1))
  assert not any(np.array_equal(example["driving_labels"], row) for row in clip_labels)


def test_stage1_nearby_pairs_lie_within_nearby_frames(tiny_dir):
  """With nearby=1 the driving frame is at most `nearby_frames` from the source; without, pairs
  reach across the clip."""
  source = pipelines.open_split(tiny_dir, "synthtalk/tiny", "train")
  clip = source[0]
  labels = schema.stack_labels(clip["labels"])

  def gaps(**kw):
    triplets = pipelines.FaceFrameTriplets(source, 48, augment=False, cross_clip=0.0, **kw)
    out = []
    for seed in range(24):
      example = triplets(clip, np.random.default_rng(seed))
      (s,) = [t for t, row in enumerate(labels) if np.array_equal(row, example["source_labels"])]
      (d,) = [t for t, row in enumerate(labels) if np.array_equal(row, example["driving_labels"])]
      out.append(abs(s - d))
    return np.array(out)

  near = gaps(nearby=1.0, nearby_frames=3)
  assert near.max() <= 3 and near.min() == 0
  assert gaps().max() > 6


def test_mirroring_flips_the_labels_and_landmarks_with_the_frame():
  labels = np.arange(len(schema.LABEL_NAMES), dtype=np.float32) + 1
  mirrored = pipelines.mirror_labels(labels)
  for name in schema.LABEL_NAMES:
    i = schema.LABEL_NAMES.index(name)
    flips = name in ("yaw", "roll", "tx", "gaze_theta")
    assert mirrored[i] == (-labels[i] if flips else labels[i]), name
  landmarks = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.5], [0.55, 0.7], [0.5, 0.9],
                        [0.5, 0.1]], np.float32)
  flipped = pipelines.mirror_landmarks(landmarks)
  np.testing.assert_allclose(flipped[0], [0.3, 0.4])  # The right eye, mirrored, is the left.
  np.testing.assert_allclose(flipped[3], [0.45, 0.7])
  np.testing.assert_allclose(pipelines.mirror_landmarks(flipped), landmarks)


@pytest.mark.parametrize("worker_count", [0, 2])
def test_pipeline_restored_from_its_state_continues_exactly(tiny_dir, worker_count):
  source = pipelines.open_split(tiny_dir, "synthtalk/tiny", "train")
  first = face_batches(source, worker_count)
  next(first)
  state = first.get_state()
  expected = [next(first) for _ in range(2)]
  second = face_batches(source, worker_count)
  second.set_state(state)
  for want in expected:
    got = next(second)
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])


def test_preview_command_writes_sheet_and_videos(tmp_path, capsys):
  from vasa_jax import main

  assert main.main(["synthtalk", "preview", "--out", str(tmp_path), "--clips", "2",
                    "--resolution", "64"]) == 0
  videos = sorted(p.name for p in tmp_path.glob("*.mp4"))
  assert videos == ["test-0000000.mp4", "test-0000004.mp4"]  # One clip of each identity.
  assert (tmp_path / "contact_sheet.png").stat().st_size > 1000
  assert main.main(["synthtalk", "build", "--config", "huge", "--data_dir", str(tmp_path)]) == 2
  assert "unknown SynthTalk config 'huge'" in capsys.readouterr().err
