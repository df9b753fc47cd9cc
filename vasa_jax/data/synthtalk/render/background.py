"""The backdrop behind the head, one per identity and resolution."""

from __future__ import annotations

import functools
import math

import numpy as np

from vasa_jax.data.synthtalk.render.identity import BACKGROUNDS, Identity


@functools.lru_cache(maxsize=8)
def backdrop(ident: Identity, res: int) -> np.ndarray:
  """The identity's backdrop, float32 [res, res, 3] (read-only; callers copy)."""
  g = (np.arange(res, dtype=np.float32) + 0.5) * (2.0 / res) - 1.0
  u, v = g[None, :], g[:, None]
  c = [np.asarray(k, np.float32) for k in ident.bg_colors]
  kind = BACKGROUNDS[ident.background]
  ca, sa = math.cos(ident.bg_angle), math.sin(ident.bg_angle)
  along = u * ca + v * sa
  rng = np.random.default_rng(ident.seed)
  if kind == "gradient":
    t = np.clip(0.5 + 0.5 * along, 0, 1)[..., None]
    img = c[0] * (1 - t) + c[1] * t
  elif kind == "blobs":
    img = np.broadcast_to(c[0], (res, res, 3)).copy()
    for i in range(6):
      px, py = rng.uniform(-1, 1, 2)
      r = rng.uniform(0.2, 0.6) * ident.bg_scale ** 0.5
      a = np.exp(-((u - px) ** 2 + (v - py) ** 2) / (r * r))[..., None] * 0.85
      img = img * (1 - a) + c[1 + i % 2] * a
  elif kind == "stripes":
    t = np.clip(np.sin(along * (6.0 * ident.bg_scale) * math.pi) * 3.0, -1, 1)[..., None]
    img = c[0] * (0.5 - 0.5 * t) + c[1] * (0.5 + 0.5 * t)
    img = img * (0.9 + 0.1 * np.clip(0.5 + 0.5 * (u * sa - v * ca), 0, 1)[..., None])
  elif kind == "radial":
    cx, cy = rng.uniform(-0.5, 0.5, 2)
    t = np.clip(np.sqrt((u - cx) ** 2 + (v - cy) ** 2) / (1.2 * ident.bg_scale ** 0.5), 0, 1)
    img = c[0] * (1 - t[..., None]) + c[1] * t[..., None]
  elif kind == "room":
    horizon = rng.uniform(0.2, 0.7)
    wall = c[0] * (0.85 + 0.15 * np.clip(0.5 - 0.5 * v, 0, 1))[..., None]
    img = np.where((v > horizon)[..., None], c[1] * (0.8 + 0.2 * (1 - v))[..., None], wall)
    wx, wy = rng.uniform(-0.9, 0.3), rng.uniform(-0.9, -0.2)
    ww, wh = rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.6)
    win = (u > wx) & (u < wx + ww) & (v > wy) & (v < min(wy + wh, horizon))
    bar = win & ((np.abs(u - wx - ww / 2) < 0.015) | (np.abs(v - wy - wh / 2) < 0.015))
    img = np.where(win[..., None], c[2] * 0.5 + 0.5, img)
    img = np.where(bar[..., None], c[0] * 0.6, img)
  else:
    k = 3.0 * ident.bg_scale
    cu, cv = np.floor(k * (u * ca - v * sa)), np.floor(k * (u * sa + v * ca))
    t = (np.mod(cu + cv, 2.0))[..., None]
    img = c[0] * (1 - t) + (c[0] * 0.6 + c[1] * 0.4) * t
  img = np.clip(img, 0, 1).astype(np.float32)
  img.setflags(write=False)
  return img
