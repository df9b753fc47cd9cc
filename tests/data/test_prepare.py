"""Real-video preparation on videos made here: a real photo moved frame by frame, SynthTalk clips, and
the damaged, silent, faceless and crowded files a real folder holds."""

import json
import os
import pathlib
import signal
import subprocess

import cv2
import numpy as np
import pytest

from tests.helpers import PYTHON, REPO, moving_photo, subprocess_env, tone
from vasa_jax.data import pipelines, prepare, schema, video_io

skimage_data = pytest.importorskip("skimage.data")
pytestmark = pytest.mark.slow
OPTIONS = prepare.PrepareOptions(resolution=128)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
  """A folder laid out like VoxCeleb2 (idXXXXX/<video>/<clip>.mp4) with good and bad files."""
  root = tmp_path_factory.mktemp("raw")
  astronaut = skimage_data.astronaut()
  frames, rolls = moving_photo(astronaut, 60, 30)
  good = root / "id00001" / "yt_a" / "00001.mp4"
  video_io.write_video(good, frames, 30, tone(2.0), 16000)
  video_io.write_video(root / "id00002" / "yt_b" / "00001.mp4", moving_photo(astronaut, 40, 25)[0],
                       25, None)  # No audio track.
  coffee = cv2.resize(skimage_data.coffee(), (640, 480))
  video_io.write_video(root / "id00003" / "yt_c" / "00001.mp4", [coffee] * 40, 25, tone(1.6))
  pair = np.concatenate([cv2.resize(astronaut, (320, 320))] * 2, axis=1)
  video_io.write_video(root / "id00004" / "yt_d" / "00001.mp4", [pair] * 40, 25, tone(1.6))
  (root / "id00005" / "yt_e").mkdir(parents=True)
  (root / "id00005" / "yt_e" / "00001.mp4").write_bytes(os.urandom(4000))
  (root / "id00005" / "yt_e" / "00002.mp4").write_bytes(b"")
  return root, rolls


@pytest.fixture(scope="module")
def prepared(videos, tmp_path_factory):
  root, _ = videos
  output = tmp_path_factory.mktemp("prepared")
  summary = prepare.run(str(root), str(output), OPTIONS, workers=1)
  return output, summary


def test_bad_files_are_skipped_with_their_reasons(prepared):
  _, summary = prepared
  assert summary["videos_in"] == 6
  assert summary["clips_kept"] == 1
  assert summary["videos_skipped"] == {"no audio track": 1, "unreadable": 1,
                                       "zero-length file": 1, "no usable track": 2}
  assert summary["tracks_skipped"] == {"no face": 1, "several faces": 1}


def test_the_real_face_is_tracked_and_its_pose_follows_the_motion(prepared, videos):
  output, _ = prepared
  _, rolls = videos
  (clip,) = prepare.load_clips(output / "videos" / "id00001__yt_a__00001.npz")
  num_frames = clip["meta"]["num_frames"]
  assert num_frames == 50  # 2 s at 25 fps from a 30 fps source.
  assert len(clip["frames"]) == num_frames
  assert clip["audio"].shape == (num_frames * schema.SAMPLES_PER_FRAME,)
  assert clip["meta"]["identity"] == "id00001"
  frame = cv2.imdecode(np.frombuffer(clip["frames"][0], np.uint8), cv2.IMREAD_COLOR)
  assert frame.shape == (128, 128, 3)
  # The 30 fps source is read at 25 fps: output frame t shows source frame floor(t * 30 / 25).
  applied = rolls[(np.arange(num_frames) * 30) // 25]
  recovered = clip["labels"]["roll"]
  assert np.corrcoef(applied, recovered)[0, 1] > 0.95
  error = np.degrees(np.abs((recovered - recovered.mean()) - (applied - applied.mean())))
  print(f"roll error: mean {error.mean():.2f} deg, max {error.max():.2f} deg")
  assert error.mean() < 3.0
  # The crop follows the face: the eyes stay near the same place in every crop.
  eyes = clip["landmarks"][:, :2].mean(axis=1)
  assert eyes.std(axis=0).max() < 0.03
  assert np.isnan(clip["labels"]["lip_round"]).all() and (clip["viseme"] == -1).all()


def test_synthtalk_head_pose_is_recovered(tmp_path):
  """A SynthTalk head swept in yaw, pitch and roll: the landmark pose follows the rendered one."""
  from vasa_jax.data.synthtalk import render

  count = 60
  phase = np.arange(count) / count * 2 * np.pi
  states = {k: np.full(count, v, np.float32) for k, v in render.neutral_state().items()}
  states.update(yaw=0.4 * np.sin(phase), pitch=0.2 * np.sin(2 * phase), roll=0.2 * np.cos(phase))
  identity = render.sample_identity(np.random.default_rng(5))
  (tmp_path / "raw" / "person").mkdir(parents=True)
  video_io.write_video(tmp_path / "raw" / "person" / "sweep.mp4",
                       render.render_frames(identity, states, 256), 25, tone(count / 25), 16000)
  summary = prepare.run(str(tmp_path / "raw"), str(tmp_path / "out"), OPTIONS)
  assert summary["clips_kept"] == 1
  (clip,) = prepare.load_clips(tmp_path / "out" / "videos" / "person__sweep.npz")
  assert clip["meta"]["num_frames"] == count
  for name in ("yaw", "pitch", "roll"):
    truth, recovered = states[name], clip["labels"][name]
    error = np.degrees(np.abs(recovered - truth).mean())
    print(f"{name}: correlation {np.corrcoef(truth, recovered)[0, 1]:.3f}, "
          f"mean error {error:.2f} deg")
    assert np.corrcoef(truth, recovered)[0, 1] > 0.9
    assert error < 8.0


def test_dataset_is_written_and_readable(prepared):
  output, _ = prepared
  from vasa_jax.data import talking_videos

  builder = talking_videos.build_dataset(output)
  (split,) = builder.info.splits.keys()
  source = pipelines.open_split(str(output), "talking_videos", split)
  assert len(source) == 1 and source[0]["meta"]["identity"] == b"id00001"


HOOK = """
import os, signal, sys
from vasa_jax import main
from vasa_jax.data import prepare
worker = prepare._worker
def worker_then_kill(args):
  record = worker(args)
  os.kill(os.getpid(), signal.SIGKILL)
prepare._worker = worker_then_kill
sys.exit(main.main())
"""


def test_killed_run_resumes_without_redoing_finished_videos(videos, tmp_path):
  root, _ = videos
  command = ["prepare", "--input", str(root), "--output", str(tmp_path), "--resolution", "128"]
  killed = subprocess.run([PYTHON, "-c", HOOK, *command], capture_output=True, text=True,
                          cwd=REPO, env=subprocess_env(1), timeout=300)
  assert killed.returncode == -signal.SIGKILL
  done = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "done").iterdir()}
  assert len(done) == 1
  resumed = subprocess.run([PYTHON, "-m", "vasa_jax.main", *command], capture_output=True,
                           text=True, cwd=REPO, env=subprocess_env(1), timeout=300)
  assert resumed.returncode == 0, resumed.stderr
  assert "1 of 6 videos were prepared by an earlier run" in resumed.stderr
  for name, mtime in done.items():
    assert (tmp_path / "done" / name).stat().st_mtime_ns == mtime
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["videos_in"] == 6 and summary["clips_kept"] == 1
  assert (tmp_path / "tfds").is_dir()


def test_empty_input_is_a_clear_error(tmp_path):
  from vasa_jax.errors import UserError

  with pytest.raises(UserError, match="no videos"):
    prepare.run(str(tmp_path), str(tmp_path / "out"), OPTIONS)


def test_separate_audio_files_are_found_by_relative_path(tmp_path):
  """VoxCeleb2's video-only mp4s take their sound from the m4a release at the same relative path."""
  import av

  frames, _ = moving_photo(skimage_data.astronaut(), 40, 25)
  video_io.write_video(tmp_path / "mp4" / "id00007" / "yt" / "00001.mp4", frames, 25, None)
  audio_path = tmp_path / "aac" / "id00007" / "yt" / "00001.m4a"
  audio_path.parent.mkdir(parents=True)
  with av.open(str(audio_path), "w", format="ipod") as container:
    stream = container.add_stream("aac", rate=16000, layout="mono")
    frame = av.AudioFrame.from_ndarray((tone(1.6) * 32767).astype(np.int16)[None], format="s16",
                                       layout="mono")
    frame.sample_rate, frame.pts = 16000, 0
    for packet in list(stream.encode(frame)) + list(stream.encode()):
      container.mux(packet)
  summary = prepare.run(str(tmp_path / "mp4"), str(tmp_path / "out"), OPTIONS,
                        audio_dir=str(tmp_path / "aac"))
  assert summary["clips_kept"] == 1, summary
  (clip,) = prepare.load_clips(tmp_path / "out" / "videos" / "id00007__yt__00001.npz")
  assert np.abs(clip["audio"]).max() > 3000
