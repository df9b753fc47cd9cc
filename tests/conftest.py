"""Test setup: 8 CPU devices and a session-wide XLA compilation cache (set before jax is
imported), absl flags marked parsed for grain."""

import atexit
import os
import shutil
import tempfile

os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["XLA_FLAGS"] = " ".join(
    [f for f in os.environ.get("XLA_FLAGS", "").split()
     if not f.startswith("--xla_force_host_platform_device_count")]
    + ["--xla_force_host_platform_device_count=8"])
# Programs that take a second or more to compile are compiled once per session: many tests (and
# the command-line processes they start, which inherit this) build the same tiny models again.
# Quicker programs are not cached, so compile counting still sees them.
if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="vasa_jax_test_xla_")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")

import pytest  # noqa: E402
from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()

from tests.helpers import EXPERIMENTS  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def packaged_weights_cache(request, tmp_path_factory):
  """Packaged networks are converted into pytest's own cache folder (kept between runs of this
  checkout, ignored by git), not the user's: the suite writes nothing outside the repository and
  its temporary folders. A VASA_JAX_CACHE set by the caller is kept."""
  from vasa_jax.convert import packaged

  if not os.environ.get(packaged.CACHE_ENV):
    cache = getattr(request.config, "cache", None)
    folder = (cache.mkdir("vasa_jax_weights") if cache is not None
              else tmp_path_factory.mktemp("vasa_jax_weights"))
    os.environ[packaged.CACHE_ENV] = str(folder)
  return os.environ[packaged.CACHE_ENV]


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


FACE_LATENT_STEPS = 40  # Checkpoints at steps 20 and 40.
# The curriculum's second phase (every loss) from this step: a few steps of it show that it trains.
FACE_LATENT_LATE_START = 34
# The tiny model with one block per stage and a small discriminator: the second phase's step (the
# consistency and contrastive losses encode and decode again) compiles in about half the time.
FACE_LATENT_MODEL = dict(motion_blocks=(1, 1), id_blocks=(1, 1), unet_channels=(16,),
                         render_blocks=1, warp_channels=(16,), disc_channels=(16, 32),
                         disc_scales=1)


@pytest.fixture(scope="session")
def face_latent_tiny_run(synthtalk_tiny_dir, tmp_path_factory):
  """A stage-1 (face_latent) run of experiments/face_latent/synthtalk_tiny.py on SynthTalk tiny,
  with FACE_LATENT_MODEL's smaller sizes: FACE_LATENT_STEPS steps on one CPU device without the
  pretrained-network losses (reconstruction and pose alone until FACE_LATENT_LATE_START, then every
  loss), checkpoints at steps 20 and 40, evaluators after the last step (the identity evaluator has
  tests of its own). Trained once per session: its test checks what training did, and later
  stages read it back. Returns (config, task, train result, workdir, held-out scores before
  training, initial parameters)."""
  import jax

  from vasa_jax import configs, evaluators
  from vasa_jax.trainers import common, face_latent

  config = configs.load_config(
      f"{EXPERIMENTS / 'face_latent' / 'synthtalk_tiny.py'}:runlocal",
      [f"--config.data.data_dir={synthtalk_tiny_dir}", f"--config.total_steps={FACE_LATENT_STEPS}",
       "--config.log_every=10", "--config.checkpoint.every=20",
       "--config.schedule.warmup_steps=5",
       # The packaged VGG16 and dlib losses would double the step's time; a stage-1 step with
       # them is tested in tests/bench/test_bench.py.
       "--config.losses.perceptual_network=none", "--config.losses.identity_network=none",
       # Two phases of the curriculum: reconstruction alone, then every loss.
       *(f"--config.losses.start.{name}={FACE_LATENT_LATE_START}"
         for name in face_latent.LATE_LOSSES),
       "--config.evals.identity.every=-1",
       "--config.evals.heldout.num_examples=8", "--config.evals.transfer.num_pairs=4",
       "--config.evals.readout.max_frames=512", "--config.evals.readout.stride=4"])
  with config.unlocked():
    config.model.update(FACE_LATENT_MODEL)
  task = face_latent.make_task(config)
  initial = jax.jit(task.init_params)(jax.random.key(config.seed))
  (heldout,) = evaluators.make_evaluators(config, task, only=["heldout"])
  before = heldout.evaluator.run(initial).scalars
  workdir = tmp_path_factory.mktemp("face_latent_tiny")
  result = common.train(config, workdir, task, mesh=common.create_mesh({"data": 1, "fsdp": 1}))
  return config, task, result, workdir, before, initial


@pytest.fixture(scope="session")
def face_latent_tiny_workdir(face_latent_tiny_run):
  """The workdir (str) of `face_latent_tiny_run`, for tests that read a stage-1 model back."""
  return str(face_latent_tiny_run[3])


@pytest.fixture(scope="session")
def motion_latents_run(synthtalk_tiny_dir, face_latent_tiny_workdir, tmp_path_factory):
  """A 4-step stage-2 run on the motion latents of `face_latent_tiny_run` (by `motion.train`, so
  its workdir holds what generation reads), evaluated after the last step with 4 sampling steps.
  Returns (config, train result, workdir)."""
  from vasa_jax import configs
  from vasa_jax.trainers import motion

  workdir = tmp_path_factory.mktemp("motion_latents_run")
  config = configs.load_config(f"{EXPERIMENTS / 'motion' / 'synthtalk_tiny.py'}:runlocal", [
      f"--config.data.data_dir={synthtalk_tiny_dir}",
      f"--config.data.cache_dir={tmp_path_factory.mktemp('motion_latents_cache')}",
      f"--config.stage1.workdir={face_latent_tiny_workdir}", "--config.total_steps=4",
      "--config.evals.motion.num_steps=4", "--config.sampling.steps=2"])
  result = motion.train(config, str(workdir / "run"))
  return config, result, workdir / "run"


@pytest.fixture(scope="session")
def analyzer():
  """MediaPipe's face models (`faces.FaceAnalyzer`), loaded once per session."""
  from vasa_jax.data import faces

  return faces.FaceAnalyzer()


@pytest.fixture(scope="session")
def astronaut():
  """A real face photo: scikit-image's astronaut, uint8 RGB [512, 512, 3]."""
  return pytest.importorskip("skimage.data").astronaut()


# The device check's dry run (tests/bench/test_device_check.py) takes minutes of XLA compilation
# in a child process that uses one core; it starts as soon as the session's tests are collected, on
# the core the suite leaves idle, and its test, moved to the end of the session, reads the result.
DRY_RUN_TEST = "tests/bench/test_device_check.py::test_dry_run_end_to_end"


def pytest_collection_modifyitems(session, config, items):
  items.sort(key=lambda item: item.nodeid == DRY_RUN_TEST)  # Stable: the rest keep their order.


def pytest_collection_finish(session):
  if not session.config.option.collectonly and any(
      item.nodeid == DRY_RUN_TEST for item in session.items):
    import pathlib

    from tests import device_dry_run

    session.config.device_dry_run = device_dry_run.start(
        pathlib.Path(tempfile.mkdtemp(prefix="vasa_jax_device_dry_run_")))


def pytest_sessionfinish(session):
  dry_run = getattr(session.config, "device_dry_run", None)
  if dry_run is not None:
    dry_run.stop()
    shutil.rmtree(dry_run.folder, ignore_errors=True)


@pytest.fixture
def device_dry_run(request, tmp_path_factory):
  """The dry run started at collection (`tests/device_dry_run.py`), or one started now."""
  from tests import device_dry_run as dry

  return getattr(request.config, "device_dry_run", None) or dry.start(
      tmp_path_factory.mktemp("device_dry_run"))
