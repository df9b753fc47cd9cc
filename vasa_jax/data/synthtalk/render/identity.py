"""Who is drawn: the identity (face shape, colours, hair, accessories, background) and its sampling."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np


HAIR_STYLES = ("bald", "buzz", "short", "fringe", "long", "bob", "bun", "afro", "receding")
BEARDS = ("none", "stubble", "full", "moustache", "goatee")
GLASSES = ("none", "clear", "sunglasses")
HATS = ("none", "beanie", "cap")
EARRINGS = ("none", "studs", "drops")
BACKGROUNDS = ("gradient", "blobs", "stripes", "radial", "room", "tiles")
CLOTHING_PATTERNS = ("plain", "stripes", "collar")


Color = tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class Identity:
  """Everything that makes one synthetic person look like themselves (plain JSON-able values).

  Shape fields are multipliers around 1 or signed offsets in -1 .. 1 (chin_forward, mouth_height,
  brow_height, hairline; eye_height is in head units); colours are display RGB triples in [0, 1];
  style fields index HAIR_STYLES, BEARDS, GLASSES, HATS, EARRINGS, BACKGROUNDS and
  CLOTHING_PATTERNS; light_azimuth and light_elevation are radians; seed drives the background.
  """

  seed: int
  head_width: float
  head_height: float
  head_depth: float
  jaw_width: float
  jaw_length: float
  chin_forward: float
  eye_spacing: float
  eye_size: float
  eye_height: float
  eye_open: float
  eye_tilt: float
  nose_length: float
  nose_width: float
  nose_depth: float
  mouth_width: float
  mouth_height: float
  lip_thickness: float
  ear_size: float
  brow_height: float
  brow_thickness: float
  brow_arch: float
  brow_color: Color
  skin_color: Color
  lip_color: Color
  blush: float
  iris_color: Color
  hair_color: Color
  hair_style: int
  hair_volume: float
  hairline: float
  beard: int
  glasses: int
  glasses_color: Color
  glasses_shape: float
  hat: int
  hat_color: Color
  earrings: int
  earring_color: Color
  clothing_color: Color
  clothing_color2: Color
  clothing_pattern: int
  background: int
  bg_colors: tuple[Color, Color, Color]
  bg_angle: float
  bg_scale: float
  light_azimuth: float
  light_elevation: float
  ambient: float
  light_warmth: float


_SKIN_TONES = np.array([
    (0.98, 0.86, 0.77), (0.95, 0.79, 0.68), (0.90, 0.71, 0.58), (0.82, 0.61, 0.47),
    (0.70, 0.50, 0.36), (0.56, 0.38, 0.26), (0.42, 0.28, 0.19), (0.30, 0.20, 0.14)])
# (colour, weight) of natural hair; some identities get a dyed colour instead.
_HAIR_COLORS = [
    ((0.05, 0.04, 0.04), 5), ((0.14, 0.09, 0.06), 5), ((0.28, 0.18, 0.11), 4),
    ((0.45, 0.32, 0.20), 3), ((0.78, 0.64, 0.40), 2), ((0.90, 0.84, 0.68), 1),
    ((0.50, 0.18, 0.08), 1.5), ((0.78, 0.38, 0.15), 1), ((0.50, 0.50, 0.50), 1),
    ((0.82, 0.82, 0.80), 1)]
_DYED_HAIR = [(0.16, 0.28, 0.65), (0.85, 0.38, 0.62), (0.30, 0.60, 0.45), (0.55, 0.25, 0.70)]
_IRIS_COLORS = [((0.22, 0.12, 0.06), 5), ((0.40, 0.25, 0.12), 3), ((0.45, 0.40, 0.20), 1.5),
                ((0.25, 0.45, 0.25), 1), ((0.25, 0.45, 0.70), 2), ((0.45, 0.52, 0.58), 1)]


def _choice(rng: np.random.Generator, options: list) -> Any:
  weights = np.array([w for _, w in options], np.float64)
  return options[int(rng.choice(len(options), p=weights / weights.sum()))][0]


def _jitter(rng: np.random.Generator, color, amount: float) -> Color:
  c = np.clip(np.asarray(color) * (1.0 + rng.uniform(-amount, amount, 3)), 0.0, 1.0)
  return tuple(round(float(v), 4) for v in c)


def _random_color(rng: np.random.Generator, lo: float = 0.1, hi: float = 0.9) -> Color:
  return tuple(round(float(v), 4) for v in rng.uniform(lo, hi, 3))


def sample_identity(rng: np.random.Generator) -> Identity:
  """Draws one identity; the result is a deterministic function of the generator's state."""
  u = rng.uniform
  tone = u(0.0, 1.0) * (len(_SKIN_TONES) - 1)
  i = min(int(tone), len(_SKIN_TONES) - 2)
  skin = _SKIN_TONES[i] + (tone - i) * (_SKIN_TONES[i + 1] - _SKIN_TONES[i])
  skin = _jitter(rng, skin * np.array([1.0, 1.0 + u(-0.03, 0.03), 1.0 + u(-0.05, 0.05)]), 0.03)
  lip = _jitter(rng, np.asarray(skin) * np.array([0.86, 0.58, 0.60]) + np.array([0.06, 0.0, 0.02]),
                0.08)
  natural = _jitter(rng, _choice(rng, _HAIR_COLORS), 0.12)
  dyed = rng.uniform() < 0.05
  hair = _jitter(rng, _DYED_HAIR[int(rng.integers(len(_DYED_HAIR)))], 0.12) if dyed else natural
  # Brows are natural and a little darker than light hair.
  brow = _jitter(rng, np.asarray(natural) * (0.65 if np.mean(natural) > 0.5 else 0.9), 0.08)
  style = int(rng.choice(len(HAIR_STYLES), p=[0.06, 0.1, 0.2, 0.13, 0.18, 0.11, 0.07, 0.07, 0.08]))
  # About half the identities can have facial hair at all.
  bearded = rng.uniform() < 0.5
  beard = int(rng.choice(len(BEARDS), p=[0.3, 0.25, 0.2, 0.12, 0.13])) if bearded else 0
  glasses = int(rng.choice(3, p=[0.72, 0.2, 0.08]))
  hat = int(rng.choice(3, p=[0.84, 0.08, 0.08]))
  earrings = int(rng.choice(3, p=[0.72, 0.16, 0.12]))
  bg_colors = tuple(_random_color(rng, 0.08, 0.95) for _ in range(3))
  metal = ((0.85, 0.68, 0.30), (0.80, 0.80, 0.82), (0.72, 0.45, 0.35))[int(rng.integers(3))]
  return Identity(
      seed=int(rng.integers(0, 2**31 - 1)),
      head_width=round(u(0.9, 1.1), 4), head_height=round(u(0.94, 1.06), 4),
      head_depth=round(u(0.94, 1.06), 4),
      jaw_width=round(u(0.85, 1.12), 4), jaw_length=round(u(0.9, 1.1), 4),
      chin_forward=round(u(-1.0, 1.0), 4),
      eye_spacing=round(u(0.92, 1.08), 4), eye_size=round(u(0.88, 1.15), 4),
      eye_height=round(u(-0.03, 0.03), 4), eye_open=round(u(0.8, 1.2), 4),
      eye_tilt=round(u(-0.12, 0.22), 4),
      nose_length=round(u(0.85, 1.15), 4), nose_width=round(u(0.8, 1.25), 4),
      nose_depth=round(u(0.8, 1.2), 4),
      mouth_width=round(u(0.85, 1.15), 4), mouth_height=round(u(-1.0, 1.0), 4),
      lip_thickness=round(u(0.7, 1.35), 4), ear_size=round(u(0.85, 1.15), 4),
      brow_height=round(u(-1.0, 1.0), 4), brow_thickness=round(u(0.6, 1.5), 4),
      brow_arch=round(u(0.0, 1.0), 4), brow_color=brow,
      skin_color=skin, lip_color=lip, blush=round(u(0.0, 1.0), 4),
      iris_color=_jitter(rng, _choice(rng, _IRIS_COLORS), 0.12),
      hair_color=hair, hair_style=style, hair_volume=round(u(0.8, 1.25), 4),
      hairline=round(u(-1.0, 1.0), 4), beard=beard,
      glasses=glasses, glasses_color=_random_color(rng, 0.02, 0.7),
      glasses_shape=round(u(2.0, 5.0), 4),
      hat=hat, hat_color=_random_color(rng, 0.05, 0.9),
      earrings=earrings, earring_color=_jitter(rng, metal, 0.05),
      clothing_color=_random_color(rng, 0.05, 0.9), clothing_color2=_random_color(rng, 0.05, 0.95),
      clothing_pattern=int(rng.choice(3, p=[0.55, 0.25, 0.2])),
      background=int(rng.integers(len(BACKGROUNDS))), bg_colors=bg_colors,
      bg_angle=round(u(0.0, 2 * math.pi), 4), bg_scale=round(u(0.5, 2.0), 4),
      light_azimuth=round(u(-0.8, 0.8), 4), light_elevation=round(u(0.1, 0.7), 4),
      ambient=round(u(0.38, 0.55), 4), light_warmth=round(u(-1.0, 1.0), 4))


def identity_to_dict(identity: Identity) -> dict:
  """The identity as a dict of plain values (JSON turns its tuples into lists)."""
  return dataclasses.asdict(identity)


def _tuplify(value: Any) -> Any:
  if isinstance(value, (list, tuple)):
    return tuple(_tuplify(v) for v in value)
  return value


def identity_from_dict(d: Mapping[str, Any]) -> Identity:
  """Inverse of `identity_to_dict` (accepts lists where the identity has tuples)."""
  names = {f.name for f in dataclasses.fields(Identity)}
  unknown = set(d) - names
  if unknown:
    raise ValueError(f"unknown identity fields {sorted(unknown)}")
  return Identity(**{k: _tuplify(v) for k, v in d.items()})
