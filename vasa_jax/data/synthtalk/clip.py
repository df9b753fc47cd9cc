"""One SynthTalk clip, deterministic in (seed, split, index): speech, motion, rendered frames, labels.

Identities belong to one split: clip `index` of a split shows identity `index // clips_per_identity` of
that split, drawn from a generator seeded by (seed, split, identity), and the three splits draw from
different seeds. Each identity keeps its voice across its clips. The example returned is in the dataset
schema that real-video preparation writes too (data/README.md).
"""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np

from vasa_jax.data import schema
from vasa_jax.data.synthtalk import motion, render, sentences, speech
from vasa_jax.rates import FPS

SPLITS = ("train", "validation", "test")
SAMPLES_PER_FRAME = schema.SAMPLES_PER_FRAME
LANDMARK_NAMES = schema.LANDMARK_NAMES
_SPLIT_STREAM = {"train": 0, "validation": 1, "test": 2}


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """How clips are made; a dataset config fixes one."""

  resolution: int = 128
  clips_per_identity: int = 4
  jpeg_quality: int = 95
  # Silence before and after the sentence, seconds (a range; drawn per clip).
  lead_silence: tuple[float, float] = (0.15, 0.5)
  tail_silence: tuple[float, float] = (0.2, 0.6)


def identity_of(seed: int, split: str, index: int, spec: ClipSpec) -> tuple[str, render.Identity,
                                                                              dict]:
  """(identity id, its look, its voice) for clip `index` of `split`."""
  number = index // spec.clips_per_identity
  rng = np.random.default_rng([seed, _SPLIT_STREAM[split], 1, number])
  look = render.sample_identity(rng)
  voice = dict(voice=speech.VOICES[rng.integers(len(speech.VOICES))],
               rate=int(rng.integers(135, 185)), pitch=int(rng.integers(30, 71)))
  return f"{split}-{number:06d}", look, voice


def generate_clip(seed: int, split: str, index: int, spec: ClipSpec) -> dict:
  """Makes clip `index` of `split`.

  Returns:
    An example of the dataset schema: "frames" (list of [T] JPEG bytes), "audio" (int16
    [T * 640] at 16 kHz), "labels" ({name: float32 [T]}), "viseme" (int32 [T]), "landmarks"
    (float32 [T, 6, 2], pixel coordinates divided by the resolution), and "meta" (clip metadata).
  """
  if split not in _SPLIT_STREAM:
    raise ValueError(f"unknown split {split!r}; SynthTalk splits are {SPLITS}")
  identity_id, look, voice = identity_of(seed, split, index, spec)
  rng = np.random.default_rng([seed, _SPLIT_STREAM[split], 0, index])
  text = sentences.sentence_for(split, rng)
  utterance = speech.synthesize(text, **voice)

  lead = rng.uniform(*spec.lead_silence)
  lead_samples = int(round(lead * speech.SAMPLE_RATE))
  total = lead_samples + len(utterance.audio) + int(rng.uniform(*spec.tail_silence)
                                                    * speech.SAMPLE_RATE)
  num_frames = -(-total // SAMPLES_PER_FRAME)
  audio = np.zeros(num_frames * SAMPLES_PER_FRAME, np.float32)
  audio[lead_samples:lead_samples + len(utterance.audio)] = utterance.audio
  shift = lead_samples / speech.SAMPLE_RATE
  phonemes = [dataclasses.replace(p, start=p.start + shift, end=p.end + shift)
              for p in utterance.phonemes]
  words = [dataclasses.replace(w, start=w.start + shift, end=w.end + shift)
           for w in utterance.words]

  face = motion.clip_motion(phonemes, words, num_frames, rng)
  state = motion.render_state(face["labels"])
  frames = render.render_frames(look, state, spec.resolution)
  points = render.landmarks_3d(look)
  points = np.stack([points[name] for name in LANDMARK_NAMES])
  landmarks = np.stack([
      render.project(look, {k: v[t] for k, v in state.items()}, points, spec.resolution)
      for t in range(num_frames)]) / spec.resolution

  encode = [int(cv2.IMWRITE_JPEG_QUALITY), spec.jpeg_quality]
  jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), encode)[1].tobytes()
           for f in frames]
  return {
      "frames": jpegs,
      "audio": (np.clip(audio, -1, 1) * 32767).round().astype(np.int16),
      "labels": face["labels"],
      "viseme": face["viseme"],
      "landmarks": landmarks.astype(np.float32),
      "meta": {
          "clip_id": f"{split}-{index:07d}",
          "identity": identity_id,
          "source": "synthtalk",
          "text": text,
          "fps": FPS,
          "sample_rate": speech.SAMPLE_RATE,
          "resolution": spec.resolution,
          "num_frames": num_frames,
          "emotion": motion.EMOTIONS.index(face["emotion"]),
          "gaze": face["gaze"],
          "distance": np.float32(face["distance"]),
          "details": json.dumps({
              "voice": voice, "identity": render.identity_to_dict(look),
              "phonemes": [[round(p.start, 4), round(p.end, 4), p.symbol, p.stress]
                           for p in phonemes],
              "words": [[round(w.start, 4), round(w.end, 4), w.text] for w in words]}),
      },
  }


def decode_frames(jpegs, indices=None) -> np.ndarray:
  """JPEG frames to uint8 RGB [len(indices), H, W, 3] (all frames when `indices` is None)."""
  chosen = jpegs if indices is None else [jpegs[int(i)] for i in indices]
  return np.stack([cv2.cvtColor(cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR),
                                cv2.COLOR_BGR2RGB) for j in chosen])
