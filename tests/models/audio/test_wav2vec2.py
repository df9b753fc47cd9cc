"""Wav2Vec2/HuBERT in Flax against transformers' PyTorch models, small and random, on the CPU."""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.convert import wav2vec2 as convert
from vasa_jax.errors import UserError
from vasa_jax.models.audio import wav2vec2 as w2v

# The small architecture of the parity tests: even positional kernel (exercises the trim), 4 groups.
SMALL = dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
             conv_dim=(32, 32, 32), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
             num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
FAMILIES = {
    "wav2vec2-group-postnorm": (
        "wav2vec2", dict(feat_extract_norm="group", do_stable_layer_norm=False)),
    "wav2vec2-layer-prenorm": (
        "wav2vec2", dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)),
    "hubert-group-postnorm": (
        "hubert", dict(feat_extract_norm="group", do_stable_layer_norm=False)),
    "hubert-layer-prenorm-noprojnorm": (
        "hubert", dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
                       feat_proj_layer_norm=False)),
}
# Not a multiple of the total stride (20), so the last frames see a partial window.
NUM_SAMPLES = 2003


def build_hf_model(model_type: str, head: str = "", seed: int = 0, **overrides):
  """A random transformers model (eval mode) with SMALL sizes; every parameter perturbed.

  transformers initialises norms to (1, 0) and the weight-norm gain to |v|; noise on everything
  makes a swapped or mis-transposed tensor show up in the outputs.
  """
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  prefix = "Hubert" if model_type == "hubert" else "Wav2Vec2"
  config = getattr(transformers, f"{prefix}Config")(**{**SMALL, **overrides})
  torch.manual_seed(seed)
  model = getattr(transformers, f"{prefix}{head or 'Model'}")(config).eval()
  with torch.no_grad():
    for p in model.parameters():
      p.add_(0.1 * torch.randn_like(p))
  return model


def save_hf(model, folder):
  """save_pretrained into `folder` (config.json + model.safetensors); returns the folder."""
  model.save_pretrained(str(folder))
  return folder


def hf_outputs(model, audio: np.ndarray) -> dict:
  """transformers' outputs as numpy: last_hidden_state, hidden_states, extract_features."""
  torch = pytest.importorskip("torch")
  with torch.no_grad():
    x = torch.from_numpy(audio)
    out = model(x, output_hidden_states=True)
    if getattr(out, "extract_features", None) is not None:
      features = out.extract_features
    else:  # HubertModel does not return them: the conv features, normed as the projection does.
      features = model.feature_extractor(x).transpose(1, 2)
      if model.config.feat_proj_layer_norm:
        features = model.feature_projection.layer_norm(features)
  return {"last_hidden_state": out.last_hidden_state.numpy(),
          "hidden_states": [h.numpy() for h in out.hidden_states],
          "extract_features": features.numpy()}


def random_audio(batch: int = 2, samples: int = NUM_SAMPLES, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return (rng.standard_normal((batch, samples)) * np.linspace(0.3, 2.0, batch)[:, None]).astype(
      np.float32)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_parity_with_transformers(family, tmp_path):
  model_type, overrides = FAMILIES[family]
  hf = build_hf_model(model_type, **overrides)
  config, params = convert.load_hf_wav2vec2(save_hf(hf, tmp_path / "hf"))
  assert config.model_type == model_type
  assert config.do_stable_layer_norm == overrides["do_stable_layer_norm"]
  audio = random_audio()
  ref = hf_outputs(hf, audio)
  model = w2v.Wav2Vec2Model(config)
  out = jax.jit(lambda p, x: model.apply({"params": p}, x))(params, jnp.asarray(audio))

  frames = w2v.num_frames(NUM_SAMPLES, config)
  assert out["last_hidden_state"].shape == (2, frames, SMALL["hidden_size"])
  assert out["extract_features"].shape == (2, frames, SMALL["conv_dim"][-1])
  assert len(out["hidden_states"]) == len(ref["hidden_states"]) == SMALL["num_hidden_layers"] + 1
  diffs = {"extract_features": np.abs(np.asarray(out["extract_features"])
                                      - ref["extract_features"]).max(),
           "last_hidden_state": np.abs(np.asarray(out["last_hidden_state"])
                                       - ref["last_hidden_state"]).max()}
  np.testing.assert_allclose(out["extract_features"], ref["extract_features"], atol=1e-4, rtol=1e-4)
  for i, (ours, theirs) in enumerate(zip(out["hidden_states"], ref["hidden_states"])):
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=1e-4, err_msg=f"hidden_states[{i}]")
    diffs[f"hidden_states[{i}]"] = np.abs(np.asarray(ours) - theirs).max()
  np.testing.assert_allclose(out["last_hidden_state"], ref["last_hidden_state"], atol=1e-4,
                             rtol=1e-4)
  if config.do_stable_layer_norm:
    # The last hidden state is the final layer's output before the closing layer norm.
    assert not np.allclose(ref["hidden_states"][-1], ref["last_hidden_state"], atol=1e-2)
  print(f"\n{family}: max |flax - torch| = {max(diffs.values()):.2e} "
        + " ".join(f"{k}={v:.1e}" for k, v in diffs.items()))


def test_output_hidden_states_off_and_bfloat16(tmp_path):
  hf = build_hf_model("wav2vec2")
  config, params = convert.load_hf_wav2vec2(save_hf(hf, tmp_path / "hf"))
  audio = jnp.asarray(random_audio())
  out = w2v.Wav2Vec2Model(config).apply({"params": params}, audio, output_hidden_states=False)
  assert out["hidden_states"] is None
  low = w2v.Wav2Vec2Model(config, dtype=jnp.bfloat16).apply({"params": params}, audio)
  assert low["last_hidden_state"].dtype == jnp.bfloat16
  ref = np.asarray(out["last_hidden_state"])
  err = np.abs(np.asarray(low["last_hidden_state"], np.float32) - ref).max()
  assert err < 0.1 * np.abs(ref).max(), err


def test_num_frames_matches_transformers():
  torch = pytest.importorskip("torch")
  public = dict(conv_dim=(4,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2),
                conv_stride=(5, 2, 2, 2, 2, 2, 2))
  for geometry in (dict(), public):
    hf = build_hf_model("wav2vec2", **geometry)
    config = w2v.Wav2Vec2Config(**{**SMALL, **geometry})
    for samples in range(400, 20000, 37):
      with torch.no_grad():
        frames = hf.feature_extractor(torch.zeros(1, samples)).shape[-1]
      assert w2v.num_frames(samples, config) == frames, samples
  base = w2v.Wav2Vec2Config.variant("base")
  assert w2v.receptive_field(base) == 400
  assert [w2v.num_frames(n, base) for n in (399, 400, 719, 720, 16000)] == [0, 1, 1, 2, 49]
  model = w2v.Wav2Vec2Model(w2v.Wav2Vec2Config.variant("tiny"))
  params = w2v.init_shapes(model.config)
  for samples in (40, 333, 2003):
    out = jax.eval_shape(lambda p, x: model.apply({"params": p}, x), params,
                         jax.ShapeDtypeStruct((1, samples), jnp.float32))
    assert out["last_hidden_state"].shape[1] == w2v.num_frames(samples, model.config)
  with pytest.raises(UserError, match="pad the audio"):
    jax.eval_shape(lambda p, x: model.apply({"params": p}, x), params,
                   jax.ShapeDtypeStruct((1, 39), jnp.float32))


def test_normalize_waveform_matches_feature_extractor():
  transformers = pytest.importorskip("transformers")
  extractor = transformers.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
  rng = np.random.default_rng(1)
  clips = [rng.standard_normal(n).astype(np.float32) * s + o
           for n, s, o in ((1200, 0.2, 0.1), (700, 3.0, -1.0))]
  ref = extractor(clips, sampling_rate=16000, padding=True, return_tensors="np")
  padded = np.stack([np.pad(c, (0, 1200 - len(c))) for c in clips])
  ours = w2v.normalize_waveform(padded, lengths=np.array([1200, 700]))
  np.testing.assert_allclose(ours, ref["input_values"], atol=1e-5)
  single = w2v.normalize_waveform(clips[1][None])
  np.testing.assert_allclose(single, ref["input_values"][1:, :700], atol=1e-5)


def test_group_family_ignores_gain_and_offset(tmp_path):
  """Why normalising the input does not matter for base checkpoints (see normalize_waveform)."""
  hf = build_hf_model("wav2vec2", feat_extract_norm="group", conv_bias=False)
  config, params = convert.load_hf_wav2vec2(save_hf(hf, tmp_path / "hf"))
  model = w2v.Wav2Vec2Model(config)
  audio = jnp.asarray(random_audio())
  raw = model.apply({"params": params}, audio)["last_hidden_state"]
  normed = model.apply({"params": params}, w2v.normalize_waveform(audio))["last_hidden_state"]
  np.testing.assert_allclose(raw, normed, atol=1e-3)


def test_variants_and_parameter_counts():
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  for name, low, high in (("base", 94e6, 95e6), ("large", 314e6, 316e6)):
    config = w2v.Wav2Vec2Config.variant(name)
    count = w2v.count_params(w2v.init_shapes(config))
    print(f"\n{name}: {count:,} parameters")
    assert low < count < high
    skip = ("model_type", "do_normalize", "feat_proj_layer_norm")
    hf_config = transformers.Wav2Vec2Config(
        **{k: v for k, v in config.to_dict().items() if k not in skip})
    with torch.device("meta"):
      hf = transformers.Wav2Vec2Model(hf_config)
    # transformers also holds the mask vector and the weight-norm gain of the positional conv.
    extra = config.hidden_size + config.num_conv_pos_embeddings
    assert sum(p.numel() for p in hf.parameters()) == count + extra
  with pytest.raises(UserError, match="unknown Wav2Vec2 variant"):
    w2v.Wav2Vec2Config.variant("huge")

