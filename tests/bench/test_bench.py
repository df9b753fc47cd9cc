"""The benchmarks' measurements: training-step rows with cost-analysis FLOPs and no recompilation,
the roofline's per-frame accounting, compile counting, device peaks and profile summaries."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax import configs
from vasa_jax import main as vasa_main
from vasa_jax.bench import common, roofline, training
from vasa_jax.errors import UserError


def test_compile_counter_counts_only_new_programs():
  double = jax.jit(lambda x: 2 * x)
  x = jnp.ones(3)
  with common.CompileCounter() as compiles:
    double(x).block_until_ready()
    first = compiles.count
    double(x + 1).block_until_ready()
    again = compiles.count - first
    double(jnp.ones(4)).block_until_ready()
  assert first >= 1 and again <= 1 and compiles.count > first  # `x + 1` may compile an add.
  with common.CompileCounter() as compiles:
    double(x).block_until_ready()
  assert compiles.count == 0


def test_device_peaks():
  assert common.known_peaks("NVIDIA H100 80GB HBM3")[0]["bfloat16"] == 989.4e12
  assert common.known_peaks("NVIDIA H100 PCIe")[0]["bfloat16"] == 756e12
  assert common.known_peaks("NVIDIA H200")[1] == 4.8e12
  assert common.known_peaks("cpu") is None
  peak, source = common.device_peak("float32")
  assert peak > 1e9 and ("measured" in source or "datasheet" in source)


def test_cost_analysis_counts_matmul_flops():
  lowered = jax.jit(lambda a, b: a @ b).lower(jnp.ones((64, 32)), jnp.ones((32, 16)))
  assert common.cost(lowered.compile())["flops"] == 2 * 64 * 32 * 16


def test_train_step_row_and_command(tmp_path, capsys):
  out = tmp_path / "train.json"
  assert vasa_main.main(["bench", "train", "--stage", "2", "--variant", "tiny", "--batch_sizes",
                         "2", "--steps", "2", "--config.compute_dtype=float32",
                         "--json", str(out)]) == 0
  payload = json.loads(out.read_text())
  assert payload["benchmark"] == "train" and payload["environment"]["backend"] == "cpu"
  row, = payload["rows"]
  assert row["task"] == "motion" and row["dtype"] == "float32"
  assert row["global_batch"] == 2 * jax.device_count()
  assert row["compiles_after_warmup"] == 0 and row["finite"]  # The donated step, called again.
  assert row["tflop_per_step"] > 0 and 0 < row["mfu"] < 1.5 and row["memory_gb"] > 0
  assert row["examples_per_s"] == pytest.approx(row["global_batch"] / row["step_ms"] * 1000)
  assert "| motion | tiny |" in capsys.readouterr().out
  assert vasa_main.main(["bench", "train", "--stage", "2", "--variant", "tiny",
                         "--config.no_such_key=1"]) == 2
  assert "no_such_key" in capsys.readouterr().err


def test_stage1_benchmark_turns_on_its_pretrained_losses():
  config = configs.load_config(training.stage_config(1, "tiny"), [])
  task = training.build_task(config)
  assert task.weights["perceptual"] > 0 and task.weights["cross_identity"] > 0
  batch = training.synthetic_batch(task, 2)
  params = jax.eval_shape(task.init_params, jax.random.key(0))
  loss, metrics = jax.eval_shape(task.loss_fn, params, batch, jax.random.key(0))
  assert loss.shape == () and {"perceptual", "cross_identity"} <= set(metrics)


def test_roofline_accounts_per_frame_and_joins_measurements():
  result = roofline.analyse("tiny", batch=2, steps=(10,), train=False)
  settings, g = result["settings"], result["settings"]["generate_costs"]
  offline, streaming = result["rows"]
  assert offline["mode"] == "offline" and streaming["mode"] == "streaming"
  assert offline["render_gflop"] == pytest.approx(g["render_batch"]["flops"] / 2 / 1e9)
  # Streaming samples a window per hop instead of per window.
  assert streaming["motion_gflop"] == pytest.approx(
      offline["motion_gflop"] * g["window"] / g["hop"])
  assert offline["floor_ms"] > 0 and offline["ceiling_fps"] == pytest.approx(
      1000 / offline["floor_ms"])
  assert settings["peak_tflops"] == pytest.approx(989.4)
  measured = {"benchmark": "generate", "rows": [
      {"resolution": 64, "steps": 10, "batch": 2, "fps": 100.0, "stream_fps": 50.0,
       "device": "cpu"}]}
  roofline._attach_measured(result["rows"], measured)
  assert offline["measured_ms"] == pytest.approx(10.0)
  assert streaming["gap"] == pytest.approx(20.0 / streaming["floor_ms"])
  with pytest.raises(UserError, match="Z80"):
    roofline.analyse("tiny", device="Z80")
  assert roofline._floor(1e9, 1e12, 1e12, None) == pytest.approx(1e-3)  # --device local
  stage2 = roofline.training_costs(2, "tiny", 4, "float32")
  assert stage2["step"]["flops"] > 0 and stage2["params"] > 0
  assert "| generated frame, offline, 10 steps |" in roofline.report(result)


def test_profile_trace_and_summary(tmp_path):
  matmul = jax.jit(lambda a: jnp.tanh(a @ a))
  a = jnp.asarray(np.random.default_rng(0).normal(size=(128, 128)), jnp.float32)
  matmul(a).block_until_ready()
  with common.profile(tmp_path):
    for _ in range(3):
      matmul(a).block_until_ready()
  summary = common.trace_summary(tmp_path)
  assert summary and all(ms >= 0 and 0 <= share <= 1 for _, ms, share in summary)
  assert sum(share for _, _, share in summary) == pytest.approx(1.0, abs=0.05) or len(summary) == 12


def test_json_is_written_atomically(tmp_path):
  path = tmp_path / "out" / "rows.json"
  common.write_json(path, "generate", [{"fps": 1.0}], note="x")
  payload = json.loads(path.read_text())
  assert payload["rows"] == [{"fps": 1.0}] and payload["environment"]["backend"] == "cpu"
  assert not list(path.parent.glob("*.tmp"))
