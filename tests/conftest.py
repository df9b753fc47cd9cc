"""Test setup: 8 CPU devices (set before jax is imported), absl flags marked parsed for grain."""

import os

os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["XLA_FLAGS"] = " ".join(
    [f for f in os.environ.get("XLA_FLAGS", "").split()
     if not f.startswith("--xla_force_host_platform_device_count")]
    + ["--xla_force_host_platform_device_count=8"])

import pytest  # noqa: E402
from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()

from tests.helpers import EXPERIMENTS  # noqa: E402


@pytest.fixture
def reference_config():
  """The reference experiment at test size: returns a function of override strings."""
  from vasa_jax import configs

  def make(*overrides, arg="runlocal"):
    return configs.load_config(f"{EXPERIMENTS / 'reference_autoencoder.py'}:{arg}",
                               list(overrides))

  return make



@pytest.fixture(scope="session")
def synthtalk_tiny_dir(tmp_path_factory):
  """SynthTalk's tiny config built once per test session: the tfds data folder."""
  import time

  from vasa_jax.data.synthtalk import builder

  data_dir = tmp_path_factory.mktemp("synthtalk_tfds")
  start = time.perf_counter()
  builder.builder("tiny", data_dir=str(data_dir), workers=2).download_and_prepare(
      file_format="array_record")
  print(f"tiny SynthTalk built in {time.perf_counter() - start:.1f} s")
  return str(data_dir)
