"""Per-frame face motion of a SynthTalk clip: head pose tied to the speech, blinks, gaze, distance, emotion.

Everything here is a deterministic function of the phoneme events and a random generator, so the
ground truth of every frame is known exactly. What ties the head to the speech: a nod (pitch pulse)
and a small brow raise on each primary-stressed syllable, a turn (smoothed yaw step) at each phrase
boundary, and an idle sway that grows in pauses. Each clip has one main gaze direction with saccades
around it, one head distance that drifts slowly, and one emotion that shifts brows and mouth corners.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vasa_jax.data import schema
from vasa_jax.data.synthtalk import visemes
from vasa_jax.rates import FPS

EMOTIONS = schema.EMOTIONS
# Emotion -> (brow_raise, smile, jaw_open) offsets added to the speech-driven face.
EMOTION_OFFSETS = {
    "neutral": (0.0, 0.0, 0.0),
    "happy": (0.25, 0.75, 0.03),
    "angry": (-0.8, -0.45, 0.0),
    "surprised": (0.9, 0.05, 0.12),
}
LABEL_NAMES = schema.LABEL_NAMES
# A pause this long between words (seconds) is a phrase boundary.
PHRASE_GAP = 0.12


def _smooth_noise(rng: np.random.Generator, num_frames: int, cutoff_hz: float) -> np.ndarray:
  """Unit-variance noise with no energy above `cutoff_hz` (a Gaussian low-pass over white noise)."""
  pad = int(3 * FPS / cutoff_hz)
  white = rng.standard_normal(num_frames + 2 * pad)
  sigma = FPS / (2 * np.pi * cutoff_hz)
  taps = np.arange(-3 * int(sigma + 1), 3 * int(sigma + 1) + 1)
  kernel = np.exp(-0.5 * (taps / sigma) ** 2)
  smooth = np.convolve(white, kernel / kernel.sum(), mode="same")[pad:pad + num_frames]
  return smooth / (smooth.std() + 1e-8)


def _pulse(times: np.ndarray, at: float, rise: float, fall: float) -> np.ndarray:
  """A smooth bump starting at `at`: peaks `rise` seconds later and decays over `fall` seconds."""
  t = times - at
  shape = np.where(t > 0, (t / rise) * np.exp(1.0 - t / rise), 0.0)
  return np.where(t > rise, np.exp(-((t - rise) / fall) ** 2), shape)


def _smoothed_steps(times: np.ndarray, at: Sequence[float], values: Sequence[float],
                    settle: float) -> np.ndarray:
  """A piecewise-constant signal whose steps at `at` ease in over `settle` seconds (smoothstep)."""
  out = np.zeros_like(times)
  previous = 0.0
  for when, value in zip(at, values):
    s = np.clip((times - when) / settle, 0.0, 1.0)
    out += (value - previous) * s * s * (3 - 2 * s)
    previous = value
  return out


def speaking_mask(phonemes: Sequence, num_frames: int) -> np.ndarray:
  """1.0 on frames whose centre falls inside a phoneme, else 0.0: float32 [num_frames]."""
  centres = (np.arange(num_frames) + 0.5) / FPS
  mask = np.zeros(num_frames, np.float32)
  for p in phonemes:
    if p.symbol != "_":
      mask[(centres >= p.start) & (centres < p.end)] = 1.0
  return mask


def phrase_boundaries(words: Sequence) -> list[float]:
  """Times (seconds) where a new phrase starts: the first word and every word after a pause."""
  starts = [words[0].start] if words else []
  for before, after in zip(words, words[1:]):
    if after.start - before.end >= PHRASE_GAP or before.text.rstrip().endswith((",", ".", "?", "!")):
      starts.append(after.start)
  return starts


def clip_motion(phonemes: Sequence, words: Sequence, num_frames: int,
                rng: np.random.Generator) -> dict:
  """All per-frame labels of one clip, and the per-clip conditions.

  Args:
    phonemes, words: the speech events (`speech.Phoneme`, `speech.Word`), in seconds of the clip.
    num_frames: frames of the clip at 25 fps.
    rng: this clip's generator; the result is a deterministic function of its state.

  Returns:
    {"labels": {name: float32 [num_frames]} for every name of LABEL_NAMES,
     "viseme": int32 [num_frames], "speaking": float32 [num_frames],
     "emotion": str, "gaze": float32 [2] (main theta, phi), "distance": float (mean)}.
    Angles are radians; gaze is the eyes' direction as seen by the camera (head pose included).
  """
  times = np.arange(num_frames) / FPS
  speaking = speaking_mask(phonemes, num_frames)
  # Pauses widen the sway; the mask is blurred so sway does not switch on abruptly.
  pause = 1.0 - np.convolve(speaking, np.ones(9) / 9, mode="same")
  intensity = rng.uniform(0.6, 1.4)

  base = dict(yaw=rng.uniform(-0.25, 0.25), pitch=rng.uniform(-0.1, 0.1),
              roll=rng.uniform(-0.06, 0.06))
  stressed = [p.start for p in phonemes if p.stress >= 2 and p.symbol != "_"]
  nods = sum((_pulse(times, t, 0.12, 0.25) * rng.uniform(0.03, 0.08) for t in stressed),
             np.zeros(num_frames))
  turns_at = phrase_boundaries(words)
  turns = _smoothed_steps(times, turns_at, rng.normal(0.0, 0.12, len(turns_at)), settle=0.4)
  sway = {k: _smooth_noise(rng, num_frames, 0.4) * (0.012 + 0.03 * pause) for k in base}

  yaw = base["yaw"] + intensity * (turns + sway["yaw"])
  pitch = base["pitch"] + intensity * (-nods + sway["pitch"])
  roll = base["roll"] + intensity * (0.15 * turns + 0.6 * sway["roll"])

  distance_mean = rng.uniform(0.85, 1.25)  # Nearer crops the chin of long faces.
  distance = distance_mean * (1.0 + 0.02 * _smooth_noise(rng, num_frames, 0.15))
  tx = rng.uniform(-0.04, 0.04) + 0.06 * (yaw - base["yaw"]) + 0.005 * _smooth_noise(
      rng, num_frames, 0.3)
  ty = rng.uniform(-0.03, 0.03) - 0.04 * (pitch - base["pitch"]) + 0.005 * _smooth_noise(
      rng, num_frames, 0.3)

  gaze_main = np.array([rng.uniform(-0.35, 0.35), rng.uniform(-0.2, 0.2)], np.float32)
  gaze = np.repeat(gaze_main[None], num_frames, axis=0)
  end = num_frames / FPS
  t = rng.uniform(0.3, 1.5)
  while t < end:
    gaze[times >= t] = gaze_main + rng.normal(0.0, [0.07, 0.04])
    t += rng.uniform(0.5, 2.0)

  blink = np.zeros(num_frames)
  t = rng.uniform(0.2, 2.5)
  while t < end:
    close, hold, reopen = 0.06, rng.uniform(0.0, 0.05), rng.uniform(0.1, 0.16)
    rel = times - t
    shape = np.where(rel < 0, 0.0, np.where(rel < close, rel / close, np.where(
        rel < close + hold, 1.0, 1.0 - (rel - close - hold) / reopen)))
    blink = np.maximum(blink, np.clip(shape, 0.0, 1.0))
    t += max(0.8, rng.exponential(3.0))

  emotion = EMOTIONS[rng.integers(len(EMOTIONS))]
  brow_offset, smile_offset, jaw_offset = EMOTION_OFFSETS[emotion]
  emphasis = sum((_pulse(times, t, 0.1, 0.2) for t in stressed), np.zeros(num_frames))
  mouth = visemes.mouth_tracks(phonemes, num_frames, fps=FPS)
  smile = np.clip(smile_offset + 0.05 * _smooth_noise(rng, num_frames, 0.3), -1, 1)
  labels = dict(
      yaw=yaw, pitch=pitch, roll=roll, tx=tx, ty=ty, scale=1.0 / distance, distance=distance,
      gaze_theta=gaze[:, 0], gaze_phi=gaze[:, 1], blink=blink,
      jaw_open=np.clip(mouth["jaw_open"] + jaw_offset, 0, 1),
      lip_width=np.clip(mouth["lip_width"] + 0.12 * smile, 0, 1),
      lip_round=mouth["lip_round"],
      brow_raise=np.clip(brow_offset + 0.25 * intensity * emphasis, -1, 1),
      smile=smile)
  return {"labels": {k: np.asarray(labels[k], np.float32) for k in LABEL_NAMES},
          "viseme": mouth["viseme"].astype(np.int32), "speaking": speaking,
          "emotion": emotion, "gaze": gaze_main, "distance": float(distance_mean)}


def render_state(labels: dict) -> dict:
  """The renderer's face state from the labels: eye rotation is gaze relative to the head."""
  state = {k: labels[k] for k in ("yaw", "pitch", "roll", "tx", "ty", "scale", "blink", "jaw_open",
                                   "lip_width", "lip_round", "brow_raise", "smile")}
  state["gaze_theta"] = labels["gaze_theta"] - labels["yaw"]
  state["gaze_phi"] = labels["gaze_phi"] - labels["pitch"]
  return state
