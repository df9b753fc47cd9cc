"""Global batches split over processes, and iterator positions that restore exactly."""

import numpy as np
import pytest

from vasa_jax.data import pipelines
from vasa_jax.errors import UserError


class Indices:
  def __len__(self):
    return 10

  def __getitem__(self, index):
    return {"index": np.int32(index)}


def take(iterator, n):
  return [next(iterator)["index"].tolist() for _ in range(n)]


def test_processes_receive_consecutive_rows_of_each_global_batch():
  whole = take(pipelines.global_batch_iterator(Indices(), seed=3, global_batch_size=4), 6)
  parts = [take(pipelines.global_batch_iterator(Indices(), seed=3, global_batch_size=4,
                                                process_index=p, process_count=2), 6)
           for p in range(2)]
  assert [a + b for a, b in zip(*parts)] == whole
  # Every epoch of 10 examples is a permutation, and each epoch is shuffled differently.
  stream = sum(whole, [])
  assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:20]) == list(range(10))
  assert stream[:10] != stream[10:20]


@pytest.mark.parametrize("worker_count", [0, 2])
def test_restored_iterator_continues_exactly(worker_count):
  def make():
    return pipelines.global_batch_iterator(Indices(), seed=0, global_batch_size=3,
                                           worker_count=worker_count)

  first = make()
  take(first, 4)
  state = first.get_state()
  expected = take(first, 5)
  second = make()
  second.set_state(state)
  assert take(second, 5) == expected


def test_global_batch_must_split_over_processes():
  with pytest.raises(UserError, match="global batch size 5 does not split over 2 processes"):
    pipelines.global_batch_iterator(Indices(), seed=0, global_batch_size=5, process_count=2)


def test_motion_windows_are_consecutive_normalised_frames():
  rng = np.random.default_rng(0)
  frames, M, A = 40, 3, 2
  clip = {"motion": rng.normal(size=(frames, M)).astype(np.float32) * 3 + 1,
          "audio": rng.normal(size=(frames, A)).astype(np.float32),
          "gaze": np.array([0.1, -0.2], np.float32), "distance": np.float32(1.1),
          "emotion": np.int32(2)}
  stats = {"motion_mean": np.ones(M, np.float32), "motion_std": np.full(M, 3.0, np.float32),
           "audio_mean": np.zeros(A, np.float32), "audio_std": np.ones(A, np.float32)}
  windows = pipelines.MotionWindows(window=10, context=4, stats=stats)
  normalised = (clip["motion"] - 1) / 3
  starts = set()
  for seed in range(20):
    out = windows(clip, np.random.default_rng(seed))
    assert out["motion"].shape == (14, M) and out["audio"].shape == (14, A)
    assert out["has_previous"] and out["valid"].all()
    # Find where the 14 frames came from: they must be consecutive frames of the clip.
    start = int(np.argmin([np.abs(normalised[s:s + 14] - out["motion"]).max()
                           for s in range(frames - 13)]))
    np.testing.assert_allclose(out["motion"], normalised[start:start + 14], rtol=1e-6)
    np.testing.assert_allclose(out["audio"], clip["audio"][start:start + 14], rtol=1e-6)
    starts.add(start)
  assert len(starts) > 5  # Windows start anywhere.
  assert out["gaze"].tolist() == pytest.approx([0.1, -0.2]) and out["emotion"] == 2

  short = {**clip, "motion": clip["motion"][:7], "audio": clip["audio"][:7]}
  out = windows(short, np.random.default_rng(0))
  assert not out["has_previous"]
  assert out["valid"].tolist() == [False] * 4 + [True] * 7 + [False] * 3
  np.testing.assert_allclose(out["motion"][4:11], normalised[:7], rtol=1e-6)
  np.testing.assert_array_equal(out["motion"][11:], 0.0)
