"""Frame-synchronous audio features: the frame rule, mel spectra against librosa, speech loading."""

import av
import jax
import numpy as np
import pytest

from vasa_jax.data import audio as audio_io
from vasa_jax.data import audio_features
from vasa_jax.errors import UserError
from vasa_jax.models.audio import features


@pytest.mark.parametrize("num_samples", [1, 639, 640, 641, 1000, 16000, 16001, 33333, 48640])
def test_any_length_gives_the_video_frame_count(num_samples):
  frames = features.num_video_frames(num_samples)
  assert frames == -(-num_samples // 640)
  encoder = audio_features.make_audio_encoder({"wav2vec2_path": ""})
  audio = features.pad_to_frames(np.zeros(num_samples, np.float32))[None]
  assert audio.shape == (1, frames * 640)
  assert encoder(audio).shape == (1, frames, encoder.dim)


def test_public_wav2vec2_geometry_gives_two_features_per_frame():
  """The public models hop 320 samples over a 400-sample window: padding 40 on each side of 640 T
  samples gives exactly 2 T features."""
  kernels, strides = (10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)
  receptive, hop = features.conv_geometry(kernels, strides)
  assert (receptive, hop) == (400, 320)
  pad = (receptive - hop) // 2
  for frames in range(1, 200, 7):
    samples = 640 * frames + 2 * pad
    # Output length of an unpadded conv stack, layer by layer.
    length = samples
    for kernel, stride in zip(kernels, strides):
      length = (length - kernel) // stride + 1
    assert length == 2 * frames
  hops = jax.numpy.arange(2 * 3 * 4, dtype=jax.numpy.float32).reshape(1, 6, 4)
  np.testing.assert_allclose(features.frames_from_hops(hops, 2)[0, 1], (hops[0, 2] + hops[0, 3]) / 2)


def test_mel_matches_librosa():
  import librosa

  rng = np.random.default_rng(0)
  audio = (rng.standard_normal(640 * 9) * 0.1).astype(np.float32)
  config = features.MelConfig()
  ours = np.asarray(features.mel_power(audio[None], features.mel_filterbank(config), config))[0]
  reference = librosa.feature.melspectrogram(
      y=audio, sr=16000, n_fft=400, hop_length=160, window="hann", center=True,
      pad_mode="constant", power=2.0, n_mels=80, fmin=config.fmin, fmax=config.fmax).T
  np.testing.assert_allclose(ours, reference, rtol=1e-3, atol=1e-6)
  frames = features.log_mel_frames(audio[None], features.mel_filterbank(config), config)
  assert frames.shape == (1, 9, 4 * 80)
  np.testing.assert_allclose(np.asarray(frames)[0, 2, 80:160], np.log(reference[9] + 1e-5),
                             rtol=1e-3, atol=1e-4)


def write_audio(path, samples, rate, layout="mono", codec="pcm_s16le", container_format=None):
  channels = 2 if layout == "stereo" else 1
  with av.open(str(path), "w", format=container_format) as container:
    stream = container.add_stream(codec, rate=rate, layout=layout)
    fmt = stream.codec_context.format.name if codec != "pcm_s16le" else "s16"
    data = np.repeat(samples[None], channels, 0)
    step = stream.codec_context.frame_size or 1024  # Encoders such as mp3 take fixed-size frames.
    for start in range(0, data.shape[1], step):
      chunk = data[:, start:start + step]
      if fmt == "s16":
        frame = av.AudioFrame.from_ndarray((chunk.T.reshape(1, -1) * 32767).astype(np.int16),
                                           format="s16", layout=layout)
      else:  # Planar formats: one row per channel, in the encoder's sample type.
        scale = {"s16p": 32767, "s32p": 2**31 - 1}.get(fmt, 1)
        dtype = {"s16p": np.int16, "s32p": np.int32}.get(fmt, np.float32)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk * scale, dtype), format=fmt,
                                           layout=layout)
      frame.sample_rate, frame.pts = rate, start
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return path


@pytest.mark.parametrize("name, codec, rate, layout, container_format", [
    ("speech.wav", "pcm_s16le", 44100, "stereo", None),
    ("speech.flac", "flac", 22050, "mono", None),
    ("speech.mp3", "libmp3lame", 44100, "stereo", None),
    ("speech.m4a", "aac", 48000, "stereo", "ipod"),
    ("speech.ogg", "libopus", 48000, "mono", None),
])
def test_common_formats_become_16k_mono(tmp_path, name, codec, rate, layout, container_format):
  t = np.arange(rate) / rate
  tone = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
  path = write_audio(tmp_path / name, tone, rate, layout, codec, container_format)
  audio = audio_io.load_speech(path)
  assert audio.dtype == np.float32 and abs(len(audio) - 16000) < 1200
  spectrum = np.abs(np.fft.rfft(audio[2000:14000]))
  assert abs(np.argmax(spectrum) * 16000 / 12000 - 440) < 5


def test_bad_audio_gives_clear_errors(tmp_path):
  with pytest.raises(UserError, match="audio file not found"):
    audio_io.load_speech(tmp_path / "missing.wav")
  (tmp_path / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
  with pytest.raises(UserError, match="corrupt.wav"):
    audio_io.load_speech(tmp_path / "corrupt.wav")
  silent = write_audio(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
  with pytest.raises(UserError, match="is silent"):
    audio_io.load_speech(silent)
  short = write_audio(tmp_path / "short.wav", np.full(800, 0.3, np.float32), 16000)
  with pytest.raises(UserError, match="lasts 0.050 s"):
    audio_io.load_speech(short)
  empty = write_audio(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
  with pytest.raises(UserError, match="empty.wav"):
    audio_io.load_speech(empty)


@pytest.mark.parametrize("layer", ["last", 1, "weighted"])
def test_wav2vec2_encoder_gives_one_vector_per_frame(tmp_path, layer):
  """A converted Hugging Face model through the frame-synchronous interface: exactly T frames for
  any length, each the mean of its hops of the model's own output."""
  from tests.models.audio.test_wav2vec2 import build_hf_model, save_hf

  folder = save_hf(build_hf_model("wav2vec2"), tmp_path / "hf")
  encoder = audio_features.make_audio_encoder({"wav2vec2_path": str(folder), "layer": layer})
  for num_samples in (700, 1280, 2000):
    audio = features.pad_to_frames(
        np.random.default_rng(num_samples).standard_normal((1, num_samples)).astype(np.float32))
    out = np.asarray(encoder(audio))
    frames = features.num_video_frames(num_samples)
    config = encoder.model.config
    expected_shape = ((1, frames, config.num_hidden_layers + 1, encoder.dim)
                      if layer == "weighted" else (1, frames, encoder.dim))
    assert out.shape == expected_shape
  padded = np.pad(audio, ((0, 0), (encoder.pad, encoder.pad)))
  direct = encoder.model.apply({"params": encoder.params}, padded, output_hidden_states=True)
  hops = direct["last_hidden_state"] if layer in ("last", "weighted") else direct["hidden_states"][1]
  per_frame = 640 // encoder.hop
  assert hops.shape[1] == frames * per_frame
  if layer != "weighted":
    np.testing.assert_allclose(out[0, 1], np.asarray(hops)[0, per_frame:2 * per_frame].mean(0),
                               rtol=1e-5, atol=1e-5)
  else:
    summed, _ = features.WeightedLayerSum().init_with_output(jax.random.key(0),
                                                             jax.numpy.asarray(out))
    # Zero-initialised logits: the plain mean over layers.
    np.testing.assert_allclose(np.asarray(summed), out.mean(axis=2), rtol=1e-5, atol=1e-5)


def test_bad_layer_is_a_clear_error(tmp_path):
  from tests.models.audio.test_wav2vec2 import build_hf_model, save_hf

  folder = save_hf(build_hf_model("wav2vec2"), tmp_path / "hf")
  with pytest.raises(UserError, match="layer=7"):
    audio_features.make_audio_encoder({"wav2vec2_path": str(folder), "layer": 7})
