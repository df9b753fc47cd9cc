"""Stage 2 on held-out clips: lip sync, head-motion intensity and the gaze and distance controls.

Works on any cache with per-frame labels: SynthTalk's exact ones, or those `vasa prepare` measures
on real video from face landmarks (frames without a label are left out). For each held-out clip
(SynthTalk: held-out identities and sentences), motion is generated from the clip's audio
with the clip's own main gaze and head distance as the requested controls, and read back as
SynthTalk labels (jaw opening, gaze, distance, head angles). Reading: a "labels" cache's motion is
the labels themselves; stage-1 latents are read by a ridge regression from [z_pose, z_dyn] to the
labels fitted on the training cache (`LabelReader`). Each score comes with the same reading applied
to the clip's real motion ("_real": what the reading allows) and, when `baseline` is on, to motion
generated with every control and the audio absent ("_unconditional": what the model does without
being asked). Scalars:
  mouth_corr          Pearson correlation of generated and true jaw opening per clip, averaged;
  mouth_amplitude     std of the generated jaw opening over the true one's (1: as wide);
  mouth_error         mean |generated - true jaw opening| (SynthTalk's jaw units, 0 to 1);
  dP                  mean |angle change| between adjacent frames over yaw, pitch and roll, degrees
                      (VASA-1's motion intensity), next to dP_real of the clips' real motion;
  gaze_error          angle between the clip's mean generated gaze and the requested one, degrees (E_g);
  distance_error      |mean generated head distance - requested| (E_d, in SynthTalk's distance units);
  boundary_velocity_ratio  mean frame-to-frame motion change across window boundaries divided by
                      the mean inside windows (1 = seamless).
"""

from __future__ import annotations

import weakref

import jax
import numpy as np

from vasa_jax.data import schema
from vasa_jax.errors import UserError
from vasa_jax.evaluators import EvalResult

LABEL = {name: i for i, name in enumerate(schema.LABEL_NAMES)}
ANGLES = ("yaw", "pitch", "roll")


class LabelReader:
  """Motion `[frames, M]` -> labels `[frames, len(LABEL_NAMES)]`."""

  def __init__(self, task, max_frames: int = 60000, ridge: float = 1.0, seed: int = 0):
    self.identity = task.motion_kind == "labels"
    if self.identity:
      return
    from vasa_jax.data import motion_latents

    source = motion_latents.MotionLatentSource(task.train_folder)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(source))
    motion, labels, count = [], [], 0
    for index in order:
      clip = source[int(index)]
      motion.append(clip["motion"])
      labels.append(clip["labels"])
      count += len(clip["motion"])
      if count >= max_frames:
        break
    x, y = np.concatenate(motion), np.concatenate(labels)
    self.mean, self.std = x.mean(0), x.std(0) + 1e-6
    features = np.concatenate([(x - self.mean) / self.std, np.ones((len(x), 1))], axis=1)
    finite = np.isfinite(y)
    self.weights = np.zeros((features.shape[1], y.shape[1]))
    eye = ridge * np.eye(features.shape[1])
    eye[-1, -1] = 0.0  # The bias is not shrunk.
    for j in range(y.shape[1]):
      rows = finite[:, j]
      if rows.sum() > features.shape[1]:
        f = features[rows]
        self.weights[:, j] = np.linalg.solve(f.T @ f + eye, f.T @ y[rows, j])

  def __call__(self, motion: np.ndarray) -> np.ndarray:
    if self.identity:
      return np.asarray(motion, np.float64)
    features = np.concatenate([(motion - self.mean) / self.std, np.ones((len(motion), 1))], axis=1)
    return features @ self.weights


_READERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def label_reader(task, seed: int = 0) -> LabelReader:
  """One reader per task and seed: the sweep's evaluators share its fit on the training cache."""
  readers = _READERS.setdefault(task, {})
  if seed not in readers:
    readers[seed] = LabelReader(task, seed=seed)
  return readers[seed]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
  a, b = a - a.mean(), b - b.mean()
  denominator = np.sqrt((a * a).sum() * (b * b).sum())
  return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def motion_intensity(angles: np.ndarray) -> float:
  """dP of one clip: mean |difference of adjacent frames| of `[frames, 3]` radians, in degrees."""
  return float(np.degrees(np.abs(np.diff(angles, axis=0)).mean())) if len(angles) > 1 else 0.0


def boundary_velocity_ratio(motion: np.ndarray, window: int) -> float:
  """Mean |x[f] - x[f-1]| over frames f that start a window, over that of all other frames."""
  speed = np.linalg.norm(np.diff(motion, axis=0), axis=-1)  # speed[f - 1] is frame f's change.
  frames = np.arange(1, len(motion))
  at_boundary = frames % window == 0
  if not at_boundary.any() or at_boundary.all():
    return float("nan")
  return float(speed[at_boundary].mean() / max(speed[~at_boundary].mean(), 1e-12))


class Evaluator:
  def __init__(self, task, split: str = "validation", num_clips: int = 32, seed: int = 0,
               baseline: bool = True, num_steps: int = 0, method: str = "",
               guidance: dict | None = None):
    """`num_steps`, `method` and `guidance` ({condition: scale}, merged over
    config.sampling.guidance) override the config's sampling settings; 0 / "" / None keep them."""
    from vasa_jax.data import motion_latents

    self.task = task
    source = motion_latents.MotionLatentSource(task.cache(split))
    count = min(num_clips, len(source))
    order = np.random.default_rng(seed).permutation(len(source))[:count]
    self.clips = [source[int(i)] for i in sorted(order)]
    self.reader = label_reader(task, seed)
    self.seed, self.baseline = seed, baseline
    self.overrides = {}
    if num_steps:
      self.overrides["num_steps"] = int(num_steps)
    if method:
      self.overrides["method"] = method
      self.overrides["eta"] = None if method == "ddpm" else float(task.config.sampling.eta)
    if guidance:
      scales = {k: float(v) for k, v in task.config.sampling.guidance.items()}
      unknown = set(guidance) - set(scales)
      if unknown:
        raise UserError(f"guidance for unknown conditions {sorted(unknown)}; known: "
                        f"{sorted(scales)}")
      self.overrides["scales"] = {**scales, **{k: float(v) for k, v in guidance.items()}}

  def _generate(self, generator, unconditional: bool) -> list[np.ndarray]:
    lengths = np.array([len(c["motion"]) for c in self.clips])
    audio = np.zeros((len(self.clips), lengths.max(), self.clips[0]["audio"].shape[-1]), np.float32)
    for row, clip in enumerate(self.clips):
      audio[row, :lengths[row]] = clip["audio"]
    controls = {} if unconditional else dict(
        gaze=np.stack([c["gaze"] for c in self.clips]),
        distance=np.array([c["distance"] for c in self.clips]),
        emotion=np.array([c["emotion"] for c in self.clips]))
    motion = generator.generate(audio, lengths, jax.random.key(self.seed),
                                without_audio=unconditional, **controls)
    return [motion[row, :lengths[row]] for row in range(len(self.clips))]

  def _scores(self, motions: list[np.ndarray]) -> dict[str, float]:
    corr, amplitude, jaw_error, intensity, gaze, distance = [], [], [], [], [], []
    for clip, motion in zip(self.clips, motions):
      read = self.reader(motion)
      true_jaw = clip["labels"][:, LABEL["jaw_open"]]
      labelled = np.isfinite(true_jaw)
      if labelled.sum() > 2:
        jaw, true_jaw = read[labelled, LABEL["jaw_open"]], true_jaw[labelled]
        corr.append(correlation(jaw, true_jaw))
        # Correlation ignores scale: a barely moving mouth can correlate well.
        amplitude.append(float(jaw.std() / max(true_jaw.std(), 1e-6)))
        jaw_error.append(float(np.abs(jaw - true_jaw).mean()))
      intensity.append(motion_intensity(motion[:, :3]))
      mean_gaze = read[:, [LABEL["gaze_theta"], LABEL["gaze_phi"]]].mean(0)
      if np.all(np.isfinite(clip["gaze"])):
        gaze.append(float(np.degrees(np.linalg.norm(mean_gaze - clip["gaze"]))))
      if np.isfinite(clip["distance"]):
        distance.append(abs(float(read[:, LABEL["distance"]].mean()) - float(clip["distance"])))
    mean = lambda values: float(np.mean(values)) if values else float("nan")  # noqa: E731
    return {"mouth_corr": mean(corr), "mouth_amplitude": mean(amplitude),
            "mouth_error": mean(jaw_error), "dP": mean(intensity), "gaze_error": mean(gaze),
            "distance_error": mean(distance)}

  def run(self, params) -> EvalResult:
    generator = self.task.generator(params, **self.overrides)
    generated = self._generate(generator, unconditional=False)
    scalars = self._scores(generated)
    scalars.update({f"{k}_real": v for k, v in
                    self._scores([c["motion"] for c in self.clips]).items()})
    # SynthTalk's exact head angles; prepared videos' landmark estimates (NaN where none).
    scalars["dP_labels"] = float(np.nanmean([motion_intensity(c["labels"][:, :3])
                                             for c in self.clips]))
    ratios = [boundary_velocity_ratio(m, generator.window) for m in generated]
    ratios = [r for r in ratios if np.isfinite(r)]
    if ratios:
      scalars["boundary_velocity_ratio"] = float(np.mean(ratios))
      scalars["boundary_velocity_ratio_real"] = float(np.nanmean(
          [boundary_velocity_ratio(c["motion"], generator.window) for c in self.clips]))
    if self.baseline:
      unconditional = self._scores(self._generate(generator, unconditional=True))
      scalars.update({f"{k}_unconditional": v for k, v in unconditional.items()})
    return EvalResult(scalars)
