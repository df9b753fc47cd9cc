"""Photo + speech to video: durations, audio, the AI mark, streaming, bounded memory, editing, and
every bad input a user can give, through the API and the `vasa` command line."""

import json
import pathlib
import subprocess

import av
import cv2
import jax
import numpy as np
import pytest

from tests.helpers import EXPERIMENTS, PYTHON, REPO, moving_photo, subprocess_env, tone
from vasa_jax import main as vasa_main
from vasa_jax.bench import common as bench_common
from vasa_jax.bench import generate as bench
from vasa_jax.data import audio_features, video_io
from vasa_jax.errors import UserError
from vasa_jax.inference import streaming
from vasa_jax.inference import talking_face as tf
from vasa_jax.inference.audio import AudioFeatureStream
from vasa_jax.models.audio import features

skimage_data = pytest.importorskip("skimage.data")


def write_wav(path, samples, rate=16000, layout="mono"):
  samples = np.asarray(samples, np.float32)
  return video_io.write_wav(path, samples if layout == "mono" else np.stack([samples] * 2, 1),
                            rate)


@pytest.fixture(scope="module")
def random_pair():
  """A tiny generator with random weights (2 sampling steps) and the astronaut prepared for it.
  Stage 2's output layer starts at zero (a constant motion); noise on every weight makes it move."""
  generator, _ = bench.random_generator("tiny", batch_size=8, steps=2)
  leaves, tree = jax.tree.flatten(generator.motion.params)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  generator.motion.params = jax.tree.unflatten(tree, [
      p + 0.05 * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys)])
  return generator, generator.prepare(skimage_data.astronaut(), name="astronaut")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
  root = tmp_path_factory.mktemp("inputs")
  photo = root / "face.jpg"
  cv2.imwrite(str(photo), cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
  # 2.37 s at 44.1 kHz stereo: converted, and not a whole number of frames.
  speech = write_wav(root / "speech.wav", tone(2.37 * 44100 / 16000)[: int(2.37 * 44100)], 44100,
                     "stereo")
  return {"photo": photo, "speech": speech, "root": root}


def test_streamed_audio_features_equal_the_whole_clip():
  encoder = audio_features.make_audio_encoder({"wav2vec2_path": ""})
  rng = np.random.default_rng(0)
  audio = (0.1 * rng.normal(size=16000 * 3 + 123)).astype(np.float32)
  whole = np.asarray(encoder.apply(None, features.pad_to_frames(audio)[None]))[0]
  for block in (1, 7, 25):
    stream = AudioFeatureStream(encoder, block=block)
    out, start = [], 0
    while start < audio.size:
      size = int(rng.integers(1, 3000))
      out.append(stream.push(audio[start:start + size]))
      start += size
    out.append(stream.finish())
    np.testing.assert_allclose(np.concatenate(out), whole, atol=1e-4)


def test_video_lasts_as_long_as_the_audio_with_its_sound_and_mark(random_pair, inputs, tmp_path):
  generator, subject = random_pair
  out = tmp_path / "talk.mp4"
  summary = generator.generate_video(subject, inputs["speech"], out, tf.Controls(gaze=(0.1, 0.0)),
                                     progress=False)
  samples = int(2.37 * 16000)
  assert summary["frames"] == -(-samples // 640)
  info = video_io.probe(out)
  assert info.has_audio and (info.width, info.height) == (64, 64)
  assert abs(info.duration - samples / 16000) <= 1 / 25
  assert len(list(video_io.iter_frames(out))) == summary["frames"]
  sound = video_io.read_audio(out)
  assert abs(len(sound) - samples) <= 1024  # The AAC encoder's priming at most.
  with av.open(str(out)) as container:
    assert container.metadata["description"] == "AI-generated"
  assert not list(tmp_path.glob(".*partial*"))


def test_paste_back_and_resolution(random_pair, inputs, tmp_path):
  generator, subject = random_pair
  photo = skimage_data.astronaut()
  frames = np.concatenate(list(generator.generate(
      subject, tone(0.5), output=tf.Output(paste_back=True))))
  assert frames.shape[1:] == photo.shape
  box = subject.portrait.box
  far = int(box[0] + box[2]), int(box[1] + box[2])  # Beyond the crop: the photo's own pixels.
  if far[0] < photo.shape[1] and far[1] < photo.shape[0]:
    np.testing.assert_array_equal(frames[:, far[1], far[0]], photo[far[1], far[0]][None].repeat(
        len(frames), 0))
  frames = np.concatenate(list(generator.generate(subject, tone(0.5),
                                                  output=tf.Output(resolution=97))))
  assert frames.shape[1:] == (96, 96, 3)  # Rounded down to even for H.264.


def test_streaming_gives_every_frame_soon(random_pair, inputs, tmp_path):
  generator, subject = random_pair
  audio = tone(1.5)
  offline = sum(len(f) for f in generator.generate(subject, audio))
  hop = 3
  session = generator.session(subject, hop=hop)
  counts, sizes = [], []
  for start in range(0, len(audio), 320):  # 20 ms chunks.
    frames = session.push(audio[start:start + 320])
    counts.append(len(frames))
    sizes.append(session.num_samples)
  counts.append(len(session.finish()))
  assert sum(counts) == offline == -(-len(audio) // 640)
  # Frames leave as soon as hop frames (and one frame of audio lookahead) are in.
  first = next(i for i, c in enumerate(counts) if c)
  assert sizes[first] <= (hop + 1) * 640 + 320
  summary = streaming.stream_video(generator, subject, inputs["speech"], tmp_path / "s.mp4", hop=hop,
                            realtime=False)
  assert summary["frames"] == -(-int(2.37 * 16000) // 640)
  assert 0 < summary["first_frame_latency"] < 30 and summary["frames_per_second"] > 0
  assert video_io.probe(tmp_path / "s.mp4").has_audio


def test_hold_keeps_the_photos_pose_or_expression(random_pair):
  generator, subject = random_pair
  seen = []
  dispatch = generator.face.dispatch

  def spy(latents, motion):
    seen.append(np.array(motion))
    return dispatch(latents, motion)

  generator.face.dispatch = spy
  try:
    for hold in ("pose", "expression"):
      list(generator.session(subject, hold=hold).push(tone(1.2)))
  finally:
    generator.face.dispatch = dispatch
  np.testing.assert_array_equal(seen[0][:, :7], np.broadcast_to(subject.latents.z_pose,
                                                                seen[0][:, :7].shape))
  assert np.ptp(seen[0][:, 7:], axis=0).max() > 0
  np.testing.assert_array_equal(seen[1][:, 7:], np.broadcast_to(subject.latents.z_dyn,
                                                                seen[1][:, 7:].shape))


def test_a_failed_generation_keeps_an_earlier_video(random_pair, tmp_path):
  generator, subject = random_pair
  out = tmp_path / "keep.mp4"
  out.write_bytes(b"earlier video")
  silent = write_wav(tmp_path / "silent.wav", np.zeros(16000, np.float32))
  with pytest.raises(UserError, match="silent"):
    generator.generate_video(subject, silent, out, progress=False)

  class Boom(Exception):
    pass

  def broken(latents, motion):
    raise Boom()

  speech = write_wav(tmp_path / "speech.wav", tone(1.0))
  generator.face.dispatch, dispatch = broken, generator.face.dispatch
  try:
    with pytest.raises(Boom):
      generator.generate_video(subject, speech, out, progress=False)
  finally:
    generator.face.dispatch = dispatch
  assert out.read_bytes() == b"earlier video"
  assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.slow
def test_long_audio_runs_in_bounded_memory():
  """One process makes a 384x384 video of 4 s of audio, then one of 24 s
  (benchmarks/generation_memory.py): its peak memory after the second stays within 100 MB of that
  after the first, where keeping the 500 more frames of the 24 s video would add 0.22 GB."""
  out = subprocess.run([PYTHON, str(REPO / "benchmarks" / "generation_memory.py"), "--seconds",
                        "4", "24", "--one_process", "--json"], env=subprocess_env(1),
                       capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-2000:]
  short, long = (json.loads(line) for line in out.stdout.strip().splitlines()[-2:])
  assert (short["frames"], long["frames"]) == (100, 600)
  assert long["peak_mb"] < short["peak_mb"] + 100, (short, long)


# ----------------------------------------------------------------------------------------------------
# Trained runs and the command line.


@pytest.fixture(scope="module")
def motion_run(motion_latents_run):
  """The session's stage-2 run on stage-1 latents (conftest)."""
  return motion_latents_run[2]


def vasa(*args):
  return vasa_main.main([str(a) for a in args])


def test_generate_command_streams_the_video(motion_run, inputs, tmp_path, capsys):
  out = tmp_path / "cli.mp4"
  report = tmp_path / "report.json"
  assert vasa("generate", "--image", inputs["photo"], "--audio", inputs["speech"],
              "--checkpoint", motion_run, "--out", out, "--gaze", "5,-3", "--emotion", "happy",
              "--guidance", "audio=1.0", "--steps", "2", "--seed", "3", "--report", report,
              "--stream", "--no_realtime", "--hop", "4") == 0
  summary = json.loads(report.read_text())
  assert summary["frames"] == len(list(video_io.iter_frames(out))) == -(-int(2.37 * 16000) // 640)
  assert summary["settings"]["guidance"]["audio"] == 1.0 and summary["settings"]["steps"] == 2
  assert summary["hop"] == 4 and video_io.probe(out).has_audio
  printed = capsys.readouterr().out
  assert "first_frame_latency" in printed and "frames_per_second" in printed
  # The run stands alone: its stats and its stage-1 record are in its workdir.
  assert (motion_run / "motion_stats.npz").is_file()
  assert json.loads((motion_run / "motion_source.json").read_text())["stage1"]["step"] == 40


def test_edit_drives_the_photo_with_a_video(face_latent_tiny_workdir, inputs, tmp_path):
  frames, _ = moving_photo(skimage_data.astronaut(), 30, 25)
  driver = video_io.write_video(tmp_path / "driver.mp4", frames, 25, tone(1.2), 16000)
  for transfer in ("all", "expression"):
    out = tmp_path / f"{transfer}.mp4"
    assert vasa("edit", "--image", inputs["photo"], "--video", driver, "--checkpoint",
                face_latent_tiny_workdir, "--out", out, "--transfer", transfer) == 0
    info = video_io.probe(out)
    assert info.has_audio and len(list(video_io.iter_frames(out))) == 30
  moved = np.stack(list(video_io.iter_frames(tmp_path / "all.mp4"))).astype(float)
  kept = np.stack(list(video_io.iter_frames(tmp_path / "expression.mp4"))).astype(float)
  assert np.abs(moved - kept).mean() > 0  # The video's pose moved the head in one only.


BAD_PHOTOS = ("no_face", "two_faces")


def bad_photo(case, tmp_path):
  """A photo `vasa generate` must refuse: no face (a coffee cup) or two faces."""
  if case == "no_face":
    photo = tmp_path / "coffee.png"
    cv2.imwrite(str(photo), skimage_data.coffee())
  else:
    face = cv2.resize(skimage_data.astronaut(), (256, 256))
    photo = tmp_path / "two.png"
    cv2.imwrite(str(photo), np.concatenate([face, face[:, ::-1]], axis=1))
  return photo


@pytest.mark.parametrize("case, message", [
    ("missing_photo", "not found"),
    ("no_face", "no face"),
    ("two_faces", "--face_index"),
    ("missing_audio", "not found"),
    ("silent_audio", "silent"),
    ("corrupt_audio", "cannot use the audio"),
    ("not_a_run", "not a training run"),
    ("stage1_run", "face_latent"),
    ("out_folder", "is a folder"),
    ("bad_gaze", "--gaze"),
    ("bad_emotion", "emotion"),
    ("bad_guidance", "--guidance"),
])
def test_bad_inputs_fail_with_one_clear_line(case, message, motion_run, face_latent_tiny_workdir,
                                             inputs, tmp_path, capsys):
  photo, audio, checkpoint, out = inputs["photo"], inputs["speech"], motion_run, tmp_path / "o.mp4"
  extra = []
  if case == "missing_photo":
    photo = tmp_path / "nobody.jpg"
  elif case in BAD_PHOTOS:
    photo = bad_photo(case, tmp_path)
  elif case == "missing_audio":
    audio = tmp_path / "nothing.wav"
  elif case == "silent_audio":
    audio = write_wav(tmp_path / "silent.wav", np.zeros(16000, np.float32))
  elif case == "corrupt_audio":
    audio = tmp_path / "corrupt.mp3"
    audio.write_bytes(b"ID3" + bytes(range(256)) * 8)
  elif case == "not_a_run":
    checkpoint = tmp_path
  elif case == "stage1_run":
    checkpoint = face_latent_tiny_workdir
  elif case == "out_folder":
    out = tmp_path / "folder.mp4"
    out.mkdir()
  elif case == "bad_gaze":
    extra = ["--gaze", "left"]
  elif case == "bad_emotion":
    extra = ["--emotion", "bored"]
  elif case == "bad_guidance":
    extra = ["--guidance", "volume=2"]
  assert vasa("generate", "--image", photo, "--audio", audio, "--checkpoint", checkpoint,
              "--out", out, "--steps", "2", *extra) == 2
  error = capsys.readouterr().err.strip().splitlines()
  assert error[-1].startswith("vasa: error:") and message in error[-1], error
  assert not pathlib.Path(tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("case, message", [("no_face", "no face"), ("two_faces", "--face_index"),
                                           ("silent_audio", "silent")])
def test_the_photo_and_the_speech_are_checked_before_any_model_loads(case, message, inputs,
                                                                      tmp_path, capsys,
                                                                      monkeypatch):
  def load_generator(*args, **kwargs):
    raise AssertionError("the models loaded before the inputs were checked")

  monkeypatch.setattr(tf, "load_generator", load_generator)
  photo, audio = inputs["photo"], inputs["speech"]
  if case in BAD_PHOTOS:
    photo = bad_photo(case, tmp_path)
  else:
    audio = write_wav(tmp_path / "silent.wav", np.zeros(16000, np.float32))
  # Not a run at all: only a load would find that out.
  assert vasa("generate", "--image", photo, "--audio", audio, "--checkpoint", tmp_path,
              "--out", tmp_path / "o.mp4") == 2
  error = capsys.readouterr().err.strip().splitlines()
  assert message in error[-1] and str(photo if case != "silent_audio" else audio) in error[-1]


def test_a_labels_run_cannot_animate_a_photo(synthtalk_tiny_dir, inputs, tmp_path, capsys):
  from vasa_jax import configs
  from vasa_jax.trainers import motion

  config = configs.load_config(f"{EXPERIMENTS / 'motion' / 'synthtalk_tiny.py'}:runlocal", [
      f"--config.data.data_dir={synthtalk_tiny_dir}", f"--config.data.cache_dir={tmp_path}",
      "--config.total_steps=1", "--config.batch_size=8", "--config.evals.motion.every=-1"])
  motion.train(config, str(tmp_path / "labels_run"))
  assert vasa("generate", "--image", inputs["photo"], "--audio", inputs["speech"],
              "--checkpoint", tmp_path / "labels_run", "--out", tmp_path / "o.mp4") == 2
  assert "labels" in capsys.readouterr().err


def test_bench_measures_and_prints_a_table(random_pair, tmp_path, capsys):
  generator, subject = random_pair
  row = dict(size="tiny", dtype="float32", **bench.measure_generator(generator, subject, 1.0))
  assert row["device"] == jax.devices()[0].device_kind and row["resolution"] == 64
  assert row["batch"] == 8 and row["hop"] == generator.window // 5 and row["steps"] == 2
  for key in ("fps", "render_ms", "window_ms", "motion_ms", "latency_ms", "stream_fps"):
    assert np.isfinite(row[key]) and row[key] > 0, key
  assert 0 < row["motion_share"] < 1
  assert row["compiles_after_warmup"] == 0  # Offline, streaming, render and window programs.
  lines = bench.table([row]).splitlines()
  assert lines[0].startswith("| device | size | px | batch") and len(lines) == 3
  assert vasa("bench", "generate", "--sizes", "tiny", "--batch_sizes", "two") == 2
  assert "--batch_sizes" in capsys.readouterr().err
  assert vasa("bench", "generate", "--sizes", "huge") == 2
  assert "huge" in capsys.readouterr().err


def test_no_program_compiles_again_for_other_lengths(random_pair):
  """After one clip, clips of other lengths (other partial last windows and audio blocks), streamed
  or offline, run on the programs already compiled."""
  generator, subject = random_pair
  rng = np.random.default_rng(0)

  def speech(seconds):
    return (0.1 * rng.normal(size=int(seconds * 16000))).astype(np.float32)

  for hop in (None, 2):
    session = generator.session(subject, tf.Controls(gaze=(0.0, 0.0)), hop=hop)
    session.push(speech(1.3))
    session.finish()
  with bench_common.CompileCounter() as compiles:
    for seconds, hop in ((2.7, None), (0.5, None), (1.9, 2), (0.33, 2)):
      session = generator.session(subject, tf.Controls(gaze=(0.0, 0.0)), seed=3, hop=hop)
      audio = speech(seconds)
      frames = sum(len(session.push(audio[o:o + 3000])) for o in range(0, len(audio), 3000))
      frames += len(session.finish())
      assert frames == -(-len(audio) // 640)
  assert compiles.count == 0


def test_pipelined_generation_gives_the_same_frames(random_pair):
  """Offline sessions hand back a push's frames one push later; the frames are the same."""
  generator, subject = random_pair
  audio = (0.1 * np.random.default_rng(1).normal(size=int(2.3 * 16000))).astype(np.float32)
  out = {}
  for pipelined in (False, True):
    session = generator.session(subject, tf.Controls(gaze=(0.0, 0.0)), pipelined=pipelined)
    chunk = generator.window * 640
    pushed = [session.push(audio[o:o + chunk]) for o in range(0, len(audio), chunk)]
    out[pipelined] = (pushed, session.finish())
  counts = {k: [len(f) for f in pushed] for k, (pushed, _) in out.items()}
  assert counts[True] == [0] + counts[False][:-1] and sum(counts[False]) > 0
  frames = {k: np.concatenate([*pushed, last]) for k, (pushed, last) in out.items()}
  assert len(frames[True]) == -(-len(audio) // 640)
  np.testing.assert_array_equal(frames[True], frames[False])
