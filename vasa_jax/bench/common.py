"""What every benchmark shares: device peaks, compile counting, profiling, tables and JSON."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import pathlib
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax import atomic

# Dense (no sparsity) peak FLOP/s per compute dtype and memory bandwidth in bytes/s, from the
# vendors' datasheets, matched against `device.device_kind` by substring, first match wins. float32
# on NVIDIA GPUs is the TF32 tensor-core rate: XLA's default matmul precision lets float32 dots use
# TF32.
DEVICE_PEAKS: tuple[tuple[str, dict[str, float], float], ...] = (
    ("H100 PCIe", {"bfloat16": 756e12, "float16": 756e12, "float32": 378e12}, 2.0e12),
    ("H100", {"bfloat16": 989.4e12, "float16": 989.4e12, "float32": 494.7e12}, 3.35e12),
    ("H200", {"bfloat16": 989.4e12, "float16": 989.4e12, "float32": 494.7e12}, 4.8e12),
    ("A100", {"bfloat16": 312e12, "float16": 312e12, "float32": 156e12}, 2.04e12),
    ("TPU v6 lite", {"bfloat16": 918e12, "float32": 918e12 / 4}, 1.64e12),
    ("TPU v5 lite", {"bfloat16": 197e12, "float32": 197e12 / 4}, 0.82e12),
    ("TPU v5", {"bfloat16": 459e12, "float32": 459e12 / 4}, 2.765e12),
    ("TPU v4", {"bfloat16": 275e12, "float32": 275e12 / 4}, 1.2e12),
)


def known_peaks(device_kind: str) -> tuple[dict[str, float], float] | None:
  """({dtype: peak FLOP/s}, bytes/s) of a device kind from `DEVICE_PEAKS`, or None."""
  for name, flops, bandwidth in DEVICE_PEAKS:
    if name.lower() in device_kind.lower():
      return flops, bandwidth
  return None


_MEASURED: dict[str, float] = {}


def measured_matmul_peak(dtype: str, size: int = 2048, repeats: int = 10) -> float:
  """FLOP/s of the best of `repeats` square matmuls on the default device: the peak used where no
  datasheet number is known (CPUs). Cached per dtype."""
  if dtype not in _MEASURED:
    a = jnp.asarray(np.random.default_rng(0).standard_normal((size, size)), dtype)
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
      start = time.perf_counter()
      matmul(a).block_until_ready()
      best = min(best, time.perf_counter() - start)
    _MEASURED[dtype] = 2 * size**3 / best
  return _MEASURED[dtype]


def device_peak(dtype: str, device: jax.Device | None = None) -> tuple[float, str]:
  """(peak FLOP/s, where the number comes from) of `device` (default: the first) in `dtype`."""
  device = device or jax.devices()[0]
  dtype = jnp.dtype(dtype).name
  peaks = known_peaks(device.device_kind)
  if peaks and dtype in peaks[0]:
    return peaks[0][dtype], f"{device.device_kind} datasheet, dense {dtype}"
  return measured_matmul_peak(dtype), f"measured {dtype} 2048x2048 matmul on {device.device_kind}"


def device_bandwidth(device: jax.Device | None = None) -> float | None:
  device = device or jax.devices()[0]
  peaks = known_peaks(device.device_kind)
  return peaks[1] if peaks else None


def peak_memory_bytes(device: jax.Device | None = None) -> int | None:
  """The allocator's peak since the process started (GPU, TPU), or None where it keeps no count
  (the CPU)."""
  stats = (device or jax.devices()[0]).memory_stats()
  return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def compiled_memory_bytes(compiled) -> int | None:
  """Arguments + outputs + temporaries of a compiled program, less donated (aliased) buffers: XLA's
  own estimate of its peak, where the runtime keeps no count."""
  analysis = compiled.memory_analysis()
  if analysis is None:
    return None
  return int(analysis.argument_size_in_bytes + analysis.output_size_in_bytes
             + analysis.temp_size_in_bytes - analysis.alias_size_in_bytes)


def cost(compiled_or_lowered) -> dict[str, float]:
  """{"flops", "bytes"} of XLA's cost analysis of one program (per device). A loop's body counts
  once, whatever its trip count."""
  analysis = compiled_or_lowered.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # Older JAX: one dict per device program.
    analysis = analysis[0]
  analysis = analysis or {}
  return {"flops": float(analysis.get("flops", 0.0)),
          "bytes": float(analysis.get("bytes accessed", 0.0))}


def best_seconds(fn, *args, repeats: int = 3) -> float:
  """The fastest of `repeats` calls of `fn(*args)` in seconds, after one call to warm up (compile),
  each waited for with `jax.block_until_ready`."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return min(times)


class CompileCounter:
  """Counts XLA compilations while active: `with CompileCounter() as compiles: ...; compiles.count`.
  A benchmark that compiles after its warm-up measures compilation, not the program."""

  EVENT = "/jax/core/compile/backend_compile_duration"

  def __init__(self):
    self.count = 0

  def _listener(self, event: str, duration: float, **kwargs) -> None:
    del duration, kwargs
    if event == self.EVENT:
      self.count += 1

  def __enter__(self) -> CompileCounter:
    jax.monitoring.register_event_duration_secs_listener(self._listener)
    return self

  def __exit__(self, *exc) -> None:
    jax.monitoring.unregister_event_duration_listener(self._listener)


@contextlib.contextmanager
def profile(directory: str | os.PathLike | None) -> Iterator[None]:
  """A jax.profiler trace of the block into `directory` (TensorBoard/XProf and Perfetto files);
  nothing without a directory."""
  if not directory:
    yield
    return
  with jax.profiler.trace(str(directory), create_perfetto_trace=True):
    yield


def trace_summary(directory: str | os.PathLike, top: int = 12,
                  by_kind: bool = False) -> list[tuple[str, float, float]]:
  """The `top` operations of the newest Perfetto trace under `directory` by total time:
  (name, milliseconds, share of all operation time); `by_kind` adds up the instances of each kind
  (`convolution.3` and `convolution.7` as `convolution`). Python frames and the runtime's own
  events are left out, so what remains is what the device (or the CPU backend's threads) ran."""
  traces = sorted(pathlib.Path(directory).glob("plugins/profile/*/perfetto_trace.json.gz"))
  if not traces:
    return []
  with gzip.open(traces[-1], "rt") as f:
    data = json.load(f)
  events = data["traceEvents"] if isinstance(data, dict) else data
  # Accelerator traces have an "XLA Ops" line per device (HLO ops, beside the kernels they launch):
  # count those alone. CPU traces run the ops on the backend's threads, among runtime events.
  op_threads = {(e.get("pid"), e.get("tid")) for e in events if e.get("ph") == "M" and
                e.get("name") == "thread_name" and e.get("args", {}).get("name") == "XLA Ops"}
  totals: Counter = Counter()
  for event in events:
    name = event.get("name", "")
    if event.get("ph") != "X":
      continue
    if op_threads:
      if (event.get("pid"), event.get("tid")) not in op_threads:
        continue
    elif name.startswith("$") or "::" in name or name[:1].isupper():
      continue  # Python frames and runtime bookkeeping (PjRt, thread pools, PjitFunction).
    if by_kind:
      name = name.split(".")[0]
    totals[name] += float(event.get("dur", 0.0)) / 1000.0
  whole = sum(totals.values()) or 1.0
  return [(name, ms, ms / whole) for name, ms in totals.most_common(top)]


def format_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
  """A Markdown table: `columns` are (header, key, format spec); a missing value prints as -."""
  lines = ["| " + " | ".join(header for header, _, _ in columns) + " |",
           "|" + "---|" * len(columns)]
  for row in rows:
    cells = []
    for _, key, spec in columns:
      value = row.get(key)
      cells.append("-" if value is None else format(value, spec))
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def environment() -> dict[str, Any]:
  device = jax.devices()[0]
  return {"jax": jax.__version__, "backend": jax.default_backend(),
          "device_kind": device.device_kind, "device_count": jax.device_count(),
          "process_count": jax.process_count(),
          "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_json(path: str | os.PathLike, benchmark: str, rows: list[dict], **extra: Any) -> None:
  """{"benchmark", "environment", "rows", ...} to `path`, atomically."""
  payload = {"benchmark": benchmark, "environment": environment(), **extra, "rows": rows}
  atomic.write_json(path, payload, indent=1, default=float)
