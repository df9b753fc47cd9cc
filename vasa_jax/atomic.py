"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

Jax-free, so command-line tools that only orchestrate (the device check) can use it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import tempfile
from collections.abc import Iterator
from typing import IO, Any


def _umask() -> int:
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


@contextlib.contextmanager
def writing(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
  """A file to write `path` through (`np.savez(file, ...)`, ...): a temporary in the same folder,
  renamed to `path` when the block ends without an error and removed when it raises. The folder is
  made. The temporary's name starts with a dot and ends in ".tmp", so no glob for the real files
  (shard-*.npz, ...) matches a leftover of a killed process."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as file:
      yield file
    # mkstemp makes the file private: give it the mode an ordinary write would (or the old file's).
    os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
    os.replace(temporary, path)
  except BaseException:
    pathlib.Path(temporary).unlink(missing_ok=True)
    raise


def write_text(path: str | os.PathLike, text: str) -> pathlib.Path:
  """`text` (UTF-8) to `path`, atomically (`writing`)."""
  with writing(path, "w") as file:
    file.write(text)
  return pathlib.Path(path)


def write_json(path: str | os.PathLike, record: Any, indent: int | None = 2,
               **dumps: Any) -> pathlib.Path:
  """`record` as JSON (one trailing newline) to `path`, atomically; `dumps`: more `json.dumps`
  arguments (`default=float`, `allow_nan=False`, ...)."""
  return write_text(path, json.dumps(record, indent=indent, **dumps) + "\n")
