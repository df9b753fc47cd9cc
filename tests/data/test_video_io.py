"""The video writer: duration, audio stream, the AI-generated mark, no partial file on failure."""

import av
import numpy as np
import pytest

from vasa_jax.data import video_io


def test_video_has_frames_audio_and_the_mark(tmp_path):
  frames = np.random.default_rng(0).integers(0, 255, (50, 64, 64, 3), dtype=np.uint8)
  audio = (0.3 * np.sin(np.arange(32000) / 8)).astype(np.float32)
  path = video_io.write_video(tmp_path / "out.mp4", iter(frames), 25, audio, 16000,
                              metadata={"title": "test"})
  with av.open(str(path)) as container:
    assert container.metadata["description"] == "AI-generated"
    assert "AI-generated" in container.metadata["comment"]
    video = container.streams.video[0]
    assert (video.codec_context.width, video.codec_context.height) == (64, 64)
    assert container.streams.audio[0].sample_rate == 16000
    assert sum(1 for _ in container.decode(video=0)) == 50
  assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_failed_write_leaves_nothing(tmp_path):
  def frames():
    yield np.zeros((32, 32, 3), np.uint8)
    raise RuntimeError("decoder crashed")

  with pytest.raises(RuntimeError):
    video_io.write_video(tmp_path / "out.mp4", frames(), 25)
  assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source_fps", [25, 30, 24])
def test_reading_at_25_fps_keeps_audio_and_video_in_sync(tmp_path, source_fps):
  """A flash and a click at the same instant land in the same 25 fps frame."""
  seconds, flash_time = 3.0, 1.7
  frames = np.zeros((int(seconds * source_fps), 32, 32, 3), np.uint8)
  flash = int(round(flash_time * source_fps))
  frames[flash] = 255
  audio = np.zeros(int(seconds * 16000), np.float32)
  audio[int(flash_time * 16000):int(flash_time * 16000) + 80] = 0.9
  path = video_io.write_video(tmp_path / "sync.mp4", frames, source_fps, audio, 16000)
  decoded = np.stack(list(video_io.iter_frames(path, 25)))
  assert abs(len(decoded) - seconds * 25) <= 1
  sound = video_io.read_audio(path, 16000, start_time=video_io.video_start_time(path))
  flash_frame = int(np.argmax(decoded.mean(axis=(1, 2, 3))))
  click_frame = int(np.argmax(np.abs(sound))) // 640
  assert abs(flash_frame - click_frame) <= 1, (flash_frame, click_frame)


def test_read_audio_converts_stereo_and_rate(tmp_path):
  import av

  path = tmp_path / "stereo.wav"
  with av.open(str(path), "w") as container:
    stream = container.add_stream("pcm_s16le", rate=44100, layout="stereo")
    samples = (np.sin(np.arange(44100) / 10)[None].repeat(2, 0) * 8000).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(samples.T.reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = 44100
    for packet in stream.encode(frame):
      container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  audio = video_io.read_audio(path, 16000)
  assert audio.dtype == np.float32 and abs(len(audio) - 16000) < 50
  with pytest.raises(video_io.MediaError, match="no audio track"):
    video_io.read_audio(video_io.write_video(tmp_path / "mute.mp4",
                                             [np.zeros((16, 16, 3), np.uint8)] * 5, 25), 16000)
