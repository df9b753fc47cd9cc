"""Stage 1 on the trainer core: a short run on SynthTalk trains both networks, lowers the held-out
reconstruction error, and its evaluators run at the end and again from the command line."""

import json

import jax
import numpy as np
import pytest

from tests.conftest import FACE_LATENT_STEPS
from tests.helpers import EXPERIMENTS
from vasa_jax import configs, main
from vasa_jax.errors import UserError
from vasa_jax.trainers import face_latent

pytestmark = pytest.mark.slow

STEPS = 40
# Held-out L1 (images in [0, 1]) after STEPS steps (5 of warm-up) is at most this fraction of the
# initial one, and PSNR gains at least MIN_PSNR_GAIN dB. With the experiment's 50 warm-up steps, 40
# steps already gave L1 0.267 -> 0.208 (x0.78) and PSNR 9.48 -> 11.54 dB.
MAX_L1_RATIO = 0.85
MIN_PSNR_GAIN = 1.5


def test_short_training_lowers_held_out_error(face_latent_tiny_run, capsys):
  # The run itself is the session fixture `face_latent_tiny_run` (tests/conftest.py).
  config, task, result, tmp_path, before, initial = face_latent_tiny_run
  assert STEPS == FACE_LATENT_STEPS
  assert result.final_step == STEPS
  metrics = result.last_metrics
  for name in ("l1", "pose", "consistency", "contrastive", "adversarial", "feature_matching",
               "discriminator_loss", "psnr"):
    assert np.isfinite(metrics[name]), name
  # The curriculum: reconstruction and pose alone before FACE_LATENT_LATE_START, every loss after.
  logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  early = next(r for r in logged if r["step"] == 10)
  assert "l1" in early and "pose" in early and "adversarial" not in early
  assert "consistency" not in early and "discriminator_loss" not in early
  assert "perceptual" not in metrics and "cross_identity" not in metrics  # Turned off.
  for part in ("generator", "discriminator"):
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
                         initial[part], result.state.params[part])
    assert max(jax.tree.leaves(moved)) > 0, f"the {part} did not train"
  assert (tmp_path / "checkpoints" / str(STEPS)).is_dir()

  # The evaluators ran after the last step: scores, the grid and the transfer strip.
  after = json.loads((tmp_path / "eval" / f"step_{STEPS:07d}.json").read_text())
  print(f"held-out before {before}, after {after}")
  assert after["heldout/l1"] <= MAX_L1_RATIO * before["l1"]
  assert after["heldout/psnr"] >= before["psnr"] + MIN_PSNR_GAIN
  assert np.isfinite(after["transfer/transfer_psnr"])
  assert (tmp_path / "eval" / f"reenactment_grid_{STEPS:07d}.png").is_file()
  assert (tmp_path / "eval" / f"transfer_source_driving_output_truth_{STEPS:07d}.png").is_file()
  for name in ("copy_source_psnr", "mouth_psnr", "mouth_copy_source_psnr", "psnr_gain_db"):
    assert np.isfinite(after[f"heldout/{name}"]), name
  for name in ("dyn_jaw_open_r", "dyn_blink_r", "dyn_yaw_r", "pose_yaw_r"):
    assert -1.0 <= after[f"readout/{name}"] <= 1.0, name
  logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert any("heldout/psnr" in record and record["step"] == STEPS for record in logged)

  # `vasa evaluate` reads the workdir back and gives the same held-out scores.
  (tmp_path / "eval" / f"step_{STEPS:07d}.json").unlink()
  assert main.main(["evaluate", "--workdir", str(tmp_path), "--evals", "heldout"]) == 0
  again = json.loads((tmp_path / "eval" / f"step_{STEPS:07d}.json").read_text())
  assert again["heldout/psnr"] == pytest.approx(after["heldout/psnr"], abs=1e-3)
  assert "heldout/psnr" in capsys.readouterr().out


def test_evaluate_refuses_a_workdir_of_another_model(synthtalk_tiny_dir, tmp_path, capsys):
  # A reference-task workdir read as a stage-1 one: the config names its task, so hand-edit it.
  config = configs.load_config(str(EXPERIMENTS / "reference_autoencoder.py") + ":runlocal",
                               ["--config.total_steps=1"])
  from vasa_jax.trainers import reference

  reference.train(config, tmp_path)
  record = json.loads((tmp_path / "config.json").read_text())
  stage1 = configs.load_config(f"{EXPERIMENTS / 'face_latent' / 'synthtalk_tiny.py'}:runlocal",
                               [f"--config.data.data_dir={synthtalk_tiny_dir}"])
  (tmp_path / "config.json").write_text(configs.to_json(stage1))
  assert main.main(["evaluate", "--workdir", str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert "holds a checkpoint of task 'reference_autoencoder', not 'face_latent'" in err
  assert record["task"] == "reference_autoencoder"


def test_packaged_loss_networks_are_on_by_default_and_can_be_turned_off():
  spec = f"{EXPERIMENTS / 'face_latent' / 'synthtalk_tiny.py'}:runlocal"
  config = configs.load_config(spec, [])
  assert face_latent.loss_networks(config.losses) == ("vgg16", "dlib")
  task = face_latent.make_task(config)
  assert task.weights["perceptual"] == 20.0 and task.weights["cross_identity"] == 4.0
  assert task.vgg is not None and task.identity_network is not None
  off = face_latent.make_task(configs.load_config(spec, [
      "--config.losses.perceptual_network=none", "--config.losses.identity_network=none"]))
  assert off.weights["perceptual"] == off.weights["cross_identity"] == 0.0
  # A weights file wins over the packaged network; a run's config from before the packaged
  # networks (no such keys) keeps the losses it trained with: off without files.
  assert face_latent.loss_networks(configs.load_config(spec, [
      "--config.losses.vgg19_path=vgg19.safetensors",
      "--config.losses.arcface_path=r50.safetensors"]).losses) == ("vgg19", "arcface")
  old = config.losses.to_dict()
  del old["perceptual_network"], old["identity_network"]
  assert face_latent.loss_networks(old) == ("none", "none")
  with pytest.raises(UserError, match="perceptual_network='vgg13' is unknown"):
    face_latent.loss_networks({"perceptual_network": "vgg13"})
