"""Stage 1 on the trainer core: a few steps on SynthTalk update both networks and save them."""

import jax
import numpy as np
import pytest

from tests.helpers import EXPERIMENTS
from vasa_jax import configs
from vasa_jax.trainers import common, face_latent

pytestmark = pytest.mark.slow


def test_generator_and_discriminator_train_on_synthtalk(synthtalk_tiny_dir, tmp_path):
  config = configs.load_config(
      f"{EXPERIMENTS / 'face_latent' / 'synthtalk_tiny.py'}:runlocal",
      [f"--config.data.data_dir={synthtalk_tiny_dir}", "--config.total_steps=2",
       "--config.log_every=1", "--config.batch_size=4"])
  task = face_latent.make_task(config)
  mesh = common.create_mesh({"data": 1, "fsdp": 1})
  initial = jax.jit(task.init_params)(jax.random.key(config.seed))
  result = common.train(config, tmp_path, task, mesh=mesh)
  assert result.final_step == 2
  metrics = result.last_metrics
  for name in ("l1", "consistency", "contrastive", "adversarial", "feature_matching",
               "discriminator_loss", "psnr"):
    assert np.isfinite(metrics[name]), name
  assert "perceptual" not in metrics and "cross_identity" not in metrics  # No weights configured.
  for part in ("generator", "discriminator"):
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
                         initial[part], result.state.params[part])
    assert max(jax.tree.leaves(moved)) > 0, f"{part} did not train"
  assert (tmp_path / "checkpoints" / "2").is_dir()
