"""Does a trained stage-1 model draw the jaw from z_dyn? Prints a table and writes a strip.

  .venv/bin/python benchmarks/mouth_drive.py --workdir RUN --data_dir DATA \
      [--dataset synthtalk/r64_n320_32_8_s0] [--clips 7] [--out mouth_drive.png]

For every fifth validation clip (held-out identities), the clip's most closed frame is the
source; four frames of rising jaw opening drive it. Per clip the table gives the jaw labels, the
renderer's mean alpha in the mouth window (how much of the mouth is drawn rather than taken from
the (warped) background) and the mean absolute change of the mouth window between the most
closed and most open driver's z_dyn with the source pose held (images in [-1, 1]): how much z_dyn
alone moves the mouth. The strip's rows are clips; its columns the source, the four outputs, the
four outputs with the pose held, the four alphas and the four true frames.
"""

from __future__ import annotations

import argparse

import numpy as np


def drive(workdir: str, data_dir: str, dataset: str, clips: int, out: str | None
          ) -> list[dict]:
  import jax.numpy as jnp

  from vasa_jax.data import motion_latents, pipelines, schema
  from vasa_jax.data.synthtalk.clip import decode_frames
  from vasa_jax.evaluators.image_metrics import to_signed
  from vasa_jax import atomic

  stage1 = motion_latents.load_stage1(workdir)
  model, params = stage1.task.model, {"params": stage1.params["generator"]}
  source = pipelines.open_split(data_dir, dataset, "validation")
  jaw = schema.LABEL_NAMES.index("jaw_open")
  size = stage1.task.image_size
  rows, strip = [], []
  for index in range(0, min(len(source), 5 * clips), 5):
    clip = source[index]
    frames = to_signed(np.stack([pipelines._resize(f, size)
                                 for f in decode_frames(clip["frames"])]))
    labels = schema.stack_labels(clip["labels"])[:, jaw]
    landmarks = np.asarray(clip["landmarks"], np.float32)
    order = np.argsort(labels)
    picks = order[np.linspace(0, len(order) - 1, 4).astype(int)]
    first = int(order[0])
    latents = model.apply(params, frames[first:first + 1], landmarks[first:first + 1],
                          method=model.encode)
    z_pose, z_dyn = model.apply(params, frames[picks], landmarks[picks],
                                method=model.encode_motion)
    repeat = {k: jnp.repeat(v, len(picks), 0) for k, v in latents.items()}

    def decode(pose):
      return model.apply(params, repeat["v_app"], repeat["z_id"], pose, z_dyn,
                         repeat.get("background"), repeat.get("background_flow"),
                         repeat["z_pose"], return_alpha=True, method=model.decode)

    images, alpha = decode(z_pose)
    held, _ = decode(jnp.repeat(z_pose[:1], len(picks), 0))
    x, y = (landmarks[picks, 3] * size).mean(0).astype(int)
    half_h, half_w = max(2, size * 3 // 32), max(2, size // 8)
    window = np.s_[max(y - half_h, 0):y + half_h, max(x - half_w, 0):x + half_w]
    change = np.abs(np.asarray(held[-1] - held[0]))[window].mean()
    rows.append(dict(clip=clip["meta"]["clip_id"].decode(),
                     jaw=[round(float(v), 2) for v in labels[picks]],
                     mouth_alpha=float(np.asarray(alpha)[:, *window].mean()),
                     z_dyn_mouth_change=float(change)))
    unit = lambda a: ((np.asarray(a) + 1) * 127.5).clip(0, 255).astype(np.uint8)  # noqa: E731
    strip.append(np.concatenate(
        [unit(frames[first])] + [unit(a) for a in images] + [unit(a) for a in held]
        + [np.repeat((np.asarray(a) * 255).astype(np.uint8), 3, -1) for a in alpha]
        + [unit(frames[t]) for t in picks], axis=1))
  if out:
    import cv2

    ok, encoded = cv2.imencode(".png", np.concatenate(strip, 0)[..., ::-1])
    assert ok
    with atomic.writing(out) as file:
      file.write(encoded.tobytes())
  return rows


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--dataset", default="synthtalk/r64_n320_32_8_s0")
  parser.add_argument("--clips", type=int, default=7)
  parser.add_argument("--out", default="mouth_drive.png")
  args = parser.parse_args()
  rows = drive(args.workdir, args.data_dir, args.dataset, args.clips, args.out)
  print("| clip | jaw (drivers) | mouth alpha | z_dyn mouth change |\n|---|---|---|---|")
  for row in rows:
    print(f"| {row['clip']} | {row['jaw']} | {row['mouth_alpha']:.3f} | "
          f"{row['z_dyn_mouth_change']:.1e} |")
  print(f"| mean | | {np.mean([r['mouth_alpha'] for r in rows]):.3f} | "
        f"{np.mean([r['z_dyn_mouth_change'] for r in rows]):.1e} |")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
