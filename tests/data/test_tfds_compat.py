"""tfds's shuffler spills splits over its memory limit to disk; that must work without TensorFlow."""

import importlib.util

import pytest
from tensorflow_datasets.core import shuffle

from vasa_jax.data import tfds_compat


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None,
                    reason="TensorFlow is installed: tfds uses it directly")
def test_shuffler_spills_to_local_files_without_tensorflow(tmp_path, monkeypatch):
  monkeypatch.setattr(shuffle, "MAX_MEM_BUFFER_SIZE", 64)  # Spill after a few records.
  records = {i: f"record {i:04d}".encode() * 3 for i in range(50)}

  def shuffled():
    shuffler = shuffle.Shuffler(tmp_path, hash_salt="split", disable_shuffling=False)
    for key, data in records.items():
      shuffler.add(key, data)
    return shuffler, list(shuffler)

  with pytest.raises(ModuleNotFoundError):  # What tfds alone does.
    shuffled()
  with tfds_compat.spill_without_tensorflow():
    shuffler, out = shuffled()
  assert not shuffler.bucket_lengths == [len(records)]  # Spilled into several buckets.
  assert sorted(data for _, data in out) == sorted(records.values())
  assert list(tmp_path.glob("*.tmp")) == []  # Buckets removed after reading.
  assert shuffle.tf is not None and not isinstance(shuffle.tf, type(tfds_compat._local_gfile()))
