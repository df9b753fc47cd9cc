"""CAPP score: how well a head-pose sequence fits the speech, by a trained contrastive model.

VASA-1 measures audio-pose alignment with CAPP (`vasa_jax.models.capp`, trained by
`vasa_jax.trainers.capp`): the score of a clip is the cosine of the audio and pose embeddings of
its windows, averaged. Windows are the model's length (3 s in the paper) and do not overlap; when
the clip is not a whole number of windows, one more window ends at the clip's last frame (so every
frame is scored and no window is padded). A clip shorter than one window is scored on a single
window padded at the end, the padding masked out of the model as in training, where short clips
are padded the same way. Frames without a pose (NaN rows: no face read) are masked too; a window
counts only if at least half of its frames inside the clip have a pose, and a clip with no such
window scores NaN (left out of averages).

  scorer = CappScorer("runs/capp")                  # latest checkpoint; CappScorer(dir, step=N)
  scorer.score(audio_16k, pose)                     # float32 [samples], [T, 3] radians -> float

The video metric (`videos.VIDEO_METRICS["capp"]`) re-extracts each video's head pose from its frames
with a pose reader (`vasa_jax.evaluators.pose`: "landmarks" for real faces, "probe:DIR" for
SynthTalk, "labels" for clips with known pose) and scores it against the video's audio:

  config.evals.capp = dict(type="capp", workdir="runs/capp", step=-1, pose="landmarks")

A CAPP run scores itself after its last step (`Evaluator`, `type="capp_retrieval"`): retrieval
accuracy among all windows of the held-out split (audio to pose and pose to audio, with chance
level), the mean cosine of paired and unpaired windows, and the two sanity curves below:

  config.evals.heldout = dict(type="capp_retrieval", split="validation", shifts=4,
                              scales=[0.2, 0.5, 1.0, 1.5, 3.0], every=0)

The sanity checks of the paper (Tables 3 and 4 of its appendix) come with the scorer:
`shift_curve` delays the pose by 1, 2, ... frames against the audio, and `scale_curve` scales
the pose's deviation from its first frame (which is the same as scaling every frame-to-frame
difference and summing them again from the first frame). A good model peaks at shift 0 and scale 1.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from vasa_jax.errors import UserError
from vasa_jax.evaluators import EvalResult, host_params, numeric_leaves
from vasa_jax.evaluators import videos as videos_lib

SCALES = (0.2, 0.5, 1.0, 1.5, 3.0)
MIN_VALID_SHARE = 0.5  # Of a window's frames inside the clip that must have a pose.
BATCH = 32  # Windows per model call (one compiled shape).

Clip = tuple[np.ndarray, np.ndarray]  # (normalised audio features [T, A], pose [T, 3] radians).


def window_starts(num_frames: int, window: int) -> list[int]:
  """First frames of a clip's scoring windows: every `window` frames, plus one ending at the last
  frame when they do not reach it; [0] for a clip of at most one window."""
  if num_frames <= window:
    return [0]
  starts = list(range(0, num_frames - window + 1, window))
  if starts[-1] != num_frames - window:
    starts.append(num_frames - window)
  return starts


def shifted(clip: Clip, frames: int, max_shift: int | None = None) -> Clip:
  """The pose delayed by `frames` against the audio: pose frame t meets audio frame t + frames.

  The clip loses its first `max_shift` (default: `frames`) audio frames and the pose's last
  `frames`, so that clips shifted by 0..max_shift share the same audio frames and only the pose
  moves against them.
  """
  features, pose = clip
  max_shift = frames if max_shift is None else max_shift
  if not 0 <= frames <= max_shift:
    raise ValueError(f"shift {frames} is outside 0..{max_shift}")
  num_frames = min(len(features), len(pose)) - max_shift
  start = max_shift - frames
  return features[max_shift:max_shift + num_frames], pose[start:start + num_frames]


def scaled(clip: Clip, scale: float) -> Clip:
  """The pose's deviation from its first frame with a pose, times `scale`."""
  features, pose = clip
  seen = np.flatnonzero(np.isfinite(pose).all(axis=-1))
  if not len(seen):
    return clip
  reference = pose[seen[0]]
  return features, (reference + scale * (pose - reference)).astype(np.float32)


class CappScorer:
  """A trained CAPP model that scores audio against head pose (see the module docstring).

  Attributes: `window` (frames per window), `step`, `workdir`, `weights` (network -> the run or
  file behind it).
  """

  def __init__(self, workdir: str | pathlib.Path, step: int | None = None):
    from vasa_jax import runs

    loaded = runs.load_run(workdir, step, task="capp").predictor()
    self._setup(loaded.task, loaded.params, loaded.stats, loaded.step, loaded.workdir)

  @classmethod
  def from_task(cls, task, params, stats: dict, step: int = 0,
                workdir: pathlib.Path | None = None) -> "CappScorer":
    """A scorer of parameters in hand (the trainer's held-out report)."""
    scorer = cls.__new__(cls)
    scorer._setup(task, params, stats, step, workdir)
    return scorer

  def _setup(self, task, params, stats, step, workdir):
    self.task, self.params, self.step, self.workdir = task, params, int(step), workdir
    self.window = int(task.window)
    self.audio_mean = np.asarray(stats["audio_mean"], np.float32)
    self.audio_std = np.asarray(stats["audio_std"], np.float32)
    self._embed = jax.jit(task.embed)
    self._encoder = None
    self._encode = None
    audio = task.config.audio
    self.weights = {"CAPP": f"{workdir} step {self.step}"}
    if audio.get("wav2vec2_path", ""):
      self.weights["CAPP audio encoder"] = f"Wav2Vec2 {audio.wav2vec2_path}"

  # Audio.

  def audio_features(self, audio_16k: np.ndarray, num_frames: int) -> np.ndarray:
    """Normalised audio features `[num_frames, A]` of 16 kHz audio aligned with the first frame
    (zero-padded or cut to `num_frames` frames), computed as the training cache computes them."""
    from vasa_jax.data import audio_features
    from vasa_jax.models.audio import features

    if self._encoder is None:
      self._encoder = audio_features.make_audio_encoder(self.task.config.audio)
      self._encode = jax.jit(self._encoder.apply)
    audio = np.asarray(audio_16k, np.float32).reshape(-1)
    # Whole seconds of audio per call, as the cache encodes it: few shapes, and the same features.
    bucket = -(-max(int(num_frames), 1) // audio_features.BUCKET_FRAMES) * \
        audio_features.BUCKET_FRAMES
    padded = features.pad_to_frames(features.pad_to_frames(audio, num_frames), bucket)
    encoded = np.asarray(self._encode(self._encoder.params, padded[None]))[0, :num_frames]
    return ((encoded - self.audio_mean) / self.audio_std).astype(np.float32)

  # Windows and embeddings.

  def _windows(self, clip: Clip) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(audio [N, W, A], pose [N, W, 3], valid [N, W], counted [N]) of a clip's scoring windows."""
    features, pose = clip
    num_frames = min(len(features), len(pose))
    if num_frames < 1:
      W = self.window
      return (np.zeros((0, W, features.shape[-1]), np.float32), np.zeros((0, W, 3), np.float32),
              np.zeros((0, W), bool), np.zeros(0, bool))
    features, pose = features[:num_frames], np.asarray(pose[:num_frames], np.float32)
    seen = np.isfinite(pose).all(axis=-1)
    pose = np.where(seen[:, None], pose, 0.0)
    W = self.window
    audio_w, pose_w, valid_w, counted = [], [], [], []
    for start in window_starts(num_frames, W):
      stop = min(start + W, num_frames)
      a = np.zeros((W, features.shape[-1]), np.float32)
      p = np.zeros((W, 3), np.float32)
      v = np.zeros(W, bool)
      a[:stop - start], p[:stop - start], v[:stop - start] = (features[start:stop],
                                                               pose[start:stop], seen[start:stop])
      audio_w.append(a)
      pose_w.append(p)
      valid_w.append(v)
      counted.append(v.sum() >= max(2, MIN_VALID_SHARE * (stop - start)))
    return (np.stack(audio_w), np.stack(pose_w), np.stack(valid_w), np.asarray(counted))

  def embed_windows(self, audio: np.ndarray, pose: np.ndarray, valid: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Unit (audio, pose) embeddings `[N, D]` of windows `[N, W, ...]`."""
    audio_out, pose_out = [], []
    for start in range(0, len(audio), BATCH):
      n = min(BATCH, len(audio) - start)

      def batch(x):
        out = np.zeros((BATCH,) + x.shape[1:], x.dtype)
        out[:n] = x[start:start + n]
        return out

      a, p, _ = self._embed(self.params, batch(audio), batch(pose), batch(valid))
      audio_out.append(np.asarray(a)[:n])
      pose_out.append(np.asarray(p)[:n])
    if not audio_out:
      dim = self.task.model_config.embed_dim
      return np.zeros((0, dim), np.float32), np.zeros((0, dim), np.float32)
    return np.concatenate(audio_out), np.concatenate(pose_out)

  # Scores.

  def clip_scores(self, clips: Sequence[Clip]) -> np.ndarray:
    """The score of each clip (the mean over its counted windows; NaN when none counts), with
    the windows of all clips embedded together."""
    parts = [self._windows(clip) for clip in clips]
    if not parts:
      return np.zeros(0)
    audio, pose, valid, counted = (np.concatenate([p[i] for p in parts]) for i in range(4))
    audio_emb, pose_emb = self.embed_windows(audio, pose, valid)
    cosine = np.where(counted, np.sum(audio_emb * pose_emb, axis=-1), np.nan)
    scores = []
    for values in np.split(cosine, np.cumsum([len(p[0]) for p in parts])[:-1]):
      values = values[np.isfinite(values)]
      scores.append(float(values.mean()) if len(values) else float("nan"))
    return np.asarray(scores)

  def score_features(self, features: np.ndarray, pose: np.ndarray) -> float:
    """The score of normalised audio features `[T, A]` and pose `[T, 3]` (radians)."""
    return float(self.clip_scores([(features, pose)])[0])

  def score(self, audio_16k: np.ndarray, pose: np.ndarray) -> float:
    """The CAPP score of a clip: 16 kHz mono audio aligned with the first frame, and yaw, pitch,
    roll per 25 fps frame `[T, 3]` in radians (NaN rows: no pose). NaN when no window has enough
    frames with a pose."""
    pose = np.asarray(pose, np.float32)
    if pose.ndim != 2 or pose.shape[1] != 3:
      raise ValueError(f"CAPP pose must be [frames, 3] (yaw, pitch, roll); got {pose.shape}")
    if not len(pose):
      return float("nan")
    return self.score_features(self.audio_features(audio_16k, len(pose)), pose)

  def mean_score(self, clips: Sequence[Clip]) -> float:
    """The mean over clips of their scores (as the paper averages over videos)."""
    return videos_lib.mean_or_nan(self.clip_scores(clips))

  def shift_curve(self, clips: Sequence[Clip], max_shift: int = 4) -> dict[str, float]:
    """{"0": score, "1": score with the pose delayed by 1 frame, ...} up to `max_shift`, all on
    the same audio frames (`shifted`)."""
    return {str(k): self.mean_score([shifted(c, k, max_shift) for c in clips])
            for k in range(int(max_shift) + 1)}

  def scale_curve(self, clips: Sequence[Clip], scales: Sequence[float] = SCALES
                  ) -> dict[str, float]:
    """{str(scale): score with every pose's deviation from its first frame times scale}."""
    return {f"{float(s):g}": self.mean_score([scaled(c, float(s)) for c in clips])
            for s in scales}

  def retrieval(self, clips: Sequence[Clip]) -> dict[str, Any]:
    """Retrieval among all scoring windows of `clips` (those that count): the share of audio
    windows whose best-scoring pose window is their own and the reverse, chance (1 / windows),
    and the mean cosine of paired ("paired_score") and unpaired windows."""
    parts = [self._windows(clip) for clip in clips]
    audio, pose, valid, counted = (np.concatenate([p[i] for p in parts]) for i in range(4))
    audio, pose, valid = audio[counted], pose[counted], valid[counted]
    audio_emb, pose_emb = self.embed_windows(audio, pose, valid)
    n = len(audio_emb)
    if n < 2:
      raise UserError(f"retrieval needs at least 2 windows; these clips give {n}")
    cosine = audio_emb @ pose_emb.T
    own = np.arange(n)
    return {"windows": n, "chance": 1.0 / n,
            "retrieval_audio_to_pose": float(np.mean(np.argmax(cosine, axis=1) == own)),
            "retrieval_pose_to_audio": float(np.mean(np.argmax(cosine, axis=0) == own)),
            "paired_score": float(np.mean(np.diagonal(cosine))),
            "unpaired_score": float((cosine.sum() - np.trace(cosine)) / (n * (n - 1)))}


# ----------------------------------------------------------------------------------------------------
# The video metric.

TRAIN_COMMAND = ("vasa train --config experiments/evals/capp.py --workdir runs/capp "
                 "--config.data.data_dir=DATA (real video: --config.data.dataset=talking_videos)")


class Metric:
  """CAPP of videos (`videos.Metric`): {"CAPP": mean over videos of their scores}.

  Settings: `workdir` (a trained CAPP run), `step` (-1: its latest checkpoint), `pose` (the pose
  reader: "landmarks", "probe:DIR" or "labels"), `fallback` (the reader for videos without labels
  when `pose` is "labels").
  """

  def __init__(self, workdir: str = "", step: int = -1, pose: str = "landmarks",
               fallback: str = "landmarks"):
    from vasa_jax.evaluators import readers

    if not workdir:
      raise videos_lib.Unavailable(f"CAPP needs a trained CAPP run: set its `workdir` setting "
                               f"(config.evals.<name>.workdir); train one with: {TRAIN_COMMAND}")
    _check_audio_weights(pathlib.Path(workdir))
    self.scorer = CappScorer(workdir, None if int(step) < 0 else int(step))
    self.spec, self.fallback = pose, fallback
    if pose != "labels":
      readers.make_reader(pose)  # Fails now, not after generation, if the spec is wrong.
    self.weights = dict(self.scorer.weights)
    self.weights["pose reader"] = readers.describe(pose if pose != "labels" else fallback)

  def score(self, videos: Sequence[videos_lib.Video],
            real: Sequence[videos_lib.Video] | None = None) -> dict[str, float]:
    from vasa_jax.evaluators import pose as pose_lib
    from vasa_jax.evaluators import readers

    del real
    values = []
    for video in videos:
      if abs(video.fps - videos_lib.FPS) > 1e-3:
        raise UserError(f"video {video.name} is at {video.fps} fps; CAPP reads 25 fps video "
                        "(resample it to 25 fps)")
      angles = pose_lib.of_video(video, self.spec, self.fallback)
      readers.log_unread(video.name, angles)
      values.append(self.scorer.score(video.audio, angles))
    return {"CAPP": videos_lib.mean_or_nan(values)}


def _check_audio_weights(workdir: pathlib.Path) -> None:
  """Unavailable when the run's Wav2Vec2 audio encoder is not on this machine."""
  config_path = workdir / "config.json"
  if not config_path.is_file():
    return  # Loading says what is wrong.
  path = json.loads(config_path.read_text()).get("audio", {}).get("wav2vec2_path", "")
  if path and not (pathlib.Path(path) / "config.json").is_file():
    raise videos_lib.Unavailable(
        f"the CAPP run {workdir} encodes audio with the Wav2Vec2 in {path}, which is not on this "
        "machine; convert or copy it there (see vasa_jax/convert/wav2vec2.py)")


def cached_clips(folder: str | pathlib.Path, stats: dict) -> list[Clip]:
  """(normalised audio features `[T, A]`, pose `[T, 3]` radians, NaN where unknown) of every clip of
  a labels cache (`vasa_jax.data.motion_latents`)."""
  from vasa_jax.data import motion_latents, schema

  columns = [schema.LABEL_NAMES.index(name) for name in ("yaw", "pitch", "roll")]
  source = motion_latents.MotionLatentSource(folder)
  clips = []
  for index in range(len(source)):
    clip = source[index]
    audio = (clip["audio"] - stats["audio_mean"]) / stats["audio_std"]
    clips.append((audio.astype(np.float32), clip["labels"][:, columns].astype(np.float32)))
  return clips


class Evaluator:
  """A CAPP run (`trainers.capp`) scored on the held-out split's windows: retrieval, paired and
  unpaired cosines, the pose delayed by 0..`shifts` frames and its motion scaled by `scales`."""

  def __init__(self, task: Any, split: str = "validation", shifts: int = 4,
               scales: Sequence[float] = SCALES):
    self.task, self.split, self.shifts = task, split, int(shifts)
    self.scales = tuple(float(s) for s in scales)
    task.cache(split)  # A missing held-out split fails before training, not after it.

  def run(self, params: Any) -> EvalResult:
    scorer = CappScorer.from_task(self.task, host_params(params), self.task.stats)
    clips = cached_clips(self.task.cache(self.split), self.task.stats)
    report = {"split": self.split, "clips": len(clips), **scorer.retrieval(clips),
              "shift": scorer.shift_curve(clips, self.shifts),
              "scale": scorer.scale_curve(clips, self.scales)}
    return EvalResult(scalars=numeric_leaves(report), report=report)
