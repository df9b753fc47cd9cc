"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

Jax-free, so command-line tools that only orchestrate (the device check) can use it too.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from collections.abc import Mapping
from typing import Any


def _umask() -> int:
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def write_text(path: str | os.PathLike, text: str) -> pathlib.Path:
  """`text` to `path` through a temporary file in the same folder and `os.replace`; makes the
  folder. The file gets the mode an ordinary write would (or keeps the existing file's)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(handle, "w", encoding="utf-8") as file:
      file.write(text)
    # mkstemp makes the file private.
    os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
    os.replace(temporary, path)
  except BaseException:
    pathlib.Path(temporary).unlink(missing_ok=True)
    raise
  return path


def write_json(path: str | os.PathLike, record: Mapping[str, Any], **dumps: Any) -> pathlib.Path:
  """`record` as indented JSON (one trailing newline) to `path`, atomically; `dumps`: extra
  `json.dumps` arguments (e.g. `default=float`)."""
  return write_text(path, json.dumps(record, indent=2, **dumps) + "\n")
