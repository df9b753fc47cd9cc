"""vasa_jax.atomic: whole files or the old ones, never half of one."""

import json
import os

import pytest

from vasa_jax import atomic


def test_write_text_replaces_whole_files_and_keeps_their_mode(tmp_path):
  path = tmp_path / "sub" / "report.md"
  atomic.write_text(path, "first\n")
  assert path.read_text() == "first\n"
  os.chmod(path, 0o640)
  atomic.write_text(path, "second\n")
  assert path.read_text() == "second\n"
  assert path.stat().st_mode & 0o777 == 0o640
  assert sorted(p.name for p in path.parent.iterdir()) == ["report.md"]  # No temporary left.


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
  path = tmp_path / "record.json"
  atomic.write_json(path, {"step": 1})

  with pytest.raises(UnicodeEncodeError):  # Fails half-way through writing the temporary.
    atomic.write_text(path, '{"step": 2, "name": "\ud800"}')
  assert json.loads(path.read_text()) == {"step": 1}
  assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
  atomic.write_json(path, {"value": 1.5}, default=float)
  assert path.read_text().endswith("\n")
