"""Audio features of a whole dataset split, computed once and cached for stage 2.

  vasa audio-features --data_dir DIR --dataset synthtalk/tiny --split train --cache_dir CACHE
      [--wav2vec2 HF_FOLDER --layer last]

Clips are encoded in batches by a jitted encoder (`vasa_jax.models.audio.features`), their audio
zero-padded to whole seconds so that few shapes compile; each clip keeps exactly its own frames
([num_frames, dim]). Results go to `CACHE/audio_features/<dataset>/<split>/` in shards of clips,
each written atomically; a stopped run continues with the shards not yet written. `meta.json` names
the encoder, so a cache is never mixed with features of another encoder.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import pathlib
from typing import Any

import numpy as np

from vasa_jax import atomic
from vasa_jax.data import schema
from vasa_jax.errors import UserError

BUCKET_FRAMES = schema.FPS  # Audio is padded to whole seconds: one compiled shape per second.


def make_audio_encoder(config) -> Any:
  """The frame-synchronous audio encoder `config` asks for (a
  `vasa_jax.models.audio.features.AudioEncoder`; Wav2Vec2 weights are read from their folder).

  Args:
    config: a ConfigDict (or mapping) with `wav2vec2_path` ("" = mel spectra, the default when no
      weights are configured), `layer` ("last", an int hidden-state index, or "weighted"),
      `normalize` (zero-mean unit-variance input, for checkpoints trained so), and `n_mels`.
  """
  from vasa_jax.convert import wav2vec2 as convert
  from vasa_jax.models.audio import features, wav2vec2

  path = config.get("wav2vec2_path", "") if hasattr(config, "get") else config["wav2vec2_path"]
  if not path:
    mel = features.MelConfig(n_mels=int(config.get("n_mels", 80)))
    return features.AudioEncoder(
        kind="mel", dim=(features.SAMPLES_PER_FRAME // mel.hop) * mel.n_mels, layer=None,
        hop=mel.hop, mel=mel, filterbank=features.mel_filterbank(mel),
        description=f"log-mel spectra ({mel.n_mels} mels, 4 per frame)")
  model_config, params = convert.load_hf_wav2vec2(path)
  receptive, hop = features.conv_geometry(model_config.conv_kernel, model_config.conv_stride)
  if features.SAMPLES_PER_FRAME % hop or (receptive - hop) % 2:
    raise UserError(f"the Wav2Vec2 in {path} hops {hop} samples with a {receptive}-sample window; "
                    f"frame-synchronous features need a hop dividing {features.SAMPLES_PER_FRAME}")
  layer = config.get("layer", "last")
  layers = model_config.num_hidden_layers
  if layer not in ("last", "weighted") and not (isinstance(layer, int) and 0 <= layer <= layers):
    raise UserError(f"config layer={layer!r}: use 'last', 'weighted' or a hidden-state index "
                    f"0..{layers}")
  return features.AudioEncoder(
      kind="wav2vec2", dim=model_config.hidden_size, layer=layer, params=params,
      model=wav2vec2.Wav2Vec2Model(model_config), hop=hop, pad=(receptive - hop) // 2,
      normalize=bool(config.get("normalize", False)),
      description=f"Wav2Vec2 from {path} (layer {layer})")


def cache_folder(cache_dir: str | os.PathLike, dataset: str, split: str) -> pathlib.Path:
  return pathlib.Path(cache_dir) / "audio_features" / dataset.replace("/", "_") / split


def extract_split(data_dir: str, dataset: str, split: str, cache_dir: str, encoder_config,
                  batch_size: int = 8, shard_size: int = 64) -> pathlib.Path:
  """Encodes the audio of every clip of a split; returns the cache folder."""
  import jax
  from tqdm import tqdm

  from vasa_jax.data import pipelines

  source = pipelines.open_split(data_dir, dataset, split)
  encoder = make_audio_encoder(encoder_config)
  folder = cache_folder(cache_dir, dataset, split)
  folder.mkdir(parents=True, exist_ok=True)
  meta = {"dataset": dataset, "split": split, "clips": len(source), "encoder": encoder.description,
          "dim": encoder.dim, "layer": str(encoder.layer), "shard_size": shard_size}
  meta_path = folder / "meta.json"
  if meta_path.exists() and json.loads(meta_path.read_text()) != meta:
    raise UserError(f"{folder} holds features of another encoder or dataset "
                    f"({json.loads(meta_path.read_text())['encoder']}); use another --cache_dir")
  atomic.write_json(meta_path, meta)
  apply = jax.jit(encoder.apply)
  shards = range(0, len(source), shard_size)
  progress = tqdm(total=len(source), desc=f"audio features {dataset} {split}", unit="clip")
  for start in shards:
    path = folder / f"features-{start // shard_size:05d}.npz"
    stop = min(start + shard_size, len(source))
    if path.exists():
      progress.update(stop - start)
      continue
    clips = [source[i] for i in range(start, stop)]
    results = encode_clip_audio(encoder, apply, clips, batch_size, progress)
    ids = [_text(clips[k]["meta"]["clip_id"]) for k in range(len(clips))]
    # A killed run leaves no file that features-*.npz matches.
    with atomic.writing(path) as f:
      np.savez(f, clip_ids=np.array(ids),
               **{f"clip_{k}": encoded for k, encoded in enumerate(results)})
  progress.close()
  logging.info("Audio features (%s, dim %d) of %d clips in %s.", encoder.description, encoder.dim,
               len(source), folder)
  return folder


def encode_clip_audio(encoder, apply, clips, batch_size: int, progress=None) -> list[np.ndarray]:
  """Audio features of whole clips, encoded in batches of clips of about the same length.

  Each clip's audio is zero-padded to whole seconds (`BUCKET_FRAMES`) and batched with the clips of
  the same bucket, rows filled up with silence, so the encoder compiles once per bucket and batch
  size rather than once per clip length.

  Args:
    encoder: a `features.AudioEncoder`.
    apply: `encoder.apply`, jitted once by the caller so that every call reuses its compilations
      (None: jitted here).
    clips: examples of a talking-face dataset: "audio" int16 [samples] at 16 kHz and
      "meta"["num_frames"].
    batch_size: clips per encoder call.
    progress: an optional tqdm bar, advanced by the clips of each call.

  Returns:
    float32 [num_frames, dim] per clip ([num_frames, layers, hidden] for the "weighted" layer), in
    the order of `clips`.
  """
  if apply is None:
    import jax

    apply = jax.jit(encoder.apply)
  by_bucket = collections.defaultdict(list)
  for k, clip in enumerate(clips):
    frames = int(clip["meta"]["num_frames"])
    by_bucket[-(-frames // BUCKET_FRAMES) * BUCKET_FRAMES].append(k)
  results: dict[int, np.ndarray] = {}
  for bucket, members in sorted(by_bucket.items()):
    for first in range(0, len(members), batch_size):
      chunk = members[first:first + batch_size]
      audio = np.zeros((batch_size, bucket * schema.SAMPLES_PER_FRAME), np.float32)
      for row, k in enumerate(chunk):
        samples = np.asarray(clips[k]["audio"], np.float32) / 32767.0
        audio[row, :len(samples)] = samples[:audio.shape[1]]
      encoded = np.asarray(apply(encoder.params, audio))
      for row, k in enumerate(chunk):
        results[k] = encoded[row, :int(clips[k]["meta"]["num_frames"])].astype(np.float32)
      if progress is not None:
        progress.update(len(chunk))
  return [results[k] for k in range(len(clips))]


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


class FeatureCache:
  """Reads a cache written by `extract_split`: `cache[clip_id]` -> float32 [num_frames, dim]."""

  def __init__(self, folder: str | os.PathLike):
    self.folder = pathlib.Path(folder)
    meta_path = self.folder / "meta.json"
    if not meta_path.exists():
      raise UserError(f"no audio features in {self.folder}; compute them with vasa audio-features")
    self.meta = json.loads(meta_path.read_text())
    self._index = {}
    for path in sorted(self.folder.glob("features-*.npz")):
      with np.load(path, allow_pickle=False) as data:
        for k, clip_id in enumerate(data["clip_ids"]):
          self._index[str(clip_id)] = (path, k)
    if len(self._index) != self.meta["clips"]:
      raise UserError(f"{self.folder} is incomplete ({len(self._index)} of {self.meta['clips']} "
                      "clips); run vasa audio-features again to finish it")

  def __len__(self) -> int:
    return len(self._index)

  def __getitem__(self, clip_id) -> np.ndarray:
    path, k = self._index[_text(clip_id)]
    with np.load(path, allow_pickle=False) as data:
      return data[f"clip_{k}"]


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "audio-features", help="compute and cache the audio features of a dataset split for stage 2",
      description=__doc__.split("\n\n")[0])
  add_dataset_and_encoder_arguments(parser)
  parser.add_argument("--split", default="train")
  parser.add_argument("--cache_dir", required=True, help="where the features are stored")
  parser.add_argument("--batch_size", type=int, default=8)
  parser.set_defaults(handler=_command)


def add_dataset_and_encoder_arguments(parser) -> None:
  """--data_dir, --dataset, --wav2vec2 and --layer: the commands that cache features of a split."""
  parser.add_argument("--data_dir", required=True,
                      help="tfds folder of SynthTalk, or the output of vasa prepare")
  parser.add_argument("--dataset", required=True, help="synthtalk/<config> or talking_videos")
  parser.add_argument("--wav2vec2", default="",
                      help="local Hugging Face folder (config.json + model.safetensors) of a "
                      "Wav2Vec2 or HuBERT model; without it, log-mel spectra")
  parser.add_argument("--layer", default="last",
                      help="'last', a hidden-state index, or 'weighted' (all layers, for a learned "
                      "weighted sum)")


def _command(args) -> int:
  layer = int(args.layer) if args.layer.lstrip("-").isdigit() else args.layer
  folder = extract_split(args.data_dir, args.dataset, args.split, args.cache_dir,
                         {"wav2vec2_path": args.wav2vec2, "layer": layer},
                         batch_size=args.batch_size)
  print(folder)
  return 0
