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
