"""SynthTalk as a tfds dataset written to ArrayRecord (no TensorFlow needed).

  vasa synthtalk build --config tiny --data_dir DIR
  tfds: builder(name="tiny", data_dir=DIR).download_and_prepare(file_format="array_record")

Configs differ in resolution and size; `tiny` (64x64, 48/8/8 clips) builds in well under a minute on 2
cores and serves the tests and the demo. Splits have disjoint identities and sentences. Clips are made
in parallel worker processes; the order of the examples does not depend on the number of workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import re

import tensorflow_datasets as tfds

from vasa_jax.data import schema, tfds_compat
from vasa_jax.data.synthtalk import clip as clip_lib


class SynthTalkConfig(tfds.core.BuilderConfig):
  """Resolution, clips per split and the seed of one SynthTalk variant."""

  def __init__(self, *, resolution: int, train_clips: int, validation_clips: int,
               test_clips: int, clips_per_identity: int = 4, seed: int = 0, **kwargs):
    super().__init__(**kwargs)
    self.resolution = resolution
    self.split_clips = {"train": train_clips, "validation": validation_clips, "test": test_clips}
    self.clips_per_identity = clips_per_identity
    self.seed = seed


CONFIGS = {
    "tiny": SynthTalkConfig(name="tiny", resolution=64, train_clips=48, validation_clips=8,
                            test_clips=8, description="64x64, 64 clips: tests and the demo."),
    "small": SynthTalkConfig(name="small", resolution=128, train_clips=2000,
                             validation_clips=100, test_clips=100,
                             description="128x128, 2.2K clips (500 train identities)."),
    "base": SynthTalkConfig(name="base", resolution=256, train_clips=20000, validation_clips=400,
                            test_clips=400, description="256x256, 20.8K clips."),
    "large": SynthTalkConfig(name="large", resolution=512, train_clips=100000,
                             validation_clips=1000, test_clips=1000,
                             description="512x512, 102K clips (25K train identities)."),
}


def custom_config(resolution: int, train_clips: int, validation_clips: int, test_clips: int,
                  seed: int = 0) -> SynthTalkConfig:
  """A config of any size and resolution, named after its parameters."""
  return SynthTalkConfig(
      name=f"r{resolution}_n{train_clips}_{validation_clips}_{test_clips}_s{seed}",
      resolution=resolution, train_clips=train_clips, validation_clips=validation_clips,
      test_clips=test_clips, seed=seed, description="custom size")


_CUSTOM_NAME = re.compile(r"r(\d+)_n(\d+)_(\d+)_(\d+)_s(\d+)")


def config_from_name(name: str) -> SynthTalkConfig | None:
  """The config called `name`: a registered one, or a custom one by its name (as `custom_config`
  names them, e.g. "r128_n480_48_0_s0"); None when `name` is neither."""
  if name in CONFIGS:
    return CONFIGS[name]
  match = _CUSTOM_NAME.fullmatch(name)
  if match is None:
    return None
  resolution, train, validation, test, seed = map(int, match.groups())
  return custom_config(resolution, train, validation, test, seed=seed)


def _make_clip(args):
  seed, split, index, spec = args
  return index, clip_lib.generate_clip(seed, split, index, spec)


class SynthTalk(tfds.core.GeneratorBasedBuilder):
  """Procedural talking faces with real synthesized speech and exact per-frame ground truth."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  BUILDER_CONFIGS = list(CONFIGS.values())

  def __init__(self, *, workers: int | None = None, **kwargs):
    self._workers = workers if workers is not None else max(1, (os.cpu_count() or 1))
    super().__init__(**kwargs)

  def download_and_prepare(self, *args, **kwargs):
    # Splits over 1 GB spill to disk through TensorFlow's file API; see `tfds_compat`.
    with tfds_compat.spill_without_tensorflow():
      return super().download_and_prepare(*args, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=schema.clip_features(),
        homepage="data/README.md",
        metadata=tfds.core.MetadataDict(resolution=self.builder_config.resolution),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    return {split: self._generate_examples(split) for split in clip_lib.SPLITS
            if self.builder_config.split_clips[split] > 0}

  def _generate_examples(self, split: str):
    from tqdm import tqdm

    config = self.builder_config
    spec = clip_spec(config)
    jobs = [(config.seed, split, i, spec) for i in range(config.split_clips[split])]
    progress = tqdm(total=len(jobs), desc=f"SynthTalk {config.name} {split}", unit="clip")
    with contextlib.ExitStack() as stack:
      stack.callback(progress.close)
      if self._workers <= 1:
        results = map(_make_clip, jobs)
      else:
        # Workers start fresh: espeak-ng's global state must not be inherited through fork.
        pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(self._workers))
        results = pool.imap(_make_clip, jobs, chunksize=2)
      for index, example in results:
        progress.update(1)
        yield index, example


def builder(name: str = "tiny", data_dir: str | None = None, workers: int | None = None,
            config: SynthTalkConfig | None = None) -> SynthTalk:
  """The SynthTalk builder of config `name` (or an explicit `config`) in `data_dir`."""
  # A registered config goes by name: a data source sent to grain's worker processes rebuilds the
  # builder there, where the registered config objects are new ones.
  if config is not None and CONFIGS.get(config.name) is config:
    name, config = config.name, None
  return SynthTalk(config=config if config is not None else name, data_dir=data_dir,
                   workers=workers, file_format="array_record")


def clip_spec(config: SynthTalkConfig) -> clip_lib.ClipSpec:
  return dataclasses.replace(clip_lib.ClipSpec(), resolution=config.resolution,
                             clips_per_identity=config.clips_per_identity)
