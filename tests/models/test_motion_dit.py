"""The motion transformer: shapes, zero-initialised output, the paper size by `jax.eval_shape`, that
each condition reaches the output only while it is kept, and its fused attention."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.errors import UserError
from vasa_jax.models import layers, motion_dit

W, K, M, A = 8, 3, 5, 6


def make(conditioning="adaln_zero", variant="tiny", audio_filter=0):
  config = motion_dit.make_config(variant, motion_dim=M, audio_dim=A, window=W, context=K,
                                  num_emotions=4, conditioning=conditioning,
                                  audio_filter=audio_filter)
  return config, motion_dit.MotionDiT(config)


def random_inputs(batch=2, seed=0):
  rng = np.random.default_rng(seed)
  conditions = {"previous_motion": rng.normal(size=(batch, K, M)),
                "previous_audio": rng.normal(size=(batch, K, A)),
                "audio": rng.normal(size=(batch, W, A)), "gaze": rng.normal(size=(batch, 2)),
                "distance": rng.normal(size=(batch,))}
  conditions = {k: jnp.asarray(v, jnp.float32) for k, v in conditions.items()}
  conditions["emotion"] = jnp.array([1, 2][:batch], jnp.int32)
  x_t = jnp.asarray(rng.normal(size=(batch, W, M)), jnp.float32)
  return x_t, jnp.array([10, 500][:batch], jnp.int32), conditions, motion_dit.all_kept(batch, W)


def trained_looking(params, seed=1):
  """Zero-initialised kernels (gates, output) made random, as after training."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(
      tree, [leaf + 0.2 * jax.random.normal(k, leaf.shape) for leaf, k in zip(leaves, keys)])


@pytest.mark.parametrize("conditioning", motion_dit.CONDITIONINGS)
def test_shapes_and_zero_output_at_initialisation(conditioning):
  config, model = make(conditioning)
  inputs = random_inputs()
  params = model.init(jax.random.key(0), *inputs)["params"]
  out = model.apply({"params": params}, *inputs)
  assert out.shape == (2, W, M) and out.dtype == jnp.float32
  np.testing.assert_array_equal(out, 0.0)  # Zero-initialised head: the data mean.


@pytest.mark.parametrize("conditioning,audio_filter",
                         [("adaln_zero", 0), ("tokens", 0), ("adaln_zero", 5)])
def test_each_condition_reaches_the_output_only_while_kept(conditioning, audio_filter):
  config, model = make(conditioning, audio_filter=audio_filter)
  x_t, t, conditions, keep = random_inputs()
  params = trained_looking(model.init(jax.random.key(0), x_t, t, conditions, keep)["params"])
  apply = jax.jit(lambda c, k, t=t: model.apply({"params": params}, x_t, t, c, k))
  base = apply(conditions, keep)
  assert not np.allclose(model.apply({"params": params}, x_t, t + 300, conditions, keep), base,
                         atol=1e-4), "the diffusion step must matter"
  changes = {"gaze": conditions["gaze"] + 1.0, "distance": conditions["distance"] + 1.0,
             "emotion": (conditions["emotion"] + 1) % 4, "audio": conditions["audio"] + 1.0,
             "previous": None}
  for name, changed in changes.items():
    if name == "previous":
      other = dict(conditions, previous_motion=conditions["previous_motion"] + 1.0,
                   previous_audio=conditions["previous_audio"] + 1.0)
    else:
      other = dict(conditions, **{name: changed})
    assert not np.allclose(apply(other, keep), base, atol=1e-4), f"{name} is ignored"
    dropped = dict(keep, **{name: jnp.zeros_like(keep[name])})
    np.testing.assert_allclose(apply(other, dropped), apply(conditions, dropped), atol=1e-5,
                               err_msg=f"{name} leaks through while dropped")
  # Audio is absent frame by frame: a change at a dropped frame does not reach the output.
  tail = dict(keep, audio=keep["audio"].at[:, 5:].set(False))
  late = dict(conditions, audio=conditions["audio"].at[:, 5:].add(1.0))
  np.testing.assert_allclose(apply(late, tail), apply(conditions, tail), atol=1e-5)
  early = dict(conditions, audio=conditions["audio"].at[:, :5].add(1.0))
  assert not np.allclose(apply(early, tail), apply(conditions, tail), atol=1e-4)


def test_no_previous_window():
  config = motion_dit.make_config("tiny", motion_dim=M, audio_dim=A, window=W, context=0,
                                  num_emotions=4)
  model = motion_dit.MotionDiT(config)
  inputs = motion_dit.dummy_inputs(config, 2)
  params = model.init(jax.random.key(0), *inputs)["params"]
  assert model.apply({"params": params}, *inputs).shape == (2, W, M)


def test_paper_variant_size_by_eval_shape():
  # 8 blocks of width 512, 8 heads, MLP 1024: 29.4M parameters; 32.0M with 519-dim stage-1 motion
  # and 1024-dim audio features in and out.
  config = motion_dit.make_config("paper", motion_dim=519, audio_dim=1024, window=50, context=10,
                                  num_emotions=4)
  model = motion_dit.MotionDiT(config)
  abstract = jax.eval_shape(
      lambda: model.init(jax.random.key(0), *motion_dit.dummy_inputs(config, 2)))
  params = abstract["params"]
  count = lambda tree: sum(math.prod(x.shape) for x in jax.tree.leaves(tree))  # noqa: E731
  blocks = sum(count(v) for k, v in params.items() if k.startswith("block_"))
  assert len([k for k in params if k.startswith("block_")]) == 8
  assert params["block_0"]["attention"]["query"]["kernel"].shape == (512, 8, 64)
  assert 29.0e6 < blocks < 29.8e6
  assert 31.5e6 < count(params) < 32.5e6
  out = jax.eval_shape(lambda p: model.apply({"params": p}, *motion_dit.dummy_inputs(config, 2)),
                       params)
  assert out.shape == (2, 50, 519)


def test_bad_sizes_are_refused():
  with pytest.raises(UserError, match="variant"):
    motion_dit.make_config("huge", motion_dim=M, audio_dim=A, window=W, context=K, num_emotions=4)
  with pytest.raises(UserError, match="odd"):
    motion_dit.make_config("tiny", motion_dim=M, audio_dim=A, window=W, context=K, num_emotions=4,
                           audio_filter=4)
  with pytest.raises(UserError, match="conditioning"):
    motion_dit.make_config("tiny", motion_dim=M, audio_dim=A, window=W, context=K, num_emotions=4,
                           conditioning="cross_attention")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_fused_attention_equals_flax_attention(dtype):
  """The transformers' attention runs through jax.nn.dot_product_attention with flax's parameters
  and flax's results, masked or not."""
  x = jax.random.normal(jax.random.key(0), (2, 17, 64))
  mask = nn.make_attention_mask(jnp.ones((2, 17)), jnp.arange(17)[None] < jnp.array([[12], [17]]))
  reference = nn.MultiHeadDotProductAttention(num_heads=4, dtype=dtype)
  fused = nn.MultiHeadDotProductAttention(num_heads=4, dtype=dtype,
                                          attention_fn=layers.fused_attention)
  variables = reference.init(jax.random.key(1), x, x)
  tolerance = 1e-5 if dtype == jnp.float32 else 2e-2
  for m in (None, mask):
    want = reference.apply(variables, x, x, mask=m).astype(jnp.float32)
    got = fused.apply(variables, x, x, mask=m).astype(jnp.float32)
    np.testing.assert_allclose(got, want, atol=tolerance * float(jnp.max(jnp.abs(want))))
