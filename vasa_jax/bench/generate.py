"""Generation speed: `vasa bench generate`, or `python -m vasa_jax.bench.generate` where the full
install is not (it needs jax, flax, numpy and opencv only).

Each row times the whole pipeline of `talking_face.Session` (log-mel audio features, stage-2 window
sampling with multi-condition guidance, stage-1 rendering) with randomly initialised models of one
size on the default JAX backend, for one render batch and one number of sampling steps; weights do
not change the amount of computation. Columns:
  fps: frames per second of offline generation after compilation, the audio pushed a window at a
    time as `generate_video` does (pipelined: the next window is sampled and rendered while this
    one's frames are fetched);
  motion ms / render ms: per offline frame, stage-2 sampling (one window over W frames) and stage-1
    rendering (one batch over its frames), each timed alone;
  motion %: motion's share of their sum;
  latency ms: streaming's compute latency, from the moment `hop` frames of audio (and the audio
    encoder's lookahead) are in until their first frame leaves; add the audio buffering,
    (hop + lookahead) / 25 s, for the latency a listener sees;
  stream fps: frames per second streaming at that hop (a window sampled per hop);
  compiles: XLA compilations during the timed runs (after warm-up); anything but 0 is a bug;
  memory GB: the allocator's peak since the process started (accelerators; none on the CPU), so
    with several rows in one process, the peak of this row and those before it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.bench import common as bench_common
from vasa_jax.data import schema
from vasa_jax.diffusion import schedules
from vasa_jax.inference import portrait as portrait_lib
from vasa_jax.inference import talking_face as tf
from vasa_jax.inference.face import FaceRenderer
from vasa_jax.diffusion.motion import MotionGenerator
from vasa_jax.models import motion_dit
from vasa_jax.models.audio import features
from vasa_jax.models.face_latent import networks, warping

STAGE1_SIZES = ("tiny", "small", "base", "paper")
# Stage 2 of each size: (variant, W, K), as the experiments pair them.
STAGE2 = {"tiny": ("tiny", 25, 5), "small": ("small", 50, 10), "base": ("paper", 50, 10),
          "paper": ("paper", 50, 10)}


def random_generator(size: str, batch_size: int, steps: int = 50, dtype: str = "float32",
                     seed: int = 0) -> tuple[tf.TalkingFaceGenerator, tf.Subject]:
  """A generator of `size` with random weights, and a random photo prepared for it."""
  if size not in STAGE1_SIZES:
    raise ValueError(f"size {size!r}: use one of {', '.join(STAGE1_SIZES)}")
  dtype = jnp.dtype(dtype)
  rng = jax.random.key(seed)
  face_model = networks.FaceLatentModel.from_variant(size, dtype=dtype)
  r = face_model.config.image_size
  image = jnp.zeros((1, r, r, 3), jnp.float32)
  face_params = jax.jit(face_model.init)(rng, image, image)["params"]
  face = FaceRenderer(face_model, face_params, batch_size)
  mel = features.MelConfig()
  encoder = features.AudioEncoder(
      kind="mel", dim=(features.SAMPLES_PER_FRAME // mel.hop) * mel.n_mels, layer=None,
      hop=mel.hop, mel=mel,
      filterbank=np.random.default_rng(seed).random((mel.n_fft // 2 + 1, mel.n_mels), np.float32),
      description="log-mel shape, random filters")
  variant, window, context = STAGE2[size]
  motion_config = motion_dit.make_config(
      variant, motion_dim=warping.POSE_DIM + face_model.config.dyn_dim, audio_dim=encoder.dim,
      window=window, context=context, num_emotions=len(schema.EMOTIONS))
  motion_model = motion_dit.MotionDiT(motion_config, dtype=dtype)
  motion_params = jax.jit(motion_model.init)(
      rng, *motion_dit.dummy_inputs(motion_config, 1))["params"]
  stats = {"motion_mean": np.zeros(motion_config.motion_dim, np.float32),
           "motion_std": np.ones(motion_config.motion_dim, np.float32),
           "audio_mean": np.zeros(encoder.dim, np.float32),
           "audio_std": np.ones(encoder.dim, np.float32)}
  motion = MotionGenerator(motion_model, motion_params, schedules.make_schedule("cosine", 1000),
                           stats, num_steps=steps, method="ddim", eta=0.0,
                           scales={"audio": 0.5, "gaze": 1.0})
  generator = tf.TalkingFaceGenerator(face, motion, encoder)
  crop = np.random.default_rng(seed).integers(0, 256, (r, r, 3), np.uint8)
  found = portrait_lib.Portrait(image=crop, box=np.array([r / 2, r / 2, r], np.float32),
                                crop=crop, face_index=0, num_faces=1)
  return generator, tf.Subject(found, face.encode(crop), "random photo")


def _speech(seconds: float, seed: int = 0) -> np.ndarray:
  return (0.1 * np.random.default_rng(seed).normal(size=int(seconds * tf.SAMPLE_RATE))
          ).astype(np.float32)


def _offline(generator, subject, audio, pipelined: bool = True) -> float:
  """Frames per second of offline generation, the audio pushed a window at a time."""
  session = generator.session(subject, tf.Controls(gaze=(0.0, 0.0)), pipelined=pipelined)
  chunk = generator.window * tf.SAMPLES_PER_FRAME
  start = time.perf_counter()
  frames = sum(len(session.push(audio[o:o + chunk])) for o in range(0, len(audio), chunk))
  frames += len(session.finish())
  return frames / (time.perf_counter() - start)


def with_steps(generator: tf.TalkingFaceGenerator, steps: int) -> tf.TalkingFaceGenerator:
  """The same models with another number of sampling steps (the render program is shared)."""
  motion = dataclasses.replace(generator.motion, num_steps=steps)
  return tf.TalkingFaceGenerator(generator.face, motion, generator.audio_encoder,
                                 generator.audio_context)


def measure_generator(generator: tf.TalkingFaceGenerator, subject: tf.Subject,
                      seconds: float = 4.0, hop: int | None = None, pipelined: bool = True,
                      profile_dir: str | None = None) -> dict:
  """The timings of one row for a built generator and a prepared photo."""
  batch_size = generator.face.batch_size
  W = generator.window
  hop = hop or max(1, W // 5)
  # At least a window past the first hop, so that streaming's first frames come from a whole hop.
  audio = _speech(max(seconds, (hop + W) / tf.FPS))
  controls = tf.Controls(gaze=(0.0, 0.0))
  session_kw = dict(hop=hop, pipelined=False)  # Streaming hands frames out as soon as made.

  def streamed(session):
    """Pushes the audio a hop at a time; returns (first-frame compute latency, frames/s). The
    latency is the time from pushing the first hop (and its lookahead) to the first frames out."""
    block = hop * tf.SAMPLES_PER_FRAME
    first = block + session.lookahead * tf.SAMPLES_PER_FRAME
    pushes = [audio[:first]] + [audio[o:o + block] for o in range(first, len(audio), block)]
    start = time.perf_counter()
    count, latency = 0, None
    for samples in pushes + [None]:
      frames = session.finish() if samples is None else session.push(samples)
      count += len(frames)
      if latency is None and len(frames):
        latency = time.perf_counter() - start
    return latency, count / (time.perf_counter() - start)

  motion = np.zeros((batch_size, generator.face.motion_dim), np.float32)
  stream = generator.motion.stream(jax.random.key(0), 1, gaze=np.zeros((1, 2), np.float32))
  window_audio = np.zeros((1, W, generator.audio_encoder.dim), np.float32)
  # Warm-up: every program of the timed runs compiles here.
  _offline(generator, subject, audio, pipelined)
  streamed(generator.session(subject, controls, **session_kw))
  generator.face.render(subject.latents, motion)
  stream.next(window_audio)

  with bench_common.CompileCounter() as compiles:
    with bench_common.profile(profile_dir):
      fps = _offline(generator, subject, audio, pipelined)
    start = time.perf_counter()
    repeats = max(1, 32 // batch_size)
    for _ in range(repeats):
      generator.face.render(subject.latents, motion)
    render_ms = 1000 * (time.perf_counter() - start) / (repeats * batch_size)
    start = time.perf_counter()
    for _ in range(3):
      stream.next(window_audio)
    window_ms = 1000 * (time.perf_counter() - start) / 3
    session = generator.session(subject, controls, **session_kw)
    latency, stream_fps = streamed(session)
  motion_ms = window_ms / W
  memory = bench_common.peak_memory_bytes()  # Since the process started: None on the CPU.
  return {"device": jax.devices()[0].device_kind, "resolution": generator.face.image_size,
          "batch": batch_size, "steps": generator.motion.num_steps, "window": W, "hop": hop,
          "pipelined": pipelined, "fps": fps, "render_ms": render_ms, "window_ms": window_ms,
          "motion_ms": motion_ms, "motion_share": motion_ms / (motion_ms + render_ms),
          "latency_ms": 1000 * latency, "buffer_ms": 1000 * (hop + session.lookahead) / tf.FPS,
          "stream_fps": stream_fps, "compiles_after_warmup": compiles.count,
          "memory_gb": None if memory is None else memory / 1e9}


def run(sizes, batch_sizes, seconds: float = 4.0, steps=(50, 10), hop: int | None = None,
        dtype: str = "float32", pipelined: bool = True, profile_dir: str | None = None,
        progress: bool = True) -> list[dict]:
  steps = [steps] if isinstance(steps, int) else list(steps)
  rows = []
  for size in sizes:
    for batch_size in batch_sizes:
      base, subject = random_generator(size, batch_size, steps[0], dtype)
      for num_steps in steps:
        generator = with_steps(base, num_steps)
        where = f"{profile_dir}/{size}_b{batch_size}_s{num_steps}" if profile_dir else None
        row = dict(size=size, dtype=dtype, **measure_generator(generator, subject, seconds, hop,
                                                                pipelined, where))
        if progress:
          print(json.dumps(row), flush=True)
        rows.append(row)
  return rows


COLUMNS = (("device", "device", ""), ("size", "size", ""), ("px", "resolution", "d"),
           ("batch", "batch", "d"), ("dtype", "dtype", ""), ("steps", "steps", "d"),
           ("fps", "fps", ".1f"), ("motion ms", "motion_ms", ".2f"),
           ("render ms", "render_ms", ".2f"), ("motion %", "motion_share", ".0%"),
           ("window ms", "window_ms", ".0f"), ("hop", "hop", "d"),
           ("latency ms", "latency_ms", ".0f"), ("+ buffer ms", "buffer_ms", ".0f"),
           ("stream fps", "stream_fps", ".1f"), ("compiles", "compiles_after_warmup", "d"),
           ("memory GB", "memory_gb", ".2f"))


def table(rows: list[dict]) -> str:
  return bench_common.format_table(rows, COLUMNS)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--sizes", default="tiny")
  parser.add_argument("--batch_sizes", default="1,8")
  parser.add_argument("--steps", default="50,10")
  parser.add_argument("--seconds", type=float, default=4.0)
  parser.add_argument("--hop", type=int, default=None)
  parser.add_argument("--dtype", default="float32")
  parser.add_argument("--no_pipeline", action="store_true")
  parser.add_argument("--profile", default=None)
  parser.add_argument("--json", default="bench_generate.json")
  args = parser.parse_args(argv)
  rows = run(args.sizes.split(","), [int(b) for b in args.batch_sizes.split(",")], args.seconds,
             [int(s) for s in args.steps.split(",")], args.hop, args.dtype,
             not args.no_pipeline, args.profile)
  print(table(rows))
  bench_common.write_json(args.json, "generate", rows)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
