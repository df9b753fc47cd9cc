"""How fast does stage 1 learn the jaw when the jaw is all that moves? Prints a table.

  .venv/bin/python benchmarks/jaw_only.py [--steps 1000] [--every 200] [--identities 24] \
      [--frames 24] [--heldout 8] [--supervised] [--set model.KEY=VALUE ...] [--out strip.png]

SynthTalk faces rendered on the fly at 64 px, frontal and still, every face state neutral but the
jaw opening (uniform in [0, 1]): `--identities` training identities of `--frames` frames each and
`--heldout` other identities. The experiment's model and optimizer
(experiments/face_latent/synthtalk_tiny.py, without the pretrained-network losses, `--set`
overrides applied) train on pairs of one identity's frames with the curriculum's first phase
(reconstruction and pose), batch 8. Every `--every` steps the table gives z_dyn's ridge read-out of
the jaw on the held-out identities (fitted on the training frames) and held-out reconstruction: each
held-out identity's most closed frame driven by each of its frames, PSNR of the whole frame and of
a 17x13 window about the mouth, beside copying the source. With `--supervised` the diagnostic
`dynamics_labels` loss tells z_dyn the jaw, so that the table times the decoder alone. `--out`
writes a strip after the last step: one row per held-out identity (four at most), its source, then
five frames of rising jaw opening, each output followed by its truth.

A few minutes on 2 CPU cores; no dataset needed.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np

RESOLUTION = 64
BATCH = 8
CONFIG = pathlib.Path(__file__).resolve().parents[1] / "experiments/face_latent/synthtalk_tiny.py"


def render_faces(seed: int, identities: int, frames: int) -> dict[str, np.ndarray]:
  """uint8 frames, landmarks (/ size), labels (pose 0, jaw set, the rest NaN) and identity ids."""
  from vasa_jax.data import schema
  from vasa_jax.data.synthtalk import render

  rng = np.random.default_rng(seed)
  jaw = schema.LABEL_NAMES.index("jaw_open")
  out = {"frames": [], "landmarks": [], "labels": [], "identity": []}
  for identity in range(identities):
    look = render.sample_identity(rng)
    points = render.landmarks_3d(look)
    points = np.stack([points[name] for name in schema.LANDMARK_NAMES])
    for _ in range(frames):
      state = {"jaw_open": float(rng.uniform(0.0, 1.0))}
      labels = np.full(len(schema.LABEL_NAMES), np.nan, np.float32)
      labels[:3] = 0.0  # yaw, pitch, roll: frontal
      labels[jaw] = state["jaw_open"]
      out["frames"].append(render.render_frame(look, state, RESOLUTION))
      out["landmarks"].append(render.project(look, state, points, RESOLUTION) / RESOLUTION)
      out["labels"].append(labels)
      out["identity"].append(identity)
  out = {k: np.stack(v) for k, v in out.items()}
  out["landmarks"] = out["landmarks"].astype(np.float32)
  return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
  return float(10 * np.log10(255.0 ** 2 / max(np.mean((a - b) ** 2), 1e-12)))


def run(steps: int, every: int, identities: int, frames: int, heldout: int, supervised: bool,
        overrides: list[str], seed: int = 0, out: str | None = None) -> list[dict]:
  import jax
  import optax

  from vasa_jax import configs
  from vasa_jax.data import schema
  from vasa_jax.evaluators import latent_readout
  from vasa_jax.evaluators.image_metrics import to_signed
  from vasa_jax.trainers import face_latent

  jaw = schema.LABEL_NAMES.index("jaw_open")
  train = render_faces(seed, identities, frames)
  test = render_faces(seed + 1, heldout, frames)
  args = ["--config.losses.perceptual_network=none", "--config.losses.identity_network=none",
          f"--config.total_steps={steps}", f"--config.seed={seed}"]
  if supervised:
    args.append("--config.losses.weights.dynamics_labels=10.0")
  config = configs.load_config(str(CONFIG),
                               args + [f"--config.{item}" for item in overrides])
  task = face_latent.make_task(config)
  params = jax.jit(task.init_params)(jax.random.key(seed))
  tx, _ = task.make_optimizer(config)
  opt_state = tx.init(params)

  @jax.jit
  def update(params, opt_state, batch):
    grads, metrics = jax.grad(
        lambda p: task.loss_fn(p, batch, None, phase=()), has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, metrics

  model = task.model
  encode = jax.jit(lambda p, x, lm: model.apply({"params": p["generator"]}, to_signed(x), lm,
                                                method=model.encode_motion)[1])
  forward = jax.jit(lambda p, s, d, sl, dl: model.apply(
      {"params": p["generator"]}, to_signed(s), to_signed(d), sl, dl)["image"])

  # Held-out pairs: each identity's most closed frame is the source, each of its frames drives.
  sources, drivers = [], []
  for identity in np.unique(test["identity"]):
    rows = np.flatnonzero(test["identity"] == identity)
    sources += [rows[np.argmin(test["labels"][rows, jaw])]] * len(rows)
    drivers += list(rows)
  sources, drivers = np.array(sources), np.array(drivers)
  truth = test["frames"][drivers].astype(np.float64)
  mouth = np.round(test["landmarks"][drivers, schema.LANDMARK_NAMES.index("mouth_center")]
                   * RESOLUTION).astype(int)

  def window(images):
    return np.stack([image[max(0, y - 6):y + 7, max(0, x - 8):x + 9]
                     for image, (x, y) in zip(images, mouth)])

  def chunked(fn, params, *arrays, size=64):
    return np.concatenate([np.asarray(fn(params, *(a[i:i + size] for a in arrays)))
                           for i in range(0, len(arrays[0]), size)])

  def scores(params, step, seconds):
    codes = {name: chunked(encode, params, part["frames"], part["landmarks"])
             for name, part in (("train", train), ("test", test))}
    fit = latent_readout.fit_ridge(codes["train"], train["labels"][:, jaw], 1.0)
    readout = latent_readout.pearson(latent_readout.apply_ridge(fit, codes["test"]),
                                     test["labels"][:, jaw])
    images = chunked(forward, params, test["frames"][sources], test["frames"][drivers],
                     test["landmarks"][sources], test["landmarks"][drivers])
    output = (images.astype(np.float64) + 1.0) * 127.5
    copy = test["frames"][sources].astype(np.float64)
    return dict(step=step, seconds=round(seconds), dyn_jaw_r=round(readout, 3),
                psnr=round(_psnr(output, truth), 2), copy_psnr=round(_psnr(copy, truth), 2),
                mouth_psnr=round(_psnr(window(output), window(truth)), 2),
                mouth_copy_psnr=round(_psnr(window(copy), window(truth)), 2))

  rng = np.random.default_rng(seed + 2)
  by_identity = [np.flatnonzero(train["identity"] == i) for i in range(identities)]
  rows = [scores(params, 0, 0.0)]
  print(json.dumps(rows[-1]), flush=True)
  start = time.perf_counter()
  for step in range(1, steps + 1):
    who = rng.integers(identities, size=BATCH)
    source = np.array([rng.choice(by_identity[i]) for i in who])
    driving = np.array([rng.choice(by_identity[i]) for i in who])
    batch = dict(source=train["frames"][source], driving=train["frames"][driving],
                 source_landmarks=train["landmarks"][source],
                 driving_landmarks=train["landmarks"][driving],
                 source_labels=train["labels"][source], driving_labels=train["labels"][driving])
    params, opt_state, _ = update(params, opt_state, batch)
    if step % every == 0 or step == steps:
      rows.append(scores(params, step, time.perf_counter() - start))
      print(json.dumps(rows[-1]), flush=True)
  if out:
    _write_strip(out, params, forward, test, jaw)
  return rows


def _write_strip(out: str, params, forward, test: dict, jaw: int) -> None:
  import cv2

  from vasa_jax import atomic

  lines = []
  for identity in np.unique(test["identity"])[:4]:
    rows = np.flatnonzero(test["identity"] == identity)
    rows = rows[np.argsort(test["labels"][rows, jaw])]
    source = rows[0]
    chosen = rows[np.linspace(0, len(rows) - 1, 5).round().astype(int)]
    images = np.asarray(forward(params, test["frames"][[source] * len(chosen)],
                                test["frames"][chosen], test["landmarks"][[source] * len(chosen)],
                                test["landmarks"][chosen]))
    images = np.clip((images + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    tiles = [test["frames"][source]]
    for image, row in zip(images, chosen):
      tiles += [image, test["frames"][row]]
    lines.append(np.concatenate(tiles, axis=1))
  strip = cv2.resize(np.concatenate(lines, axis=0), None, fx=3, fy=3,
                     interpolation=cv2.INTER_NEAREST)
  ok, data = cv2.imencode(".png", cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
  if not ok:
    raise RuntimeError(f"could not encode the strip for {out}")
  with atomic.writing(out) as file:
    file.write(data.tobytes())
  print(f"strip: {out}")


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=1000)
  parser.add_argument("--every", type=int, default=200)
  parser.add_argument("--identities", type=int, default=24)
  parser.add_argument("--frames", type=int, default=24)
  parser.add_argument("--heldout", type=int, default=8)
  parser.add_argument("--supervised", action="store_true",
                      help="tell z_dyn the jaw (the dynamics_labels diagnostic)")
  parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                      help="config overrides, e.g. model.render_dynamics=True")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default=None, help="write a strip PNG here after the last step")
  args = parser.parse_args()
  rows = run(args.steps, args.every, args.identities, args.frames, args.heldout, args.supervised,
             args.set, args.seed, args.out)
  columns = list(rows[0])
  print("| " + " | ".join(columns) + " |")
  print("|" + "---|" * len(columns))
  for row in rows:
    print("| " + " | ".join(str(row[c]) for c in columns) + " |")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
