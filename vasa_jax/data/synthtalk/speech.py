"""Speech with phoneme and word timings, synthesized by espeak-ng through its C API.

`synthesize(text)` returns 16 kHz mono audio together with the time span of every phoneme and
word, taken from the events espeak-ng emits while it generates the waveform: the timings are exact,
not estimated by an aligner. SynthTalk derives its lip motion from them (see `visemes.py`).

espeak-ng is GPL-3.0 and an optional dependency: `pip install -e '.[synthtalk]'` installs
`espeakng-loader` (the shared library and its data). It is imported only inside the functions that
use it.

From events to timings:

* espeak-ng renders at 22050 Hz. Every event carries `sample`, its exact position in that output,
  and all times come from it (`audio_position` is the same position in whole milliseconds). Times
  are seconds from the first sample of the returned audio: no silence is trimmed, and none is added
  (the pause espeak-ng can append after the last sentence is off). The audio is resampled to 16 kHz
  with a zero-phase polyphase filter, so a time is the same instant at both sample rates.
* espeak-ng emits a phoneme's event after the silence that precedes it (the closure of a stop, a
  short gap at a word boundary), so the event marks the release, not the start of the gesture. A
  phoneme therefore starts where the run of silence ending at its event starts, when that silence
  lies in the previous phoneme's span (at rate 160 that silence is 42-53 ms before p t k, 35 ms
  before b, 10-13 ms before other phonemes). After a pause a phoneme starts at its event.
* Pauses (espeak-ng's `_`, `_:`, `||` ... phonemes) are left out: no `Phoneme` covers them, and the
  phoneme before a pause ends where the pause starts. Every other phoneme ends where the next one
  starts, so phonemes are ordered and never overlap. A phoneme can be empty (start == end) where
  espeak-ng folds it into its neighbour, such as the `l` of "sells", voiced within the vowel.
* `Phoneme.stress` comes from the mark espeak-ng puts before syllabic phonemes: `'` (primary or
  emphatic stress) gives 2, `,` (secondary stress, or a full vowel that is not stressed) gives 1,
  no mark gives 0 (unstressed and reduced vowels, and all consonants). `symbol` has no mark.
* Words come from word events. A word's text is the whitespace-separated token of `text` that its
  event points at, without surrounding punctuation; events pointing into one token (espeak-ng says
  "42" as two words) make one `Word`, and words without phonemes are dropped. A word spans its
  phonemes.

espeak-ng keeps state in its wave generator from one call to the next (the phase of its pitch
flutter, its gain control), and `espeak_Terminate` does not reset it: the same text would come out
a few samples different depending on what was said before. So each synthesis runs in a freshly
loaded instance of the library, loaded from a private in-memory copy (about 2 ms), which also keeps
it apart from any other user of espeak-ng in the process. A lock serialises calls, and a child
forked during a synthesis drops the half-used instance. The result depends only on (text, voice,
rate, pitch) and the espeakng-loader version.
"""

from __future__ import annotations

import bisect
import ctypes
import dataclasses
import os
import re
import threading
import unicodedata
from typing import Any

import numpy as np
import scipy.signal

from vasa_jax.errors import UserError
from vasa_jax.rates import SAMPLE_RATE

ESPEAK_SAMPLE_RATE = 22050
# Words per minute. From 450 espeak-ng time-compresses its output afterwards, which the event
# positions do not follow; 400 keeps clear of it.
RATE_RANGE = (80, 400)
PITCH_RANGE = (0, 100)  # espeak-ng's base pitch; 50 is the voice's own

# English voices and variants in the data of espeakng-loader 0.2.4, chosen so that pauses are
# digital silence: variants with echo (f2-f5, m2) or the Klatt synthesiser are left out. "en-gb"
# stands for espeak-ng's voice "en" (British English), which it does not find as "en-gb".
VOICES: tuple[str, ...] = (
    "en-us",
    "en-us+f1",
    "en-us+m3",
    "en-us+belinda",
    "en-us-nyc+m6",
    "en-gb",
    "en-gb+f1",
    "en-gb+m1",
    "en-gb-x-rp",
    "en-gb-x-rp+steph",
    "en-gb-scotland",
    "en-gb-scotland+m4",
    "en-029",
)
_VOICE_ALIASES = {"en-gb": "en"}

_INSTALL_HINT = ("SynthTalk speech needs espeak-ng: pip install espeakng-loader "
                 "(or pip install -e '.[synthtalk]' in a checkout of vasa_jax)")


@dataclasses.dataclass(frozen=True)
class Phoneme:
  """One phoneme of an utterance.

  Attributes:
    start: seconds from the start of the audio.
    end: seconds; the next phoneme's start, or the start of the pause that follows.
    symbol: espeak-ng phoneme mnemonic without stress mark, e.g. "a", "t", "S", "aI", "@L".
    stress: 0 unstressed, 1 secondary, 2 primary (vowels only; see the module docstring).
    word: index into `Utterance.words`.
  """
  start: float
  end: float
  symbol: str
  stress: int
  word: int


@dataclasses.dataclass(frozen=True)
class Word:
  """One word: the span of its phonemes (seconds) and its text, punctuation stripped."""
  start: float
  end: float
  text: str


@dataclasses.dataclass
class Utterance:
  """Synthesized speech and its timings.

  Attributes:
    text: the text spoken.
    audio: float32 [num_samples], mono, SAMPLE_RATE Hz, in [-1, 1].
    phonemes: in time order, non-overlapping; pauses are not listed.
    words: in time order; every word has at least one phoneme.
  """
  text: str
  audio: np.ndarray
  phonemes: list[Phoneme]
  words: list[Word]

  @property
  def duration(self) -> float:
    """Length of the audio in seconds."""
    return len(self.audio) / SAMPLE_RATE


def synthesize(text: str, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> Utterance:
  """Speaks `text` with espeak-ng and returns the audio with its phoneme and word timings.

  Args:
    text: what to say, as plain text (no SSML, no phoneme codes).
    voice: an espeak-ng voice with an optional "+variant", e.g. one of VOICES.
    rate: speaking rate in words per minute, within RATE_RANGE.
    pitch: base pitch on espeak-ng's 0..100 scale (50 is the voice's own), within PITCH_RANGE.

  Returns:
    The utterance, the same for the same arguments.

  Raises:
    UserError: for empty text or text with nothing to say, an unknown voice or variant, a rate or
      pitch out of range, or when espeakng-loader is not installed.
  """
  text = _check_text(text)
  rate = _check_int("rate", rate, RATE_RANGE)
  pitch = _check_int("pitch", pitch, PITCH_RANGE)
  samples, events = _ENGINE.run(text, voice, rate, pitch)
  phonemes, words = _timings(text, samples, events)
  if not phonemes:
    raise UserError(f"text {text!r} has nothing espeak-ng can speak; give it words to say")
  return Utterance(text=text, audio=_resample(samples), phonemes=phonemes, words=words)


def _check_text(text: Any) -> str:
  if not isinstance(text, str) or not text.strip():
    raise UserError(f"text to synthesize must be a non-empty string, got {text!r}")
  # espeak-ng reads control characters as embedded commands or the end of the text. A space in
  # their place keeps every other character where it is, and word events count characters.
  return "".join(" " if unicodedata.category(c) == "Cc" and c not in "\t\n\r" else c
                 for c in text)


def _check_int(name: str, value: Any, bounds: tuple[int, int]) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise UserError(f"speech {name} must be an integer in {bounds[0]}..{bounds[1]}, "
                    f"got {value!r}")
  if not bounds[0] <= value <= bounds[1]:
    raise UserError(f"speech {name} {value} is out of range; use {bounds[0]}..{bounds[1]}")
  return int(value)


# -------------------------------------------------------------------------------------------------
# espeak-ng through ctypes; the declarations follow speak_lib.h (API revision 12).

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000  # report missing data instead of exiting the process
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EE_OK = 0
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_BUFFER_MS = 200
_VERSIONS_KEEPING_VOICE_LIST = frozenset({"1.52.0"})  # see _Engine.run


class _EventId(ctypes.Union):
  _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
  # 40 bytes on LP64: six 4-byte fields, then the pointer at offset 24 and the union at 32.
  _fields_ = [
      ("type", ctypes.c_int),
      ("unique_identifier", ctypes.c_uint),
      ("text_position", ctypes.c_int),  # 1-based character index into the text
      ("length", ctypes.c_int),  # characters, word events only
      ("audio_position", ctypes.c_int),  # ms
      ("sample", ctypes.c_int),  # samples at the native rate since the synthesis started
      ("user_data", ctypes.c_void_p),
      ("id", _EventId),  # phoneme events: the mnemonic, NUL-terminated unless 8 bytes long
  ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))


@dataclasses.dataclass(frozen=True)
class _RawEvent:
  kind: int  # _EVENT_WORD or _EVENT_PHONEME
  sample: int  # position at ESPEAK_SAMPLE_RATE
  text_position: int  # 0-based character index
  name: str  # phoneme mnemonic as emitted, stress mark included; "" for words


def _declare(lib: ctypes.CDLL) -> None:
  lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
  lib.espeak_Initialize.restype = ctypes.c_int
  lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
  lib.espeak_SetSynthCallback.restype = None
  lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
  lib.espeak_SetVoiceByName.restype = ctypes.c_int
  lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
  lib.espeak_SetParameter.restype = ctypes.c_int
  lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                               ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint),
                               ctypes.c_void_p]
  lib.espeak_Synth.restype = ctypes.c_int
  lib.espeak_Synchronize.argtypes = []
  lib.espeak_Synchronize.restype = ctypes.c_int
  lib.espeak_Terminate.argtypes = []
  lib.espeak_Terminate.restype = ctypes.c_int
  lib.espeak_Info.argtypes = [ctypes.c_void_p]
  lib.espeak_Info.restype = ctypes.c_char_p
  lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
  lib.espeak_ListVoices.restype = ctypes.c_void_p


class _Engine:
  """Runs one synthesis at a time, each in a freshly loaded instance of libespeak-ng."""

  def __init__(self) -> None:
    self._lock = threading.Lock()
    self._paths: tuple[str, str] | None = None  # (library to load, espeak-ng-data directory)
    self._image_fd: int | None = None
    self._loaded: ctypes.CDLL | None = None

  def after_fork_in_child(self) -> None:
    # The forking thread may have been mid-synthesis: unload that instance so that the next call
    # starts from a clean one.
    self._lock = threading.Lock()
    if self._loaded is not None:
      _unload(self._loaded)
      self._loaded = None

  def _locate(self) -> tuple[str, str]:
    if self._paths is None:
      try:
        import espeakng_loader  # pylint: disable=import-outside-toplevel
      except ImportError as e:
        raise UserError(_INSTALL_HINT) from e
      library, data = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
      if not os.path.isfile(library):
        raise UserError(f"espeak-ng library {library} is missing; reinstall it: pip install "
                        "--force-reinstall espeakng-loader")
      self._paths = (self._private_copy(library), data)
    return self._paths

  def _private_copy(self, library: str) -> str:
    # The dynamic loader treats a copy as a different library: it is loaded as a separate instance
    # even if something else in the process has espeak-ng's own file loaded, and it unloads fully.
    if not hasattr(os, "memfd_create"):
      return library
    fd = -1
    try:
      fd = os.memfd_create("vasa-espeak-ng", os.MFD_CLOEXEC)
      with open(library, "rb") as source, open(fd, "wb", closefd=False) as image:
        image.write(source.read())
      path = f"/proc/self/fd/{fd}"
      _unload(ctypes.CDLL(path))
    except OSError:
      if fd >= 0:
        os.close(fd)
      return library
    self._image_fd = fd  # open for the life of the process and of forked children
    return path

  def run(self, text: str, voice: str, rate: int,
          pitch: int) -> tuple[np.ndarray, list[_RawEvent]]:
    """Returns int16 samples at ESPEAK_SAMPLE_RATE and the word and phoneme events, in order."""
    with self._lock:
      library, data = self._locate()
      name = _check_voice(voice, data)
      chunks: list[bytes] = []
      events: list[_RawEvent] = []

      def on_audio(wav, num_samples, event_list):
        if wav and num_samples > 0:
          chunks.append(ctypes.string_at(wav, 2 * num_samples))
        i = 0
        while event_list[i].type != _EVENT_LIST_TERMINATED:
          e = event_list[i]
          if e.type == _EVENT_WORD:
            events.append(_RawEvent(_EVENT_WORD, e.sample, e.text_position - 1, ""))
          elif e.type == _EVENT_PHONEME:
            events.append(_RawEvent(_EVENT_PHONEME, e.sample, e.text_position - 1,
                                    e.id.string.decode("utf-8", "replace")))
          i += 1
        return 0

      callback = _SynthCallback(on_audio)
      lib = self._loaded = ctypes.CDLL(library)
      initialized = False
      voice_list = None
      try:
        _declare(lib)
        native_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data.encode(),
                                            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
        initialized = native_rate > 0
        if native_rate != ESPEAK_SAMPLE_RATE:
          raise UserError(f"espeak-ng did not start from its data in {data} (sample rate "
                          f"{native_rate}); reinstall it: pip install --force-reinstall "
                          "espeakng-loader")
        lib.espeak_SetSynthCallback(callback)
        # To find a voice by name espeak-ng reads every voice file into a list whose array
        # espeak_Terminate does not free (1.52.0). Listing the voices first returns that array, so
        # it can be freed before the library is unloaded.
        if (lib.espeak_Info(None) or b"").decode() in _VERSIONS_KEEPING_VOICE_LIST:
          voice_list = lib.espeak_ListVoices(None)
        if lib.espeak_SetVoiceByName(name.encode()) != _EE_OK:
          raise UserError(f"espeak-ng has no voice {voice!r}; use one of {', '.join(VOICES)}")
        lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        encoded = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None,
                                  None)
        if status != _EE_OK or lib.espeak_Synchronize() != _EE_OK:
          raise RuntimeError(f"espeak-ng synthesis failed (status {status}) for {text!r}")
      finally:
        if initialized:
          lib.espeak_Terminate()  # frees what unloading the library would leak
        if voice_list:
          _libc_free(voice_list)
        self._loaded = None
        _unload(lib)
      return np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.int16), events


def _libc_free(pointer: int) -> None:
  free = ctypes.CDLL(None).free
  free.argtypes = [ctypes.c_void_p]
  free.restype = None
  free(pointer)


def _unload(lib: ctypes.CDLL) -> None:
  import _ctypes  # pylint: disable=import-outside-toplevel
  _ctypes.dlclose(lib._handle)  # pylint: disable=protected-access


def _check_voice(voice: Any, data: str) -> str:
  """Returns espeak-ng's name for `voice`, after checking that its variant exists."""
  if not isinstance(voice, str) or not voice or any(c.isspace() or c == "\0" for c in voice):
    raise UserError(f"voice must be an espeak-ng voice such as {VOICES[0]!r}, got {voice!r}")
  base, _, variant = voice.partition("+")
  base = _VOICE_ALIASES.get(base, base)
  # espeak-ng silently ignores a variant it cannot find, which would hide a typo.
  if variant and not os.path.isfile(os.path.join(data, "voices", "!v", variant)):
    raise UserError(f"espeak-ng has no voice variant {variant!r} (in {voice!r}); use one of "
                    f"{', '.join(VOICES)}")
  return f"{base}+{variant}" if variant else base


_ENGINE = _Engine()
if hasattr(os, "register_at_fork"):
  os.register_at_fork(after_in_child=lambda: _ENGINE.after_fork_in_child())


# -------------------------------------------------------------------------------------------------
# From events to timings.

# Sample magnitude (int16) at or below which audio counts as silent: espeak-ng's pauses are exact
# zeros for the voices in VOICES, and the margin takes in the last samples of a decaying sound.
_SILENCE_LEVEL = 2
_STRESS_MARKS = {"'": 2, ",": 1}


def _is_pause(name: str) -> bool:
  return not name or name.startswith("_") or name == "||"


def _timings(text: str, samples: np.ndarray,
             events: list[_RawEvent]) -> tuple[list[Phoneme], list[Word]]:
  """Phonemes and words (in seconds) from espeak-ng's events and its native-rate samples."""
  num_samples = len(samples)
  silent = np.abs(samples.astype(np.int32)) <= _SILENCE_LEVEL
  # The last sound at or before each sample: a silent run ending at s starts at last_sound[s-1] + 1.
  last_sound = np.maximum.accumulate(np.where(silent, -1, np.arange(num_samples)))

  marks: list[tuple[int, str, int]] = []  # (sample, name, raw word) of phonemes and pauses
  word_positions: list[int] = []
  for e in events:
    if e.kind == _EVENT_WORD:
      word_positions.append(e.text_position)
    else:
      marks.append((min(max(e.sample, 0), num_samples), e.name, max(len(word_positions) - 1, 0)))
  if not word_positions:
    return [], []

  starts: list[int] = []
  ends: list[int] = []
  names: list[str] = []
  raw_words: list[int] = []
  for i, (sample, name, word) in enumerate(marks):
    if _is_pause(name):
      continue
    start = sample
    if starts and not _is_pause(marks[i - 1][1]):
      # Silence ending at this event after sound of the previous phoneme is this phoneme's
      # pre-pause. A previous phoneme that is silent throughout (a glottal stop) keeps it.
      onset = int(last_sound[sample - 1]) + 1 if sample > 0 else 0
      if onset > starts[-1]:
        start = ends[-1] = onset
    starts.append(start)
    ends.append(max(marks[i + 1][0] if i + 1 < len(marks) else num_samples, start))
    names.append(name)
    raw_words.append(word)

  # Word events pointing into one whitespace-separated token make one word.
  tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
  token_starts = [t[0] for t in tokens]

  def token_of(position: int) -> int:
    k = max(bisect.bisect_right(token_starts, position) - 1, 0)
    if k < len(tokens) - 1 and position >= tokens[k][1]:
      k += 1
    return k

  raw_token = [token_of(p) for p in word_positions]
  phonemes: list[Phoneme] = []
  words: list[Word] = []
  word_tokens: list[int] = []
  seconds = 1.0 / ESPEAK_SAMPLE_RATE
  for start, end, name, raw in zip(starts, ends, names, raw_words):
    token = raw_token[raw]
    if not word_tokens or word_tokens[-1] != token:
      word_tokens.append(token)
      words.append(Word(start=start * seconds, end=end * seconds,
                        text=_token_text(text, tokens[token])))
    else:
      words[-1] = dataclasses.replace(words[-1], end=end * seconds)
    stress = _STRESS_MARKS.get(name[0], 0)
    phonemes.append(Phoneme(start=start * seconds, end=end * seconds,
                            symbol=name[1:] if stress else name, stress=stress,
                            word=len(words) - 1))
  return phonemes, words


def _token_text(text: str, span: tuple[int, int]) -> str:
  token = text[span[0]:span[1]]
  return re.sub(r"^[\W_]+|[\W_]+$", "", token) or token


def _resample(samples: np.ndarray) -> np.ndarray:
  """int16 [n] at ESPEAK_SAMPLE_RATE -> float32 [ceil(n * 320 / 441)] at SAMPLE_RATE, in [-1, 1]."""
  # A float64 polyphase filter with no CPU-dependent code path: the same bytes on every machine.
  x = samples.astype(np.float64) / 32768.0
  y = scipy.signal.resample_poly(x, SAMPLE_RATE // 50, ESPEAK_SAMPLE_RATE // 50)
  return np.clip(y, -1.0, 1.0).astype(np.float32)
