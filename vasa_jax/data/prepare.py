"""Real talking-face videos (VoxCeleb2, HDTF or any folder) into the talking-face dataset schema.

  vasa prepare --input DIR --output DIR --resolution 512 [--workers N]

Per video:
  1. decode at 25 fps (PyAV), audio at 16 kHz mono, aligned to the first video frame;
  2. first pass: on every frame, BlazeFace finds the faces; where there is exactly one, the face mesh
     (468 points) and the iris model give landmarks; frame-to-frame colour-histogram changes and jumps
     of the face mark scene cuts;
  3. the frames are cut into tracks: runs of frames with exactly one face and no cut; each track's
     crop box (the canonical crop of `faces.crop_box`) is smoothed in time, and tracks are filtered
     with recorded reasons (too short, face too small, blurry);
  4. second pass: each kept track becomes one clip: its frames cropped at the output resolution
     (JPEG), its audio, and per-frame labels from the landmarks (head pose by PnP against a mean face,
     gaze from the irises, distance from the face's scale, blink and mouth opening from the lids and
     lips; labels a real video cannot give are NaN).
The clips of a video are written to `OUTPUT/videos/<key>.npz` (no pickle) at once, and the video is
recorded as done; a killed run continues with the videos not yet done. At the end a tfds builder
(`talking_videos`, with OUTPUT as its manual folder) writes the ArrayRecord dataset into
`OUTPUT/tfds`, split by identity. `OUTPUT/summary.json` counts videos in, clips kept and what was
skipped, by reason.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import os
import pathlib
import re
import time
from collections.abc import Iterator, Sequence

import numpy as np

from vasa_jax import atomic
from vasa_jax.data import schema, video_io
from vasa_jax.errors import UserError

# Face-mesh presence score below which a detection is not taken for a face.
MIN_MESH_SCORE = 0.5
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")
AUDIO_SUFFIXES = (".m4a", ".aac", ".wav", ".flac", ".mp3", ".opus", ".ogg")


@dataclasses.dataclass(frozen=True)
class PrepareOptions:
  """Thresholds of the preparation; the defaults suit VoxCeleb2 and HDTF."""

  resolution: int = 512
  min_track_frames: int = 25  # One second.
  max_track_frames: int = 250  # Longer tracks are split into clips of at most 10 s.
  min_face_pixels: float = 32.0  # `faces.face_size` in source pixels (about 45 in VoxCeleb2's 224 px).
  min_sharpness: float = 15.0  # Median variance of the Laplacian over the face crop.
  scene_cut: float = 0.5  # Colour-histogram distance between frames that marks a cut.
  max_face_jump: float = 0.35  # Face centre moving more than this many face sizes in one frame.
  max_missed_frames: int = 2  # Detector misses this short inside a track are interpolated.
  smoothing_frames: float = 3.0  # Gaussian sigma of the crop-box smoothing, frames.
  detection_size: int = 640  # Frames are shrunk to at most this many pixels for the detector.
  jpeg_quality: int = 95
  validation_fraction: float = 0.05
  test_fraction: float = 0.05


# ----------------------------------------------------------------------------------------------------
# Finding videos and naming them.


@dataclasses.dataclass(frozen=True)
class VideoItem:
  path: pathlib.Path
  key: str  # Unique, file-system safe: the relative path with separators replaced.
  identity: str
  audio_path: pathlib.Path | None  # A separate audio file (VoxCeleb2's m4a release), if found.


def find_videos(input_dir: pathlib.Path, audio_dir: pathlib.Path | None = None) -> list[VideoItem]:
  """Every video under `input_dir`, with the identity its layout implies.

  VoxCeleb2 (`idXXXXX/<youtube id>/<clip>.mp4`): the identity is the `idXXXXX` folder. Otherwise the
  identity is the first folder below `input_dir`, or the file's name for files at the top (HDTF keeps
  one speaker per video). A separate audio file with the same relative path and an audio suffix, under
  `audio_dir` or beside the video, is used when the video has no audio track.
  """
  if not input_dir.is_dir():
    raise UserError(f"input folder not found: {input_dir}")
  items = []
  for path in sorted(p for p in input_dir.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES):
    relative = path.relative_to(input_dir)
    voxceleb = next((part for part in relative.parts[:-1] if re.fullmatch(r"id\d{5}", part)), None)
    identity = voxceleb or (relative.parts[0] if len(relative.parts) > 1 else path.stem)
    key = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(relative.with_suffix("")).replace(os.sep, "__"))
    audio_path = None
    for root in ([audio_dir] if audio_dir else []) + [input_dir]:
      for suffix in AUDIO_SUFFIXES:
        candidate = root / relative.with_suffix(suffix)
        if candidate.is_file():
          audio_path = candidate
          break
      if audio_path:
        break
    items.append(VideoItem(path, key, identity, audio_path))
  return items


def split_of(identity: str, options: PrepareOptions) -> str:
  """A stable split per identity, so that no person is in two splits."""
  bucket = int(hashlib.sha256(identity.encode()).hexdigest()[:8], 16) / 2**32
  if bucket < options.test_fraction:
    return "test"
  if bucket < options.test_fraction + options.validation_fraction:
    return "validation"
  return "train"


# ----------------------------------------------------------------------------------------------------
# One video.


@dataclasses.dataclass
class FrameObservation:
  faces: int
  landmarks: np.ndarray | None = None  # float32 [468, 3] in source pixels
  iris: np.ndarray | None = None  # float32 [2, 5, 2]
  sharpness: float = 0.0
  histogram: np.ndarray | None = None


def _histogram(frame: np.ndarray) -> np.ndarray:
  import cv2

  small = cv2.resize(frame, (64, 64), interpolation=cv2.INTER_AREA)
  hist = cv2.calcHist([small], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3).reshape(-1)
  return hist / max(hist.sum(), 1.0)


def _sharpness(frame: np.ndarray, box: np.ndarray) -> float:
  import cv2

  cx, cy, size = box
  half = size / 4  # The central face region, not the background of the loose crop.
  x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
  patch = frame[y0:int(cy + half), x0:int(cx + half)]
  if patch.size == 0:
    return 0.0
  grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY)
  grey = cv2.resize(grey, (128, 128), interpolation=cv2.INTER_AREA)
  return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def observe(frames: Iterator[np.ndarray], analyzer, options: PrepareOptions
            ) -> list[FrameObservation]:
  """First pass: faces, landmarks, sharpness and a colour histogram for every frame."""
  import cv2

  from vasa_jax.data import faces

  observations = []
  for frame in frames:
    scale = min(1.0, options.detection_size / max(frame.shape[:2]))
    small = frame if scale == 1.0 else cv2.resize(
        frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)),
        interpolation=cv2.INTER_AREA)
    detections = analyzer.detect(small)
    observation = FrameObservation(faces=len(detections), histogram=_histogram(small))
    if len(detections) == 1:
      found = analyzer.landmarks(frame, detections[0].box / scale,
                                 keypoints=detections[0].keypoints / scale)
      if found.score < MIN_MESH_SCORE:  # The detector's rare false faces fail the mesh's own test.
        observation.faces = 0
      else:
        observation.landmarks = found.points
        observation.iris = found.iris
        observation.sharpness = _sharpness(frame, faces.crop_box(found.points))
    observations.append(observation)
  return observations


def bridge_missed_frames(observations: list[FrameObservation], max_gap: int) -> int:
  """Fills short runs of frames without a detection between two frames with one face, in place.

  A detector misses a face now and then (motion blur, a hand); cutting the track there would throw
  the clip away. Landmarks and iris are interpolated linearly across the gap. Returns how many frames
  were filled.
  """
  filled, t = 0, 1
  while t < len(observations):
    if observations[t].faces == 0 and observations[t - 1].faces == 1:
      stop = t
      while stop < len(observations) and observations[stop].faces == 0:
        stop += 1
      if stop - t <= max_gap and stop < len(observations) and observations[stop].faces == 1:
        before, after = observations[t - 1], observations[stop]
        for k in range(t, stop):
          w = (k - t + 1) / (stop - t + 1)
          iris = None
          if before.iris is not None and after.iris is not None:
            iris = (1 - w) * before.iris + w * after.iris
          observations[k] = FrameObservation(
              faces=1, landmarks=(1 - w) * before.landmarks + w * after.landmarks, iris=iris,
              sharpness=(before.sharpness + after.sharpness) / 2,
              histogram=observations[k].histogram)
          filled += 1
      t = stop
    t += 1
  return filled


def find_tracks(observations: Sequence[FrameObservation], options: PrepareOptions
                ) -> tuple[list[tuple[int, int]], collections.Counter]:
  """Runs [start, stop) of frames with one face and no cut, and why the other frames were dropped.

  Returns (tracks, skipped) where `skipped` counts, per reason, the tracks (or frame runs) dropped.
  """
  from vasa_jax.data import faces

  skipped: collections.Counter = collections.Counter()
  runs, start = [], None
  reasons_in_gap: list[str] = []
  previous = None
  for t, obs in enumerate(observations + [FrameObservation(faces=-1)]):
    cut = False
    if obs.faces == 1 and previous is not None and previous.faces == 1:
      hist_distance = 0.5 * np.abs(obs.histogram - previous.histogram).sum()
      a, b = faces.crop_box(previous.landmarks), faces.crop_box(obs.landmarks)
      jump = np.hypot(*(a[:2] - b[:2])) / max(a[2], 1e-6)
      cut = hist_distance > options.scene_cut or jump > options.max_face_jump
    if obs.faces != 1 or cut:
      if start is not None:
        runs.append((start, t))
        start = None
      if obs.faces == 0:
        reasons_in_gap.append("no face")
      elif obs.faces > 1:
        reasons_in_gap.append("several faces")
    if obs.faces == 1 and start is None:
      start = t
    previous = obs
  tracks = []
  for run_start, run_stop in runs:
    if run_stop - run_start < options.min_track_frames:
      skipped["track too short"] += 1
      continue
    for piece in range(run_start, run_stop, options.max_track_frames):
      stop = min(piece + options.max_track_frames, run_stop)
      if stop - piece >= options.min_track_frames:
        tracks.append((piece, stop))
  if not tracks and not runs:
    # Name what filled the video: the majority reason of the frames without exactly one face.
    reason = collections.Counter(reasons_in_gap).most_common(1)
    skipped[reason[0][0] if reason else "no face"] += 1
  return tracks, skipped


def smooth_track(values: np.ndarray, sigma: float) -> np.ndarray:
  """Gaussian smoothing along axis 0 with edges held (no shrinking towards zero at the ends)."""
  if sigma <= 0 or len(values) < 3:
    return values
  radius = int(3 * sigma)
  taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
  taps /= taps.sum()
  padded = np.concatenate([np.repeat(values[:1], radius, 0), values,
                           np.repeat(values[-1:], radius, 0)])
  return np.stack([np.convolve(padded[:, k], taps, mode="valid") for k in range(values.shape[1])],
                  axis=1)


# Face-mesh indices (MediaPipe's 468-point topology) of the schema's landmarks.
_MESH_EYE_CORNERS = {"left_eye": (33, 133), "right_eye": (362, 263)}  # image-left, image-right eye
_MESH_POINTS = {"nose_tip": (1,), "mouth_center": (13, 14), "chin": (152,), "forehead": (10,)}
# `faces.face_size` as a share of the frame's longer side at which `scale` is 1: our choice, about
# the framing of VoxCeleb2's crops. Only ratios of it matter to the models.
REFERENCE_FACE_SHARE = 0.2


def named_landmarks(points: np.ndarray, iris: np.ndarray | None) -> dict[str, np.ndarray]:
  """The schema's 6 landmarks (pixels) from the mesh: eyes at the iris centres when known."""
  named = {}
  for k, (name, corners) in enumerate(_MESH_EYE_CORNERS.items()):
    named[name] = iris[k, 0] if iris is not None else points[list(corners), :2].mean(axis=0)
  for name, indices in _MESH_POINTS.items():
    named[name] = points[list(indices), :2].mean(axis=0)
  return named


def landmarks_in_box(points: np.ndarray, iris: np.ndarray | None, box: np.ndarray
                     ) -> np.ndarray:
  """The schema's 6 landmarks (`named_landmarks`) in the square crop `box` (cx, cy, size pixels):
  float32 [len(LANDMARK_NAMES), 2], (x, y) / size from the crop's top-left corner."""
  cx, cy, size = (float(v) for v in np.asarray(box).reshape(3))
  named = named_landmarks(points, iris)
  corner = np.array([cx - size / 2, cy - size / 2])
  return ((np.stack([named[name] for name in schema.LANDMARK_NAMES]) - corner) / size
          ).astype(np.float32)


def track_labels(observations: Sequence[FrameObservation], boxes: np.ndarray,
                 frame_size: tuple[int, int]) -> dict:
  """Per-frame labels of one track (schema.LABEL_NAMES) and the 6 landmarks in crop coordinates.

  Args:
    observations: the track's frames, each with landmarks.
    boxes: float [T, 3] smoothed crop boxes (cx, cy, size), source pixels.
    frame_size: (width, height) of the source video.
  """
  from vasa_jax.data import faces

  width, height = frame_size
  count = len(observations)
  labels = {name: np.full(count, np.nan, np.float32) for name in schema.LABEL_NAMES}
  landmarks = np.zeros((count, len(schema.LANDMARK_NAMES), 2), np.float32)
  openness = np.zeros(count, np.float32)
  for t, (obs, box) in enumerate(zip(observations, boxes)):
    points = obs.landmarks
    pose = faces.head_pose(points, (width, height))
    gaze = faces.gaze(faces.FaceLandmarks(points=points, score=1.0, iris=obs.iris), pose)
    cx, cy, size = box
    face_box = faces.crop_box(points)
    labels["yaw"][t], labels["pitch"][t], labels["roll"][t] = pose
    labels["tx"][t] = (face_box[0] - cx) / size
    labels["ty"][t] = (face_box[1] - cy) / size
    labels["scale"][t] = faces.face_size(points) / max(width, height) / REFERENCE_FACE_SHARE
    labels["gaze_theta"][t], labels["gaze_phi"][t] = gaze
    labels["jaw_open"][t] = faces.mouth_opening(points)
    openness[t] = faces.eye_openness(points)
    landmarks[t] = landmarks_in_box(points, obs.iris, box)
  labels["distance"] = 1.0 / labels["scale"]
  # Blink: the lid gap against this person's open-eye gap in the clip.
  open_level = np.percentile(openness, 90) if count else 1.0
  labels["blink"] = np.clip(1.0 - openness / max(open_level, 1e-6), 0.0, 1.0).astype(np.float32)
  return {"labels": labels, "landmarks": landmarks}


def prepare_video(item: VideoItem, analyzer, options: PrepareOptions) -> tuple[list[dict],
                                                                              collections.Counter]:
  """All clips of one video in the dataset schema, and what was skipped, by reason."""
  import cv2

  info = video_io.probe(item.path)
  if info.duration <= 0:
    raise video_io.MediaError(item.path, "zero-length video")
  start_time = video_io.video_start_time(item.path)
  if info.has_audio:
    audio = video_io.read_audio(item.path, schema.SAMPLE_RATE, start_time=start_time)
  elif item.audio_path is not None:
    audio = video_io.read_audio(item.audio_path, schema.SAMPLE_RATE, start_time=0.0)
  else:
    raise video_io.MediaError(item.path, "no audio track")
  observations = observe(video_io.iter_frames(item.path, schema.FPS), analyzer, options)
  if not observations:
    raise video_io.MediaError(item.path, "zero-length video")
  bridge_missed_frames(observations, options.max_missed_frames)
  tracks, skipped = find_tracks(observations, options)
  from vasa_jax.data import faces

  kept = []
  for start, stop in tracks:
    track = observations[start:stop]
    boxes = smooth_track(np.stack([faces.crop_box(o.landmarks) for o in track]),
                    options.smoothing_frames)
    face_pixels = np.median([faces.face_size(o.landmarks) for o in track])
    if face_pixels < options.min_face_pixels:
      skipped["face too small"] += 1
      continue
    if np.median([o.sharpness for o in track]) < options.min_sharpness:
      skipped["blurry"] += 1
      continue
    kept.append((start, stop, boxes))
  clips = []
  if kept:
    wanted = {t: (k, t - start) for k, (start, stop, _) in enumerate(kept)
              for t in range(start, stop)}
    encoded: list[list[bytes]] = [[] for _ in kept]
    quality = [int(cv2.IMWRITE_JPEG_QUALITY), options.jpeg_quality]
    for t, frame in enumerate(video_io.iter_frames(item.path, schema.FPS)):
      if t in wanted:
        k, offset = wanted[t]
        crop = faces.crop(frame, kept[k][2][offset], options.resolution)
        encoded[k].append(cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                                       quality)[1].tobytes())
    for k, (start, stop, boxes) in enumerate(kept):
      frames = encoded[k]
      if len(frames) != stop - start:  # The second decode ended early: a damaged file.
        skipped["unreadable"] += 1
        continue
      derived = track_labels(observations[start:stop], boxes, (info.width, info.height))
      samples = audio[start * schema.SAMPLES_PER_FRAME:stop * schema.SAMPLES_PER_FRAME]
      samples = np.pad(samples, (0, (stop - start) * schema.SAMPLES_PER_FRAME - len(samples)))
      labels = derived["labels"]
      clips.append({
          "frames": frames,
          "audio": (np.clip(samples, -1, 1) * 32767).round().astype(np.int16),
          "labels": labels,
          "viseme": np.full(stop - start, -1, np.int32),
          "landmarks": derived["landmarks"],
          "meta": {
              "clip_id": f"{item.key}#{start:06d}",
              "identity": item.identity,
              "source": "video",
              "text": "",
              "fps": schema.FPS,
              "sample_rate": schema.SAMPLE_RATE,
              "resolution": options.resolution,
              "num_frames": stop - start,
              "emotion": -1,
              "gaze": np.array([np.nanmedian(labels["gaze_theta"]),
                                np.nanmedian(labels["gaze_phi"])], np.float32),
              "distance": np.float32(np.nanmean(labels["distance"])),
              "details": json.dumps({"video": str(item.path), "start_frame": start,
                                     "stop_frame": stop,
                                     "audio": str(item.audio_path or item.path)}),
          },
      })
  return clips, skipped


# ----------------------------------------------------------------------------------------------------
# Storage of prepared videos: one npz per video, without pickle.


def save_clips(path: pathlib.Path, clips: list[dict]) -> None:
  arrays = {"num_clips": np.array(len(clips))}
  for k, clip in enumerate(clips):
    lengths = np.array([len(f) for f in clip["frames"]], np.int64)
    arrays[f"{k}/frames"] = np.frombuffer(b"".join(clip["frames"]), np.uint8)
    arrays[f"{k}/frame_lengths"] = lengths
    arrays[f"{k}/audio"] = clip["audio"]
    arrays[f"{k}/labels"] = schema.stack_labels(clip["labels"])
    arrays[f"{k}/viseme"] = clip["viseme"]
    arrays[f"{k}/landmarks"] = clip["landmarks"]
    meta = dict(clip["meta"])
    meta["gaze"] = [float(x) for x in meta["gaze"]]
    meta["distance"] = float(meta["distance"])
    arrays[f"{k}/meta"] = np.array(json.dumps(meta))
  with atomic.writing(path) as f:
    np.savez(f, **arrays)


def load_clips(path: pathlib.Path) -> Iterator[dict]:
  with np.load(path, allow_pickle=False) as data:
    for k in range(int(data["num_clips"])):
      blob = data[f"{k}/frames"].tobytes()
      ends = np.cumsum(data[f"{k}/frame_lengths"])
      starts = np.concatenate([[0], ends[:-1]])
      labels = data[f"{k}/labels"]
      meta = json.loads(str(data[f"{k}/meta"]))
      meta["gaze"] = np.asarray(meta["gaze"], np.float32)
      meta["distance"] = np.float32(meta["distance"])
      yield {"frames": [blob[a:b] for a, b in zip(starts, ends)],
             "audio": data[f"{k}/audio"],
             "labels": {name: labels[:, i] for i, name in enumerate(schema.LABEL_NAMES)},
             "viseme": data[f"{k}/viseme"], "landmarks": data[f"{k}/landmarks"], "meta": meta}


# ----------------------------------------------------------------------------------------------------
# The run.

_ANALYZER = None


def _worker(args) -> dict:
  item, options, output = args
  global _ANALYZER
  from vasa_jax.data import faces

  if _ANALYZER is None:
    _ANALYZER = faces.FaceAnalyzer()
  record = {"video": str(item.path), "key": item.key, "identity": item.identity, "clips": 0,
            "skipped": {}, "error": None}
  try:
    clips, skipped = prepare_video(item, _ANALYZER, options)
    record["skipped"] = dict(skipped)
  except video_io.MediaError as e:
    clips = []
    record["error"] = e.reason
    record["detail"] = str(e)
  except Exception as e:  # One damaged or odd file must not stop a run over thousands.
    logging.exception("Preparing %s failed; it is skipped.", item.path)
    clips = []
    record["error"] = "processing error"
    record["detail"] = f"{item.path}: {type(e).__name__}: {e}"
  if clips:
    save_clips(output / "videos" / f"{item.key}.npz", clips)
  record["clips"] = len(clips)
  record["frames"] = int(sum(c["meta"]["num_frames"] for c in clips))
  done = output / "done" / f"{item.key}.json"
  atomic.write_json(done, record, indent=None)
  return record


def run(input_dir: str, output_dir: str, options: PrepareOptions, workers: int = 1,
        audio_dir: str | None = None) -> dict:
  """Prepares every video under `input_dir` into `output_dir`; returns the summary."""
  from tqdm import tqdm

  output = pathlib.Path(output_dir)
  items = find_videos(pathlib.Path(input_dir), pathlib.Path(audio_dir) if audio_dir else None)
  if not items:
    raise UserError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) under {input_dir}")
  for folder in ("videos", "done"):
    (output / folder).mkdir(parents=True, exist_ok=True)
  _check_options_match(output, options)
  todo = [item for item in items if not (output / "done" / f"{item.key}.json").exists()]
  if len(todo) < len(items):
    logging.info("%d of %d videos were prepared by an earlier run; preparing the other %d.",
                 len(items) - len(todo), len(items), len(todo))
  start = time.perf_counter()
  jobs = [(item, options, output) for item in todo]
  progress = tqdm(total=len(jobs), desc="prepare", unit="video")
  frames = 0
  if workers <= 1:
    results = map(_worker, jobs)
    pool = None
  else:
    import multiprocessing

    pool = multiprocessing.get_context("spawn").Pool(workers)
    results = pool.imap_unordered(_worker, jobs)
  try:
    for record in results:
      frames += record["frames"]
      progress.update(1)
  finally:
    progress.close()
    if pool is not None:
      pool.terminate()
  elapsed = time.perf_counter() - start
  summary = summarize(output, items)
  summary["this_run"] = {"videos": len(todo), "seconds": round(elapsed, 2),
                         "clip_frames_per_second": round(frames / elapsed, 2) if elapsed else None}
  atomic.write_json(output / "summary.json", summary)
  return summary


def _check_options_match(output: pathlib.Path, options: PrepareOptions) -> None:
  """A run continues only with the options that started it (clips must be alike)."""
  path = output / "options.json"
  current = dataclasses.asdict(options)
  if path.exists():
    earlier = json.loads(path.read_text())
    if earlier != current:
      changed = sorted(k for k in current if earlier.get(k) != current[k])
      raise UserError(f"{output} was prepared with other options ({', '.join(changed)}); use a new "
                      f"--output or the same options")
  else:
    path.write_text(json.dumps(current, indent=2))


def summarize(output: pathlib.Path, items: Sequence[VideoItem]) -> dict:
  skipped_clips: collections.Counter = collections.Counter()
  skipped_videos: collections.Counter = collections.Counter()
  clips = 0
  for item in items:
    done = output / "done" / f"{item.key}.json"
    if not done.exists():
      continue
    record = json.loads(done.read_text())
    clips += record["clips"]
    skipped_clips.update(record["skipped"])
    if record["error"]:
      skipped_videos[record["error"]] += 1
    elif record["clips"] == 0:
      skipped_videos["no usable track"] += 1
  return {"videos_in": len(items), "clips_kept": clips,
          "videos_skipped": dict(skipped_videos), "tracks_skipped": dict(skipped_clips)}
