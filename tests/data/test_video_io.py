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
