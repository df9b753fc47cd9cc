"""Can stage 1's dynamics trunk read a label at all? It is trained alone, supervised; prints a table.

  .venv/bin/python benchmarks/motion_encoder_probe.py --data_dir DATA \
      [--dataset synthtalk/r64_n320_32_8_s0] [--label jaw_open] [--steps 500] \
      [--dynamics_crop 0.5 0.0] [--stem_stride 2 4]

For each (dynamics_crop, stem_stride) pair, the tiny variant's motion encoder is trained on one
SynthTalk label of the driving frames that stage 1's pipeline draws (batch 32, Adam 1e-3, L1 on
z_dyn's first entry), and the Pearson r of that entry with the label is measured every 250 steps
on every second frame of the first 32 validation clips (held-out identities). It tells apart an
encoder that cannot see a quantity from a training signal that does not ask for it: the
unsupervised z_dyn can only carry what this supervised read-out reaches. `dynamics_crop` 0 is the
whole frame, as MegaPortraits and VASA-1 encode it.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np


def _validation(source, image_size: int, label: int, clips: int = 32, stride: int = 2):
  from vasa_jax.data import pipelines, schema
  from vasa_jax.data.synthtalk.clip import decode_frames

  frames, labels, landmarks = [], [], []
  for index in range(min(clips, len(source))):
    clip = source[index]
    chosen = list(range(0, len(clip["frames"]), stride))
    frames.extend(pipelines._resize(f, image_size) for f in decode_frames(clip["frames"], chosen))
    labels.append(schema.stack_labels(clip["labels"])[chosen, label])
    landmarks.extend(pipelines.landmarks_at(clip, t) for t in chosen)
  return np.stack(frames), np.concatenate(labels), np.stack(landmarks)


def probe(data_dir: str, dataset: str, label: str, steps: int, dynamics_crop: float,
          stem_stride: int, seed: int = 0) -> list[tuple[int, float, float]]:
  """(step, r on held-out frames, seconds) every 250 steps and at the end."""
  import jax
  import jax.numpy as jnp
  import optax

  from vasa_jax.data import pipelines, schema
  from vasa_jax.evaluators.image_metrics import to_signed
  from vasa_jax.models.face_latent import networks

  column = schema.LABEL_NAMES.index(label)
  config = networks.make_config("tiny", dynamics_crop=dynamics_crop,
                                motion_stem_stride=stem_stride)
  encoder = networks.MotionEncoder(config)
  train = pipelines.open_split(data_dir, dataset, "train")
  batches = pipelines.global_batch_iterator(
      train, seed=seed, global_batch_size=32, random_transform=pipelines.FaceFrameTriplets(
          train, config.image_size, cross_clip=0.5))
  frames, truth, landmarks = _validation(pipelines.open_split(data_dir, dataset, "validation"),
                                         config.image_size, column)
  params = encoder.init(jax.random.key(seed), jnp.zeros((1, config.image_size,
                                                         config.image_size, 3)))
  tx = optax.adam(1e-3)
  state = tx.init(params)

  @jax.jit
  def step(params, state, images, lm, y):
    def loss(p):
      return jnp.mean(jnp.abs(encoder.apply(p, to_signed(images), lm)[1][:, 0] - y))
    grads = jax.grad(loss)(params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  predict = jax.jit(lambda p, images, lm: encoder.apply(p, to_signed(images), lm)[1][:, 0])
  rows, start = [], time.perf_counter()
  for k in range(1, steps + 1):
    batch = next(batches)
    params, state = step(params, state, batch["driving"], batch["driving_landmarks"],
                         batch["driving_labels"][:, column])
    if k % 250 == 0 or k == steps:
      guess = np.concatenate([np.asarray(predict(params, frames[i:i + 256], landmarks[i:i + 256]))
                              for i in range(0, len(frames), 256)])
      rows.append((k, float(np.corrcoef(guess, truth)[0, 1]), time.perf_counter() - start))
  return rows


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--dataset", default="synthtalk/r64_n320_32_8_s0")
  parser.add_argument("--label", default="jaw_open")
  parser.add_argument("--steps", type=int, default=500)
  parser.add_argument("--dynamics_crop", type=float, nargs="+", default=[0.5, 0.0])
  parser.add_argument("--stem_stride", type=int, nargs="+", default=[2])
  args = parser.parse_args()
  print(f"| dynamics_crop | stem stride | step | held-out r ({args.label}) | seconds |")
  print("|---|---|---|---|---|")
  for crop, stride in itertools.product(args.dynamics_crop, args.stem_stride):
    for k, r, seconds in probe(args.data_dir, args.dataset, args.label, args.steps, crop, stride):
      print(f"| {crop} | {stride} | {k} | {r:.3f} | {seconds:.0f} |", flush=True)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
