"""The command line: help, dispatch on config.task, and one-line errors with a non-zero exit."""

import json
import subprocess

import pytest

from tests.helpers import EXPERIMENTS, PYTHON, REPO, subprocess_env
from vasa_jax import main

REFERENCE = str(EXPERIMENTS / "reference_autoencoder.py")


def run_cli(*args, devices=1):
  return subprocess.run([PYTHON, "-m", "vasa_jax.main", *args], capture_output=True, text=True,
                        env=subprocess_env(devices), cwd=REPO, timeout=300)


@pytest.mark.parametrize("argv, expected", [
    (["--help"], ["train", "--config.KEY=VALUE"]),
    (["train", "--help"], ["--config FILE[:ARG]", "--workdir", "--distributed",
                           "--coordinator_address"]),
])
def test_help(argv, expected, capsys):
  with pytest.raises(SystemExit) as exit_info:
    main.main(argv)
  assert exit_info.value.code == 0
  out = capsys.readouterr().out
  for text in expected:
    assert text in out


def one_line_error(capsys):
  err = capsys.readouterr().err.strip().splitlines()
  assert err and err[-1].startswith("vasa: error: ")
  return err[-1]


def test_mistyped_key(capsys, tmp_path):
  code = main.main(["train", "--config", REFERENCE, "--workdir", str(tmp_path),
                    "--config.optimizer.weight_decy=0.1"])
  assert code == 2
  assert "unknown config key 'optimizer.weight_decy'" in one_line_error(capsys)
  assert not (tmp_path / "config.json").exists()


def test_missing_config_file(capsys, tmp_path):
  code = main.main(["--config", "experiments/missing.py", "--workdir", str(tmp_path)])
  assert code == 2
  assert "config file not found: experiments/missing.py" in one_line_error(capsys)


def test_unknown_task(capsys, tmp_path):
  config = tmp_path / "odd.py"
  config.write_text("import ml_collections\n"
                    "def get_config():\n"
                    "  return ml_collections.ConfigDict({'task': 'nonesuch'})\n")
  assert main.main(["--config", str(config), "--workdir", str(tmp_path)]) == 2
  assert "config.task='nonesuch' is unknown" in one_line_error(capsys)


@pytest.mark.slow
def test_module_entry_trains_then_refuses_another_models_checkpoint(tmp_path):
  workdir = tmp_path / "run"
  done = run_cli("--config", REFERENCE + ":runlocal", "--workdir", str(workdir),
                 "--config.total_steps=2", "--config.log_every=1")
  assert done.returncode == 0, done.stderr
  assert json.loads((workdir / "config.json").read_text())["total_steps"] == 2
  assert (workdir / "checkpoints" / "2").is_dir()
  assert len((workdir / "metrics.jsonl").read_text().splitlines()) == 2
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))

  other = run_cli("train", "--config", REFERENCE + ":variant=small,runlocal", "--workdir",
                  str(workdir), "--config.total_steps=4")
  assert other.returncode == 2
  last = other.stderr.strip().splitlines()[-1]
  assert last.startswith("vasa: error: ") and "holds a checkpoint of another model" in last
  assert "use a new --workdir" in last
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == ["2"]
