"""Head motion, blinks, gaze and emotion of a clip, from made-up phoneme events."""

import dataclasses

import numpy as np

from vasa_jax.data import schema
from vasa_jax.data.synthtalk import motion, sentences


@dataclasses.dataclass(frozen=True)
class Event:
  start: float
  end: float
  symbol: str
  stress: int = 0
  word: int = 0
  text: str = ""


def speech_events():
  """Two phrases: 0.2-1.4 s and 2.4-3.6 s, a stressed vowel at 0.5 s and 2.9 s."""
  phonemes, words = [], []
  for phrase_start in (0.2, 2.4):
    for k in range(12):
      start = phrase_start + 0.1 * k
      stress = 2 if k == 3 else 0
      phonemes.append(Event(start, start + 0.1, "a" if k % 2 else "t", stress, len(words)))
    words.append(Event(phrase_start, phrase_start + 1.2, "", text="phrase."))
  return phonemes, words


def test_labels_cover_every_frame_and_are_deterministic():
  phonemes, words = speech_events()
  a = motion.clip_motion(phonemes, words, 100, np.random.default_rng(7))
  b = motion.clip_motion(phonemes, words, 100, np.random.default_rng(7))
  assert set(a["labels"]) == set(schema.LABEL_NAMES)
  for name in schema.LABEL_NAMES:
    assert a["labels"][name].shape == (100,) and a["labels"][name].dtype == np.float32
    np.testing.assert_array_equal(a["labels"][name], b["labels"][name])
  np.testing.assert_allclose(a["labels"]["scale"] * a["labels"]["distance"], 1.0, rtol=1e-6)
  assert a["emotion"] in schema.EMOTIONS


def test_head_moves_more_in_speech_than_it_would_still_and_sways_smoothly():
  phonemes, words = speech_events()
  labels = motion.clip_motion(phonemes, words, 100, np.random.default_rng(1))["labels"]
  for name in ("yaw", "pitch", "roll"):
    velocity = np.abs(np.diff(labels[name]))
    assert velocity.max() < 0.05, f"{name} jumps {velocity.max():.3f} rad in one frame"
    assert np.ptp(labels[name]) > 0.005


def test_nods_follow_stressed_syllables():
  """Averaged over clips, pitch dips in the 0.1-0.3 s after each stressed syllable."""
  phonemes, words = speech_events()
  quiet = [dataclasses.replace(p, stress=0) for p in phonemes]
  dips = []
  for seed in range(20):
    stressed = motion.clip_motion(phonemes, words, 100, np.random.default_rng(seed))["labels"]
    flat = motion.clip_motion(quiet, words, 100, np.random.default_rng(seed))["labels"]
    dips.append((flat["pitch"] - stressed["pitch"])[[15, 16, 70, 71]].mean())
  assert np.mean(dips) > 0.02


def test_blinks_are_brief_and_gaze_stays_near_its_main_direction():
  phonemes, words = speech_events()
  out = motion.clip_motion(phonemes, words, 250, np.random.default_rng(3))
  blink = out["labels"]["blink"]
  assert blink.min() >= 0 and blink.max() <= 1
  closed = blink > 0.5
  assert closed.mean() < 0.15
  gaze = np.stack([out["labels"]["gaze_theta"], out["labels"]["gaze_phi"]], -1)
  assert np.abs(gaze - out["gaze"]).mean() < 0.12


def test_emotion_shifts_brows_and_mouth_corners():
  phonemes, words = speech_events()
  by_emotion = {}
  for seed in range(40):
    out = motion.clip_motion(phonemes, words, 50, np.random.default_rng(seed))
    by_emotion.setdefault(out["emotion"], []).append(
        (out["labels"]["brow_raise"].mean(), out["labels"]["smile"].mean()))
  assert set(by_emotion) == set(schema.EMOTIONS)
  mean = {k: np.mean(v, axis=0) for k, v in by_emotion.items()}
  assert mean["happy"][1] > mean["neutral"][1] + 0.4 > mean["angry"][1] + 0.4
  assert mean["surprised"][0] > mean["neutral"][0] + 0.5 > mean["angry"][0] + 0.5


def test_render_state_makes_gaze_relative_to_the_head():
  phonemes, words = speech_events()
  labels = motion.clip_motion(phonemes, words, 30, np.random.default_rng(0))["labels"]
  state = motion.render_state(labels)
  np.testing.assert_allclose(state["gaze_theta"] + labels["yaw"], labels["gaze_theta"], atol=1e-6)


def test_held_out_sentences_never_appear_in_training():
  rng = np.random.default_rng(0)
  train = {sentences.training_sentence(rng) for _ in range(3000)}
  assert len(train) > 2500
  assert not train & set(sentences.VALIDATION_SENTENCES)
  assert not train & set(sentences.TEST_SENTENCES)
  assert not set(sentences.VALIDATION_SENTENCES) & set(sentences.TEST_SENTENCES)
