"""The tfds dataset of clips prepared from real videos by `vasa prepare` (its output is the manual dir).

Splits are by identity (`prepare.split_of`), so no person is in two of them. `build_dataset(OUTPUT)`
writes the ArrayRecord files into `OUTPUT/tfds`; `vasa_jax.data.pipelines.open_split(OUTPUT,
"talking_videos", split)` reads them.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import shutil

import numpy as np
import tensorflow_datasets as tfds

from vasa_jax.data import prepare, schema, tfds_compat


class TalkingVideos(tfds.core.GeneratorBasedBuilder):
  """Clips prepared from real talking-face videos, in the talking-face dataset schema."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = ("Prepare the videos with `vasa prepare --input RAW --output DIR`; "
                                  "DIR is the manual folder.")

  def download_and_prepare(self, *args, **kwargs):
    # Splits over 1 GB spill to disk through TensorFlow's file API; see `tfds_compat`.
    with tfds_compat.spill_without_tensorflow():
      return super().download_and_prepare(*args, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, description=__doc__,
                                 features=schema.clip_features(), homepage="data/README.md")

  def _split_generators(self, dl_manager):
    manual = pathlib.Path(dl_manager.manual_dir)
    options = prepare.PrepareOptions(**json.loads((manual / "options.json").read_text()))
    by_split = collections.defaultdict(list)
    for path in sorted((manual / "videos").glob("*.npz")):
      with np.load(path, allow_pickle=False) as data:
        if int(data["num_clips"]):
          identity = json.loads(str(data["0/meta"]))["identity"]
          by_split[prepare.split_of(identity, options)].append(path)
    return {split: self._generate_examples(paths) for split, paths in by_split.items()}

  def _generate_examples(self, paths):
    for path in paths:
      for clip in prepare.load_clips(path):
        yield clip["meta"]["clip_id"], clip


def dataset_builder(output: str | os.PathLike) -> TalkingVideos:
  return TalkingVideos(data_dir=str(pathlib.Path(output) / "tfds"), file_format="array_record")


def build_dataset(output: str | os.PathLike) -> TalkingVideos:
  """(Re)writes the ArrayRecord dataset of a prepared folder into `OUTPUT/tfds`."""
  builder = dataset_builder(output)
  if builder.is_prepared():  # Videos may have been added since: build afresh.
    shutil.rmtree(builder.data_dir)
    builder = dataset_builder(output)
  builder.download_and_prepare(
      file_format="array_record",
      download_config=tfds.download.DownloadConfig(manual_dir=str(output)))
  return builder
