"""The trainer core in one process with 8 CPU devices: meshes, sharding, accumulation, EMA, NaN stop."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vasa_jax import runs
from vasa_jax.errors import UserError
from vasa_jax.trainers import common, reference


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol,
                               err_msg=jax.tree_util.keystr(path))


def test_mesh_sizes_and_errors():
  assert common.create_mesh({"data": -1, "fsdp": 1}).shape == {"data": 8, "fsdp": 1}
  assert common.create_mesh({"data": -1, "fsdp": 2}).shape == {"data": 4, "fsdp": 2}
  assert common.create_mesh({"data": 2, "fsdp": -1}).shape == {"data": 2, "fsdp": 4}
  assert common.create_mesh({"data": 1, "fsdp": 1}).size == 1
  for bad in ({"data": 3, "fsdp": 1}, {"data": -1, "fsdp": -1}, {"data": 2, "model": 2}):
    with pytest.raises(UserError, match="config.mesh"):
      common.create_mesh(bad)


def test_fsdp_shards_the_largest_divisible_dimension():
  mesh = common.create_mesh({"data": 4, "fsdp": 2})
  tree = {"kernel": jax.ShapeDtypeStruct((3, 3, 16, 64), jnp.float32),
          "odd": jax.ShapeDtypeStruct((3, 5, 7, 9, 11), jnp.float32),
          "bias": jax.ShapeDtypeStruct((64,), jnp.float32),
          "step": jax.ShapeDtypeStruct((), jnp.int32)}
  shardings = common.fsdp_shardings(tree, mesh, min_size=100)
  assert shardings["kernel"].spec == jax.sharding.PartitionSpec(None, None, None, "fsdp")
  assert shardings["odd"].spec == jax.sharding.PartitionSpec()
  assert shardings["bias"].spec == jax.sharding.PartitionSpec()  # Below min_size.
  assert shardings["step"].spec == jax.sharding.PartitionSpec()


def test_cosine_schedule_endpoints(reference_config):
  config = reference_config("--config.total_steps=100", "--config.schedule.warmup_steps=10",
                            "--config.schedule.peak_value=1.0", "--config.schedule.end_value=0.1")
  schedule = common.make_schedule(config.schedule, config.total_steps)
  np.testing.assert_allclose([schedule(0), schedule(5), schedule(10), schedule(100)],
                             [0.0, 0.5, 1.0, 0.1], rtol=1e-6)


def train(config, tmp_path, name, mesh_config=None, task=None):
  mesh = common.create_mesh(mesh_config or {"data": -1, "fsdp": 1})
  return common.train(config, tmp_path / name, task or reference.make_task(config), mesh=mesh)


def logged(result, key="loss"):
  lines = (result.workdir / "metrics.jsonl").read_text().splitlines()
  return [json.loads(line)[key] for line in lines]


def test_same_batch_same_result_on_1_8_and_4x2_devices(reference_config, tmp_path):
  config = reference_config("--config.total_steps=3", "--config.log_every=1",
                            "--config.mesh.fsdp_min_size=64", "--config.ema_decay=0.9")
  results = {name: train(config, tmp_path, name, mesh)
             for name, mesh in [("one", {"data": 1, "fsdp": 1}),
                                ("data8", {"data": 8, "fsdp": 1}),
                                ("data4_fsdp2", {"data": 4, "fsdp": 2})]}
  fsdp_state = results["data4_fsdp2"].state
  specs = {leaf.sharding.spec for leaf in jax.tree.leaves(fsdp_state.params)}
  assert jax.sharding.PartitionSpec() in specs and len(specs) > 1, "some params must be sharded"
  baseline = results["one"]
  for name in ("data8", "data4_fsdp2"):
    np.testing.assert_allclose(logged(results[name]), logged(baseline), rtol=1e-5)
    assert_trees_close(results[name].state.params, baseline.state.params)
    assert_trees_close(results[name].state.ema_params, baseline.state.ema_params)
    assert_trees_close(results[name].state.opt_state, baseline.state.opt_state, atol=1e-7)


def test_gradient_accumulation_matches_one_big_step(reference_config, tmp_path):
  config = reference_config("--config.total_steps=2")
  accumulated = reference_config("--config.total_steps=2", "--config.grad_accum_steps=2")
  one = train(config, tmp_path, "one")
  two = train(accumulated, tmp_path, "two")
  assert_trees_close(two.state.params, one.state.params)
  np.testing.assert_allclose(two.last_metrics["loss"], one.last_metrics["loss"], rtol=1e-5)


def test_train_step_ema_rng_and_metrics(reference_config):
  """One step by hand: EMA arithmetic, the learning rate of the step, RNG folded with the step."""
  config = reference_config("--config.ema_decay=0.5")

  class RngTask(reference.ReferenceAutoencoderTask):
    def loss_fn(self, params, batch, rng):
      loss, metrics = super().loss_fn(params, batch, rng)
      return loss, dict(metrics, rng_bits=jax.random.key_data(rng))

  task = RngTask(config)
  mesh = common.create_mesh({"data": 1, "fsdp": 1})
  tx, schedule = common.make_optimizer(config)
  state = jax.jit(common.make_init_fn(task, tx, use_ema=True))(jax.random.key(0))
  step = jax.jit(common.make_train_step(task, tx, schedule, mesh, 1, ema_decay=0.5))
  batch = {"image": np.random.default_rng(0).uniform(size=(4, 32, 32, 3)).astype(np.float32)}
  base = jax.random.key(0)
  new_state, metrics = step(state, batch, base)
  expected_ema = jax.tree.map(lambda a, b: 0.5 * a + 0.5 * b, state.params, new_state.params)
  assert_trees_close(new_state.ema_params, expected_ema)
  assert int(new_state.step) == 1 and bool(metrics["finite"])
  np.testing.assert_allclose(metrics["learning_rate"], schedule(0))
  grads = jax.jit(jax.grad(lambda p: task.loss_fn(p, batch, base)[0]))(state.params)
  np.testing.assert_allclose(metrics["grad_norm"], optax.tree.norm(grads), rtol=1e-5)
  np.testing.assert_array_equal(metrics["rng_bits"],
                                jax.random.key_data(jax.random.fold_in(base, 0)))
  _, metrics = step(new_state, batch, base)
  np.testing.assert_array_equal(metrics["rng_bits"],
                                jax.random.key_data(jax.random.fold_in(base, 1)))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(reference_config, tmp_path):
  config = reference_config("--config.total_steps=8", "--config.checkpoint.every=2")
  first_batches = reference.make_task(config).make_data_iterator(0, 1)
  bad_index = int(np.asarray([next(first_batches) for _ in range(5)][-1]["index"])[0])

  class ExplodesAtStep5(reference.ReferenceAutoencoderTask):
    def loss_fn(self, params, batch, rng):
      loss, metrics = super().loss_fn(params, batch, rng)
      return jnp.where(jnp.any(batch["index"] == bad_index), jnp.nan, loss), metrics

  with pytest.raises(common.TrainingDiverged, match="non-finite training at step 5.*step 4"):
    train(config, tmp_path, "nan", task=ExplodesAtStep5(config))
  checkpoints = sorted(int(p.name) for p in (tmp_path / "nan" / "checkpoints").iterdir()
                       if p.name.isdigit())
  assert checkpoints[-1] == 4


def test_batch_size_must_split_over_devices(reference_config, tmp_path):
  with pytest.raises(UserError, match="batch_size=12 does not split over the 8 devices"):
    train(reference_config("--config.batch_size=12"), tmp_path, "bad")
  with pytest.raises(UserError, match="grad_accum_steps=3"):
    train(reference_config("--config.grad_accum_steps=3"), tmp_path, "bad")


def test_bfloat16_compute_keeps_float32_parameters(reference_config, tmp_path):
  fp32 = train(reference_config("--config.total_steps=2"), tmp_path, "fp32")
  bf16 = train(reference_config("--config.total_steps=2", "--config.compute_dtype=bfloat16"),
               tmp_path, "bf16")
  assert {leaf.dtype for leaf in jax.tree.leaves(bf16.state.params)} == {jnp.dtype(jnp.float32)}
  np.testing.assert_allclose(bf16.last_metrics["loss"], fp32.last_metrics["loss"], rtol=0.05)
  task = reference.make_task(reference_config("--config.compute_dtype=bfloat16"))
  images = jnp.zeros((1, 32, 32, 3))
  hidden = jax.eval_shape(lambda p: task.model.apply({"params": p}, images, capture_intermediates=True,
                                                     mutable=["intermediates"]),
                          bf16.state.params)[1]["intermediates"]
  assert jnp.dtype(jnp.bfloat16) in {leaf.dtype for leaf in jax.tree.leaves(hidden)}


def test_resume_refuses_another_optimizer_state_layout(reference_config, tmp_path):
  train(reference_config("--config.total_steps=1"), tmp_path, "run")
  with pytest.raises(UserError, match="another optimizer or EMA setting.*ema_params"):
    train(reference_config("--config.total_steps=2", "--config.ema_decay=0.9"), tmp_path, "run")
  resumed = train(reference_config("--config.total_steps=2"), tmp_path, "run")
  assert (resumed.start_step, resumed.final_step) == (1, 2)


def test_a_task_with_phases_gets_one_compiled_step_per_phase(reference_config, tmp_path):
  """A task's `phase(step)` is passed to its loss_fn, static: the loss changes at the configured
  step (here a constant 100 is added from the update at step 3 on)."""

  class Phased(reference.ReferenceAutoencoderTask):
    seen = []

    def phase(self, step):
      return "late" if step >= 3 else "early"

    def loss_fn(self, params, batch, rng, phase=None):
      Phased.seen.append(phase)
      loss, metrics = super().loss_fn(params, batch, rng)
      extra = 100.0 if phase == "late" else 0.0
      return loss + extra, dict(metrics, late=jnp.asarray(extra > 0, jnp.float32))

  config = reference_config("--config.total_steps=5", "--config.log_every=1",
                            "--config.checkpoint.every=2")
  result = train(config, tmp_path, "phased", task=Phased(config))
  assert logged(result, "late") == [0.0, 0.0, 0.0, 1.0, 1.0]  # Steps 1-3 update from 0-2.
  assert sorted(set(Phased.seen)) == ["early", "late"]
  losses = logged(result)
  assert losses[3] > 99.0 > losses[2]


def test_load_run_reads_a_step_through_orbax_without_warnings(reference_config, tmp_path,
                                                              caplog):
  config = reference_config("--config.total_steps=2", "--config.checkpoint.every=1")
  result = train(config, tmp_path, "run")
  with caplog.at_level("WARNING"):
    latest = runs.load_run(tmp_path / "run")
    first = runs.load_run(tmp_path / "run", step=1, task="reference_autoencoder")
  assert not [r for r in caplog.records if r.levelname == "WARNING"], caplog.text
  assert (latest.step, first.step) == (2, 1)
  assert latest.task.name == "reference_autoencoder" and latest.config.total_steps == 2
  assert_trees_close(latest.params, result.state.params)
  with pytest.raises(UserError, match=r"no checkpoint of step 7 .* steps \[1, 2\]"):
    runs.load_run(tmp_path / "run", step=7)
  with pytest.raises(UserError, match="is a run of task 'reference_autoencoder', not a stage-2"):
    runs.load_run(tmp_path / "run", task="motion", kind="a stage-2 run")
  with pytest.raises(UserError, match="not a training run .no config.json"):
    runs.load_run(tmp_path / "nothing")
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "config.json").write_text((tmp_path / "run" / "config.json").read_text())
  with pytest.raises(UserError, match="no checkpoint in .*train first"):
    runs.load_run(tmp_path / "empty")
