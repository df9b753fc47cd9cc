"""The paper's numbers and the metrics' meanings, as data.

VASA-1 (Xu et al., arXiv 2404.10667) reports its results on two test sets (a VoxCeleb2 subset of 46
subjects x 10 clips, and OneMin-32: 32 one-minute clips), an ablation of audio guidance and of the
number of sampling steps, and sanity numbers for its CAPP score. The report puts our numbers beside
these, so they live here once, copied from the paper, with what each metric means and which
direction is better. Nothing here is measured by this project.

Metric keys are the ones the video metrics return ("S_C", "S_D", "CAPP", "dP", "FVD_25", "E_g",
"E_d", plus others such as "psnr"); `info(key)` gives the description of any key, a generic one for
keys it does not know, so a new metric shows up in the report without an entry here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

HIGHER = "higher"
LOWER = "lower"
CLOSER_TO_REAL = "closer to real"  # Motion intensity: the paper compares it with real video.


@dataclasses.dataclass(frozen=True)
class MetricInfo:
  key: str
  name: str          # what the column says in words
  unit: str          # "" when unitless
  better: str        # HIGHER, LOWER, CLOSER_TO_REAL or "" (no direction: no highlight)
  definition: str    # one line

  @property
  def higher_is_better(self) -> bool | None:
    """True or False for a metric with a direction; None for one judged against real video or
    without a direction."""
    return {HIGHER: True, LOWER: False}.get(self.better)

  @property
  def arrow(self) -> str:
    return {HIGHER: "\u2191", LOWER: "\u2193", CLOSER_TO_REAL: "\u2192 real"}.get(self.better, "")


METRICS: dict[str, MetricInfo] = {m.key: m for m in [
    MetricInfo("S_C", "SyncNet confidence", "", HIGHER,
               "median minus minimum of the SyncNet audio-mouth distance over offsets -15..15 "
               "frames, averaged over clips (LSE-C)"),
    MetricInfo("S_D", "SyncNet distance", "", LOWER,
               "minimum over offsets -15..15 frames of the mean SyncNet audio-mouth distance, "
               "averaged over clips (LSE-D)"),
    MetricInfo("CAPP", "audio-pose alignment (CAPP)", "", HIGHER,
               "cosine similarity of a contrastively trained audio encoder and head-pose encoder "
               "over 3-second windows"),
    MetricInfo("dP", "head motion intensity", "deg/frame", CLOSER_TO_REAL,
               "mean |change of yaw, pitch, roll| between adjacent frames, pose read back from the "
               "frames (ours in degrees; the paper does not state its unit)"),
    MetricInfo("FVD_25", "FVD (25 frames)", "", LOWER,
               "Frechet distance of I3D (Kinetics-400) features of 25-frame 224x224 clips, "
               "generated against real"),
    MetricInfo("CSIM", "identity similarity (CSIM)", "", HIGHER,
               "cosine similarity of face-recognition embeddings (dlib ResNet by default) of each "
               "frame and the source photo, averaged over frames and videos"),
    MetricInfo("E_g", "gaze error", "deg", LOWER,
               "angle between the gaze read back from the video and the main gaze asked for"),
    MetricInfo("E_d", "head distance error", "", LOWER,
               "|head-to-camera distance read back from the video - the distance asked for| "
               "(normalised distance)"),
    MetricInfo("offset_abs", "|audio-video offset|", "frames", LOWER,
               "|offset at which SyncNet's distance is smallest|, averaged over clips"),
    MetricInfo("psnr", "PSNR", "dB", HIGHER, "peak signal-to-noise ratio against the real frames"),
    MetricInfo("ssim", "SSIM", "", HIGHER, "structural similarity against the real frames"),
    MetricInfo("lpips", "LPIPS", "", LOWER, "learned perceptual distance to the real frames"),
    MetricInfo("identity_cosine", "identity similarity", "", HIGHER,
               "cosine similarity of face-recognition embeddings of generated frames and the "
               "source photo"),
]}

# The order of the paper's columns, then ours.
ORDER = ("S_C", "S_D", "CAPP", "dP", "FVD_25", "E_g", "E_d")


def info(key: str) -> MetricInfo:
  """The description of a metric key; a generic one (no direction) for a key not listed."""
  if key in METRICS:
    return METRICS[key]
  return MetricInfo(key, key.replace("_", " "), "", "", "")


def column_order(keys) -> list[str]:
  """Metric keys in the paper's order first, then the others in the order given."""
  keys = list(dict.fromkeys(keys))
  return [k for k in ORDER if k in keys] + [k for k in keys if k not in ORDER]


@dataclasses.dataclass(frozen=True)
class PaperTable:
  key: str
  title: str
  description: str
  columns: tuple[str, ...]
  rows: Mapping[str, Mapping[str, float]]


REAL_VIDEO = "Real video"

VOXCELEB2 = PaperTable(
    "voxceleb2", "VoxCeleb2", "46 subjects x 10 clips of VoxCeleb2's test set",
    ("S_C", "S_D", "CAPP", "dP"),
    {
        "MakeItTalk": {"S_C": 4.176, "S_D": 15.513, "CAPP": -0.051, "dP": 0.210},
        "Audio2Head": {"S_C": 6.172, "S_D": 8.470, "CAPP": 0.246, "dP": 0.260},
        "SadTalker": {"S_C": 5.843, "S_D": 8.813, "CAPP": 0.441, "dP": 0.275},
        "VASA-1": {"S_C": 8.841, "S_D": 6.312, "CAPP": 0.468, "dP": 0.304},
        REAL_VIDEO: {"S_C": 7.640, "S_D": 7.189, "CAPP": 0.588, "dP": 0.505},
    })

ONEMIN32 = PaperTable(
    "onemin32", "OneMin-32", "32 one-minute clips",
    ("S_C", "S_D", "CAPP", "dP", "FVD_25"),
    {
        "SadTalker": {"S_C": 5.501, "S_D": 8.850, "CAPP": 0.383, "dP": 0.252, "FVD_25": 214.507},
        "VASA-1": {"S_C": 7.957, "S_D": 6.635, "CAPP": 0.465, "dP": 0.316, "FVD_25": 105.884},
        REAL_VIDEO: {"S_C": 7.192, "S_D": 7.254, "CAPP": 0.559, "dP": 0.405, "FVD_25": 29.245},
    })

TABLES = (VOXCELEB2, ONEMIN32)

# Audio guidance scale l_audio (l_gaze = 1, 50 steps) -> scores on OneMin-32.
CFG_AUDIO_ABLATION: dict[float, dict[str, float]] = {
    0.0: {"S_C": 7.134, "dP": 0.290},
    0.5: {"S_C": 7.957, "dP": 0.316},
    1.0: {"S_C": 8.218, "dP": 0.342},
    2.0: {"S_C": 8.295, "dP": 0.395},
}
CFG_ABLATION_PARAMETER = "guidance.audio"

# 10 sampling steps instead of 50 (about 5x faster motion generation), OneMin-32.
TEN_STEPS: dict[str, float] = {"S_C": 8.293, "dP": 0.243, "FVD_25": 117.060}

# CAPP on ground-truth audio-pose pairs, with the pose shifted by a number of frames, and with the
# frame-to-frame pose differences scaled (1.0: the unchanged truth).
CAPP_SANITY_SHIFT: dict[int, float] = {0: 0.608, 1: 0.462, 2: 0.206, 3: 0.069}
CAPP_SANITY_SCALE: dict[float, float] = {0.2: 0.368, 0.5: 0.584, 1.0: 0.608, 1.5: 0.587,
                                          3.0: 0.505}


def cfg_ablation(metric: str) -> tuple[list[float], list[float]] | None:
  """The paper's audio-guidance ablation for `metric`: (l_audio values, scores), or None when the
  ablation did not report it."""
  points = [(scale, row[metric]) for scale, row in sorted(CFG_AUDIO_ABLATION.items())
            if metric in row]
  if not points:
    return None
  return [p[0] for p in points], [p[1] for p in points]
