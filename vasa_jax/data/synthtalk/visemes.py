"""From espeak-ng phonemes to visemes and per-frame mouth parameters.

Each phoneme maps to a viseme (`viseme_for`), a diphthong to a short sequence of them ("aI" moves
from "aa" to "I"). `mouth_tracks` turns timed phonemes into three mouth parameters per video frame,
with coarticulation after Cohen and Massaro: each viseme segment pulls the mouth towards its target
with a dominance that is flat over the segment and decays exponentially away from it, and every
frame takes the dominance-weighted mean of all targets:

  value(t) = sum_s D_s(t) * target_s / sum_s D_s(t),
  D_s(t) = alpha_s * exp(-(start_s - t) / tau_s)             before the segment,
           alpha_s                                           during it,
           alpha_s * exp(-(t - end_s) / (0.75 * tau_s))      after it,

so a gesture is anticipated further ahead than it lingers. Bilabials dominate strongly (alpha 40
against 2 for vowels, with a short reach) so that the lips close on p, b and m even between open
vowels; f and v, lip rounding and the rounded sh and ch are strong too, while h and the glottal
stop barely pull and take their shape from their neighbours. Silence is a segment as well: before
the first phoneme, after the last and in every gap between phonemes (pauses), with a weight rising
from nothing for gaps up to 30 ms to full for gaps from 150 ms, so a pause relaxes the mouth to the
closed neutral shape (0, 0.5, 0) while a brief gap does not snap it shut. Every value is a convex
combination of targets and stays in their ranges. A segment shorter than a frame is widened to one
frame about its centre, so that a quick closure still covers a frame centre and shows in the tracks.

Visemes (index, name, espeak-ng phonemes, target (jaw_open, lip_width, lip_round)):

   0 silence  pauses, no phoneme                   (0.00, 0.50, 0.00)
   1 PP       p b m, syllabic m                    (0.00, 0.45, 0.10)
   2 FF       f v                                  (0.10, 0.45, 0.00)
   3 TH       T D (thin, this)                     (0.18, 0.52, 0.00)
   4 DD       t d, taps and flaps                  (0.16, 0.55, 0.00)
   5 KK       k g N (sing), x                      (0.24, 0.52, 0.00)
   6 CH       tS dZ S Z (church, judge, she)       (0.14, 0.35, 0.65)
   7 SS       s z                                  (0.08, 0.65, 0.00)
   8 NN       n l, syllabic n and l                (0.14, 0.52, 0.00)
   9 RR       r, syllabic r, r-coloured 3:         (0.20, 0.40, 0.45)
  10 aa       a A: V 0 (father, strut, lot)        (0.85, 0.55, 0.00)
  11 E        E e (dress; the start of eI, e@)     (0.50, 0.70, 0.00)
  12 I        I i i: j (kit, fleece, yes)          (0.25, 0.80, 0.00)
  13 O        O O: o (thought; the start of oU)    (0.60, 0.32, 0.70)
  14 U        U u: w (foot, goose, wet)            (0.22, 0.22, 0.95)
  15 schwa    @ 3 a#; h and ? (weak)               (0.35, 0.52, 0.05)

jaw_open is how far the mouth is open (0: lips together), lip_width the horizontal spread of the
lips (0.5 neutral, more spread, less narrowed) and lip_round their rounding and protrusion.
Stressed vowels pull harder and open a little wider than unstressed ones.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from vasa_jax.errors import UserError
from vasa_jax.rates import FPS

VISEMES: tuple[str, ...] = ("silence", "PP", "FF", "TH", "DD", "KK", "CH", "SS", "NN", "RR", "aa",
                            "E", "I", "O", "U", "schwa")

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

# Dominance of each viseme: (alpha, tau in seconds), see the module docstring.
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
_CARRYOVER = 0.75  # decay after a segment, relative to before it
_VOWEL_STRESS_ALPHA = (0.75, 1.0, 1.25)  # by Phoneme.stress
_VOWEL_STRESS_JAW = (0.85, 0.95, 1.0)
_SILENCE_GAP = (0.03, 0.15)  # s: no silence weight in gaps up to the first, full from the second
_VOWEL_VISEMES = frozenset({"aa", "E", "I", "O", "U", "schwa"})
_WEAK = {"h": 0.15, "?": 0.2}  # alpha of sounds made in the throat, which leave the lips be
# Beyond this distance (seconds) a segment's dominance is below exp(-30) of its alpha.
_REACH = 30 * max(tau for _, tau in _DOMINANCE.values())
_FRAME_BLOCK = 512

# espeak-ng English phoneme mnemonics (the "en" tables and the base tables they extend).
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
    "aI": ("aa", "I"), "aI2": ("aa", "I"), "aI@": ("aa", "I", "schwa"),
    "aI3": ("aa", "I", "RR"), "aU": ("aa", "U"), "aU@": ("aa", "U", "schwa"),
    "eI": ("E", "I"), "e@": ("E", "schwa"), "i@": ("I", "schwa"), "i@3": ("I", "RR"),
    "IR": ("I", "RR"), "oU": ("O", "U"), "oU#": ("O", "U"), "OI": ("O", "I"),
    "O@": ("O", "schwa"), "o@": ("O", "schwa"), "A@": ("aa", "schwa"), "U@": ("U", "schwa"),
    "VR": ("aa", "RR"), "@L": ("schwa", "NN"),
}
_TABLE: dict[str, tuple[int, ...]] = {
    **{symbol: (VISEMES.index(name),)
       for name, members in _GROUPS.items() for symbol in members.split()},
    **{symbol: tuple(VISEMES.index(v) for v in seq) for symbol, seq in _SEQUENCES.items()},
}
_STRESS_MARKS = "',%="
_PAUSE_PREFIXES = ("_", "||")


class _PhonemeLike(Protocol):
  start: float
  end: float
  symbol: str
  stress: int


@functools.lru_cache(maxsize=None)
def _visemes_of(symbol: str) -> tuple[int, ...]:
  """Indices of the visemes a phoneme moves through; (0,) for a pause."""
  symbol = symbol.lstrip(_STRESS_MARKS)
  if not symbol or symbol.startswith(_PAUSE_PREFIXES):
    return (0,)
  if symbol in _TABLE:
    return _TABLE[symbol]
  # Other languages' variants of a phoneme mostly add a modifier at the end ("I2#", "l/3").
  if len(symbol) > 1:
    return _visemes_of(symbol[:-1])
  return (VISEMES.index("schwa"),)


def viseme_for(symbol: str) -> int:
  """Index into VISEMES of an espeak-ng phoneme mnemonic (stress marks allowed); 0 for pauses.

  A diphthong gives the viseme it starts with. A mnemonic missing from the English tables falls
  back to its longest known prefix, or to "schwa" when it has none.
  """
  return _visemes_of(symbol)[0]


def mouth_tracks(phonemes: Sequence[_PhonemeLike], num_frames: int,
                 fps: int = FPS) -> dict[str, np.ndarray]:
  """Per-frame mouth parameters for timed phonemes.

  Frame t covers [t / fps, (t + 1) / fps) seconds and is evaluated at its centre.

  Args:
    phonemes: objects with start and end (seconds), symbol (espeak-ng mnemonic) and stress (0, 1,
      2), such as `speech.Phoneme`; pauses may be left out or given with the symbol "_".
    num_frames: how many frames to produce.
    fps: frames per second.

  Returns:
    'jaw_open', 'lip_width', 'lip_round': float32 [num_frames] in [0, 1] (lip_width 0.5 is
    neutral); 'viseme': int32 [num_frames], the index into VISEMES of the phoneme whose span holds
    the frame centre (a diphthong's first viseme), 0 where none does.
  """
  if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) \
      or num_frames < 0:
    raise UserError(f"mouth_tracks num_frames must be an integer >= 0, got {num_frames!r}")
  if isinstance(fps, bool) or not isinstance(fps, (int, np.integer)) or fps <= 0:
    raise UserError(f"mouth_tracks fps must be a positive integer, got {fps!r}")
  times = (np.arange(num_frames, dtype=np.float64) + 0.5) / fps

  spans = sorted((float(p.start), float(p.end), str(p.symbol).lstrip(_STRESS_MARKS),
                  int(p.stress)) for p in phonemes)
  spans = [s for s in spans if _visemes_of(s[2]) != (0,)]
  starts = np.array([s[0] for s in spans], dtype=np.float64)
  ends = np.maximum(np.array([s[1] for s in spans], dtype=np.float64), starts)

  viseme = np.zeros(num_frames, dtype=np.int32)
  if spans:
    k = np.maximum(np.searchsorted(starts, times, side="right") - 1, 0)
    first = np.array([_visemes_of(s[2])[0] for s in spans], dtype=np.int32)
    viseme = np.where((times >= starts[k]) & (times < ends[k]), first[k], 0).astype(np.int32)

  seg_start, seg_end, seg_viseme, seg_alpha, seg_jaw = _segments(spans, starts, ends, 1.0 / fps)
  targets = np.array([VISEME_TARGETS[v] for v in VISEMES], dtype=np.float64)[seg_viseme]
  targets[:, 0] *= seg_jaw  # [S, 3]
  tau = np.array([_DOMINANCE[v][1] for v in VISEMES], dtype=np.float64)[seg_viseme]
  values = np.empty((num_frames, 3), dtype=np.float64)
  # Frames in blocks, each against the segments within reach, to keep memory linear in length.
  for b in range(0, num_frames, _FRAME_BLOCK):
    t = times[b:b + _FRAME_BLOCK, None]
    near = (seg_end > t[0, 0] - _REACH) & (seg_start < t[-1, 0] + _REACH)
    before = np.maximum(seg_start[near] - t, 0.0) / tau[near]
    after = np.maximum(t - seg_end[near], 0.0) / (_CARRYOVER * tau[near])
    dominance = seg_alpha[near] * np.exp(-(before + after))  # [block, S near]
    values[b:b + _FRAME_BLOCK] = (dominance @ targets[near]) / np.maximum(
        dominance.sum(axis=1, keepdims=True), 1e-300)
  values = np.clip(values, 0.0, 1.0).astype(np.float32)
  return {"jaw_open": values[:, 0], "lip_width": values[:, 1], "lip_round": values[:, 2],
          "viseme": viseme}


def _segments(spans: list[tuple[float, float, str, int]], starts: np.ndarray, ends: np.ndarray,
              min_width: float) -> tuple[np.ndarray, ...]:
  """Viseme segments, silence included: start, end (s), viseme, alpha, jaw scale; each [S]."""
  silence = VISEMES.index("silence")
  alpha_silence = _DOMINANCE["silence"][0]
  # Silence before the first phoneme and after the last reaches to infinity.
  segments = [(-np.inf, float(starts[0]) if spans else np.inf, silence, alpha_silence, 1.0)]
  if spans:
    segments.append((float(ends.max()), np.inf, silence, alpha_silence, 1.0))
  covered = -np.inf
  for (_, _, symbol, stress), start, end in zip(spans, starts, ends):
    gap = start - covered
    if np.isfinite(covered) and gap > _SILENCE_GAP[0]:
      weight = min((gap - _SILENCE_GAP[0]) / (_SILENCE_GAP[1] - _SILENCE_GAP[0]), 1.0)
      segments.append((covered, start, silence, alpha_silence * weight, 1.0))
    covered = max(covered, end)
    if end - start < min_width:
      centre = 0.5 * (start + end)
      start, end = centre - 0.5 * min_width, centre + 0.5 * min_width
    visemes = _visemes_of(symbol)
    stress = min(max(stress, 0), 2)
    step = (end - start) / len(visemes)
    for i, v in enumerate(visemes):
      name = VISEMES[v]
      alpha = _WEAK.get(symbol, _DOMINANCE[name][0])
      jaw = 1.0
      if name in _VOWEL_VISEMES and symbol not in _WEAK:
        alpha *= _VOWEL_STRESS_ALPHA[stress]
        jaw = _VOWEL_STRESS_JAW[stress]
      segments.append((start + i * step, start + (i + 1) * step, v, alpha, jaw))
  columns = list(zip(*segments))
  return (np.array(columns[0], dtype=np.float64), np.array(columns[1], dtype=np.float64),
          np.array(columns[2], dtype=np.int64), np.array(columns[3], dtype=np.float64),
          np.array(columns[4], dtype=np.float64))
