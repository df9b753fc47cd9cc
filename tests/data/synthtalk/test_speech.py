"""espeak-ng speech with phoneme timings, and the mouth motion derived from them."""

import hashlib
import importlib.util
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import PYTHON, REPO, subprocess_env
from vasa_jax.data.synthtalk import speech, visemes
from vasa_jax.errors import UserError

needs_espeak = pytest.mark.skipif(importlib.util.find_spec("espeakng_loader") is None,
                                  reason="espeakng-loader is not installed")

GREETING = "Hello there. How are you?"
LABIALS = "A papa bought a map. Ma, ah!"


@pytest.fixture(scope="module")
def greeting():
  return speech.synthesize(GREETING)


@pytest.fixture(scope="module")
def labials():
  return speech.synthesize(LABIALS)


def rms(audio, start, end):
  """RMS of 16 kHz audio between two times in seconds."""
  segment = audio[int(round(start * speech.SAMPLE_RATE)):int(round(end * speech.SAMPLE_RATE))]
  return float(np.sqrt(np.mean(segment.astype(np.float64) ** 2))) if len(segment) else 0.0


def loudest(utterance):
  return max(rms(utterance.audio, t, t + 0.02) for t in np.arange(0, utterance.duration, 0.02))


def fingerprint(utterance):
  timings = repr((utterance.phonemes, utterance.words)).encode()
  return hashlib.sha256(utterance.audio.tobytes() + timings).hexdigest()


def frame_count(utterance, extra=0):
  return int(np.ceil(utterance.duration * visemes.FPS)) + extra


@needs_espeak
def test_same_inputs_give_identical_bytes_and_events(greeting):
  # What was spoken before, in any voice and setting, must leave no trace.
  speech.synthesize("Something else, entirely!", voice="en-gb+m1", rate=300, pitch=80)
  again = speech.synthesize(GREETING)
  assert again.audio.tobytes() == greeting.audio.tobytes()
  assert again.phonemes == greeting.phonemes and again.words == greeting.words


@needs_espeak
def test_another_process_gives_identical_bytes(greeting):
  code = ("from vasa_jax.data.synthtalk import speech\n"
          "from tests.data.synthtalk.test_speech import fingerprint\n"
          f"print(fingerprint(speech.synthesize({GREETING!r})))")
  out = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=subprocess_env(), capture_output=True,
                       text=True, timeout=120, check=True)
  assert out.stdout.strip() == fingerprint(greeting)


@needs_espeak
def test_voice_rate_and_pitch_change_the_audio(greeting):
  others = [speech.synthesize(GREETING, voice="en-gb+f1"), speech.synthesize(GREETING, rate=220),
            speech.synthesize(GREETING, pitch=70)]
  for other in others:
    assert other.audio.tobytes() != greeting.audio.tobytes()
  assert others[1].duration < 0.85 * greeting.duration


@needs_espeak
@pytest.mark.parametrize("voice", speech.VOICES)
def test_every_listed_voice_exists_and_speaks(voice):
  utterance = speech.synthesize("Good morning.", voice=voice)
  assert [w.text for w in utterance.words] == ["Good", "morning"]
  assert utterance.duration > 0.3 and np.abs(utterance.audio).max() > 0.05


@needs_espeak
def test_audio_format_and_duration_agree_with_events(greeting):
  audio = greeting.audio
  assert audio.dtype == np.float32 and audio.ndim == 1
  assert 0.1 < np.abs(audio).max() <= 1.0
  assert greeting.duration == pytest.approx(len(audio) / 16000)
  voiced = np.flatnonzero(np.abs(audio) > 1e-3) / speech.SAMPLE_RATE
  assert abs(greeting.phonemes[-1].end - voiced[-1]) < 0.1
  assert abs(greeting.phonemes[0].start - voiced[0]) < 0.05


@needs_espeak
def test_events_are_ordered_and_every_word_has_phonemes(greeting, labials):
  for utterance in (greeting, labials):
    phonemes = utterance.phonemes
    for p in phonemes:
      assert 0.0 <= p.start <= p.end <= utterance.duration
      assert p.symbol and not p.symbol.startswith("_") and p.stress in (0, 1, 2)
    for a, b in zip(phonemes, phonemes[1:]):
      assert a.end <= b.start and a.word <= b.word
    for i, word in enumerate(utterance.words):
      own = [p for p in phonemes if p.word == i]
      assert own and word.start == own[0].start and word.end == own[-1].end
  assert [w.text for w in greeting.words] == ["Hello", "there", "How", "are", "you"]
  assert [p.symbol for p in greeting.phonemes[:4]] == ["h", "@", "l", "oU"]
  assert greeting.phonemes[3].stress == 2 and greeting.phonemes[1].stress == 0


@needs_espeak
def test_numbers_and_contractions_make_one_word_each():
  utterance = speech.synthesize("I'm 42.")
  assert [w.text for w in utterance.words] == ["I'm", "42"]
  # espeak-ng says "forty two" as two words; both belong to the token "42".
  assert len([p for p in utterance.phonemes if p.word == 1]) >= 6


@needs_espeak
def test_pauses_are_quiet_and_stressed_vowels_loud(greeting):
  peak = loudest(greeting)
  there, how = greeting.words[1], greeting.words[2]
  assert how.start - there.end > 0.15  # the break between the sentences
  assert rms(greeting.audio, there.end + 0.01, how.start - 0.01) < 0.01 * peak
  vowels = [p for p in greeting.phonemes if p.stress == 2]
  assert len(vowels) == 3
  for p in vowels:
    centre = 0.5 * (p.start + p.end)
    assert rms(greeting.audio, centre - 0.01, centre + 0.01) > 0.2 * peak, p


@needs_espeak
def test_stops_start_with_their_closure(labials):
  # A voiceless stop starts with the silence of its closure and ends after its release.
  peak = loudest(labials)
  stops = [(p, q) for p, q in zip(labials.phonemes, labials.phonemes[1:]) if p.symbol == "p"]
  assert len(stops) == 3
  for p, following in stops:
    assert p.end - p.start > 0.05
    assert rms(labials.audio, p.start, p.start + 0.02) < 0.01 * peak, p
    if following.start == p.end:
      assert rms(labials.audio, p.end - 0.02, p.end + 0.03) > 0.02 * peak, p


@needs_espeak
def test_viseme_track_follows_the_phonemes(greeting, labials):
  for utterance in (greeting, labials):
    track = visemes.mouth_tracks(utterance.phonemes, frame_count(utterance))["viseme"]
    for p in utterance.phonemes:
      if p.end - p.start >= 1 / visemes.FPS:
        frame = int((p.start + p.end) / 2 * visemes.FPS)
        assert track[frame] == visemes.viseme_for(p.symbol), p
  track = visemes.mouth_tracks(greeting.phonemes, frame_count(greeting))["viseme"]
  pause = int((greeting.words[1].end + greeting.words[2].start) / 2 * visemes.FPS)
  assert track[pause] == 0


@needs_espeak
def test_lips_close_on_bilabials_and_open_on_ah(labials):
  num_frames = frame_count(labials, extra=10)
  tracks = visemes.mouth_tracks(labials.phonemes, num_frames)
  centres = (np.arange(num_frames) + 0.5) / visemes.FPS
  closures, opens = [], []
  for p in labials.phonemes:
    jaw = tracks["jaw_open"][(centres >= p.start) & (centres < p.end)]
    if p.symbol in ("p", "b", "m"):
      closures.append(jaw.min())
    if p.symbol in ("A:", "a") and p.stress == 2:
      opens.append(jaw.max())
  assert len(closures) == 6 and max(closures) < 0.08
  assert len(opens) >= 3 and min(opens) > 0.6
  for name in ("jaw_open", "lip_width", "lip_round"):
    assert tracks[name].dtype == np.float32 and tracks[name].shape == (num_frames,)
    assert 0.0 <= tracks[name].min() and tracks[name].max() <= 1.0
  assert tracks["viseme"].dtype == np.int32 and tracks["viseme"].shape == (num_frames,)
  # After the speech the mouth relaxes to the closed neutral shape.
  np.testing.assert_allclose([tracks[k][-3:] for k in ("jaw_open", "lip_width", "lip_round")],
                             [[0] * 3, [0.5] * 3, [0] * 3], atol=0.02)


def test_silence_is_the_closed_neutral_mouth():
  tracks = visemes.mouth_tracks([], 5)
  np.testing.assert_array_equal(tracks["jaw_open"], np.zeros(5, np.float32))
  np.testing.assert_array_equal(tracks["lip_width"], np.full(5, 0.5, np.float32))
  np.testing.assert_array_equal(tracks["lip_round"], np.zeros(5, np.float32))
  np.testing.assert_array_equal(tracks["viseme"], np.zeros(5, np.int32))
  assert visemes.mouth_tracks([], 0)["jaw_open"].shape == (0,)


def test_rounded_and_spread_vowels():
  seq = [speech.Phoneme(0.1, 0.3, "u:", 2, 0), speech.Phoneme(0.5, 0.7, "i:", 2, 1)]
  tracks = visemes.mouth_tracks(seq, 25)
  assert tracks["lip_round"][5] > 0.7 and tracks["lip_width"][5] < 0.35  # 0.22 s: "oo"
  assert tracks["lip_round"][15] < 0.1 and tracks["lip_width"][15] > 0.7  # 0.62 s: "ee"
  index = visemes.VISEMES.index
  assert list(tracks["viseme"][[0, 5, 10, 15, 20]]) == [0, index("U"), 0, index("I"), 0]


def test_viseme_table():
  assert visemes.VISEMES[0] == "silence"
  assert set(visemes.VISEME_TARGETS) == set(visemes.VISEMES)
  for target in visemes.VISEME_TARGETS.values():
    assert all(0 <= value <= 1 for value in target)
  index = visemes.VISEMES.index
  assert {visemes.viseme_for(s) for s in ("p", "b", "m")} == {index("PP")}
  assert visemes.viseme_for("'A:") == visemes.viseme_for("A:") == index("aa")
  assert visemes.viseme_for("aI") == index("aa") and visemes.viseme_for("oU") == index("O")
  assert visemes.viseme_for("tS") == visemes.viseme_for("S") == index("CH")
  assert visemes.viseme_for("_:") == visemes.viseme_for("_") == 0
  assert visemes.viseme_for("I2#") == index("I")
  assert visemes.viseme_for("l/3") == index("NN")  # not listed: its known prefix "l/"


@needs_espeak
def test_every_phoneme_espeak_speaks_is_in_the_viseme_table():
  text = ("Understanding information technology requires patience, curiosity and a remarkable "
          "thirst for knowledge. The quick brown fox jumps over the lazy dog; she measures the "
          "pleasure of June's judge. Button, bottle, little, water, church, rhythm, million, you, "
          "yes, why, oil, ear, air, tour, fire, hour.")
  for voice in ("en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029"):
    for p in speech.synthesize(text, voice=voice).phonemes:
      assert p.symbol in visemes._TABLE, (voice, p.symbol)  # pylint: disable=protected-access


@needs_espeak
def test_mouth_tracks_are_fast():
  utterance = speech.synthesize("The quick brown fox jumps over the lazy dog. " * 3)
  num_frames = frame_count(utterance)
  start = time.perf_counter()
  for _ in range(10):
    visemes.mouth_tracks(utterance.phonemes, num_frames)
  assert (time.perf_counter() - start) / 10 < 0.01


@pytest.mark.parametrize("kwargs, message", [
    (dict(text=""), "non-empty"),
    (dict(text="   "), "non-empty"),
    (dict(text="hi", rate=10), "rate 10 is out of range"),
    (dict(text="hi", rate=450), "rate 450 is out of range"),
    (dict(text="hi", rate=1.5), "rate must be an integer"),
    (dict(text="hi", pitch=101), "pitch 101 is out of range"),
    (dict(text="hi", pitch=-1), "pitch -1 is out of range"),
])
def test_bad_arguments_raise_user_errors(kwargs, message):
  with pytest.raises(UserError, match=message):
    speech.synthesize(**kwargs)


@needs_espeak
@pytest.mark.parametrize("voice, message", [("xx-nowhere", "no voice"),
                                            ("en-us+nobody", "no voice variant"),
                                            ("en us", "voice must be")])
def test_unknown_voices_raise_user_errors(voice, message):
  with pytest.raises(UserError, match=message):
    speech.synthesize("hi", voice=voice)


@needs_espeak
def test_text_without_words_raises_a_user_error():
  with pytest.raises(UserError, match="nothing espeak-ng can speak"):
    speech.synthesize(" . ")


def test_missing_espeakng_loader_gives_the_install_command(monkeypatch):
  monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # the import now fails
  monkeypatch.setattr(speech, "_ENGINE", speech._Engine())  # pylint: disable=protected-access
  hint = r"pip install espeakng-loader .*pip install -e '\.\[synthtalk\]'"
  with pytest.raises(UserError, match=hint):
    speech.synthesize("hello")
