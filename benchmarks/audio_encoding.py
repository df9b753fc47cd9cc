"""Audio encoding speed: seconds of audio encoded per second of wall time; prints a table.

  .venv/bin/python benchmarks/audio_encoding.py [--seconds 10] [--batch 1 4]

Encoders: log-mel features, and the Wav2Vec2 "base" architecture (94M parameters, random weights:
speed does not depend on their values) through the frame-synchronous interface. float32, jitted,
compilation excluded, best of 3.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.bench.common import best_seconds
from vasa_jax.data import audio_features
from vasa_jax.models.audio import features, wav2vec2


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seconds", type=float, default=10.0)
  parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
  args = parser.parse_args()
  mel = audio_features.make_audio_encoder({"wav2vec2_path": ""})
  config = wav2vec2.Wav2Vec2Config.variant("base")
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape, np.float32) * 0.02),
                        wav2vec2.init_shapes(config))
  receptive, hop = features.conv_geometry(config.conv_kernel, config.conv_stride)
  base = features.AudioEncoder(kind="wav2vec2", dim=config.hidden_size, layer="last",
                               params=params, model=wav2vec2.Wav2Vec2Model(config), hop=hop,
                               pad=(receptive - hop) // 2, description="Wav2Vec2 base")
  rows = []
  for batch in args.batch:
    audio = jnp.asarray(rng.standard_normal((batch, int(args.seconds * 16000)), np.float32) * 0.1)
    audio = features.pad_to_frames(audio)
    for name, encoder in (("log-mel", mel), ("wav2vec2 base", base)):
      seconds = best_seconds(jax.jit(encoder.apply), encoder.params, audio)
      rows.append((name, batch, seconds, batch * args.seconds / seconds))
  print(f"\n{'encoder':<14} {'batch':>5} {'seconds':>8} {'audio s/s':>10}   "
        f"({jax.device_count()} {jax.devices()[0].platform} device(s), {args.seconds:g} s clips)")
  for name, batch, seconds, rate in rows:
    print(f"{name:<14} {batch:>5} {seconds:>8.3f} {rate:>10.1f}")


if __name__ == "__main__":
  main()
