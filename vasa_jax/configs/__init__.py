"""Experiment configs: `get_config(arg)` files, command-line overrides, the resolved JSON.

A config is named `FILE[:ARG]`; `FILE` is a Python file whose `get_config(arg)` returns an
`ml_collections.ConfigDict`. Overrides are `--config.a.b=value`. The config is locked before they are
applied, so a mistyped key fails and names the key, instead of being silently added.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import ml_collections

from vasa_jax import atomic
from vasa_jax.errors import UserError

OVERRIDE_PREFIX = "--config."


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
  """Parses a config argument such as "variant=base,runlocal" against typed defaults.

  A bare word sets a boolean default to True. Values take the type of their default. An unknown name
  is an error that lists the known ones.
  """
  result = ml_collections.ConfigDict(defaults)
  if not arg:
    return result
  for item in arg.split(","):
    item = item.strip()
    if not item:
      continue
    name, has_value, text = item.partition("=")
    if name not in defaults:
      raise UserError(
          f"unknown config argument {name!r} in {arg!r}; known: {', '.join(sorted(defaults))}")
    if not has_value:
      if not isinstance(defaults[name], bool):
        raise UserError(f"config argument {name!r} needs a value ({name}=...)")
      result[name] = True
    else:
      result[name] = _parse_value(text, defaults[name], f"config argument {name!r}")
  return result


def load_module(spec: str):
  """The Python module of a config file `FILE[:ARG]` (the argument is ignored)."""
  path = spec.partition(":")[0]
  file = pathlib.Path(path)
  if not file.is_file():
    raise UserError(f"config file not found: {path} (give a file under experiments/, e.g. "
                    "experiments/reference_autoencoder.py)")
  module_name = "vasa_config_" + file.stem
  module_spec = importlib.util.spec_from_file_location(module_name, file)
  if module_spec is None or module_spec.loader is None:
    raise UserError(f"config file {path} is not a Python file")
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except UserError:
    raise
  except Exception as e:  # A broken config file is the user's to fix: say where.
    raise UserError(f"config file {path} failed to load: {type(e).__name__}: {e}") from e
  return module


def load_config(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """Loads `FILE[:ARG]`, applies `--config.key=value` overrides and returns a locked config."""
  path, _, arg = spec.partition(":")
  module = load_module(spec)
  if not hasattr(module, "get_config"):
    raise UserError(f"config file {path} has no get_config(arg) function")
  config = module.get_config(arg) if arg else module.get_config()
  if not isinstance(config, ml_collections.ConfigDict):
    raise UserError(f"get_config in {path} returned {type(config).__name__}, not a ConfigDict")
  config.lock()
  for override in overrides:
    apply_override(config, override)
  return config


def sweep_overrides(spec: str) -> list[list[str]]:
  """The members of a config file's `sweep()` (a list of {key: value}) as override lists."""
  module = load_module(spec)
  if not hasattr(module, "sweep"):
    raise UserError(f"config file {spec.partition(':')[0]} has no sweep() function")
  return [[f"{OVERRIDE_PREFIX}{key}={value}" for key, value in member.items()]
          for member in module.sweep()]


def sweep_member_name(overrides: Sequence[str]) -> str:
  """A folder name for one sweep member: its overrides, or "base" for none."""
  if not overrides:
    return "base"
  parts = []
  for override in overrides:
    key, _, value = override[len(OVERRIDE_PREFIX):].partition("=")
    parts.append(f"{key.split('.')[-1]}{value}")
  return "-".join(parts).replace("/", "_")


def apply_override(config: ml_collections.ConfigDict, override: str) -> None:
  """Applies one `--config.a.b=value` (or `config.a.b=value`) to a locked config."""
  text = override[2:] if override.startswith("--") else override
  if not text.startswith("config.") or "=" not in text:
    raise UserError(f"cannot read override {override!r}: write --config.KEY=VALUE")
  key, _, value = text[len("config."):].partition("=")
  parent, leaf = _resolve_parent(config, key)
  current = parent[leaf]
  if isinstance(current, ml_collections.ConfigDict):
    raise UserError(f"config key {key!r} is a group; set one of its keys: "
                    f"{', '.join(sorted(current.keys()))}")
  new_value = _parse_value(value, current, f"config key {key!r}")
  try:
    with parent.ignore_type():
      parent[leaf] = new_value
  except Exception as e:
    raise UserError(f"cannot set config key {key!r} to {value!r}: {e}") from e


def _resolve_parent(config: ml_collections.ConfigDict, key: str):
  parts = key.split(".")
  node = config
  for depth, part in enumerate(parts):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      known = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      where = ".".join(parts[:depth]) or "the config"
      hint = difflib.get_close_matches(part, known, n=1)
      suggestion = f"; did you mean {'.'.join(parts[:depth] + hint[:1])!r}?" if hint else ""
      raise UserError(f"unknown config key {key!r}: {where} has no {part!r}{suggestion}")
    if depth == len(parts) - 1:
      return node, part
    node = node[part]
  raise AssertionError("unreachable")


def _parse_value(text: str, current: Any, what: str) -> Any:
  """Reads `text` as a value of the type `current` has."""
  if isinstance(current, str):
    return text
  if isinstance(current, bool):
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
      return True
    if lowered in ("false", "0", "no"):
      return False
    raise UserError(f"{what} is a bool; got {text!r}")
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    if current is None:
      return text
    raise UserError(f"{what} expects a {type(current).__name__}; cannot read {text!r}") from None
  if current is None:
    return value
  if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  if isinstance(current, (tuple, list)) and isinstance(value, (tuple, list)):
    return type(current)(value)
  if type(value) is not type(current):
    raise UserError(f"{what} expects a {type(current).__name__}; got {text!r}")
  return value


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=repr)


def write_json(config: ml_collections.ConfigDict, path: str | os.PathLike) -> None:
  """Writes the resolved config atomically (a reader never sees half a file)."""
  atomic.write_text(path, to_json(config) + "\n")


def read_json(path: str | os.PathLike) -> ml_collections.ConfigDict:
  """The config a run wrote with `write_json` (its workdir's `config.json`), locked."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise UserError(f"{path} not found: give the workdir of a training run (it holds config.json)")
  try:
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
  except json.JSONDecodeError as e:
    raise UserError(f"{path} is not valid JSON ({e}); restore it from the run's config file") from e
  config.lock()
  return config
