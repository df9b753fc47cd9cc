"""The talking-face dataset schema, shared by SynthTalk and real-video preparation.

One example is one clip at 25 fps with 16 kHz mono audio. Per-frame labels that a source cannot give
(a real video has no viseme track) are NaN, or -1 for integers. data/README.md documents every field.
"""

from __future__ import annotations

import numpy as np

from vasa_jax.rates import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME  # noqa: F401 (re-exported)

# Per-frame float labels, in this order wherever they are stacked into one array.
LABEL_NAMES = ("yaw", "pitch", "roll", "tx", "ty", "scale", "distance", "gaze_theta", "gaze_phi",
               "blink", "jaw_open", "lip_width", "lip_round", "brow_raise", "smile")
LANDMARK_NAMES = ("left_eye", "right_eye", "nose_tip", "mouth_center", "chin", "forehead")
EMOTIONS = ("neutral", "happy", "angry", "surprised")


def clip_features():
  """The tfds FeaturesDict of one clip (no TensorFlow needed: only Tensor and Text features)."""
  import tensorflow_datasets as tfds

  def tensor(shape, dtype, compress=False):
    return tfds.features.Tensor(shape=shape, dtype=dtype,
                                encoding=tfds.features.Encoding.ZLIB if compress else
                                tfds.features.Encoding.NONE)

  return tfds.features.FeaturesDict({
      "frames": tfds.features.Sequence(tensor((), np.object_)),
      "audio": tensor((None,), np.int16, compress=True),
      "labels": {name: tensor((None,), np.float32) for name in LABEL_NAMES},
      "viseme": tensor((None,), np.int32),
      "landmarks": tensor((None, len(LANDMARK_NAMES), 2), np.float32),
      "meta": {
          "clip_id": tfds.features.Text(),
          "identity": tfds.features.Text(),
          "source": tfds.features.Text(),
          "text": tfds.features.Text(),
          "fps": np.int32,
          "sample_rate": np.int32,
          "resolution": np.int32,
          "num_frames": np.int32,
          "emotion": np.int32,
          "gaze": tensor((2,), np.float32),
          "distance": np.float32,
          "details": tfds.features.Text(),
      },
  })


def stack_labels(labels) -> np.ndarray:
  """{name: [T]} to float32 [T, len(LABEL_NAMES)] in LABEL_NAMES order."""
  return np.stack([np.asarray(labels[name], np.float32) for name in LABEL_NAMES], axis=-1)
