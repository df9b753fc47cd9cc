"""The evaluation protocol: real clips, generation, the frame-reading metrics, metrics.json, sweeps."""

import json

import numpy as np
import pytest

from tests.helpers import EXPERIMENTS
from vasa_jax.errors import UserError
from vasa_jax.protocol import scoring as protocol, sweeps
from vasa_jax.evaluators import control_errors, delta_p, pose, videos


def _video(name, frames=6, **fields):
  return videos.Video(name=name, frames=np.zeros((frames, 8, 8, 3), np.uint8),
                      audio=np.zeros(frames * 640, np.float32), **fields)


def _with_reading(video, spec, **values):
  """A video whose frames `spec` has already read (the readers cache readings on the video)."""
  video.__dict__.setdefault("_readings", {})[spec] = {
      k: np.asarray(v, np.float32) for k, v in values.items()}
  return video


def test_intensity_is_mean_absolute_step_in_degrees_and_skips_unread_frames():
  angles = np.zeros((5, 3))
  angles[:, 0] = np.radians([0.0, 1.0, 3.0, np.nan, 4.0])
  # Steps 1 and 2 degrees of yaw, the other angles still; the pairs around the NaN are left out.
  assert pose.intensity(angles) == pytest.approx((1 + 2) / 6)
  assert np.isnan(pose.intensity(angles[:1]))


def test_delta_p_reads_labels_or_frames_with_the_same_reader():
  metric = delta_p.Metric(pose="labels", fallback="landmarks")
  yaw = np.radians(np.arange(6.0))  # 1 degree per frame.
  labelled = _video("real", labels={"yaw": yaw, "pitch": np.zeros(6), "roll": np.zeros(6)})
  generated = _with_reading(_video("fake#0"), "landmarks", yaw=2 * yaw, pitch=np.zeros(6),
                            roll=np.zeros(6))
  assert metric.score([labelled])["dP"] == pytest.approx(1 / 3)
  assert metric.score([generated])["dP"] == pytest.approx(2 / 3)
  assert "MediaPipe" in metric.weights["pose reader"]


def test_control_errors_calibrate_the_reader_on_labelled_real_clips():
  rng = np.random.default_rng(0)
  real = []
  for k in range(4):
    distance = 1.0 + 0.2 * k + 0.01 * rng.standard_normal(20)
    theta, phi = np.array([[0.1 * k], [0.0]]) + 0.01 * rng.standard_normal((2, 20))
    video = _video(f"real{k}", frames=20, gaze=(0.1 * k, 0.0), distance=1.0 + 0.2 * k,
                   labels={"gaze_theta": theta, "gaze_phi": phi, "distance": distance})
    # The reader sees gaze at half scale and the face's size as 1 / distance.
    real.append(_with_reading(video, "landmarks", gaze_theta=theta / 2, gaze_phi=phi / 2,
                              face_share=1.0 / distance))
  generated = _with_reading(_video("gen#0", frames=20, gaze=(0.2, 0.0), distance=1.0),
                            "landmarks", gaze_theta=np.full(20, 0.3 / 2),
                            gaze_phi=np.zeros(20), face_share=np.full(20, 1 / 1.5))
  gaze, distance = control_errors.GazeError(), control_errors.DistanceError()
  # Calibrated on the real frames, the reading of the generated clip is gaze (0.3, 0), distance 1.5.
  assert gaze.score([generated], real)["E_g"] == pytest.approx(np.degrees(0.1), abs=0.3)
  assert distance.score([generated], real)["E_d"] == pytest.approx(0.5, abs=0.03)
  assert gaze.score(real, real)["E_g"] < 1.0
  # No request, no error: a video without controls is not scored.
  assert np.isnan(distance.score([_video("free#0", frames=20)], real)["E_d"])


def test_make_metric_names_unknown_keys_and_types():
  with pytest.raises(UserError, match="unknown keys"):
    videos.make_metric("dp", {"type": "delta_p", "pos": "landmarks"})
  with pytest.raises(UserError, match="not a video metric"):
    videos.make_metric("x", {"type": "reconstruction"})
  with pytest.raises(UserError, match="probe"):
    videos.make_metric("dp", {"type": "delta_p", "pose": "/no/such/probe"})


def test_real_clips_and_long_form_split(synthtalk_tiny_dir):
  clips = protocol.real_clips(synthtalk_tiny_dir, "synthtalk/tiny", "test", 64, num_clips=3)
  assert len(clips) == 3 and len({c.name for c in clips}) == 3
  for clip in clips:
    assert clip.frames.shape[1:] == (64, 64, 3)
    assert abs(len(clip.audio) - clip.num_frames * 640) <= 640
    assert clip.gaze is not None and clip.labels["yaw"].shape == (clip.num_frames,)
  long = protocol.real_clips(synthtalk_tiny_dir, "synthtalk/tiny", "train", 64,
                             long_form_seconds=8.0)
  assert long
  for video in long:
    assert video.seconds >= 0.8 * 8.0
    assert len(video.audio) == video.num_frames * 640  # Joined clip by clip, still aligned.
    assert video.labels["yaw"].shape == (video.num_frames,)
  with pytest.raises(UserError, match="no identity"):
    protocol.real_clips(synthtalk_tiny_dir, "synthtalk/tiny", "test", 64,
                        long_form_seconds=600.0)


def test_protocol_on_a_checkpoint_writes_metrics_report_and_sweep(motion_latents_run,
                                                                 synthtalk_tiny_dir, tmp_path):
  from vasa_jax import configs

  _, _, run = motion_latents_run
  config = configs.load_config(f"{EXPERIMENTS / 'motion' / 'synthtalk_tiny.py'}:runlocal", [
      f"--config.data.data_dir={synthtalk_tiny_dir}", "--config.sampling.steps=2"])
  settings = protocol.Settings.from_config(config, num_clips=2, samples_per_audio=2,
                                           max_seconds=1.2, write_videos=4)
  settings.sweep = dict(condition="audio", values=[2.0], samples_per_audio=1)
  record = protocol.run(config, tmp_path / "eval", checkpoints=[str(run)], settings=settings,
                        only=["motion_intensity", "capp", "lip_sync"],
                        sampling=protocol.sampling_of(config), progress=False)
  on_disk = json.loads((tmp_path / "eval" / "metrics.json").read_text())
  assert on_disk["rows"].keys() == record["rows"].keys()
  system = next(k for k in on_disk["rows"] if k != protocol.REAL)
  assert set(on_disk["rows"][system]) == {"dP"} and "dP" in on_disk["rows"][protocol.REAL]
  assert on_disk["protocol"]["samples_per_audio"] == 2 and on_disk["protocol"]["num_clips"] == 2
  # Metrics whose networks were not given are reported unavailable, with how to provide them.
  assert {"capp", "lip_sync"} <= set(on_disk["unavailable"])
  assert "workdir" in on_disk["unavailable"]["capp"]
  assert on_disk["metrics"]["dP"]["weights"]
  assert [p["value"] for p in on_disk["sweep"]["points"]] == [2.0]
  assert set(on_disk["sweep"]["points"][0]) == {"value", "dP"}
  html = (tmp_path / "eval" / "report.html").read_text()
  assert "CAPP" in html and "unavailable" in html.lower()
  assert len(list((tmp_path / "eval" / "strips").glob("*.png"))) == 2
  written = sorted((tmp_path / "eval" / "videos").glob("*.mp4"))
  assert len(written) == 4
  assert not (tmp_path / "eval" / "frames.tmp").exists()  # The frames waited on disk, then went.

  from vasa_jax.data import video_io

  assert video_io.probe(written[0]).duration == pytest.approx(1.2, abs=0.05)

  # A sweep's table gathers each member's newest evaluation.
  member = tmp_path / "root" / "base"
  (member / "evaluation_test").mkdir(parents=True)
  (member / "evaluation_test" / "metrics.json").write_text(json.dumps(on_disk))
  table = sweeps.gather([(member, []), (tmp_path / "root" / "other", ["--config.x=1"])],
                        tmp_path / "root")
  assert "| base |" in table and "No scores yet: other" in table
  assert (tmp_path / "root" / "ablation.json").is_file()


def test_folder_videos_are_cropped_like_training_data_and_bad_files_skipped(astronaut, tmp_path):
  from tests.helpers import moving_photo, tone
  from vasa_jax.data import video_io

  folder = tmp_path / "system"
  frames, rolls = moving_photo(astronaut, 20, 25)
  video_io.write_video(folder / "talk.mp4", frames, 25, tone(0.8))
  (folder / "broken.mp4").write_bytes(b"not a video")
  found, skipped = protocol.folder_videos(folder, 96)
  assert [v.name for v in found] == ["talk"] and list(skipped) == [str(folder / "broken.mp4")]
  video = found[0]
  assert video.frames.shape == (20, 96, 96, 3)
  assert abs(len(video.audio) - 0.8 * 16000) < 640
  # The crop follows the face, so the pose read from it follows the photo's roll.
  read = pose.make_reader("landmarks")(video.frames)
  assert np.isfinite(read).all()
  assert np.corrcoef(np.degrees(read[:, 2]), rolls)[0, 1] > 0.9
  assert delta_p.Metric().score(found)["dP"] > 0.5
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match="holds no videos"):
    protocol.folder_videos(tmp_path / "empty", 96)
