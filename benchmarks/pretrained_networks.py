"""Cost of the packaged pretrained networks per image: prints a table.

  .venv/bin/python benchmarks/pretrained_networks.py [--sizes 64 128] [--batch 8] [--repeats 5]

For each face-crop size it times, jitted and after warm-up, on the default backend (best of
`--repeats`, milliseconds per image):
  LPIPS VGG16 / AlexNet   one distance of an image pair (the evaluators' LPIPS);
  VGG16 perceptual        stage 1's perceptual L1, forward and backward for the prediction and the
                          forward of the target (what a training step pays per image);
  dlib ResNet             one 128-d descriptor: the chip cut from the crop and the network (CSIM);
  dlib cross-identity     stage 1's cross-identity loss, forward and backward per image;
  I3D                     FVD's Kinetics-400 I3D, per frame of a 25-frame clip resized to 224x224
                          (the same at every crop size: I3D always sees 224x224), batch 1.
Weights come from the installed packages (converted into the cache on first use).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.bench.common import best_seconds


def _best_ms(fn, *args, repeats: int) -> float:
  return best_seconds(fn, *args, repeats=repeats) * 1e3


def measure(size: int, batch: int, repeats: int) -> dict[str, float]:
  from vasa_jax.convert import frozen
  from vasa_jax.losses import identity, perceptual

  rng = np.random.default_rng(0)
  a = jnp.asarray(rng.uniform(-1, 1, (batch, size, size, 3)), jnp.float32)
  b = jnp.asarray(rng.uniform(-1, 1, (batch, size, size, 3)), jnp.float32)
  row = {}
  for net in ("vgg16", "alexnet"):
    model, variables, _ = frozen.lpips_network(net=net)
    row[f"LPIPS {net}"] = _best_ms(jax.jit(model.apply), variables, a, b,
                                   repeats=repeats) / batch
  features_fn, vgg = frozen.load_vgg16()
  loss = jax.jit(jax.grad(lambda p, t, v: perceptual.perceptual_l1(features_fn, v, p, t)))
  row["VGG16 perceptual fwd+bwd"] = _best_ms(loss, a, b, vgg, repeats=repeats) / batch
  embed, dlib, _ = frozen.load_identity_network("dlib")
  row["dlib ResNet"] = _best_ms(jax.jit(embed), dlib, a, repeats=repeats) / batch
  cross = jax.jit(jax.grad(lambda r, s, v: identity.cross_identity(embed, v, r, s)))
  row["dlib cross-identity fwd+bwd"] = _best_ms(cross, a, b, dlib, repeats=repeats) / batch
  return row


def i3d_per_frame(repeats: int) -> float:
  from vasa_jax.convert.i3d import load_i3d

  model, variables = load_i3d()
  clip = jnp.zeros((1, 25, 224, 224, 3), jnp.float32)
  return _best_ms(jax.jit(model.apply), variables, clip, repeats=repeats) / 25


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  rows = {size: measure(size, args.batch, args.repeats) for size in args.sizes}
  rows_i3d = i3d_per_frame(max(2, args.repeats // 2))
  names = list(next(iter(rows.values())))
  print(f"ms per image on {jax.devices()[0].device_kind} (batch {args.batch}, best of "
        f"{args.repeats})\n")
  print("| network | " + " | ".join(f"{s} px" for s in args.sizes) + " |")
  print("|---|" + "---|" * len(args.sizes))
  for name in names:
    print(f"| {name} | " + " | ".join(f"{rows[s][name]:.1f}" for s in args.sizes) + " |")
  print("| I3D (per frame, 224 px) | " + " | ".join(f"{rows_i3d:.1f}" for _ in args.sizes) + " |")


if __name__ == "__main__":
  main()
