"""`bash benchmarks/device_check.sh --dry_run` in a background process (see tests/conftest.py)."""

import dataclasses
import os
import pathlib
import signal
import subprocess
import sys

from tests.helpers import REPO


@dataclasses.dataclass
class DryRun:
  process: subprocess.Popen
  folder: pathlib.Path

  @property
  def out(self) -> pathlib.Path:
    return self.folder / "out"

  def wait(self, timeout: float) -> tuple[int, str]:
    """(exit status, output) once it ends."""
    self.process.wait(timeout)
    return self.process.returncode, (self.folder / "output.txt").read_text()

  def stop(self) -> None:
    if self.process.poll() is None:
      os.killpg(self.process.pid, signal.SIGKILL)
      self.process.wait()


def start(folder: pathlib.Path) -> DryRun:
  env = dict(os.environ, PYTHON=sys.executable)
  for name in ("OUT", "XLA_FLAGS"):  # The suite's 8 host devices would make every part 8x larger.
    env.pop(name, None)
  with open(folder / "output.txt", "w") as output:
    process = subprocess.Popen(
        ["bash", str(REPO / "benchmarks" / "device_check.sh"), "--dry_run", "--out",
         str(folder / "out"), "--data", str(folder / "data")],
        env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
  return DryRun(process, folder)
