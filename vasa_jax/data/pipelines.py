"""grain pipelines that deliver each process its share of every global batch.

Global batch g is made of the examples g*B .. (g+1)*B-1 of one shuffled, endlessly repeated stream (each
epoch reshuffled from the seed). Process p of P receives rows p*B/P .. (p+1)*B/P-1 of it, which is where
`jax.make_array_from_process_local_data` places them in the global array. So the trainer sees the same
global batches whatever the number of processes, and the iterator's position, saved with the trainer's
checkpoints, fixes the batches that follow a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grain

from vasa_jax.errors import UserError


def global_batch_iterator(
    source: Any,
    *,
    seed: int,
    global_batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
    transform: Callable[[Any], Any] | None = None,
    shuffle: bool = True,
    worker_count: int = 0,
    read_threads: int = 2,
    prefetch: int = 8,
) -> grain.DatasetIterator:
  """Returns this process's iterator over local batches of a random-access `source`.

  Args:
    source: a grain random-access data source (`__len__` and `__getitem__`).
    seed: shuffle seed; epoch e is shuffled with a seed derived from (seed, e).
    global_batch_size: examples per global batch, across all processes.
    process_index, process_count: this process and how many share the batch.
    transform: applied to every example before batching.
    shuffle: False keeps the source order (evaluation).
    worker_count: grain worker processes (0 = decode in this process).
    read_threads, prefetch: threads and buffered examples per process.

  Returns:
    An iterator of dicts of numpy arrays `[global_batch_size // process_count, ...]` with
    `get_state()` / `set_state()`.
  """
  if global_batch_size % process_count:
    raise UserError(f"the global batch size {global_batch_size} does not split over "
                    f"{process_count} processes; use a multiple of {process_count}")
  local_batch_size = global_batch_size // process_count
  dataset = grain.MapDataset.source(source)
  if shuffle:
    dataset = dataset.shuffle(seed=seed)
  dataset = dataset.repeat()
  if transform is not None:
    dataset = dataset.map(transform)
  dataset = dataset.batch(local_batch_size, drop_remainder=True)
  dataset = dataset[process_index::process_count]
  iter_dataset = dataset.to_iter_dataset(
      grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch))
  if worker_count > 0:
    iter_dataset = iter_dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
  return iter(iter_dataset)
