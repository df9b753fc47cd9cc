"""Evaluators: metrics against known answers, the registry, and what they write."""

import json

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from vasa_jax import evaluators
from vasa_jax.data import pipelines
from vasa_jax.errors import UserError
from vasa_jax.evaluators import image_metrics, reenactment, synthtalk_transfer


def test_psnr_of_a_known_error():
  target = np.zeros((2, 16, 16, 3), np.float32)
  pred = target + np.array([0.1, 0.01], np.float32)[:, None, None, None]
  np.testing.assert_allclose(image_metrics.psnr(pred, target), [20.0, 40.0], rtol=1e-5)


def test_ssim_matches_scikit_image():
  rng = np.random.default_rng(0)
  a = rng.uniform(size=(3, 40, 48, 3)).astype(np.float32)
  b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
  b[1] = a[1]  # Identical images score exactly 1.
  ours = np.asarray(image_metrics.ssim(b, a))
  theirs = [structural_similarity(a[i], b[i], data_range=1.0, channel_axis=-1,
                                  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
            for i in range(3)]
  np.testing.assert_allclose(ours, theirs, atol=1e-4)
  assert ours[1] == pytest.approx(1.0, abs=1e-6)


class _FakeTask:
  """A face-latent-like task whose `reenact` returns one of its inputs: known answers."""

  def __init__(self, data_dir, image_size=64, returns="driving"):
    self.data_dir, self.image_size, self.returns = data_dir, image_size, returns

  def open_split(self, split):
    return pipelines.open_split(self.data_dir, "synthtalk/tiny", split)

  def eval_examples(self, split, num_examples, seed=0):
    source = self.open_split(split)
    return next(pipelines.global_batch_iterator(
        source, seed=seed, global_batch_size=num_examples,
        random_transform=pipelines.FaceFrameTriplets(source, self.image_size, augment=False)))

  def reenact(self, params, source, driving, source_landmarks, driving_landmarks):
    # Every evaluator hands the frames' landmarks on (the dynamics encoder's crop needs them).
    assert source_landmarks.shape == (len(source), 6, 2) == driving_landmarks.shape
    return (driving if self.returns == "driving" else source) * params["gain"]


def _run(task, evals, tmp_path, params=None):
  config = ml_collections.ConfigDict(dict(evals=evals))
  return evaluators.run_evaluators(evaluators.make_evaluators(config, task),
                                   params or {"gain": jnp.float32(1.0)}, 7, tmp_path)


def test_reconstruction_scores_a_perfect_model(synthtalk_tiny_dir, tmp_path):
  task = _FakeTask(synthtalk_tiny_dir)
  scores = _run(task, {"heldout": dict(type="reconstruction", num_examples=6, batch_size=4)},
                tmp_path)
  assert scores["heldout/l1"] < 1e-6 and scores["heldout/ssim"] > 0.9999
  assert scores["heldout/psnr"] > 100
  assert 0 <= scores["heldout/lpips"] < 1e-6  # The packaged VGG16 LPIPS, on by default.
  # Copying the source is scored beside the model, over the frame and the mouth window.
  assert scores["heldout/copy_source_psnr"] < 60 and scores["heldout/mouth_copy_source_psnr"] < 60
  assert scores["heldout/psnr_gain_db"] == pytest.approx(
      scores["heldout/psnr"] - scores["heldout/copy_source_psnr"])
  assert scores["heldout/mouth_psnr"] > 100
  record = json.loads((tmp_path / "eval" / "step_0000007.json").read_text())
  assert record == {"step": 7, **scores}


def test_reconstruction_without_the_lpips_package_says_so_once(synthtalk_tiny_dir, tmp_path,
                                                                caplog, monkeypatch):
  from vasa_jax.convert import lpips as convert_lpips
  from vasa_jax.convert import packaged

  monkeypatch.setenv("VASA_JAX_CACHE", str(tmp_path / "cache"))
  monkeypatch.setitem(convert_lpips.PACKAGED, "vgg16", packaged.PackagedWeights(
      "vasa-jax-no-such-distribution", "0.1.0", "weights/vgg16.ckpt", "LPIPS test weights"))
  with caplog.at_level("WARNING"):
    scores = _run(_FakeTask(synthtalk_tiny_dir),
                  {"heldout": dict(type="reconstruction", num_examples=4, batch_size=4)}, tmp_path)
  assert "heldout/lpips" not in scores
  assert {"heldout/psnr", "heldout/ssim", "heldout/l1"} <= set(scores)
  assert caplog.text.count("LPIPS unavailable") == 1
  assert "pip install vasa-jax-no-such-distribution==0.1.0" in caplog.text


def _write_random_lpips(folder):
  """LPIPS converted from a random VGG16 and random non-negative lin weights (numpy state dicts)."""
  import safetensors.numpy

  from vasa_jax.convert import lpips as convert_lpips
  from vasa_jax.models import lpips

  rng = np.random.default_rng(0)
  vgg = {}
  for module, leaves in lpips.param_shapes()["vgg16"].items():
    kh, kw, cin, cout = leaves["kernel"]
    index = module.split("_")[1]
    vgg[f"features.{index}.weight"] = rng.normal(0, np.sqrt(2 / (9 * cin)), (cout, cin, kh, kw))
    vgg[f"features.{index}.bias"] = rng.normal(0, 0.05, cout)
  lin = {f"lin{k}.model.1.weight": rng.uniform(0, 0.1, (1, c, 1, 1))
         for k, c in enumerate(lpips.TAP_CHANNELS)}
  for name, tensors in (("vgg16", vgg), ("vgg_lin", lin)):
    safetensors.numpy.save_file({k: v.astype(np.float32) for k, v in tensors.items()},
                                str(folder / f"{name}.safetensors"))
  return convert_lpips.convert_lpips(folder / "vgg16.safetensors", folder / "vgg_lin.safetensors",
                                     folder / "lpips.safetensors")


def test_reconstruction_reports_lpips_with_its_weights(synthtalk_tiny_dir, tmp_path):
  weights = _write_random_lpips(tmp_path)
  config = ml_collections.ConfigDict(dict(evals={"heldout": dict(
      type="reconstruction", num_examples=4, batch_size=4, lpips_weights=str(weights))}))
  (scheduled,) = evaluators.make_evaluators(config, _FakeTask(synthtalk_tiny_dir))
  evaluator = scheduled.evaluator
  assert evaluator.weights == {"lpips": str(weights.resolve())}
  perfect = evaluator.run({"gain": jnp.float32(1.0)}).scalars
  dimmed = evaluator.run({"gain": jnp.float32(0.8)}).scalars
  darker = evaluator.run({"gain": jnp.float32(0.5)}).scalars
  print(f"LPIPS (random weights) at gain 1 / 0.8 / 0.5: {perfect['lpips']:.3g} / "
        f"{dimmed['lpips']:.3g} / {darker['lpips']:.3g}")
  assert {"psnr", "ssim", "l1", "lpips", "copy_source_psnr", "mouth_psnr"} <= set(perfect)
  assert perfect["lpips"] < 1e-9
  assert 0 < dimmed["lpips"] < darker["lpips"]


def test_reenactment_grid_layout(synthtalk_tiny_dir, tmp_path):
  task = _FakeTask(synthtalk_tiny_dir)
  config = ml_collections.ConfigDict(
      dict(evals={"grid": dict(type="reenactment_grid", identities=2, driving=3)}))
  (scheduled,) = evaluators.make_evaluators(config, task)
  result = scheduled.evaluator.run({"gain": jnp.float32(1.0)})
  grid, size = result.images["grid"], 64
  assert grid.shape == (3 * size, 4 * size, 3)
  driving_row = grid[:size, size:]
  for row in (1, 2):  # Each cell shows its column's driving frame (the fake task returns it).
    np.testing.assert_allclose(grid[row * size:(row + 1) * size, size:], driving_row, atol=1e-6)
  sources = scheduled.evaluator.sources
  np.testing.assert_allclose(grid[size:2 * size, :size], sources[0] / 255.0, atol=1e-6)
  _run(task, {"grid": dict(type="reenactment_grid", identities=2, driving=3)}, tmp_path)
  assert (tmp_path / "eval" / "grid_grid_0000007.png").is_file()


def test_pick_frames_prefers_new_identities(synthtalk_tiny_dir):
  source = pipelines.open_split(synthtalk_tiny_dir, "synthtalk/tiny", "validation")
  frames, _, names = reenactment.pick_frames(source, 2, 64)
  assert frames.shape == (2, 64, 64, 3) and len(set(names)) == 2
  _, _, others = reenactment.pick_frames(source, 3, 64, exclude=frozenset(names[:1]))
  assert others[0] != names[0]


def test_transfer_ground_truth_is_the_source_identity_in_the_driving_state(synthtalk_tiny_dir):
  """The render of B's own identity in B's state is B's frame: the ground truth is built right."""
  source = pipelines.open_split(synthtalk_tiny_dir, "synthtalk/tiny", "validation")
  pairs = synthtalk_transfer.transfer_pairs(source, 3, 64, seed=1)
  assert pairs["truth"].shape == pairs["source"].shape == (3, 64, 64, 3)
  from vasa_jax.data.synthtalk import motion, render

  clip = source[0]
  look = render.identity_from_dict(json.loads(clip["meta"]["details"])["identity"])
  state = {k: float(v[5]) for k, v in motion.render_state(
      {k: np.asarray(v) for k, v in clip["labels"].items()}).items()}
  rendered = synthtalk_transfer.as_stored(render.render_frame(look, state, 64))
  from vasa_jax.data.synthtalk.clip import decode_frames

  np.testing.assert_array_equal(rendered, decode_frames(clip["frames"], [5])[0])


def test_transfer_scores_known_outputs(synthtalk_tiny_dir, tmp_path):
  evals = {"transfer": dict(type="synthtalk_transfer", num_pairs=4)}
  copy = _run(_FakeTask(synthtalk_tiny_dir, returns="source"), evals, tmp_path)
  assert copy["transfer/transfer_psnr"] == pytest.approx(copy["transfer/copy_source_psnr"], abs=0.01)
  assert copy["transfer/mouth_transfer_psnr"] == pytest.approx(
      copy["transfer/mouth_copy_source_psnr"], abs=0.01)
  leak = _run(_FakeTask(synthtalk_tiny_dir, returns="driving"), evals, tmp_path)
  assert leak["transfer/identity_margin_db"] < -50  # Output is B's frame: identity leaked.
  assert (tmp_path / "eval" / "transfer_source_driving_output_truth_0000007.png").is_file()


def test_registry_errors_name_the_key():
  task = object()
  bad_type = ml_collections.ConfigDict(dict(evals={"x": dict(type="nope")}))
  with pytest.raises(UserError, match="config.evals.x.type='nope'"):
    evaluators.make_evaluators(bad_type, task)
  bad_key = ml_collections.ConfigDict(dict(evals={"x": dict(type="reconstruction", num=3)}))
  with pytest.raises(UserError, match=r"config.evals.x has unknown keys \['num'\]"):
    evaluators.make_evaluators(bad_key, task)
  with pytest.raises(UserError, match="no evaluator named"):
    evaluators.make_evaluators(bad_key, task, only=["y"])


def test_the_old_report_key_names_its_replacement(caplog):
  """`config.eval` (the reports three trainers wrote) is refused for training, naming the
  evaluators that replace it; a run trained with it still evaluates, with a warning."""
  old = ml_collections.ConfigDict(dict(eval=dict(split="validation"), evals={}))
  with pytest.raises(UserError, match='config.evals.heldout = dict.type="probe_errors"'):
    evaluators.make_evaluators(old, object(), training=True)
  assert evaluators.make_evaluators(old, object()) == []
  assert "config.eval (the report at the end of training)" in caplog.text


def test_reports_are_written_beside_the_scalars(tmp_path):
  class Reporting:
    def run(self, params):
      report = {"split": "validation", "mae": {"yaw": 0.5, "pitch": 2}, "offsets": [1, 2]}
      return evaluators.EvalResult(scalars=evaluators.numeric_leaves(report), report=report)

  scalars = evaluators.run_evaluators([evaluators.Scheduled("heldout", 0, Reporting())], None, 7,
                                      tmp_path)
  assert scalars == {"heldout/mae/yaw": 0.5, "heldout/mae/pitch": 2.0}
  report = json.loads((tmp_path / "eval" / "heldout_0000007.json").read_text())
  assert report == {"step": 7, "split": "validation", "mae": {"yaw": 0.5, "pitch": 2},
                    "offsets": [1, 2]}
  steps = json.loads((tmp_path / "eval" / "step_0000007.json").read_text())
  assert steps == {"step": 7, **scalars}


def test_schedule():
  scheduled = evaluators.Scheduled("x", 5, None)
  assert [s for s in range(1, 13) if scheduled.due(s, 12)] == [5, 10, 12]
  assert [s for s in range(1, 13) if evaluators.Scheduled("y", 0, None).due(s, 12)] == [12]
