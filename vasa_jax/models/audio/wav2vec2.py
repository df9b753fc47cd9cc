"""Wav2Vec2 and HuBERT speech encoders in Flax linen, matching Hugging Face transformers' numbers.

Both models share one architecture: raw 16 kHz audio -> a stack of strided 1-D convolutions (the
"feature encoder", 50 frames a second for the public checkpoints) -> layer norm + dense projection
-> a convolutional positional embedding -> a Transformer encoder. Two families exist:

  * "base" (`feat_extract_norm="group"`, `do_stable_layer_norm=False`): GroupNorm with one group per
    channel on the first convolution only; post-norm Transformer layers, with the encoder's layer
    norm applied BEFORE the first layer, to the input plus its positional embedding.
    wav2vec2-base(-960h), hubert-base-ls960.
  * "large"/"lv60" (`feat_extract_norm="layer"`, `do_stable_layer_norm=True`): LayerNorm after every
    convolution; pre-norm Transformer layers and a final layer norm AFTER the last layer.
    wav2vec2-large-lv60, wav2vec2-large-xlsr-53, hubert-large-ll60k, hubert-xlarge.

Parameters come from Hugging Face checkpoints through `vasa_jax.convert.wav2vec2.load_hf_wav2vec2`;
their tree mirrors transformers' module names (`feature_extractor/conv_layers_0/conv/kernel`,
`encoder/layers_3/attention/q_proj/kernel`, ...). The positional convolution is weight-normalised in
transformers; inference needs only the product g * v / |v|, so the converter folds it into one plain
kernel here, and fine-tuning this module trains that kernel directly rather than (g, v).

Input: see `normalize_waveform` for which checkpoints expect zero-mean unit-variance audio.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vasa_jax.errors import UserError

Dtype = Any

MODEL_TYPES = ("wav2vec2", "hubert")

# Activation names of transformers' ACT2FN that these checkpoints use. "gelu" there is the exact
# (erf) GELU, not the tanh approximation jax.nn.gelu defaults to.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "gelu_new": functools.partial(jax.nn.gelu, approximate=True),
    "gelu_pytorch_tanh": functools.partial(jax.nn.gelu, approximate=True),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
}

# The convolution-stack norms use PyTorch's default epsilon, not layer_norm_eps.
_CONV_NORM_EPS = 1e-5
# The epsilon of transformers' Wav2Vec2FeatureExtractor normalisation.
_WAVEFORM_NORM_EPS = 1e-7


@dataclasses.dataclass(frozen=True)
class Wav2Vec2Config:
  """The architecture, with the names and meanings of the Hugging Face `config.json` fields.

  `do_normalize` is not part of `config.json`: the converter reads it from the checkpoint's
  `preprocessor_config.json` when there is one (None: unknown; see `normalize_waveform`).
  """

  model_type: str = "wav2vec2"
  hidden_size: int = 768
  num_hidden_layers: int = 12
  num_attention_heads: int = 12
  intermediate_size: int = 3072
  hidden_act: str = "gelu"
  layer_norm_eps: float = 1e-5
  feat_extract_norm: str = "group"
  feat_extract_activation: str = "gelu"
  conv_dim: tuple[int, ...] = (512, 512, 512, 512, 512, 512, 512)
  conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
  conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
  conv_bias: bool = False
  num_conv_pos_embeddings: int = 128
  num_conv_pos_embedding_groups: int = 16
  do_stable_layer_norm: bool = False
  # Wav2Vec2 always normalises the convolutional features before projecting them; HuBERT may not.
  feat_proj_layer_norm: bool = True
  do_normalize: bool | None = None

  def __post_init__(self):
    for name in ("conv_dim", "conv_kernel", "conv_stride"):
      object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
    problems = _config_problems(dataclasses.asdict(self))
    if problems:
      raise UserError("Wav2Vec2Config: " + "; ".join(problems))

  @classmethod
  def from_hf_dict(cls, d: Mapping[str, Any], source: str = "config.json") -> Wav2Vec2Config:
    """Reads a Hugging Face Wav2Vec2/HuBERT `config.json` (as a dict); `source` names it in errors.

    Missing fields take transformers' defaults. Architectures this module does not implement (other
    model types, adapters, a batch-normalised positional convolution) raise UserError.
    """
    if not isinstance(d, Mapping):
      raise UserError(f"{source}: expected a JSON object, got {type(d).__name__}")
    model_type = d.get("model_type")
    if model_type not in MODEL_TYPES:
      raise UserError(
          f"{source}: model_type is {model_type!r}, but only {' and '.join(MODEL_TYPES)} "
          "checkpoints can be converted; fix: point at a Wav2Vec2 or HuBERT checkpoint folder "
          "(e.g. a snapshot of facebook/wav2vec2-base-960h or facebook/hubert-large-ll60k)")
    unsupported = []
    if d.get("add_adapter"):
      unsupported.append("add_adapter=true (a strided adapter after the encoder)")
    if d.get("adapter_attn_dim") is not None:
      unsupported.append("adapter_attn_dim (per-language attention adapters, as in MMS)")
    if d.get("conv_pos_batch_norm"):
      unsupported.append("conv_pos_batch_norm=true (batch norm in the positional embedding)")
    if d.get("position_embeddings_type") not in (None, "conv"):
      unsupported.append(f"position_embeddings_type={d.get('position_embeddings_type')!r}")
    if unsupported:
      raise UserError(f"{source}: this {model_type} checkpoint uses " + ", ".join(unsupported)
                      + ", which vasa_jax does not implement; fix: use a plain Wav2Vec2/HuBERT "
                      "checkpoint (base, large, lv60, xlsr)")
    names = {f.name for f in dataclasses.fields(cls)} - {"do_normalize"}
    values = {k: v for k, v in d.items() if k in names}
    if model_type == "wav2vec2":
      # Wav2Vec2's feature projection always has its layer norm, whatever the field says.
      values["feat_proj_layer_norm"] = True
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    try:
      problems = _config_problems({**defaults, **values})
      if not problems:
        return cls(**values)
    except (TypeError, ValueError) as e:
      problems = [f"a field has the wrong type ({e})"]
    raise UserError(f"{source}: " + "; ".join(problems) + "; fix: use the config.json saved with "
                    "the Wav2Vec2/HuBERT checkpoint")

  @classmethod
  def variant(cls, name: str) -> Wav2Vec2Config:
    """A named architecture: "base", "large" or "tiny" (random weights only; for shapes and CI)."""
    if name not in VARIANTS:
      raise UserError(f"unknown Wav2Vec2 variant {name!r}; fix: use one of {sorted(VARIANTS)}")
    return VARIANTS[name]

  def to_dict(self) -> dict[str, Any]:
    """JSON-serialisable fields (the inverse of `from_dict`)."""
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> Wav2Vec2Config:
    """Reads what `to_dict` wrote."""
    return cls(**d)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True)


def _config_problems(d: Mapping[str, Any]) -> list[str]:
  """What makes the config fields `d` an architecture this module does not implement."""
  problems = []
  if d["model_type"] not in MODEL_TYPES:
    problems.append(f"model_type {d['model_type']!r} is not one of {MODEL_TYPES}")
  if d["feat_extract_norm"] not in ("group", "layer"):
    problems.append(f"feat_extract_norm {d['feat_extract_norm']!r} is not 'group' or 'layer'")
  for name in ("hidden_act", "feat_extract_activation"):
    if d[name] not in ACTIVATIONS:
      problems.append(f"{name} {d[name]!r} is not one of {sorted(ACTIVATIONS)}")
  if not len(d["conv_dim"]) == len(d["conv_kernel"]) == len(d["conv_stride"]) > 0:
    problems.append("conv_dim, conv_kernel and conv_stride must be non-empty and equally long")
  if int(d["hidden_size"]) % int(d["num_attention_heads"]):
    problems.append(f"hidden_size {d['hidden_size']} is not a multiple of num_attention_heads "
                    f"{d['num_attention_heads']}")
  if int(d["hidden_size"]) % int(d["num_conv_pos_embedding_groups"]):
    problems.append(f"hidden_size {d['hidden_size']} is not a multiple of "
                    f"num_conv_pos_embedding_groups {d['num_conv_pos_embedding_groups']}")
  return problems


VARIANTS: dict[str, Wav2Vec2Config] = {
    # facebook/wav2vec2-base: ~94.4M parameters.
    "base": Wav2Vec2Config(),
    # facebook/wav2vec2-large-lv60 / large-xlsr-53: ~315M parameters.
    "large": Wav2Vec2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                            intermediate_size=4096, feat_extract_norm="layer", conv_bias=True,
                            do_stable_layer_norm=True),
    "tiny": Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, conv_dim=(32, 32, 32), conv_kernel=(10, 3, 3),
                           conv_stride=(5, 2, 2), num_conv_pos_embeddings=16,
                           num_conv_pos_embedding_groups=4),
}


def num_frames(num_samples: int, config: Wav2Vec2Config) -> int:
  """Frames the feature encoder gives for `num_samples` of audio (0 when it is too short for one).

  Each convolution is unpadded: length -> floor((length - kernel) / stride) + 1. For the public
  checkpoints that is floor((num_samples - 400) / 320) + 1 from 400 samples on.
  """
  length = int(num_samples)
  for kernel, stride in zip(config.conv_kernel, config.conv_stride):
    if length < kernel:
      return 0
    length = (length - kernel) // stride + 1
  return length


def receptive_field(config: Wav2Vec2Config) -> int:
  """Samples one output frame of the feature encoder sees (400 for the public checkpoints)."""
  field, hop = 1, 1
  for kernel, stride in zip(config.conv_kernel, config.conv_stride):
    field += (kernel - 1) * hop
    hop *= stride
  return field


def normalize_waveform(waveform: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
  """Zero-mean, unit-variance audio per utterance, as transformers' feature extractor gives it.

  Which checkpoints expect it: what `do_normalize` in the checkpoint's `preprocessor_config.json`
  says (the converter copies it into `Wav2Vec2Config.do_normalize`). The large/lv60/xlsr family
  (layer-norm feature encoder) was trained on normalised audio and degrades without it. For the base
  family (group norm, no conv bias) it makes no difference beyond rounding: the first convolution is
  linear without bias and its per-channel group norm over time removes any gain and DC offset again.

  Args:
    waveform: [batch, samples] (or [samples]) float audio.
    lengths: optional [batch] int count of valid samples per row; statistics use only those, and the
      padding after them is set to 0 (transformers' behaviour with an attention mask).

  Returns:
    float32 array of the waveform's shape.
  """
  x = jnp.asarray(waveform, jnp.float32)
  if lengths is None:
    mean = x.mean(axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + _WAVEFORM_NORM_EPS)
  lengths = jnp.asarray(lengths)
  valid = jnp.arange(x.shape[-1]) < lengths[..., None]
  count = jnp.maximum(lengths[..., None], 1).astype(jnp.float32)
  mean = jnp.sum(jnp.where(valid, x, 0.0), axis=-1, keepdims=True) / count
  var = jnp.sum(jnp.where(valid, jnp.square(x - mean), 0.0), axis=-1, keepdims=True) / count
  return jnp.where(valid, (x - mean) / jnp.sqrt(var + _WAVEFORM_NORM_EPS), 0.0)


def _layer_norm(eps: float, dtype: Dtype, param_dtype: Dtype, name: str) -> nn.LayerNorm:
  # Two-pass variance: the fast E[x^2] - E[x]^2 form loses float32 precision on long sequences.
  return nn.LayerNorm(epsilon=eps, dtype=dtype, param_dtype=param_dtype, use_fast_variance=False,
                      name=name)


class _ConvLayer(nn.Module):
  """One unpadded strided convolution of the feature encoder, its optional norm, the activation."""

  features: int
  kernel: int
  stride: int
  norm: str | None  # None, "group" (per-channel over time) or "layer" (over channels).
  config: Wav2Vec2Config
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[batch, length, channels] -> [batch, floor((length - kernel) / stride) + 1, features]."""
    x = nn.Conv(self.features, (self.kernel,), strides=(self.stride,), padding="VALID",
                use_bias=self.config.conv_bias, dtype=self.dtype, param_dtype=self.param_dtype,
                name="conv")(x)
    if self.norm == "group":
      x = nn.GroupNorm(num_groups=self.features, epsilon=_CONV_NORM_EPS, dtype=self.dtype,
                       param_dtype=self.param_dtype, use_fast_variance=False, name="layer_norm")(x)
    elif self.norm == "layer":
      x = _layer_norm(_CONV_NORM_EPS, self.dtype, self.param_dtype, "layer_norm")(x)
    return ACTIVATIONS[self.config.feat_extract_activation](x)


class FeatureEncoder(nn.Module):
  """Raw audio -> convolutional features: [batch, samples] -> [batch, frames, conv_dim[-1]]."""

  config: Wav2Vec2Config
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, waveform: jax.Array) -> jax.Array:
    cfg = self.config
    x = waveform.astype(self.dtype)[..., None]
    for i, (dim, kernel, stride) in enumerate(zip(cfg.conv_dim, cfg.conv_kernel, cfg.conv_stride)):
      if cfg.feat_extract_norm == "layer":
        norm = "layer"
      else:
        norm = "group" if i == 0 else None
      x = _ConvLayer(dim, kernel, stride, norm, cfg, self.dtype, self.param_dtype,
                     name=f"conv_layers_{i}")(x)
    return x


class FeatureProjection(nn.Module):
  """[batch, frames, conv_dim[-1]] -> (projected [batch, frames, hidden], normed features)."""

  config: Wav2Vec2Config
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, features: jax.Array) -> tuple[jax.Array, jax.Array]:
    cfg = self.config
    if cfg.feat_proj_layer_norm:
      features = _layer_norm(cfg.layer_norm_eps, self.dtype, self.param_dtype, "layer_norm")(
          features)
    hidden = nn.Dense(cfg.hidden_size, dtype=self.dtype, param_dtype=self.param_dtype,
                      name="projection")(features)
    return hidden, features


class PositionalConvEmbedding(nn.Module):
  """Relative positions from a wide grouped convolution: [batch, frames, hidden] -> same shape.

  The kernel is the weight-normalised product g * v / |v| of the checkpoint, folded at conversion.
  """

  config: Wav2Vec2Config
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    kernel = cfg.num_conv_pos_embeddings
    y = nn.Conv(cfg.hidden_size, (kernel,), padding=[(kernel // 2, kernel // 2)],
                feature_group_count=cfg.num_conv_pos_embedding_groups, dtype=self.dtype,
                param_dtype=self.param_dtype, name="conv")(x)
    if kernel % 2 == 0:
      # Symmetric padding of an even kernel yields one frame too many; the reference drops the last.
      y = y[:, :-1]
    return ACTIVATIONS[cfg.feat_extract_activation](y)


class SelfAttention(nn.Module):
  """Multi-head self-attention with biases and no mask: [batch, frames, hidden] -> same shape."""

  config: Wav2Vec2Config
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    heads = cfg.num_attention_heads
    head_dim = cfg.hidden_size // heads
    dense = functools.partial(nn.Dense, cfg.hidden_size, dtype=self.dtype,
                              param_dtype=self.param_dtype)
    split = lambda t: t.reshape(*t.shape[:-1], heads, head_dim)  # noqa: E731
    q = split(dense(name="q_proj")(x))
    k = split(dense(name="k_proj")(x))
    v = split(dense(name="v_proj")(x))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * (head_dim ** -0.5)
    # Softmax in float32 so that bfloat16 activations keep the long-tail attention weights.
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(self.dtype)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(x.shape[:-1] + (cfg.hidden_size,))
    return dense(name="out_proj")(out)


class FeedForward(nn.Module):
  """Dense -> activation -> dense: [batch, frames, hidden] -> same shape."""

  config: Wav2Vec2Config
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    x = nn.Dense(cfg.intermediate_size, dtype=self.dtype, param_dtype=self.param_dtype,
                 name="intermediate_dense")(x)
    x = ACTIVATIONS[cfg.hidden_act](x)
    return nn.Dense(cfg.hidden_size, dtype=self.dtype, param_dtype=self.param_dtype,
                    name="output_dense")(x)


class EncoderLayer(nn.Module):
  """One Transformer layer, post-norm ("base") or pre-norm ("large"): [batch, frames, hidden]."""

  config: Wav2Vec2Config
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    attention = SelfAttention(cfg, name="attention", **kw)
    feed_forward = FeedForward(cfg, name="feed_forward", **kw)
    layer_norm = _layer_norm(cfg.layer_norm_eps, self.dtype, self.param_dtype, "layer_norm")
    final_layer_norm = _layer_norm(cfg.layer_norm_eps, self.dtype, self.param_dtype,
                                   "final_layer_norm")
    if cfg.do_stable_layer_norm:
      x = x + attention(layer_norm(x))
      return x + feed_forward(final_layer_norm(x))
    x = layer_norm(x + attention(x))
    return final_layer_norm(x + feed_forward(x))


class Encoder(nn.Module):
  """Positional embedding + Transformer layers.

  Returns (last_hidden_state, hidden_states): hidden_states holds the input to the first layer and
  every layer's output, num_hidden_layers + 1 arrays of [batch, frames, hidden].
  """

  config: Wav2Vec2Config
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    cfg = self.config
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = x + PositionalConvEmbedding(cfg, name="pos_conv_embed", **kw)(x)
    layer_norm = _layer_norm(cfg.layer_norm_eps, self.dtype, self.param_dtype, "layer_norm")
    if not cfg.do_stable_layer_norm:
      x = layer_norm(x)
    hidden_states = [x]
    for i in range(cfg.num_hidden_layers):
      x = EncoderLayer(cfg, name=f"layers_{i}", **kw)(x)
      hidden_states.append(x)
    if cfg.do_stable_layer_norm:
      x = layer_norm(x)
    return x, tuple(hidden_states)


class Wav2Vec2Model(nn.Module):
  """Wav2Vec2 / HuBERT encoder (inference: no masking, no dropout).

  `model.apply({"params": params}, waveform)` with the params from
  `vasa_jax.convert.wav2vec2.load_hf_wav2vec2`. Jittable; the frame count is static, from the
  waveform's length (`num_frames`).
  """

  config: Wav2Vec2Config
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, waveform: jax.Array, *,
               output_hidden_states: bool = True) -> dict[str, Any]:
    """Encodes audio.

    Args:
      waveform: [batch, samples] float 16 kHz audio (normalised first where the checkpoint expects
        it: `normalize_waveform`).
      output_hidden_states: whether to return `hidden_states`.

    Returns:
      A dict with
        last_hidden_state: [batch, frames, hidden], the encoder output (after the final layer norm
          in the "large" family).
        hidden_states: num_hidden_layers + 1 arrays [batch, frames, hidden], as transformers'
          `output_hidden_states=True` gives them: index 0 is the input of the first layer (for
          "base", the layer-normed projected features plus positional embedding; for "large", the
          same without a norm) and index i the output of layer i. In the "large" family the last one
          is therefore BEFORE the final layer norm, unlike last_hidden_state (transformers < 5
          returned it after). None when output_hidden_states is False.
        extract_features: [batch, frames, conv_dim[-1]], the convolutional features after the
          projection's layer norm (HuBERT without `feat_proj_layer_norm`: as the convolutions give
          them).
    """
    cfg = self.config
    if waveform.ndim != 2:
      raise UserError(f"Wav2Vec2Model takes audio of shape [batch, samples], got {waveform.shape}; "
                      "fix: add a batch axis")
    if num_frames(waveform.shape[-1], cfg) < 1:
      raise UserError(f"{waveform.shape[-1]} audio samples are fewer than the "
                      f"{receptive_field(cfg)} one Wav2Vec2 frame needs; fix: pad the audio")
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    features = FeatureEncoder(cfg, name="feature_extractor", **kw)(waveform)
    hidden, extract_features = FeatureProjection(cfg, name="feature_projection", **kw)(features)
    last, hidden_states = Encoder(cfg, name="encoder", **kw)(hidden)
    return {
        "last_hidden_state": last,
        "hidden_states": hidden_states if output_hidden_states else None,
        "extract_features": extract_features,
    }


def init_shapes(config: Wav2Vec2Config, dtype: Dtype = jnp.float32,
                param_dtype: Dtype = jnp.float32) -> Any:
  """The parameter tree of `config` as jax.ShapeDtypeStruct leaves, without computing anything."""
  model = Wav2Vec2Model(config, dtype=dtype, param_dtype=param_dtype)
  waveform = jax.ShapeDtypeStruct((1, receptive_field(config)), jnp.float32)
  variables = jax.eval_shape(lambda w: model.init(jax.random.PRNGKey(0), w), waveform)
  return variables["params"]


def count_params(params: Any) -> int:
  """Number of scalars in a parameter tree (arrays or ShapeDtypeStructs)."""
  total = 0
  for leaf in jax.tree_util.tree_leaves(params):
    size = 1
    for n in leaf.shape:
      size *= int(n)
    total += size
  return total
