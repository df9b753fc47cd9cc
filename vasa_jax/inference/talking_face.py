"""One face photo and speech into a talking-face video: the whole VASA-1 pipeline at generation time.

  generator = load_generator("runs/motion")           # a stage-2 run; it names its stage-1 run
  subject = generator.prepare("face.jpg")             # detect, canonical crop, stage-1 latents
  generator.generate_video(subject, "speech.wav", "out.mp4", Controls(gaze=(0.0, 0.0)))

The speech goes through the audio encoder block by block (`inference.audio`), stage 2 samples motion
window after window from it (`diffusion.motion`), and stage 1 renders the photo's appearance with
that motion in batches (`inference.face`); frames go to the video file as they are made, so memory
does not grow with the length of the audio. A `Session` is the same pipeline fed by pushed audio
chunks (a microphone, a socket): frames leave as soon as their audio, and `hop` frames of it, are
in. Offline generation is a session with whole windows (`hop` = W).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jax
import numpy as np

from vasa_jax.data import audio as speech_io
from vasa_jax.data import audio_features
from vasa_jax.data import schema
from vasa_jax.errors import UserError
from vasa_jax.inference import portrait as portrait_lib
from vasa_jax.inference.audio import AudioFeatureStream
from vasa_jax.inference.face import FaceLatents, FaceRenderer
from vasa_jax.diffusion.motion import MotionGenerator, sampling_settings
from vasa_jax.models.audio import features
from vasa_jax.models.face_latent.warping import POSE_DIM
from vasa_jax.rates import FPS, SAMPLE_RATE

SAMPLES_PER_FRAME = schema.SAMPLES_PER_FRAME


@dataclasses.dataclass(frozen=True)
class Controls:
  """Stage 2's conditions; None leaves one to the model (absent, as in training's dropout).

  Attributes:
    gaze: (theta, phi) radians, the eyes' direction as the camera sees it (theta > 0 towards the
      viewer's right, phi > 0 up; data/README.md).
    distance: head-to-camera distance, 1 = the data's default framing.
    emotion: an index or a name of `schema.EMOTIONS`.
  """

  gaze: tuple[float, float] | None = None
  distance: float | None = None
  emotion: int | str | None = None

  def as_arrays(self) -> dict[str, np.ndarray | None]:
    emotion = self.emotion
    if isinstance(emotion, str):
      if emotion not in schema.EMOTIONS:
        raise UserError(f"emotion {emotion!r} is unknown; use one of {', '.join(schema.EMOTIONS)}")
      emotion = schema.EMOTIONS.index(emotion)
    if emotion is not None and not 0 <= int(emotion) < len(schema.EMOTIONS):
      raise UserError(f"emotion {emotion} is out of range 0..{len(schema.EMOTIONS) - 1}")
    return {"gaze": None if self.gaze is None else np.asarray([self.gaze], np.float32),
            "distance": None if self.distance is None else np.asarray([self.distance], np.float32),
            "emotion": None if emotion is None else np.asarray([int(emotion)], np.int32)}


@dataclasses.dataclass
class Subject:
  """A prepared photo: where its face is, and the face's stage-1 latents."""

  portrait: portrait_lib.Portrait
  latents: FaceLatents
  name: str = "the photo"


@dataclasses.dataclass(frozen=True)
class Output:
  """How generated faces become video frames.

  Attributes:
    paste_back: put the face back into the whole photo (soft mask) instead of the square crop.
    resolution: the frame's size: the crop's side, or the photo's longer side with `paste_back`
      (None: the model's size, or the photo's own). Sizes are rounded down to even numbers (H.264).
  """

  paste_back: bool = False
  resolution: int | None = None


class TalkingFaceGenerator:
  """Stage 1, stage 2 and the audio encoder of a trained pair of runs.

  Build one with `load_generator` (trained runs) or directly (e.g. random weights for benchmarks).

  Args:
    face: stage 1 (`FaceRenderer`; its `batch_size` is the frames per render call).
    motion: stage 2 (`MotionGenerator`, with its sampler and guidance settings).
    audio_encoder: the encoder stage 2 was trained with.
    audio_context: (left, right) frames of audio context per feature block (None: exact for
      log-mel, 2 s / 0.4 s for Wav2Vec2; `inference.audio`).
  """

  def __init__(self, face: FaceRenderer, motion: MotionGenerator,
               audio_encoder: features.AudioEncoder,
               audio_context: tuple[int, int] | None = None):
    if motion.model.config.motion_dim != face.motion_dim:
      raise UserError(f"stage 2 generates {motion.model.config.motion_dim}-dim motion but stage 1 "
                      f"renders {face.motion_dim}-dim motion: the runs do not belong together")
    if motion.model.config.audio_dim != audio_encoder.dim:
      raise UserError(f"stage 2 hears {motion.model.config.audio_dim}-dim audio features but the "
                      f"audio encoder gives {audio_encoder.dim}")
    self.face = face
    self.motion = motion
    self.audio_encoder = audio_encoder
    self.audio_context = audio_context or (None, None)
    self._audio_apply = jax.jit(audio_encoder.apply)
    self._analyzer = None

  @property
  def window(self) -> int:
    return self.motion.window

  def prepare(self, photo: str | os.PathLike | np.ndarray | portrait_lib.Portrait,
              face_index: int | None = None, name: str | None = None) -> Subject:
    """Finds the face of a photo (a path, a uint8 RGB array, or a face already found by
    `portrait.crop_photo`), crops it as training data was cropped, and encodes it with stage 1."""
    if isinstance(photo, portrait_lib.Portrait):
      found = photo.at(self.face.image_size)
    else:
      if self._analyzer is None:
        from vasa_jax.data import faces

        self._analyzer = faces.FaceAnalyzer()
      found = portrait_lib.crop_photo(photo, self.face.image_size, self._analyzer, face_index)
    name = name or ("the photo" if isinstance(photo, (np.ndarray, portrait_lib.Portrait))
                    else str(photo))
    return Subject(found, self.face.encode(found.crop, found.landmarks), name)

  def session(self, subject: Subject, controls: Controls = Controls(), seed: int = 0,
              hop: int | None = None, output: Output = Output(), hold: str | None = None,
              pipelined: bool | None = None) -> Session:
    """A `Session` generating frames of `subject` for pushed audio."""
    return Session(self, subject, controls, seed, hop, output, hold, pipelined)

  def generate(self, subject: Subject, audio: Iterable[np.ndarray] | np.ndarray,
               controls: Controls = Controls(), seed: int = 0, output: Output = Output(),
               hold: str | None = None) -> Iterator[np.ndarray]:
    """Frames for speech (16 kHz mono float32: one array, or chunks), batch after batch.

    Yields uint8 [n, H, W, 3] batches; ceil(samples / 640) frames in all.
    """
    session = self.session(subject, controls, seed, None, output, hold)
    for chunk in ([audio] if isinstance(audio, np.ndarray) else audio):
      frames = session.push(chunk)
      if len(frames):
        yield frames
    frames = session.finish()
    if len(frames):
      yield frames

  def generate_video(self, subject: Subject, audio_path: str | os.PathLike,
                     out_path: str | os.PathLike, controls: Controls = Controls(), seed: int = 0,
                     output: Output = Output(), hold: str | None = None, progress: bool = True,
                     chunk_seconds: float | None = None) -> dict[str, Any]:
    """Writes the video of `subject` speaking the speech file `audio_path` to `out_path`.

    Any length of audio works in bounded memory: the file is checked in one pass, then decoded,
    encoded, animated and written chunk by chunk (`chunk_seconds` of audio; default one motion
    window, so about one window of frames is in memory at a time). The video (H.264, with the speech as AAC, marked
    AI-generated) appears under `out_path` only when complete.

    Returns:
      A summary: frames, seconds of video and of audio, generation time and rate, settings.
    """
    from tqdm import tqdm

    from vasa_jax.data import video_io

    info = speech_io.check_speech(audio_path)
    total = features.num_video_frames(info.num_samples)
    session = self.session(subject, controls, seed, None, output, hold)
    start = time.perf_counter()
    bar = tqdm(total=total, desc="generate", unit="frame", disable=not progress)
    metadata = {"title": f"talking face from {pathlib.Path(str(subject.name)).name}"}
    with video_io.VideoWriter(out_path, FPS, audio=True, sample_rate=SAMPLE_RATE,
                              metadata=metadata) as writer:
      chunk_samples = (self.window * SAMPLES_PER_FRAME if chunk_seconds is None else
                       max(SAMPLES_PER_FRAME, int(chunk_seconds * SAMPLE_RATE)))
      for chunk in speech_io.stream_speech(audio_path, chunk_samples):
        writer.write_audio(chunk)
        frames = session.push(chunk)
        writer.write_frames(frames)
        bar.update(len(frames))
      frames = session.finish()
      writer.write_frames(frames)
      bar.update(len(frames))
    bar.close()
    elapsed = time.perf_counter() - start
    return {"video": str(out_path), "frames": writer.num_frames,
            "video_seconds": writer.num_frames / FPS, "audio_seconds": info.seconds,
            "frame_size": list(session.frame_size), "seconds": elapsed,
            "frames_per_second": writer.num_frames / max(elapsed, 1e-9),
            "face_box": [float(v) for v in subject.portrait.box],
            "settings": self.describe(controls, seed, output)}

  def describe(self, controls: Controls = Controls(), seed: int = 0,
               output: Output = Output()) -> dict[str, Any]:
    m = self.motion
    return {"sampler": m.method, "steps": m.num_steps, "eta": m.eta, "guidance": dict(m.scales),
            "seed": seed, "gaze": controls.gaze, "distance": controls.distance,
            "emotion": controls.emotion, "paste_back": output.paste_back,
            "resolution": output.resolution, "model_size": self.face.image_size,
            "window": m.window, "context": m.context}


class Session:
  """Audio in, frames out, as the audio arrives.

  `push(samples)` returns the frames its audio completed (possibly none); `finish()` the rest.
  Frames leave in groups of `hop`: once `hop` frames of audio features are in (plus the audio
  encoder's lookahead), stage 2 samples a window whose first frames have that audio (up to W frames
  of audio when more has arrived), keeps `hop` frames and continues from them; stage 1 renders them.
  `hop` = W (the default) is offline generation; a smaller hop lowers the latency to about
  hop / 25 s plus the compute of one window, for W / hop times more stage-2 sampling.

  `hold` "pose" keeps the photo's head pose in every frame (the face alone follows the speech);
  "expression" keeps its facial dynamics (the head alone moves).

  Offline (`hop` = W) the session is `pipelined`: a push starts rendering its frames and returns
  those the previous push started, so the device samples and renders the next window while the
  caller composes and encodes this one; `finish` returns everything left. Streaming returns a push's
  own frames, for latency.
  """

  def __init__(self, generator: TalkingFaceGenerator, subject: Subject, controls: Controls,
               seed: int, hop: int | None, output: Output, hold: str | None = None,
               pipelined: bool | None = None):
    if hold not in (None, "pose", "expression"):
      raise UserError(f"hold={hold!r}: keep the photo's 'pose' or its 'expression'")
    self.hold = hold
    W = generator.window
    self.hop = W if hop is None else int(hop)
    if not 1 <= self.hop <= W:
      raise UserError(f"hop {self.hop} must be 1..{W} frames (the motion window)")
    self.generator = generator
    self.subject = subject
    left, right = generator.audio_context
    self._audio = AudioFeatureStream(generator.audio_encoder, block=self.hop, left=left,
                                     right=right, apply=generator._audio_apply)
    self._motion = generator.motion.stream(jax.random.key(seed), 1, **controls.as_arrays())
    self._features = np.zeros((0, generator.audio_encoder.dim), np.float32)
    self._to_render = np.zeros((0, generator.face.motion_dim), np.float32)
    self._compose = FrameComposer(subject.portrait, generator.face.image_size, output)
    self.frame_size = self._compose.frame_size
    self.num_frames = 0
    self.pipelined = self.hop == W if pipelined is None else bool(pipelined)
    self._in_flight: list = []  # Renders started by the previous push, not fetched yet.

  @property
  def lookahead(self) -> int:
    """Frames of audio after a hop that must be in before its frames can be made."""
    return self._audio.right

  @property
  def num_samples(self) -> int:
    """Audio samples pushed so far."""
    return self._audio.num_samples

  def _sample(self, final: bool) -> None:
    W = self.generator.window
    while len(self._features) >= self.hop or (final and len(self._features)):
      n = min(len(self._features), W)
      commit = n if final and n == len(self._features) else self.hop
      motion = self._motion.next(self._features[None, :n], commit=commit)[0]
      if self.hold == "pose":
        motion[:, :POSE_DIM] = self.subject.latents.z_pose
      elif self.hold == "expression":
        motion[:, POSE_DIM:] = self.subject.latents.z_dyn
      self._features = self._features[commit:]
      self._to_render = np.concatenate([self._to_render, motion])

  def _render(self, final: bool) -> np.ndarray:
    batch = self.generator.face.batch_size
    count = len(self._to_render) if final else len(self._to_render) // batch * batch
    if self.hop < self.generator.window:  # Streaming: no frame waits for a full batch.
      count = len(self._to_render)
    motion, self._to_render = self._to_render[:count], self._to_render[count:]
    face = self.generator.face
    started = face.dispatch(self.subject.latents, motion) if count else []
    if self.pipelined and not final:
      ready, self._in_flight = self._in_flight, started
    else:
      ready, self._in_flight = self._in_flight + started, []
    frames = self._compose(face.fetch(ready))
    self.num_frames += len(frames)
    return frames

  def push(self, samples: np.ndarray) -> np.ndarray:
    """Adds 16 kHz mono float32 samples; returns the frames ready now, uint8 [n, H, W, 3]."""
    self._features = np.concatenate([self._features, self._audio.push(samples)])
    self._sample(final=False)
    return self._render(final=False)

  def finish(self) -> np.ndarray:
    """The remaining frames: ceil(samples / 640) frames in all."""
    self._features = np.concatenate([self._features, self._audio.finish()])
    self._sample(final=True)
    return self._render(final=True)


class FrameComposer:
  """Generated crops to output frames: resized crops, or pasted back into the photo (`Output`)."""

  def __init__(self, found: portrait_lib.Portrait, model_size: int, output: Output):
    self.output = output
    self.model_size = model_size
    if output.paste_back:
      height, width = found.image.shape[:2]
      out_size = None
      if output.resolution:
        scale = output.resolution / max(height, width)
        out_size = (max(2, round(width * scale)), max(2, round(height * scale)))
      self._paste = portrait_lib.PasteBack(found.image, found.box, model_size, out_size=out_size)
      self.frame_size = tuple(self._paste.frame_size)
    else:
      side = int(output.resolution or model_size) // 2 * 2
      if side < 2:
        raise UserError(f"resolution {output.resolution} is too small")
      self.frame_size = (side, side)

  def __call__(self, crops: np.ndarray) -> np.ndarray:
    import cv2

    if self.output.paste_back:
      return self._paste(crops) if len(crops) else np.zeros((0, self.frame_size[1],
                                                             self.frame_size[0], 3), np.uint8)
    side = self.frame_size[0]
    if side == self.model_size:
      return crops
    interpolation = cv2.INTER_AREA if side < self.model_size else cv2.INTER_CUBIC
    return np.stack([cv2.resize(c, (side, side), interpolation=interpolation) for c in crops]) \
        if len(crops) else np.zeros((0, side, side, 3), np.uint8)


# ----------------------------------------------------------------------------------------------------
# Loading trained runs.


def load_generator(checkpoint: str | os.PathLike, step: int | None = None,
                   stage1: str | os.PathLike | None = None, batch_size: int = 8,
                   sampling: Mapping[str, Any] | None = None,
                   audio_context: tuple[int, int] | None = None) -> TalkingFaceGenerator:
  """The generator of a stage-2 (motion) run and the stage-1 run it was trained on.

  Args:
    checkpoint: the stage-2 run's workdir.
    step: its checkpoint step (default: the latest).
    stage1: the stage-1 run's workdir, if it moved since stage 2 was trained (default: the one
      stage 2 recorded); the checkpoint step stays the one stage 2's latents came from.
    batch_size: frames per stage-1 render call.
    sampling: overrides of the run's `config.sampling`: num_steps, method, eta, scales.
    audio_context: see `TalkingFaceGenerator`.
  """
  from vasa_jax import configs, runs
  from vasa_jax.data import motion_latents
  from vasa_jax.trainers import motion as motion_trainer

  workdir = pathlib.Path(checkpoint).expanduser()
  config_path = workdir / "config.json"
  if not config_path.is_file():
    raise UserError(f"{workdir} is not a training run (no config.json); --checkpoint takes the "
                    "workdir of a stage-2 run (vasa train --config experiments/motion/...)")
  config = configs.read_json(config_path)
  if config.get("task") != motion_trainer.TASK_NAME:
    raise UserError(f"{workdir} is a {config.get('task')!r} run; --checkpoint takes the workdir of "
                    "a stage-2 (motion) run, which names its stage-1 run")
  stats, source = motion_trainer.read_run_files(workdir)
  if source is None:  # A run from before the run files: its config and caches tell the same.
    task = motion_trainer.make_task(config)
    stats = task.stats
    source = {"motion": task.motion_kind,
              "stage1": motion_latents.MotionLatentSource(task.train_folder).meta["stage1"]}
  if source["motion"] != "latents" or not source["stage1"]:
    raise UserError(f"{workdir} learned SynthTalk's motion labels, not stage-1 latents, so it "
                    "cannot animate a photo; train stage 2 with --config.stage1.workdir=STAGE1_RUN")
  stage1_dir = pathlib.Path(stage1).expanduser() if stage1 else pathlib.Path(
      source["stage1"]["workdir"])
  stage1_step = int(source["stage1"]["step"])
  if not (stage1_dir / "config.json").is_file():
    raise UserError(f"stage 2 in {workdir} was trained on the stage-1 run {stage1_dir}, which is "
                    "not there; give its new place with --stage1 DIR")

  def moved_stage1(config):
    config.stage1.workdir = str(stage1_dir)

  trained = runs.load_run(workdir, step, task=motion_trainer.TASK_NAME, adjust=moved_stage1)
  config, task = trained.config, trained.task
  first = motion_latents.load_stage1(stage1_dir, stage1_step)
  if first.variant != source["stage1"]["variant"]:
    raise UserError(f"{stage1_dir} holds a {first.variant!r} stage-1 model; stage 2 in {workdir} "
                    f"was trained on a {source['stage1']['variant']!r} one")
  settings = sampling_settings(config.sampling, **(sampling or {}))
  motion = MotionGenerator(task.model, trained.params, task.schedule, stats, **settings)
  encoder = audio_features.make_audio_encoder(dict(config.audio))
  logging.info("Stage 2: %s step %d; stage 1: %s step %d (%s, %d px); audio: %s", workdir,
               trained.step, stage1_dir, stage1_step, first.variant, first.image_size,
               encoder.description)
  return TalkingFaceGenerator(FaceRenderer.from_stage1(first, batch_size), motion, encoder,
                              audio_context)
