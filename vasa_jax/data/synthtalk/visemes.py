"""From espeak-ng phonemes to visemes and per-frame mouth parameters.

Each phoneme maps to one viseme (`viseme_for`), or to a short sequence of them for diphthongs ("aI" moves
from "aa" to "I"). `mouth_tracks` turns a timed phoneme sequence into three continuous mouth parameters per
video frame, with coarticulation after Cohen and Massaro: every viseme segment pulls the mouth towards its
target with a dominance that is flat over the segment and decays exponentially outside it, and each frame
takes the dominance-weighted mean of all targets,

  value(t) = sum_s D_s(t) * target_s / sum_s D_s(t),
  D_s(t) = alpha_s * exp(-(start_s - t) / tau_s)            before the segment,
           alpha_s                                          inside it,
           alpha_s * exp(-(t - end_s) / (0.75 * tau_s))     after it (anticipation reaches further).

Bilabials dominate strongly (alpha 25 against 2 for vowels) so the lips close on p, b and m even between
open vowels; labiodentals and rounding (w, sh, oo) are also strong, while h and the glottal stop barely
pull at all and take their shape from their neighbours. Silence is a segment too: before the first
phoneme, after the last, and in every gap between phonemes (pauses), with a weight that grows from 0 for
gaps up to 30 ms to full for gaps of 150 ms, so a short word gap does not snap the mouth shut while a
pause relaxes it to the closed neutral mouth (0, 0.5, 0). Outputs are convex combinations of targets, so
they stay within the targets' ranges.

Segments shorter than a frame are widened to one frame around their centre, so that a brief closure
still covers a frame centre and shows up in the sampled tracks.

Viseme set (index: name, phonemes, target (jaw_open, lip_width, lip_round)):

   0 silence  pauses, no phoneme                    (0.00, 0.50, 0.00)
   1 PP       p b m, syllabic m                     (0.00, 0.45, 0.10)
   2 FF       f v                                   (0.10, 0.45, 0.00)
   3 TH       T D (thin, this)                      (0.18, 0.52, 0.00)
   4 DD       t d, taps and flaps                   (0.16, 0.55, 0.00)
   5 KK       k g N (sing), x                       (0.24, 0.52, 0.00)
   6 CH       tS dZ S Z (church, judge, she, beige) (0.14, 0.35, 0.65)
   7 SS       s z                                   (0.08, 0.65, 0.00)
   8 NN       n l, syllabic n l                     (0.14, 0.52, 0.00)
   9 RR       r, syllabic r, r-coloured 3:          (0.20, 0.40, 0.45)
  10 aa       a A: V 0 (father, strut, lot)         (0.85, 0.55, 0.00)
  11 E        E e (dress, the start of eI e@)       (0.50, 0.70, 0.00)
  12 I        I i i: j (kit, fleece, yes)           (0.25, 0.80, 0.00)
  13 O        O O: o (thought, the start of oU OI)  (0.60, 0.32, 0.70)
  14 U        U u: w (foot, goose, wet)             (0.22, 0.22, 0.95)
  15 schwa    @ 3 a#, and h and ? (weak)            (0.35, 0.52, 0.05)

jaw_open is the opening of the mouth (0 = lips together), lip_width the horizontal lip spread (0.5 is
neutral, above is spread, below is narrowed) and lip_round the rounding and protrusion of the lips.
Vowels with primary stress pull harder and open a little wider than unstressed ones.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from vasa_jax.errors import UserError

FPS = 25

VISEMES: tuple[str, ...] = ("silence", "PP", "FF", "TH", "DD", "KK", "CH", "SS", "NN", "RR", "aa", "E",
                            "I", "O", "U", "schwa")

VISEME_TARGETS: dict[str, tuple[float, float, float]] = {
    "silence": (0.00, 0.50, 0.00),
    "PP": (0.00, 0.45, 0.10),
    "FF": (0.10, 0.45, 0.00),
    "TH": (0.18, 0.52, 0.00),
    "DD": (0.16, 0.55, 0.00),
    "KK": (0.24, 0.52, 0.00),
    "CH": (0.14, 0.35, 0.65),
    "SS": (0.08, 0.65, 0.00),
    "NN": (0.14, 0.52, 0.00),
    "RR": (0.20, 0.40, 0.45),
    "aa": (0.85, 0.55, 0.00),
    "E": (0.50, 0.70, 0.00),
    "I": (0.25, 0.80, 0.00),
    "O": (0.60, 0.32, 0.70),
    "U": (0.22, 0.22, 0.95),
    "schwa": (0.35, 0.52, 0.05),
}

# Dominance of each viseme: (alpha, tau in seconds); see the module docstring.
_DOMINANCE: dict[str, tuple[float, float]] = {
    "silence": (3.0, 0.03),
    "PP": (40.0, 0.012),
    "FF": (15.0, 0.015),
    "TH": (3.0, 0.02),
    "DD": (1.2, 0.02),
    "KK": (0.8, 0.02),
    "CH": (5.0, 0.04),
    "SS": (3.0, 0.02),
    "NN": (1.0, 0.02),
    "RR": (2.5, 0.04),
    "aa": (2.0, 0.05),
    "E": (2.0, 0.05),
    "I": (2.0, 0.05),
    "O": (2.5, 0.07),
    "U": (2.5, 0.07),
    "schwa": (0.8, 0.04),
}
_CARRYOVER = 0.75  # decay after a segment relative to before it
_VOWEL_STRESS_ALPHA = (0.75, 1.0, 1.25)  # by Phoneme.stress
_VOWEL_STRESS_JAW = (0.85, 0.95, 1.0)
_SILENCE_GAP = (0.03, 0.15)  # seconds: gaps up to the first have no silence weight, from the second full
_VOWEL_VISEMES = frozenset({"aa", "E", "I", "O", "U", "schwa"})

# espeak-ng English mnemonics (the "en" phoneme tables and the base tables they build on) -> visemes.
_GROUPS: dict[str, str] = {
    "PP": "p b m B m-",
    "FF": "f v v#",
    "TH": "T D",
    "DD": "t d t# t2 t[ d[ d# *",
    "KK": "k g N N- x X q c J C Q Q^ Q\"",
    "CH": "tS dZ S Z tS; dZ; S; Z;",
    "SS": "s z s. z. s; z; z# z/2",
    "NN": "n l n. n^ n- l. l/ l/2 l/3 l^ L L/ l# l- J^",
    "RR": "r r- r/ R R2 R3 r\" r. ** 3:",
    "aa": "a a2 aa A: A# A~ V 0 0# 02 a/",
    "E": "E E# E2 e e# e:",
    "I": "I I# I2 I2# i i: j ;",
    "O": "O O: O2 O~ o o:",
    "U": "U u u: w w#",
    "schwa": "@ @2 @5 @# @- 3 a# a#2 h ?",
}
_SEQUENCES: dict[str, tuple[str, ...]] = {
    "aI": ("aa", "I"), "aI2": ("aa", "I"), "aI@": ("aa", "I", "schwa"), "aI3": ("aa", "I", "RR"),
    "aU": ("aa", "U"), "aU@": ("aa", "U", "schwa"),
    "eI": ("E", "I"), "e@": ("E", "schwa"),
    "i@": ("I", "schwa"), "i@3": ("I", "RR"), "IR": ("I", "RR"),
    "oU": ("O", "U"), "oU#": ("O", "U"), "OI": ("O", "I"),
    "O@": ("O", "schwa"), "o@": ("O", "schwa"), "A@": ("aa", "schwa"), "U@": ("U", "schwa"),
    "VR": ("aa", "RR"), "@L": ("schwa", "NN"),
}
_TABLE: dict[str, tuple[int, ...]] = {
    **{symbol: (VISEMES.index(name),) for name, members in _GROUPS.items() for symbol in members.split()},
    **{symbol: tuple(VISEMES.index(v) for v in seq) for symbol, seq in _SEQUENCES.items()},
}
_WEAK = {"h": 0.15, "?": 0.2}  # alpha of sounds made in the throat, which leave the lips to neighbours
_PAUSE_PREFIXES = ("_", "||")


class _PhonemeLike(Protocol):
  start: float
  end: float
  symbol: str
  stress: int


@functools.lru_cache(maxsize=None)
def _visemes_of(symbol: str) -> tuple[int, ...]:
  """Viseme indices a phoneme moves through; (0,) for pauses."""
  symbol = symbol.lstrip("',%=")
  if not symbol or symbol.startswith(_PAUSE_PREFIXES):
    return (0,)
  if symbol in _TABLE:
    return _TABLE[symbol]
  # Another language's variant of a known phoneme usually adds a diacritic at the end ("I2#", "l/3").
  if len(symbol) > 1:
    return _visemes_of(symbol[:-1])
  return (VISEMES.index("schwa"),)


def viseme_for(symbol: str) -> int:
  """Index into VISEMES of an espeak-ng phoneme mnemonic (stress marks allowed); 0 for pauses.

  A diphthong gives the viseme it starts with. Mnemonics not in the English tables fall back to the
  longest known prefix, and to "schwa" when there is none.
  """
  return _visemes_of(symbol)[0]


def mouth_tracks(phonemes: Sequence[_PhonemeLike], num_frames: int,
                 fps: int = FPS) -> dict[str, np.ndarray]:
  """Per-frame mouth parameters for a timed phoneme sequence.

  Frame t covers [t / fps, (t + 1) / fps) seconds and is evaluated at its centre.

  Args:
    phonemes: objects with start and end (seconds), symbol (espeak-ng mnemonic) and stress (0, 1, 2),
      such as `speech.Phoneme`; pauses may be left out or given with symbol "_".
    num_frames: number of frames to produce.
    fps: frames per second.

  Returns:
    'jaw_open' float32 [num_frames] in [0, 1]; 'lip_width' float32 [num_frames] in [0, 1] (0.5 neutral);
    'lip_round' float32 [num_frames] in [0, 1]; 'viseme' int32 [num_frames], the index into VISEMES of the
    phoneme whose span contains the frame centre (its first viseme for a diphthong), 0 where none does.
  """
  if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 0:
    raise UserError(f"mouth_tracks num_frames must be a non-negative integer, got {num_frames!r}")
  if isinstance(fps, bool) or not isinstance(fps, (int, np.integer)) or fps <= 0:
    raise UserError(f"mouth_tracks fps must be a positive integer, got {fps!r}")
  times = (np.arange(num_frames, dtype=np.float64) + 0.5) / fps

  spans = sorted(((float(p.start), float(p.end), str(p.symbol), int(p.stress)) for p in phonemes),
                 key=lambda s: s[0])
  spans = [s for s in spans if _visemes_of(s[2]) != (0,)]
  starts = np.array([s[0] for s in spans], dtype=np.float64)
  ends = np.maximum(np.array([s[1] for s in spans], dtype=np.float64), starts)

  viseme = np.zeros(num_frames, dtype=np.int32)
  if spans:
    k = np.searchsorted(starts, times, side="right") - 1
    first = np.array([_visemes_of(s[2])[0] for s in spans], dtype=np.int32)
    inside = (k >= 0) & (times < ends[np.maximum(k, 0)])
    viseme = np.where(inside, first[np.maximum(k, 0)], 0).astype(np.int32)

  seg_start, seg_end, seg_viseme, seg_alpha, seg_jaw_scale = _segments(spans, starts, ends, 1.0 / fps)
  targets = np.array([VISEME_TARGETS[v] for v in VISEMES], dtype=np.float64)[seg_viseme]  # [S, 3]
  targets[:, 0] *= seg_jaw_scale
  tau = np.array([_DOMINANCE[v][1] for v in VISEMES], dtype=np.float64)[seg_viseme]
  before = np.maximum(seg_start[None, :] - times[:, None], 0.0) / tau
  after = np.maximum(times[:, None] - seg_end[None, :], 0.0) / (_CARRYOVER * tau)
  dominance = seg_alpha * np.exp(-(before + after))  # [F, S]
  values = (dominance @ targets) / np.maximum(dominance.sum(axis=1, keepdims=True), 1e-30)
  values = np.clip(values, 0.0, 1.0).astype(np.float32)
  return {"jaw_open": values[:, 0], "lip_width": values[:, 1], "lip_round": values[:, 2],
          "viseme": viseme}


def _segments(spans: list[tuple[float, float, str, int]], starts: np.ndarray, ends: np.ndarray,
              min_width: float) -> tuple[np.ndarray, ...]:
  """Viseme segments: (start, end, viseme index, alpha, jaw scale), arrays of [S], silence included."""
  silence = VISEMES.index("silence")
  alpha_silence = _DOMINANCE["silence"][0]
  seg: list[tuple[float, float, int, float, float]] = []
  # Silence before the first and after the last phoneme reaches to infinity.
  first_start = float(starts[0]) if spans else np.inf
  last_end = float(ends.max()) if spans else -np.inf
  seg.append((-np.inf, first_start, silence, alpha_silence, 1.0))
  if spans:
    seg.append((last_end, np.inf, silence, alpha_silence, 1.0))
  covered = -np.inf
  for (_, _, symbol, stress), start, end in zip(spans, starts, ends):
    symbol = symbol.lstrip("',%=")
    gap = start - covered
    if np.isfinite(covered) and gap > _SILENCE_GAP[0]:
      weight = min((gap - _SILENCE_GAP[0]) / (_SILENCE_GAP[1] - _SILENCE_GAP[0]), 1.0)
      seg.append((covered, start, silence, alpha_silence * weight, 1.0))
    covered = max(covered, end)
    visemes = _visemes_of(symbol)
    if end - start < min_width:
      centre = 0.5 * (start + end)
      start, end = centre - 0.5 * min_width, centre + 0.5 * min_width
    stress = min(max(stress, 0), 2)
    step = (end - start) / len(visemes)
    for i, v in enumerate(visemes):
      name = VISEMES[v]
      alpha = _WEAK.get(symbol, _DOMINANCE[name][0])
      jaw_scale = 1.0
      if name in _VOWEL_VISEMES and symbol not in _WEAK:
        alpha *= _VOWEL_STRESS_ALPHA[stress]
        jaw_scale = _VOWEL_STRESS_JAW[stress]
      seg.append((start + i * step, start + (i + 1) * step, v, alpha, jaw_scale))
  arr = list(zip(*seg))
  return (np.array(arr[0], dtype=np.float64), np.array(arr[1], dtype=np.float64),
          np.array(arr[2], dtype=np.int64), np.array(arr[3], dtype=np.float64),
          np.array(arr[4], dtype=np.float64))
