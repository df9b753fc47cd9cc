"""The training checkpoints: train state, data-iterator positions and a description, through Orbax."""

from __future__ import annotations

import pathlib
from typing import Any


class Checkpointer:
  """One Orbax CheckpointManager for the train state, the data iterators' positions and a description.

  Items of a checkpoint: `state` (the sharded TrainState), `data` (each process's grain iterator
  position) and `meta` (task, model summary and parameter shapes, to refuse a checkpoint of another
  model). Checkpoints are written to a temporary folder and renamed when complete, so a kill leaves
  the previous ones intact.
  """

  def __init__(self, directory: pathlib.Path, keep: int, async_save: bool = True):
    import orbax.checkpoint as ocp  # Heavy import: only trainers need it.

    self._ocp = ocp
    self.directory = pathlib.Path(directory).absolute()
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=async_save,
                                             cleanup_tmp_directories=True))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, data_iterator: Any, meta: dict) -> None:
    import grain

    ocp = self._ocp
    self.manager.save(step, force=True, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(data_iterator),
        meta=ocp.args.JsonSave(meta)))

  def read_meta(self, step: int) -> dict:
    ocp = self._ocp
    return dict(self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
                ["meta"])

  def restore(self, step: int, abstract_state: Any, data_iterator: Any) -> Any:
    """Restores the state onto the shardings of `abstract_state` and repositions `data_iterator`."""
    import grain

    ocp = self._ocp
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=grain.checkpoint.CheckpointRestore(data_iterator)))
    return restored["state"]

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
