"""`vasa demo` (`make demo`): the whole method end to end on SynthTalk at 64 px, on a CPU in minutes.

  1. data       build SynthTalk at 64 px (`DATASET`: 320 training clips of 80 identities; train,
                validation and test splits share no identity
                and no sentence)
  2. stage1     train the face latent model (experiments/face_latent/synthtalk_tiny.py)
  3. stage2     cache its motion latents with the audio features, train the motion diffusion
                transformer on them (experiments/motion/synthtalk_tiny.py) and score it
  4. inputs     a photo of a test identity (rendered at 256 px) and a test sentence it speaks
  5. generate   the photo and the speech into a talking-face video (`vasa generate`), cropped and
                pasted back into the photo
  6. evaluate   the video checked against its audio, its motion read back against the sentence's
                ground truth
  7. report     WORKDIR/report.html: the videos, the scores, the training curves, the commands

Each step records its result in WORKDIR/steps/<name>.json when done; running the demo again skips
finished steps and resumes an interrupted training run from its last checkpoint. Every output is
written atomically. The step counts are sized for about ten minutes on 2 CPU cores; the models are
toys at that size (blurry faces; stage 1 has not learned the mouth yet): the demo shows the
pipeline, not the quality.
"""

from __future__ import annotations

import html
import json
import logging
import pathlib
import time
from typing import Any

import numpy as np

from vasa_jax import atomic
from vasa_jax.errors import UserError

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / "experiments"
# SynthTalk at 64 px with 320 training clips of 80 identities (32 validation clips of 8 others, 8
# test clips of 2 more): with the 12 identities of `tiny`, stage 1's pose read-out on held-out
# identities stayed at r 0.02 after 600 steps; with 80 it reached 0.72.
DATASET = "r64_n320_32_8_s0"
# Stage-1 steps: reconstruction and pose alone (the curriculum's first phase, about 0.42 s a step
# on 2 CPU cores without the VGG16 loss), which keeps `make demo` within 15 minutes.
STAGE1_STEPS = 650
# Stage 2's loss levels off after about 750 steps on this data (0.12 at 1250 and at 1950).
STAGE2_STEPS = 1500
PHOTO_SIZE = 256
TEST_CLIP = 0  # The test-split clip whose identity and sentence are generated.
STEPS = ("data", "stage1", "stage2", "inputs", "generate", "evaluate", "report")


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "demo", help="the whole pipeline on SynthTalk at 64 px: data, both stages, a video, a report",
      description=__doc__.split("\n\n")[0] + " Running it again resumes where it stopped.")
  parser.add_argument("--workdir", default="demo_out", help="where everything goes")
  parser.add_argument("--stage1_steps", type=int, default=STAGE1_STEPS)
  parser.add_argument("--stage2_steps", type=int, default=STAGE2_STEPS)
  parser.set_defaults(handler=lambda args: run(args.workdir, args.stage1_steps,
                                               args.stage2_steps))


class _Demo:
  def __init__(self, workdir: pathlib.Path, stage1_steps: int, stage2_steps: int):
    self.workdir = workdir
    self.stage1_steps = stage1_steps
    self.stage2_steps = stage2_steps
    self.data_dir = workdir / "data"
    self.stage1_dir = workdir / "stage1"
    self.stage2_dir = workdir / "stage2"
    self.steps_dir = workdir / "steps"

  def done(self, name: str) -> dict | None:
    path = self.steps_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None

  def record(self, name: str, result: dict) -> None:
    atomic.write_json(self.steps_dir / f"{name}.json", result)

  # Steps.

  def data(self) -> dict:
    from vasa_jax.data.synthtalk import builder

    start = time.perf_counter()
    builder.builder(data_dir=str(self.data_dir), workers=2,
                    config=builder.config_from_name(DATASET)).download_and_prepare(
        file_format="array_record")
    return {"dataset": f"synthtalk/{DATASET}", "data_dir": str(self.data_dir),
            "seconds": time.perf_counter() - start}

  def _train(self, experiment: str, workdir: pathlib.Path, overrides: list[str]) -> dict:
    from vasa_jax import configs, trainers

    config = configs.load_config(str(EXPERIMENTS / experiment), overrides)
    start = time.perf_counter()
    result = trainers.get_trainer(config.task).train(config, str(workdir))
    return {"experiment": f"experiments/{experiment}", "workdir": str(workdir),
            "overrides": overrides, "step": int(result.final_step),
            "seconds": time.perf_counter() - start}

  def stage1(self) -> dict:
    # The curriculum's first phase only (reconstruction and pose supervision), without the
    # pretrained-network losses: the VGG16 loss nearly doubles a step on 2 CPU cores, and the late
    # losses (adversarial, consistency, contrastive) cost 1.5-4x a step and a compilation each.
    # The experiment keeps all of them on for real runs.
    late = [f"--config.losses.start.{name}={self.stage1_steps}" for name in
            ("adversarial", "feature_matching", "contrastive", "consistency", "cross_identity")]
    return self._train("face_latent/synthtalk_tiny.py", self.stage1_dir, [
        f"--config.data.data_dir={self.data_dir}", f"--config.data.dataset=synthtalk/{DATASET}",
        f"--config.total_steps={self.stage1_steps}", *late,
        "--config.losses.perceptual_network=none", "--config.losses.identity_network=none",
        "--config.checkpoint.every=200", "--config.evals.heldout.every=0",
        "--config.evals.reenactment.every=0", "--config.evals.transfer.every=0",
        "--config.evals.identity.every=0", "--config.evals.readout.every=0",
        "--config.evals.reenactment.identities=4", "--config.evals.heldout.num_examples=32",
        "--config.evals.transfer.num_pairs=32"])

  def stage2(self) -> dict:
    return self._train("motion/synthtalk_tiny.py", self.stage2_dir, [
        f"--config.data.data_dir={self.data_dir}", f"--config.data.dataset=synthtalk/{DATASET}",
        f"--config.stage1.workdir={self.stage1_dir}",
        f"--config.total_steps={self.stage2_steps}", "--config.checkpoint.every=500",
        "--config.evals.motion.every=0"])

  def inputs(self) -> dict:
    """The photo and speech of a held-out person and sentence, and that clip's true motion."""
    import cv2

    from vasa_jax.data import schema, video_io
    from vasa_jax.data.synthtalk import builder, clip, render

    config = builder.config_from_name(DATASET)
    spec = builder.clip_spec(config)
    example = clip.generate_clip(config.seed, "test", TEST_CLIP, spec)
    _, look, _ = clip.identity_of(config.seed, "test", TEST_CLIP, spec)
    photo = render.render_frame(look, render.neutral_state(), PHOTO_SIZE)
    photo_path = self.workdir / "inputs" / "photo.png"
    with atomic.writing(photo_path) as f:
      f.write(cv2.imencode(".png", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))[1].tobytes())
    speech_path = self.workdir / "inputs" / "speech.wav"
    video_io.write_wav(speech_path, example["audio"])
    truth = clip.decode_frames(example["frames"])
    video_io.write_video(self.workdir / "inputs" / "ground_truth.mp4", truth, schema.FPS,
                         example["audio"], schema.SAMPLE_RATE)
    meta = example["meta"]
    labels = schema.stack_labels(example["labels"])
    np.save(self.workdir / "inputs" / "labels.npy", labels)
    return {"photo": str(photo_path), "speech": str(speech_path), "clip": meta["clip_id"],
            "identity": meta["identity"], "text": meta["text"],
            "gaze": [float(v) for v in meta["gaze"]], "distance": float(meta["distance"]),
            "emotion": schema.EMOTIONS[int(meta["emotion"])],
            "seconds": len(example["audio"]) / schema.SAMPLE_RATE}

  def generate(self) -> dict:
    from vasa_jax.inference import talking_face as tf

    inputs = self.done("inputs")
    generator = tf.load_generator(self.stage2_dir)
    subject = generator.prepare(inputs["photo"])
    controls = tf.Controls(gaze=tuple(inputs["gaze"]), distance=inputs["distance"],
                           emotion=inputs["emotion"])
    crop = generator.generate_video(subject, inputs["speech"], self.workdir / "talking_face.mp4",
                                    controls, seed=0)
    pasted = generator.generate_video(subject, inputs["speech"],
                                      self.workdir / "talking_face_photo.mp4", controls, seed=0,
                                      output=tf.Output(paste_back=True))
    # The motion itself, for the evaluation: the same seed gives the same motion.
    np.save(self.workdir / "inputs" / "generated_motion.npy", _motion_of(generator, subject,
                                                                        inputs, controls))
    return {"crop": crop, "photo": pasted}

  def evaluate(self) -> dict:
    from vasa_jax import configs
    from vasa_jax.data import audio as speech_io
    from vasa_jax.data import video_io
    from vasa_jax.evaluators import motion_controls
    from vasa_jax.trainers import motion as motion_trainer

    inputs = self.done("inputs")
    video = self.workdir / "talking_face.mp4"
    info = video_io.probe(video)
    speech = speech_io.load_speech(inputs["speech"])
    import av

    with av.open(str(video)) as container:
      metadata = dict(container.metadata)
    task = motion_trainer.make_task(configs.read_json(self.stage2_dir / "config.json"))
    reader = motion_controls.label_reader(task, seed=0)
    generated = reader(np.load(self.workdir / "inputs" / "generated_motion.npy"))
    truth = np.load(self.workdir / "inputs" / "labels.npy")
    jaw = motion_controls.LABEL["jaw_open"]
    frames = min(len(generated), len(truth))
    scores = json.loads(sorted((self.stage2_dir / "eval").glob("step_*.json"))[-1].read_text())
    stage1 = json.loads(sorted((self.stage1_dir / "eval").glob("step_*.json"))[-1].read_text())
    pixels = _read_pixels(self.workdir / "talking_face_photo.mp4", truth[:, jaw])
    truth_pixels = _read_pixels(self.workdir / "inputs" / "ground_truth.mp4", truth[:, jaw])
    _frame_strip(self.workdir, self.workdir / "talking_face.mp4",
                 self.workdir / "inputs" / "ground_truth.mp4", inputs["photo"])
    return {
        **_against_truth(video, self.workdir / "inputs" / "ground_truth.mp4", inputs["clip"]),
        "frames_with_a_face": pixels["frames_with_a_face"],
        "frames_checked_for_a_face": pixels["frames"],
        "mouth_opening_from_pixels_vs_true_jaw_r": pixels["mouth_vs_jaw_r"],
        "truth_mouth_opening_from_pixels_vs_true_jaw_r": truth_pixels["mouth_vs_jaw_r"],
        "video_seconds": info.duration, "audio_seconds": len(speech) / 16000,
        "duration_error_frames": abs(info.duration - len(speech) / 16000) * 25,
        "has_audio": info.has_audio,
        "ai_generated_mark": metadata.get("description") == "AI-generated",
        "size": [info.width, info.height],
        "jaw_correlation_with_truth": motion_controls.correlation(generated[:frames, jaw],
                                                                  truth[:frames, jaw]),
        "stage1": stage1, "stage2": scores}

  def report(self) -> dict:
    path = atomic.write_text(self.workdir / "report.html", _report_html(self))
    return {"report": str(path)}


def _against_truth(generated_path: pathlib.Path, truth_path: pathlib.Path, clip: str) -> dict:
  """LPIPS (frame by frame), FVD_25 and CSIM of the generated video against SynthTalk's own render
  of the same sentence, each with the weights behind it; a metric whose package is missing is
  reported unavailable with the package to install."""
  from vasa_jax.data import video_io
  from vasa_jax.convert import frozen
  from vasa_jax.evaluators import csim, fvd, videos
  from vasa_jax.convert import packaged

  generated = np.stack(list(video_io.iter_frames(generated_path)))
  truth = np.stack(list(video_io.iter_frames(truth_path)))
  frames = min(len(generated), len(truth))
  generated, truth = generated[:frames], truth[:frames]
  if generated.shape != truth.shape:
    import cv2

    generated = np.stack([cv2.resize(f, truth.shape[2:0:-1], interpolation=cv2.INTER_AREA)
                          for f in generated])
  scores: dict[str, Any] = {"truth_frames_compared": frames}
  weights: dict[str, str] = {}
  try:
    import jax
    import jax.numpy as jnp

    model, variables, weights["lpips"] = frozen.lpips_network()
    signed = lambda x: jnp.asarray(x, jnp.float32) / 127.5 - 1.0
    distance = jax.jit(model.apply)
    scores["lpips_vs_truth"] = float(np.concatenate([
        np.asarray(distance(variables, signed(generated[i:i + 16]), signed(truth[i:i + 16])))
        for i in range(0, frames, 16)]).mean())
  except packaged.MissingPackage as e:
    scores["lpips_vs_truth"] = f"unavailable: {e}"
  as_video = lambda name, x: videos.Video(name, x, np.zeros(1, np.float32), clip=clip)
  generated_video, truth_video = as_video("generated", generated), as_video("truth", truth)
  for key, make, metric_key in (("fvd25_vs_truth", fvd.Metric, "FVD_25"),
                                ("csim_generated", csim.Metric, "CSIM")):
    try:
      metric = make()
    except videos.Unavailable as e:
      scores[key] = f"unavailable: {e}"
      continue
    weights.update(metric.weights)
    try:
      scores[key] = metric.score([generated_video], [truth_video])[metric_key]
    except UserError as e:
      scores[key] = f"not computed: {e}"
    if metric_key == "CSIM":
      scores["csim_truth"] = metric.score([truth_video], [truth_video])[metric_key]
  scores["metric_weights"] = weights
  return scores


def run(workdir: str, stage1_steps: int = STAGE1_STEPS, stage2_steps: int = STAGE2_STEPS) -> int:
  demo = _Demo(pathlib.Path(workdir).absolute(), stage1_steps, stage2_steps)
  _check_workdir(demo.workdir)
  demo.workdir.mkdir(parents=True, exist_ok=True)
  start = time.perf_counter()
  for number, name in enumerate(STEPS, 1):
    finished = demo.done(name)
    if finished is not None:
      logging.info("demo %d/%d %s: done before", number, len(STEPS), name)
      continue
    logging.info("demo %d/%d %s ...", number, len(STEPS), name)
    step_start = time.perf_counter()
    result = getattr(demo, name)()
    result["step_seconds"] = time.perf_counter() - step_start
    demo.record(name, result)
    logging.info("demo %d/%d %s: done in %.0f s", number, len(STEPS), name,
                 result["step_seconds"])
  total = sum((demo.done(name) or {}).get("step_seconds", 0.0) for name in STEPS)
  print(f"demo finished ({time.perf_counter() - start:.0f} s this run, {total:.0f} s in all "
        f"steps): {demo.workdir / 'report.html'}")
  return 0


# ----------------------------------------------------------------------------------------------------
# Helpers.


def _read_pixels(video: pathlib.Path, true_jaw: np.ndarray) -> dict:
  """What the face models read from a video's pixels: in how many frames a face is detected, and
  the correlation of the mouth opening measured on the face mesh (inner-lip gap over face height)
  with the sentence's true jaw track (frames without a face left out)."""
  from vasa_jax.data import faces, video_io
  from vasa_jax.evaluators.latent_readout import pearson

  analyzer = faces.FaceAnalyzer()
  openings = []
  for frame in video_io.iter_frames(video):
    found = analyzer.analyze(frame)
    openings.append(faces.mouth_opening(found[0][1].points) if found else np.nan)
  openings = np.asarray(openings, np.float64)
  frames = min(len(openings), len(true_jaw))
  return {"frames": int(len(openings)), "frames_with_a_face": int(np.isfinite(openings).sum()),
          "mouth_vs_jaw_r": pearson(openings[:frames], np.asarray(true_jaw[:frames], np.float64))}


def _frame_strip(workdir: pathlib.Path, generated: pathlib.Path, truth: pathlib.Path,
                 photo: str, count: int = 8) -> pathlib.Path:
  """WORKDIR/frame_strip.png: the input photo, then `count` evenly spaced frames of the generated
  face crop (top row) above the truth's frames at the same times (bottom row)."""
  import cv2

  from vasa_jax.data import video_io

  rows = []
  size = None
  for path in (generated, truth):
    frames = np.stack(list(video_io.iter_frames(path)))
    size = size or frames.shape[1]
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    rows.append([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames[picks]])
  image = cv2.cvtColor(cv2.imread(photo), cv2.COLOR_BGR2RGB)
  image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
  grid = [np.stack([image] + rows[0]), np.stack([np.full_like(image, 255)] + rows[1])]
  return video_io.write_image_grid([g.astype(np.float32) / 255.0 for g in grid],
                                   workdir / "frame_strip.png")


def _motion_of(generator, subject, inputs, controls) -> np.ndarray:
  """The motion the video was made with (the same stream, without rendering)."""
  import jax

  from vasa_jax.data import audio as speech_io
  from vasa_jax.inference.audio import AudioFeatureStream

  del subject
  stream = AudioFeatureStream(generator.audio_encoder)
  speech = speech_io.load_speech(inputs["speech"])
  audio = np.concatenate([stream.push(speech), stream.finish()])
  return generator.motion.generate(audio[None], None, jax.random.key(0),
                                   **controls.as_arrays())[0]


def _curve_svg(path: pathlib.Path, key: str, title: str) -> str:
  """An inline SVG line chart of `key` over steps in a metrics.jsonl."""
  points = []
  if path.is_file():
    for line in path.read_text().splitlines():
      record = json.loads(line)
      if key in record and np.isfinite(record[key]):
        points.append((record["step"], record[key]))
  if len(points) < 2:
    return f"<p>{html.escape(title)}: no data</p>"
  steps, values = np.array(points).T
  width, height, pad = 360, 160, 30
  x = pad + (steps - steps.min()) / max(np.ptp(steps), 1) * (width - 2 * pad)
  y = height - pad - (values - values.min()) / max(np.ptp(values), 1e-12) * (height - 2 * pad)
  line = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y))
  return (f'<figure><svg width="{width}" height="{height}" role="img" '
          f'aria-label="{html.escape(title)}"><rect width="100%" height="100%" fill="#fafafa"/>'
          f'<polyline fill="none" stroke="#2a6fb0" stroke-width="2" points="{line}"/>'
          f'<text x="{pad}" y="14" font-size="11">{values.max():.4g}</text>'
          f'<text x="{pad}" y="{height - 8}" font-size="11">{values.min():.4g} '
          f'(steps {int(steps.min())}-{int(steps.max())})</text></svg>'
          f"<figcaption>{html.escape(title)}</figcaption></figure>")


def _table(rows: dict[str, Any]) -> str:
  cells = []
  for key, value in rows.items():
    if isinstance(value, float):
      value = f"{value:.4g}"
    cells.append(f"<tr><td>{html.escape(str(key))}</td><td>{html.escape(str(value))}</td></tr>")
  return "<table>" + "".join(cells) + "</table>"


def _relative(demo: _Demo, path) -> str:
  return html.escape(str(pathlib.Path(path).relative_to(demo.workdir)))


def _report_html(demo: _Demo) -> str:
  steps = {name: demo.done(name) or {} for name in STEPS}
  inputs, evaluation = steps["inputs"], steps["evaluate"]
  generated = steps["generate"]
  stage1_eval = {k: v for k, v in evaluation.get("stage1", {}).items() if k != "step"}
  stage2_eval = {k: v for k, v in evaluation.get("stage2", {}).items() if k != "step"}
  truth_keys = ("truth_frames_compared", "lpips_vs_truth", "fvd25_vs_truth", "csim_generated",
                "csim_truth", "metric_weights")
  against_truth = {k: evaluation[k] for k in truth_keys[:-1] if k in evaluation}
  against_truth.update({f"weights: {k}": v
                        for k, v in evaluation.get("metric_weights", {}).items()})
  video_checks = {k: v for k, v in evaluation.items() if k not in ("stage1", "stage2",
                                                                  "step_seconds", *truth_keys)}
  timings = {name: steps[name].get("step_seconds", float("nan")) for name in STEPS
             if name != "report"}
  commands = [
      f"vasa synthtalk build --resolution 64 --clips 320 32 8 --seed 0 --data_dir {demo.data_dir}",
      f"vasa train --config experiments/face_latent/synthtalk_tiny.py --workdir {demo.stage1_dir} "
      + " ".join(steps["stage1"].get("overrides", [])),
      f"vasa train --config experiments/motion/synthtalk_tiny.py --workdir {demo.stage2_dir} "
      + " ".join(steps["stage2"].get("overrides", [])),
      f"vasa generate --image {inputs.get('photo')} --audio {inputs.get('speech')} "
      f"--checkpoint {demo.stage2_dir} --out {demo.workdir / 'talking_face.mp4'}",
      f"vasa evaluate --workdir {demo.stage2_dir}"]
  sections = [
      "<h1>vasa_jax demo</h1>",
      "<p>Everything below was made by <code>make demo</code> on this machine: SynthTalk (64 px) "
      "built, stage 1 and stage 2 trained on it, and a video generated for a person and a "
      "sentence neither stage saw in training. The models are trained for minutes at 64 px, so "
      "faces are blurry and lip sync is rough: this shows the pipeline working end to end. "
      "The videos are AI-generated and marked so in their metadata.</p>",
      "<h2>Generated</h2><div class=row>"
      f'<figure><video src="{_relative(demo, demo.workdir / "talking_face.mp4")}" controls '
      f'width=256></video><figcaption>the face crop (model size, 64 px)</figcaption></figure>'
      f'<figure><video src="{_relative(demo, demo.workdir / "talking_face_photo.mp4")}" controls '
      f'width=256></video><figcaption>pasted back into the photo</figcaption></figure>'
      f'<figure><video src="inputs/ground_truth.mp4" controls width=256></video>'
      f"<figcaption>SynthTalk's own render of the sentence (truth)</figcaption></figure>"
      f'<figure><img src="inputs/photo.png" width=256><figcaption>the input photo</figcaption>'
      "</figure></div>",
      '<figure><img src="frame_strip.png" width=900><figcaption>the input photo, then frames of '
      "the generated face crop (top) and of SynthTalk's own render of the sentence at the same "
      "times (bottom)</figcaption></figure>",
      f"<p>Sentence: <q>{html.escape(str(inputs.get('text', '')))}</q> "
      f"({inputs.get('seconds', 0):.2f} s, identity {html.escape(str(inputs.get('identity')))}; "
      f"requested gaze {inputs.get('gaze')}, distance {inputs.get('distance')}, emotion "
      f"{inputs.get('emotion')}).</p>",
      "<h2>Checks of the video</h2>", _table(video_checks),
      "<h2>Against the truth</h2><p>The generated face crop against SynthTalk's own render of "
      "the same person saying the same sentence: LPIPS frame by frame (lower is closer), FVD_25 "
      "between the two videos' 25-frame clips (a handful of clips: a noisy, upward-biased "
      "number, not comparable with the paper's), and CSIM, the cosine of dlib face descriptors of "
      "each frame and the truth's first frame, for the generated video and, as the ceiling, for "
      "the truth itself.</p>", _table(against_truth),
      "<h2>Generation</h2>", _table({k: v for k, v in generated.get("crop", {}).items()
                                     if k not in ("settings", "video")}),
      _table(generated.get("crop", {}).get("settings", {})),
      "<h2>Stage 1 (held-out identities)</h2>", _table(stage1_eval),
      "<div class=row>",
      _curve_svg(demo.stage1_dir / "metrics.jsonl", "loss", "stage 1 training loss"),
      "</div>",
      '<figure><img src="stage1/eval/reenactment_grid_%07d.png" width=480><figcaption>stage 1: '
      "held-out identities (rows) driven by other people's frames</figcaption></figure>"
      % steps["stage1"].get("step", 0),
      "<h2>Stage 2 (held-out clips: lip sync, motion, controls)</h2>", _table(stage2_eval),
      "<div class=row>",
      _curve_svg(demo.stage2_dir / "metrics.jsonl", "loss", "stage 2 training loss"),
      "</div>",
      "<h2>Seconds per step</h2><p>Of the run that finished each step (earlier, interrupted "
      "runs of a step are not counted).</p>", _table(timings),
      "<h2>The same by hand</h2><pre>" + html.escape("\n".join(commands)) + "</pre>",
  ]
  style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
           "table{border-collapse:collapse;margin:.5em 0}td{border:1px solid #ccc;padding:2px 8px}"
           ".row{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}pre{background:#f4f4f4;"
           "padding:1em;white-space:pre-wrap}")
  return ("<!doctype html><html><head><meta charset=utf-8><title>vasa_jax demo</title>"
          f"<style>{style}</style></head><body>" + "\n".join(sections) + "</body></html>\n")


def _check_workdir(workdir: pathlib.Path) -> None:
  if workdir.exists() and not workdir.is_dir():
    raise UserError(f"--workdir {workdir} is a file; give a folder")
