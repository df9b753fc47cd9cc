"""The paper's evaluation protocol: generate from held-out audio, score with the video metrics.

For a stage-2 checkpoint (`vasa evaluate --config CFG --checkpoint RUN --split test --out DIR`):
every clip of the split (or `num_clips` of them, drawn by seed) gives its first frame as the photo,
its audio, and its own gaze, head distance and emotion as the controls; the stochastic model
generates `samples_per_audio` videos per clip (3 in the paper), with seeds seed, seed + 1, ...
Every metric of `config.evals` whose type is a video metric (`vasa_jax.evaluators.videos`) scores
the generated set, and the real clips of the split as the "Real video" row; the paper's numbers are
averages over all videos, and so are these. Folders of videos (`--videos NAME=DIR`: real clips, or
the output of other systems) are read, cropped to the training framing and scored the same way,
so that baselines, real video and checkpoints sit in one table.

A long-form split (like the paper's OneMin-32, one-minute clips) is made from any prepared dataset
by `long_form_seconds`: consecutive clips of one identity and source are joined into sequences of
about that length (shorter groups are dropped).

Writes into the output folder: `metrics.json` (rows of scores, the weights behind each metric,
what was unavailable and why, per-clip scores, the sweep), `report.html`, `strips/*.png` (frames of
real and generated clips side by side) and `videos/*.mp4` (the generated samples, marked
AI-generated). Files appear complete or not at all.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import os
import pathlib
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vasa_jax import atomic
from vasa_jax.errors import UserError
from vasa_jax.evaluators import videos as video_metrics
from vasa_jax.evaluators.videos import Video

REAL = "Real video"


@dataclasses.dataclass
class Settings:
  """`config.evaluation`, with the command line's choices over it."""
  split: str = "test"
  num_clips: int = 0  # 0: every clip of the split.
  samples_per_audio: int = 3
  seed: int = 0
  long_form_seconds: float = 0.0
  max_seconds: float = 0.0  # > 0: clips are cut to this length (a quick look).
  strips: int = 4
  write_videos: int = 8  # Generated samples written as mp4 (0: none).
  image_size: int = 0  # Frames' side for the metrics; 0: the checkpoint's stage-1 size, else 256.
  # {"condition": "audio", "values": [0, 0.5, 1, 2], "samples_per_audio": 1}: a guidance sweep.
  sweep: dict | None = None

  @classmethod
  def from_config(cls, config, **overrides) -> Settings:
    given = dict(config.get("evaluation") or {})
    if hasattr(given.get("sweep"), "to_dict"):
      given["sweep"] = given["sweep"].to_dict()
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - names)
    if unknown:
      raise UserError(f"config.evaluation has unknown keys {unknown}; it takes {sorted(names)}")
    given.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**given)


# --------------------------------------------------------------------------------------------------
# Real clips.


def _clip_video(clip: Mapping[str, Any], image_size: int, name: str) -> Video:
  from vasa_jax.data import schema
  from vasa_jax.data.pipelines import _resize
  from vasa_jax.data.synthtalk.clip import decode_frames

  frames = decode_frames(clip["frames"])
  if frames.shape[1] != image_size:
    frames = np.stack([_resize(f, image_size) for f in frames])
  meta = clip["meta"]
  audio = np.asarray(clip["audio"], np.float32) / 32768.0
  gaze = np.asarray(meta["gaze"], np.float64)
  distance = float(meta["distance"])
  return Video(
      name=name, frames=frames, audio=audio, fps=float(meta["fps"]), clip=name,
      gaze=tuple(gaze) if np.all(np.isfinite(gaze)) else None,
      distance=distance if math.isfinite(distance) else None,
      labels={k: np.asarray(clip["labels"][k], np.float32) for k in schema.LABEL_NAMES},
      emotion=int(meta["emotion"]),
      landmarks=np.asarray(clip["landmarks"], np.float32) if len(clip["landmarks"]) else None)


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def real_clips(data_dir: str, dataset: str, split: str, image_size: int, num_clips: int = 0,
               seed: int = 0, long_form_seconds: float = 0.0, max_seconds: float = 0.0,
               spill_to: pathlib.Path | None = None) -> list[Video]:
  """The real clips of a split as `Video`s at `image_size` (all, or `num_clips` drawn by seed);
  with `long_form_seconds`, sequences of consecutive clips of one identity and source. With
  `spill_to`, their frames are memory-mapped from files there (`spill`)."""
  from vasa_jax.data import pipelines

  source = pipelines.open_split(data_dir, dataset, split)
  if len(source) == 0:
    raise UserError(f"split {split!r} of {dataset} in {data_dir} has no clips; choose another "
                    "with --split")

  def keep(video: Video) -> Video:  # Cut, then out of memory, one video at a time.
    if max_seconds > 0:
      video = _cut(video, max_seconds)
    return dataclasses.replace(video, frames=spill(video.frames, spill_to, f"real_{video.name}"))

  if long_form_seconds > 0:
    videos = _long_form(source, image_size, long_form_seconds, keep)
    if not videos:
      raise UserError(f"no identity of split {split!r} has {long_form_seconds:g} s of clips; use a "
                      "shorter --long_form")
    return videos[:num_clips] if num_clips else videos
  order = np.arange(len(source))
  if num_clips and num_clips < len(source):
    order = np.sort(np.random.default_rng(seed).permutation(len(source))[:num_clips])
  return [keep(_clip_video(source[int(i)], image_size, _text(source[int(i)]["meta"]["clip_id"])))
          for i in order]


def _cut(video: Video, seconds: float) -> Video:
  frames = int(round(seconds * video.fps))
  if video.num_frames <= frames:
    return video
  samples = int(round(frames / video.fps * video_metrics.SAMPLE_RATE))
  labels = None if video.labels is None else {k: v[:frames] for k, v in video.labels.items()}
  landmarks = None if video.landmarks is None else video.landmarks[:frames]
  return dataclasses.replace(video, frames=video.frames[:frames], audio=video.audio[:samples],
                             labels=labels, landmarks=landmarks)


def _long_form(source, image_size: int, seconds: float, keep) -> list[Video]:
  groups: dict[tuple[str, str], list[int]] = {}
  for index in range(len(source)):
    meta = source[index]["meta"]
    groups.setdefault((_text(meta["identity"]), _text(meta["source"])), []).append(index)
  videos = []
  for (identity, _), indices in sorted(groups.items()):
    indices = sorted(indices, key=lambda i: _text(source[i]["meta"]["clip_id"]))
    parts, length = [], 0.0
    for index in indices:
      clip = source[index]
      part = _clip_video(clip, image_size, _text(clip["meta"]["clip_id"]))
      parts.append(part)
      length += part.seconds
      if length >= seconds:
        break
    if length < 0.8 * seconds:
      continue
    name = f"{identity}_long{len(videos)}"
    labels = {k: np.concatenate([p.labels[k] for p in parts]) for k in parts[0].labels}
    # Each clip's audio is padded or cut to its frames so that audio and video stay aligned.
    per_frame = int(round(video_metrics.SAMPLE_RATE / parts[0].fps))
    audio = np.concatenate([np.pad(p.audio, (0, max(0, p.num_frames * per_frame - len(p.audio))))
                            [:p.num_frames * per_frame] for p in parts])
    landmarks = (np.concatenate([p.landmarks for p in parts])
                 if all(p.landmarks is not None for p in parts) else None)
    videos.append(keep(dataclasses.replace(
        parts[0], name=name, clip=name, frames=np.concatenate([p.frames for p in parts]),
        audio=audio, labels=labels, landmarks=landmarks)))
  return videos


# --------------------------------------------------------------------------------------------------
# Videos of other systems, or real footage, from a folder.

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def folder_videos(folder: str | os.PathLike, image_size: int, max_seconds: float = 0.0,
                  spill_to: pathlib.Path | None = None) -> tuple[list[Video], dict[str, str]]:
  """Every video of a folder (with its sound) cropped to the training framing at `image_size`.
  Returns the videos and {file: reason} of those that could not be read (they are skipped)."""
  from vasa_jax.data import faces, video_io
  from vasa_jax.inference import editing

  folder = pathlib.Path(folder).expanduser()
  if not folder.is_dir():
    raise UserError(f"--videos {folder} is not a folder; give a folder of talking-face videos "
                    "with their audio")
  paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
  if not paths:
    raise UserError(f"{folder} holds no videos ({', '.join(VIDEO_SUFFIXES)})")
  analyzer = faces.FaceAnalyzer()
  out, skipped = [], {}
  for path in paths:
    try:
      boxes, landmarks = editing.track_face(path, analyzer)
      frames = np.stack([faces.crop(frame, box, image_size) for frame, box in
                         zip(video_io.iter_frames(path), boxes)])
      audio = video_io.read_audio(path, start_time=video_io.video_start_time(path))
    except (UserError, video_io.MediaError) as e:
      logging.warning("Skipping %s: %s", path, e)
      skipped[str(path)] = str(e)
      continue
    name = str(path.relative_to(folder).with_suffix(""))
    frames = spill(frames, spill_to, f"{folder.name}_{name}")
    video = Video(name=name, frames=frames, audio=audio, landmarks=landmarks)
    out.append(_cut(video, max_seconds) if max_seconds > 0 else video)
  if not out:
    raise UserError(f"no video of {folder} could be read: {skipped}")
  return out, skipped


# --------------------------------------------------------------------------------------------------
# Generation.


def with_sampling(generator, **overrides):
  """The same generator with other sampling settings (num_steps, method, eta, scales)."""
  from vasa_jax.inference.talking_face import TalkingFaceGenerator

  motion = dataclasses.replace(generator.motion, **overrides)
  return TalkingFaceGenerator(generator.face, motion, generator.audio_encoder,
                              generator.audio_context)


def spill(frames: np.ndarray, folder: pathlib.Path | None, name: str) -> np.ndarray:
  """The frames written to `folder` and mapped back read-only (so that a split's videos need disk,
  not memory); unchanged without a folder."""
  if folder is None:
    return frames
  folder.mkdir(parents=True, exist_ok=True)
  safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
  path = folder / f"{safe}.npy"
  np.save(path, np.ascontiguousarray(frames))
  return np.load(path, mmap_mode="r")


def generate(generator, reals: Sequence[Video], samples: int, seed: int,
             progress: bool = True, spill_to: pathlib.Path | None = None,
             tag: str = "") -> list[Video]:
  """`samples` videos per real clip: its first frame animated by its audio with its controls.
  With `spill_to`, the frames live in files there (memory-mapped) instead of in memory, named
  after `tag` (distinct per call)."""
  from tqdm import tqdm

  from vasa_jax.inference import portrait as portrait_lib
  from vasa_jax.inference.talking_face import Controls, Subject

  size = generator.face.image_size
  out = []
  bar = tqdm(total=len(reals) * samples, desc="generate", unit="video", disable=not progress)
  for real in reals:
    photo = real.frames[0]
    if photo.shape[0] != size:
      from vasa_jax.data.pipelines import _resize

      photo = _resize(photo, size)
    crop = np.ascontiguousarray(photo)
    portrait = portrait_lib.Portrait(image=crop, box=np.array([size / 2, size / 2, size],
                                                              np.float32),
                                     crop=crop, face_index=0, num_faces=1)
    landmarks = None if real.landmarks is None else real.landmarks[0]
    subject = Subject(portrait, generator.face.encode(crop, landmarks), real.name)
    controls = Controls(gaze=real.gaze, distance=real.distance, emotion=real.emotion)
    for k in range(samples):
      frames = np.concatenate(list(generator.generate(subject, real.audio, controls,
                                                      seed=seed + k)))
      frames = spill(frames, spill_to, f"{tag}_{real.name}_{k}")
      out.append(Video(name=f"{real.name}#{k}", frames=frames, audio=real.audio, fps=real.fps,
                       clip=real.clip, gaze=real.gaze, distance=real.distance,
                       emotion=real.emotion))
      bar.update(1)
  bar.close()
  return out


# --------------------------------------------------------------------------------------------------
# Scoring.


@dataclasses.dataclass
class MetricSet:
  metrics: dict[str, Any]  # config.evals name -> Metric
  described: dict[str, dict]  # metrics.json "metrics" entries, by score key
  unavailable: dict[str, str]  # config.evals name -> reason


def build_metrics(config, only: Sequence[str] | None = None) -> MetricSet:
  """The video metrics of `config.evals` (or those named in `only`)."""
  evals = {name: (s.to_dict() if hasattr(s, "to_dict") else dict(s))
           for name, s in (config.get("evals") or {}).items()}
  chosen = {n: s for n, s in evals.items() if video_metrics.is_video_metric(s.get("type"))}
  if only:
    unknown = sorted(set(only) - set(chosen))
    if unknown:
      raise UserError(f"{unknown} are not video metrics of config.evals; it has {sorted(chosen)}")
    chosen = {n: chosen[n] for n in only}
  metrics, unavailable = {}, {}
  for name, settings in chosen.items():
    try:
      metrics[name] = video_metrics.make_metric(name, settings)
      metrics[name].config_type = settings["type"]
    except video_metrics.Unavailable as e:
      logging.warning("Metric %s unavailable: %s", name, e)
      unavailable[name] = str(e)
  return MetricSet(metrics, {}, unavailable)


def score(metric_set: MetricSet, systems: Mapping[str, Sequence[Video]],
          real: Sequence[Video] | None) -> dict[str, dict[str, float]]:
  """{system: {score key: value}} for every system (and "Real video" when `real` is given)."""
  rows: dict[str, dict[str, float]] = {}
  every = dict(systems)
  if real:
    every[REAL] = real
  for system, videos in every.items():
    row = rows.setdefault(system, {})
    for name, metric in metric_set.metrics.items():
      logging.info("Scoring %s with %s (%d videos)", system, name, len(videos))
      try:
        values = metric.score(videos, real)
      except UserError as e:
        logging.warning("%s on %s: %s", name, system, e)
        metric_set.unavailable.setdefault(f"{name} ({system})", str(e))
        continue
      row.update(values)
      for key in values:
        metric_set.described.setdefault(key, {
            "evaluator": name, "type": getattr(metric, "config_type", type(metric).__name__),
            "module": type(metric).__module__,
            "weights": dict(getattr(metric, "weights", {}) or {})})
  return rows


def _comparable(key: str, described: dict) -> tuple[bool, str]:
  weights = " ".join(f"{k} {v}" for k, v in described.get("weights", {}).items()).lower()
  if key in ("S_C", "S_D"):
    if "expert" in weights:
      return False, "own SyncNet-style expert: same protocol, its own scale, not the paper's"
    return True, "public SyncNet, the LSE-C/LSE-D protocol"
  if key == "FVD_25":
    return True, "I3D Kinetics-400 logits; the paper uses 2K clips per set"
  if key == "CAPP":
    return False, "our CAPP model, trained as the paper describes; its scale is its own"
  if key == "dP":
    return False, ("the paper's definition (degrees per frame of re-extracted pose), read by our "
                   "pose reader; the paper does not name its pose extractor")
  return False, ""


# --------------------------------------------------------------------------------------------------
# The whole protocol.


def run(config, out_dir: str | os.PathLike, checkpoints: Sequence[str] = (),
        folders: Mapping[str, str] | None = None, real_folder: str | None = None,
        settings: Settings | None = None, step: int | None = None,
        only: Sequence[str] | None = None, config_name: str = "",
        sampling: Mapping[str, Any] | None = None, progress: bool = True) -> dict:
  """Generates and scores; writes metrics.json, report.html, strips and videos to `out_dir`."""
  from vasa_jax.protocol import report
  from vasa_jax.inference.talking_face import load_generator

  add_defaults(config)
  settings = settings or Settings.from_config(config)
  out = pathlib.Path(out_dir).expanduser()
  out.mkdir(parents=True, exist_ok=True)
  # Generated frames wait on disk for the metrics (a split at 512 px does not fit in memory).
  spill_dir = out / "frames.tmp"
  shutil.rmtree(spill_dir, ignore_errors=True)
  metric_set = build_metrics(config, only)
  folders = dict(folders or {})
  if not checkpoints and not folders:
    raise UserError("nothing to evaluate: give --checkpoint RUN and/or --videos [NAME=]DIR")

  generators = {}
  for checkpoint in checkpoints:
    generator = load_generator(checkpoint, step, sampling=sampling)
    name = f"{pathlib.Path(checkpoint).name} (step {_checkpoint_step(checkpoint, step)})"
    generators[name] = (checkpoint, generator)
  image_size = settings.image_size or (next(iter(generators.values()))[1].face.image_size
                                       if generators else 256)

  real: list[Video] | None = None
  data = config.get("data") or {}
  notes = []
  if real_folder:
    real, skipped = folder_videos(real_folder, image_size, settings.max_seconds, spill_dir / "real")
    notes += [f"skipped {k}: {v}" for k, v in skipped.items()]
  elif data.get("data_dir"):
    real = real_clips(data.data_dir, data.dataset, settings.split, image_size, settings.num_clips,
                      settings.seed, settings.long_form_seconds, settings.max_seconds,
                      spill_dir / "real")
  elif generators:
    raise UserError("the protocol generates from the split's real clips: set --config.data."
                    "data_dir=DATA (the dataset the run was trained on)")

  systems: dict[str, list[Video]] = {}
  for name, (_, generator) in generators.items():
    logging.info("Generating %d x %d videos with %s", len(real), settings.samples_per_audio, name)
    systems[name] = generate(generator, real, settings.samples_per_audio, settings.seed, progress,
                             spill_to=spill_dir, tag=f"system{len(systems)}")
  for name, folder in folders.items():
    systems[name], skipped = folder_videos(folder, image_size, settings.max_seconds,
                                           spill_dir / f"folder{len(systems)}")
    notes += [f"skipped {k}: {v}" for k, v in skipped.items()]

  rows = score(metric_set, systems, real)
  record: dict[str, Any] = {
      "title": f"Evaluation of {', '.join(systems)}",
      "created": datetime.datetime.now().isoformat(timespec="seconds"),
      "source": ({"kind": "checkpoint", "workdir": str(checkpoints[0]),
                  "step": _checkpoint_step(checkpoints[0], step), "config": config_name,
                  "checkpoints": [str(c) for c in checkpoints]} if checkpoints else
                 {"kind": "videos", "folder": ", ".join(f"{k}={v}" for k, v in folders.items())}),
      "protocol": {"split": settings.split, "num_clips": len(real or []),
                   "samples_per_audio": settings.samples_per_audio if generators else 1,
                   "seed": settings.seed, "dataset": data.get("dataset", ""),
                   "long_form_seconds": settings.long_form_seconds,
                   "max_seconds": settings.max_seconds, "notes": notes},
      "rows": rows, "metrics": {}, "unavailable": metric_set.unavailable}
  if generators:
    first = next(iter(generators.values()))[1]
    record["protocol"]["sampling"] = {
        "num_steps": first.motion.num_steps, "method": first.motion.method,
        "guidance": dict(first.motion.scales)}

  if settings.sweep and generators:
    record["sweep"] = _sweep(metric_set, generators, real, settings, progress, spill_dir)
  for key, described in metric_set.described.items():
    comparable, note = _comparable(key, described)
    record["metrics"][key] = {**described, "comparable_to_paper": comparable, "note": note}

  strips = _write_strips(out / "strips", real, systems, settings.strips)
  _write_videos(out / "videos", systems, settings.write_videos)
  write_json(out / "metrics.json", record)
  curves = checkpoints[0] if checkpoints else None
  report.write_report(out / "report.html", record, workdir_curves=curves, strips=strips,
                      title=record["title"])
  shutil.rmtree(spill_dir, ignore_errors=True)
  return record


def _checkpoint_step(checkpoint: str, step: int | None) -> int | None:
  if step is not None:
    return step
  folder = pathlib.Path(checkpoint) / "checkpoints"
  steps = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
  return max(steps) if steps else None


def _sweep(metric_set: MetricSet, generators, real, settings: Settings, progress: bool,
           spill_dir: pathlib.Path | None = None) -> dict:
  sweep = dict(settings.sweep)
  condition = sweep.get("condition", "audio")
  values = [float(v) for v in sweep.get("values", ())]
  samples = int(sweep.get("samples_per_audio", 1))
  name, (_, generator) = next(iter(generators.items()))
  if condition not in generator.motion.scales:
    raise UserError(f"config.evaluation.sweep.condition={condition!r} is not a guided condition; "
                    f"the model guides {sorted(generator.motion.scales)}")
  points = []
  for value in values:
    scales = {**generator.motion.scales, condition: value}
    swept = with_sampling(generator, scales=scales)
    logging.info("Sweep %s guidance %s = %g", name, condition, value)
    videos = generate(swept, real, samples, settings.seed, progress, spill_to=spill_dir,
                      tag=f"sweep{len(points)}")
    row = score(MetricSet({k: m for k, m in metric_set.metrics.items()
                           if not k.startswith("fvd")}, metric_set.described,
                          metric_set.unavailable), {name: videos}, None)[name]
    points.append({"value": value, **row})
  return {"parameter": f"guidance.{condition}", "system": name, "samples_per_audio": samples,
          "points": points}


def _frames_at(video: Video, count: int) -> np.ndarray:
  indices = np.linspace(0, video.num_frames - 1, count).round().astype(int)
  return video.frames[indices].astype(np.float32) / 255.0


def _write_strips(folder: pathlib.Path, real, systems, count: int) -> list[tuple[str, str]]:
  from vasa_jax.data import video_io
  from vasa_jax.data.pipelines import _resize

  strips = []
  if not count:
    return strips
  folder.mkdir(parents=True, exist_ok=True)
  for real_video in (real or [])[:count]:
    rows, captions = [_frames_at(real_video, 8)], ["real"]
    for system, videos in systems.items():
      for video in videos:
        if video.clip == real_video.clip:
          rows.append(_frames_at(video, 8))
          captions.append(f"{system} {video.name.rpartition('#')[2]}")
    size = min(r.shape[1] for r in rows)
    rows = [np.stack([_resize((f * 255).astype(np.uint8), size) for f in r]).astype(np.float32)
            / 255.0 if r.shape[1] != size else r for r in rows]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in real_video.clip)
    path = video_io.write_image_grid(rows, folder / f"{safe}.png", min_size=128)
    strips.append((f"{real_video.clip}: rows {', '.join(captions)}", str(path)))
  return strips


def _write_videos(folder: pathlib.Path, systems, count: int) -> None:
  from vasa_jax.data import video_io

  written = 0
  folder.mkdir(parents=True, exist_ok=True)
  for system, videos in systems.items():
    for video in videos:
      if written >= count:
        return
      if video.name.rpartition("#")[1] != "#":
        continue  # Only generated samples.
      safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{system}_{video.name}")
      frames = video.frames[:, :video.frames.shape[1] // 2 * 2, :video.frames.shape[2] // 2 * 2]
      video_io.write_video(folder / f"{safe}.mp4", frames, int(round(video.fps)), video.audio)
      written += 1


def plain(value):
  """JSON-ready: numpy scalars and arrays to Python, NaN and infinities to None."""
  if isinstance(value, Mapping):
    return {str(k): plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [plain(v) for v in value]
  if isinstance(value, np.ndarray):
    return plain(value.tolist())
  if isinstance(value, (np.floating, np.integer, np.bool_)):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def write_json(path: pathlib.Path, record: Mapping) -> None:
  atomic.write_json(path, plain(record), allow_nan=False)


def add_defaults(config) -> None:
  """Gives a stage-2 config without them the default video metrics and `evaluation` block
  (`vasa_jax.configs.motion.video_metrics`, `default_evaluation`), so that overrides can set them."""
  import ml_collections

  from vasa_jax.configs import motion

  with config.unlocked():
    if "evals" not in config:
      config.evals = ml_collections.ConfigDict()
    if not any(video_metrics.is_video_metric(dict(s).get("type")) for s in config.evals.values()):
      for name, settings in motion.video_metrics().items():
        config.evals[name] = ml_collections.ConfigDict(settings)
    if "evaluation" not in config:
      config.evaluation = motion.default_evaluation()


def sampling_of(config) -> dict[str, Any]:
  """A motion config's `sampling` block as `load_generator`'s overrides."""
  from vasa_jax.diffusion.motion import sampling_settings

  return sampling_settings(config.sampling)


def format_rows(record: Mapping) -> str:
  """The metric table of a record as plain text."""
  rows = record.get("rows", {})
  keys = sorted({k for row in rows.values() for k in row})
  if not rows:
    return "(no scores)"
  width = max(len(name) for name in rows)
  lines = [" " * width + "".join(f"  {k:>10}" for k in keys)]
  for name, row in rows.items():
    cells = "".join(f"  {_cell(row.get(k)):>10}" for k in keys)
    lines.append(f"{name:<{width}}{cells}")
  for name, reason in record.get("unavailable", {}).items():
    lines.append(f"unavailable: {name}: {reason}")
  return "\n".join(lines)


def _cell(value) -> str:
  if value is None or (isinstance(value, float) and not math.isfinite(value)):
    return "n/a"
  return f"{value:.4g}"
