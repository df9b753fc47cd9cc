import json

import pytest

from tests.helpers import EXPERIMENTS
from vasa_jax import configs
from vasa_jax.errors import UserError

REFERENCE = str(EXPERIMENTS / "reference_autoencoder.py")


def test_overrides_take_the_type_of_the_field():
  config = configs.load_config(REFERENCE, [
      "--config.total_steps=7", "--config.schedule.peak_value=1", "--config.grad_clip_norm=0.5",
      "--config.checkpoint.async_save=false", "--config.model.variant=small"])
  assert config.total_steps == 7
  assert config.schedule.peak_value == 1.0 and isinstance(config.schedule.peak_value, float)
  assert config.checkpoint.async_save is False
  assert config.model.variant == "small"


def test_config_argument_selects_variant():
  config = configs.load_config(REFERENCE + ":variant=base,image_size=64,runlocal")
  assert (config.model.variant, config.data.image_size, config.total_steps) == ("base", 64, 20)


@pytest.mark.parametrize("override, message", [
    ("--config.total_stpes=3", "unknown config key 'total_stpes'.*did you mean 'total_steps'"),
    ("--config.schedule.peak=3", "unknown config key 'schedule.peak'"),
    ("--config.schedule=3", "is a group"),
    ("--config.total_steps=many", "expects a int"),
    ("--config.checkpoint.async_save=maybe", "is a bool"),
])
def test_bad_override_names_the_key(override, message):
  with pytest.raises(UserError, match=message):
    configs.load_config(REFERENCE, [override])


def test_unknown_config_argument():
  with pytest.raises(UserError, match="unknown config argument 'varaint'.*known: image_size"):
    configs.load_config(REFERENCE + ":varaint=base")


def test_missing_and_broken_config_files(tmp_path):
  with pytest.raises(UserError, match="config file not found: .*nope.py"):
    configs.load_config(str(tmp_path / "nope.py"))
  broken = tmp_path / "broken.py"
  broken.write_text("def get_config(:\n")
  with pytest.raises(UserError, match="broken.py failed to load: SyntaxError"):
    configs.load_config(str(broken))
  empty = tmp_path / "empty.py"
  empty.write_text("x = 1\n")
  with pytest.raises(UserError, match="has no get_config"):
    configs.load_config(str(empty))


def test_written_json_round_trips(tmp_path):
  config = configs.load_config(REFERENCE, ["--config.total_steps=11"])
  configs.write_json(config, tmp_path / "run" / "config.json")
  assert json.loads((tmp_path / "run" / "config.json").read_text())["total_steps"] == 11
