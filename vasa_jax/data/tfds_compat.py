"""Building tfds datasets larger than 1 GB without TensorFlow installed.

tfds keeps a split's serialised examples in memory up to 1 GB and then spills them to temporary
bucket files, which it opens through `tf.io.gfile`: without TensorFlow that raises
ModuleNotFoundError in the middle of a build. `spill_without_tensorflow()` gives that step local-file
equivalents for the duration of a build, and does nothing when TensorFlow is importable.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import types


class _NeverRaised(Exception):
  """Stands in for `tf.errors.ResourceExhaustedError`, which local files do not raise."""


def _local_gfile() -> types.SimpleNamespace:
  def gfile_open(path, mode="r"):
    return open(os.fspath(path), mode)

  gfile = types.SimpleNamespace(
      GFile=gfile_open, exists=lambda path: os.path.exists(os.fspath(path)),
      remove=lambda path: os.remove(os.fspath(path)))
  return types.SimpleNamespace(io=types.SimpleNamespace(gfile=gfile),
                               errors=types.SimpleNamespace(ResourceExhaustedError=_NeverRaised))


@contextlib.contextmanager
def spill_without_tensorflow():
  """Within the block, tfds's shuffler spills to local files without TensorFlow."""
  if importlib.util.find_spec("tensorflow") is not None:
    yield
    return
  from tensorflow_datasets.core import shuffle

  saved = shuffle.tf
  shuffle.tf = _local_gfile()
  try:
    yield
  finally:
    shuffle.tf = saved
