"""`vasa` with test hooks, for tests that must stop a real training process at an exact point.

BATCH_LOG=FILE          append each step's example indices to FILE (one JSON list per line, fsynced)
KILL_AFTER_CHECKPOINT=N SIGKILL this process as soon as the checkpoint of step N is on disk
"""

import json
import os
import signal
import sys

from vasa_jax import main
from vasa_jax.trainers import common

batch_log = os.environ.get("BATCH_LOG")
kill_after = int(os.environ.get("KILL_AFTER_CHECKPOINT", "0"))

if batch_log:
  to_global_batch = common.to_global_batch

  def logging_to_global_batch(local_batch, sharding):
    with open(batch_log, "a") as f:
      f.write(json.dumps(local_batch["index"].tolist()) + "\n")
      f.flush()
      os.fsync(f.fileno())
    return to_global_batch(local_batch, sharding)

  common.to_global_batch = logging_to_global_batch

if kill_after:
  save = common.Checkpointer.save

  def save_then_kill(self, step, *args, **kwargs):
    save(self, step, *args, **kwargs)
    if step == kill_after:
      self.wait()
      os.kill(os.getpid(), signal.SIGKILL)

  common.Checkpointer.save = save_then_kill

if __name__ == "__main__":
  sys.exit(main.main())
