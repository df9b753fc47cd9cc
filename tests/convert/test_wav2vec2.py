"""The Hugging Face Wav2Vec2/HuBERT converter: heads, weight-norm names, stored weights, errors."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

from tests.models.audio.test_wav2vec2 import build_hf_model, hf_outputs, random_audio, save_hf
from vasa_jax.convert import wav2vec2 as convert
from vasa_jax.errors import UserError
from vasa_jax.models.audio import wav2vec2 as w2v

safetensors_numpy = pytest.importorskip("safetensors.numpy")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  """(folder, transformers model) of a small random Wav2Vec2Model saved with save_pretrained."""
  model = build_hf_model("wav2vec2")
  return save_hf(model, tmp_path_factory.mktemp("hf")), model


def copy_checkpoint(folder, dest, edit_tensors=None, edit_config=None):
  """Copies a checkpoint folder, editing its tensors dict and/or config dict on the way."""
  dest.mkdir()
  tensors = safetensors_numpy.load_file(str(folder / "model.safetensors"))
  config = json.loads((folder / "config.json").read_text())
  if edit_tensors:
    edit_tensors(tensors)
  if edit_config:
    edit_config(config)
  safetensors_numpy.save_file(tensors, str(dest / "model.safetensors"))
  (dest / "config.json").write_text(json.dumps(config))
  return dest


def last_hidden(config, params, audio):
  return np.asarray(w2v.Wav2Vec2Model(config).apply({"params": params}, jnp.asarray(audio))[
      "last_hidden_state"])


@pytest.mark.parametrize("model_type,head", [("wav2vec2", "ForCTC"), ("wav2vec2", "ForPreTraining"),
                                             ("hubert", "ForCTC")])
def test_task_checkpoints_convert_their_base_model(model_type, head, tmp_path):
  hf = build_hf_model(model_type, head=head)
  config, params = convert.load_hf_wav2vec2(save_hf(hf, tmp_path / "hf"))
  base = getattr(hf, model_type)
  audio = random_audio()
  np.testing.assert_allclose(last_hidden(config, params, audio),
                             hf_outputs(base, audio)["last_hidden_state"], atol=1e-4, rtol=1e-4)


def test_old_weight_norm_names(checkpoint, tmp_path):
  folder, _ = checkpoint
  conv = "encoder.pos_conv_embed.conv."

  def rename(tensors):
    tensors[conv + "weight_g"] = tensors.pop(conv + "parametrizations.weight.original0")
    tensors[conv + "weight_v"] = tensors.pop(conv + "parametrizations.weight.original1")

  _, new = convert.load_hf_wav2vec2(folder)
  _, old = convert.load_hf_wav2vec2(copy_checkpoint(folder, tmp_path / "old", rename))
  kernel = ("encoder", "pos_conv_embed", "conv", "kernel")
  pick = lambda p: p[kernel[0]][kernel[1]][kernel[2]][kernel[3]]  # noqa: E731
  np.testing.assert_array_equal(pick(new), pick(old))


def test_save_and_load_converted(checkpoint, tmp_path):
  folder, _ = checkpoint
  (folder / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True}))
  try:
    config, params = convert.load_hf_wav2vec2(folder)
    path = convert.convert(folder, tmp_path / "out" / "w2v.safetensors")
  finally:
    (folder / "preprocessor_config.json").unlink()
  assert config.do_normalize is True
  stored_config, stored = convert.load_converted(path)
  assert stored_config == config
  again_config, again = convert.load_hf_wav2vec2(path)
  assert again_config == config
  plain = convert.load_flax_params(path)
  audio = random_audio()
  reference = last_hidden(config, params, audio)
  for tree in (stored, again, plain):
    np.testing.assert_array_equal(last_hidden(config, tree, audio), reference)
  bare = convert.save_flax_params(params, tmp_path / "bare.safetensors")
  with pytest.raises(UserError, match="without a Wav2Vec2 config"):
    convert.load_converted(bare)


def test_missing_folder_and_files(checkpoint, tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    convert.load_hf_wav2vec2(tmp_path / "nowhere")
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match="has no config.json"):
    convert.load_hf_wav2vec2(tmp_path / "empty")
  folder, _ = checkpoint
  pickled = tmp_path / "pickled"
  pickled.mkdir()
  (pickled / "config.json").write_text((folder / "config.json").read_text())
  (pickled / "pytorch_model.bin").write_bytes(b"not read")
  with pytest.raises(UserError, match="only pickled weights"):
    convert.load_hf_wav2vec2(pickled)
  with pytest.raises(UserError, match="do not exist"):
    convert.load_flax_params(tmp_path / "none.safetensors")


def test_config_of_another_model(checkpoint, tmp_path):
  folder, _ = checkpoint
  bert = copy_checkpoint(folder, tmp_path / "bert",
                         edit_config=lambda c: c.update(model_type="bert"))
  with pytest.raises(UserError, match=r"model_type is 'bert'") as error:
    convert.load_hf_wav2vec2(bert)
  assert str(bert / "config.json") in str(error.value)
  with pytest.raises(UserError, match="adapter"):
    w2v.Wav2Vec2Config.from_hf_dict({"model_type": "wav2vec2", "add_adapter": True})
  with pytest.raises(UserError, match="num_attention_heads"):
    w2v.Wav2Vec2Config.from_hf_dict({"model_type": "hubert", "num_attention_heads": 5})


def test_missing_extra_and_misshapen_tensors(checkpoint, tmp_path):
  folder, _ = checkpoint
  name = "encoder.layers.1.attention.k_proj.weight"
  missing = copy_checkpoint(folder, tmp_path / "missing", lambda t: t.pop(name))
  with pytest.raises(UserError, match=f"lacks the tensor `{name}`") as error:
    convert.load_hf_wav2vec2(missing)
  assert str(missing) in str(error.value)

  extra = copy_checkpoint(folder, tmp_path / "extra",
                          lambda t: t.update({"encoder.layers.2.attention.k_proj.weight":
                                              t[name]}))
  with pytest.raises(UserError, match=r"does not use: `encoder\.layers\.2\.attention"):
    convert.load_hf_wav2vec2(extra)

  deeper = copy_checkpoint(folder, tmp_path / "deeper",
                           edit_config=lambda c: c.update(intermediate_size=80))
  with pytest.raises(UserError,
                     match=r"intermediate_dense\.bias` has shape \(96,\) but .* needs \(80,\)"):
    convert.load_hf_wav2vec2(deeper)

  drop_encoder = lambda t: [t.pop(k) for k in list(t) if k.startswith("feature_extractor")]  # noqa
  other = copy_checkpoint(folder, tmp_path / "other", drop_encoder)
  with pytest.raises(UserError, match="not one Wav2Vec2/HuBERT model"):
    convert.load_hf_wav2vec2(other)
