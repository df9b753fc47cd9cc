"""benchmarks/device_check.sh: its dry run end to end on the CPU, its time boxes, the learning run's
batch and step planning, the goals table and the pinned wheels it carries."""

import json
import os

import pytest

from vasa_jax.bench import device_check


def test_dry_run_end_to_end(device_dry_run):
  returncode, output = device_dry_run.wait(timeout=900)
  assert returncode == 0, output[-6000:]
  out = device_dry_run.out
  record = json.loads((out / "device_check.json").read_text())
  parts = {p["name"]: p for p in record["parts"]}
  assert list(parts) == ["env", "generate", "stage1", "stage1_remat", "stage2", "learn"]
  assert all(p["status"] == "ok" for p in parts.values()), parts
  env_row, = parts["env"]["rows"]
  assert env_row["backend"] == "cpu" and env_row["versions"]["jax"]
  generated, = parts["generate"]["rows"]
  assert generated["fps"] > 0 and generated["stream_fps"] > 0 and generated["latency_ms"] > 0
  assert generated["compiles_after_warmup"] == 0
  (stage1,), (remat,), (stage2,) = (parts[n]["rows"] for n in ("stage1", "stage1_remat", "stage2"))
  assert stage1["task"] == remat["task"] == "face_latent" and stage2["task"] == "motion"
  assert not stage1["remat"] and remat["remat"] and stage1["finite"] and stage2["finite"]
  learned = [r["learn"] for r in parts["learn"]["rows"] if "learn" in r]
  assert learned and learned[0]["steps"] == 2
  scores = learned[0]["scores"]
  assert scores["step"] == 2 and "heldout/psnr" in scores and "heldout/copy_source_psnr" in scores
  assert "readout/dyn_jaw_open_r" in scores and "transfer/transfer_psnr" in scores
  assert (out / "learn_grid.png").stat().st_size > 0
  text = (out / "device_check.md").read_text()
  for heading in ("## Generation", "## Training steps", "## Stage-1 learning run", "## Goals"):
    assert heading in text
  assert "| learn | ok |" in text and "reconstruction PSNR dB" in text
  assert "=== learn: ok" in (out / "device_check.log").read_text()


def _timeit(code: str) -> list[str]:
  return ["timeit", "-n", "1", "-r", "1", code]


def test_a_slow_part_is_cut_at_its_box_and_the_rest_go_on(tmp_path):
  parts = [
      device_check.Part("broken", "no such module", 30, ["vasa_jax.no_such_module"]),
      device_check.Part("quick", "prints a row", 30, _timeit("print('{\"row\": 2}')")),
      device_check.Part("slow", "sleeps past its box", 6, _timeit(
          "import time; print('{\"row\": 1}', flush=True); time.sleep(60)")),
      device_check.Part("late", "finds under 5 s of the budget left", 30, _timeit("pass")),
  ]
  lines = []
  outcomes = device_check.check(parts, tmp_path, budget=10.0, env=dict(os.environ),
                                echo=lines.append)
  broken, quick, slow, late = outcomes
  assert broken.status == "failed" and "No module named" in broken.note
  assert quick.status == "ok" and quick.rows == [{"row": 2}]
  assert slow.status == "timed out" and slow.rows == [{"row": 1}] and slow.seconds < 9
  assert late.status == "skipped"
  assert "  [quick] {\"row\": 2}" in lines
  log = (tmp_path / "device_check.log").read_text()
  assert "=== slow: timed out" in log and "=== quick: ok" in log
  report = device_check.report(outcomes, dry_run=True)
  assert "| slow | timed out |" in report and "| late | skipped |" in report


def test_fitting_batch_halves_only_on_out_of_memory():
  tried = []

  def measure(batch):
    tried.append(batch)
    if batch > 16:
      raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 9.1GiB")
    return {"step_ms": 10.0 * batch}

  assert device_check.fitting_batch(measure, 64) == (16, {"step_ms": 160.0})
  assert tried == [64, 32, 16]
  with pytest.raises(RuntimeError, match="RESOURCE_EXHAUSTED"):
    device_check.fitting_batch(measure, 64, smallest=32)

  def broken(batch):
    raise ValueError("a bug, not memory")

  with pytest.raises(ValueError):
    device_check.fitting_batch(broken, 64)


def test_learn_steps_fill_the_time_left():
  # 180 s left, 3 phases of 10 s compilation and 45 s reserved: 105 s at 0.05 s a step.
  assert device_check.learn_steps(180.0, 0.05, 10.0) == 2100
  assert device_check.learn_steps(30.0, 0.05, 10.0) == 20  # Never fewer than `least`.


def test_goals_table():
  outcomes = {
      "generate": device_check.Outcome("generate", "ok", 1.0, [
          {"fps": 200.0, "stream_fps": 90.0, "latency_ms": 50.0, "buffer_ms": 40.0}]),
      "stage1": device_check.Outcome("stage1", "ok", 1.0, [{"mfu": 0.2}, {"mfu": 0.4}]),
      "stage2": device_check.Outcome("stage2", "ok", 1.0, [{"mfu": 0.3}]),
  }
  lines = "\n".join(device_check._goal_lines(outcomes))
  assert "| offline fps | 200.0 | >= 150 | met |" in lines
  assert "| streaming fps | 90.0 | >= 100 | missed |" in lines
  assert "| first frame ms (compute + buffer) | 90.0 | <= 80 | missed |" in lines
  assert "| stage1 MFU (best of the sweep) | 40.0% | >= 35% | met |" in lines
  assert "| stage2 MFU (best of the sweep) | 30.0% | >= 45% | missed |" in lines


def test_the_carried_wheels_are_pinned():
  wheels = device_check.pinned(device_check.DEVICE_WHEELS)
  assert len(wheels) == len(device_check.DEVICE_WHEELS)
  assert all("==" in w for w in wheels) and any(w.startswith("grain==") for w in wheels)
  with pytest.raises(ValueError, match="no_such_package"):
    device_check.pinned(["no_such_package"])
