"""The public SyncNet: converted syncnet_python-layout weights give torch's embeddings."""

from __future__ import annotations

import sys

import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.convert import syncnet as convert
from vasa_jax.errors import UserError
from vasa_jax.models import syncnet

torch = pytest.importorskip("torch")
nn = torch.nn


def _fc():
  return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 1024))


class TorchSyncNet(nn.Module):
  """syncnet_python's `S` layout: the Sequential indices its state dict is keyed by."""

  def __init__(self):
    super().__init__()

    def block(conv, channels, pool=None):
      return [conv, nn.BatchNorm2d(channels) if isinstance(conv, nn.Conv2d) else
              nn.BatchNorm3d(channels), nn.ReLU()] + ([pool] if pool is not None else [])

    self.netcnnaud = nn.Sequential(
        *block(nn.Conv2d(1, 64, 3, 1, 1), 64, nn.MaxPool2d(1, 1)),
        *block(nn.Conv2d(64, 192, 3, 1, 1), 192, nn.MaxPool2d(3, (1, 2))),
        *block(nn.Conv2d(192, 384, 3, padding=1), 384),
        *block(nn.Conv2d(384, 256, 3, padding=1), 256),
        *block(nn.Conv2d(256, 256, 3, padding=1), 256, nn.MaxPool2d(3, 2)),
        *block(nn.Conv2d(256, 512, (5, 4)), 512))
    self.netfcaud = _fc()
    self.netfclip = _fc()
    self.netcnnlip = nn.Sequential(
        *block(nn.Conv3d(3, 96, (5, 7, 7), (1, 2, 2)), 96, nn.MaxPool3d((1, 3, 3), (1, 2, 2))),
        *block(nn.Conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), 256,
               nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))),
        *block(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256),
        *block(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256),
        *block(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256,
               nn.MaxPool3d((1, 3, 3), (1, 2, 2))),
        *block(nn.Conv3d(256, 512, (1, 6, 6)), 512))

  def forward_aud(self, x):
    return self.netfcaud(self.netcnnaud(x).flatten(1))

  def forward_lip(self, x):
    return self.netfclip(self.netcnnlip(x).flatten(1))


@pytest.fixture(scope="module")
def torch_syncnet():
  torch.manual_seed(0)
  model = TorchSyncNet()
  with torch.no_grad():  # Statistics unlike the defaults, so that a mix-up shows.
    for module in model.modules():
      if isinstance(module, nn.modules.batchnorm._BatchNorm):
        module.running_mean.uniform_(-0.2, 0.2)
        module.running_var.uniform_(0.5, 2.0)
        module.weight.uniform_(0.5, 1.5)
        module.bias.uniform_(-0.2, 0.2)
  return model.eval()


def test_state_dict_layout_is_the_public_one(torch_syncnet):
  keys = set(torch_syncnet.state_dict())
  expected = {convert.torch_key(p) for p in syncnet.variable_shapes()}
  assert expected == {k for k in keys if not k.endswith("num_batches_tracked")}
  # Indices of the released file (syncnet_python's SyncNetModel.S).
  assert {"netcnnaud.18.weight", "netcnnaud.19.running_var", "netcnnlip.18.weight",
          "netfcaud.3.weight", "netfclip.1.running_mean"} <= keys
  assert sum(v.numel() for k, v in torch_syncnet.state_dict().items()
             if "num_batches" not in k and "running" not in k) == 13_631_616


def test_parity_with_torch(torch_syncnet, tmp_path):
  pth = tmp_path / "syncnet_v2.model"
  torch.save(torch_syncnet.state_dict(), pth)
  variables = convert.load_syncnet(convert.convert_syncnet(pth, tmp_path / "syncnet.safetensors"))

  rng = np.random.default_rng(0)
  # MFCC-like values (c0 near 15, the rest within +-40) and BGR frames 0..255 as `lip_input`
  # makes them (uint8; torch reads them as floats, as the public pipeline does).
  mfcc_windows = rng.normal(0.0, 15.0, (4, 13, 20)).astype(np.float32)
  frames = rng.integers(0, 256, (2, 5, 224, 224, 3)).astype(np.uint8)
  with torch.no_grad():
    audio_torch = torch_syncnet.forward_aud(torch.from_numpy(mfcc_windows[:, None])).numpy()
    lip_torch = torch_syncnet.forward_lip(
        torch.from_numpy(frames.transpose(0, 4, 1, 2, 3).astype(np.float32))).numpy()
  model = syncnet.SyncNet()
  audio = np.asarray(model.apply(variables, jnp.asarray(mfcc_windows),
                                 method=syncnet.SyncNet.embed_audio))
  lip = np.asarray(model.apply(variables, jnp.asarray(frames), method=syncnet.SyncNet.embed_lip))
  for name, got, want in (("audio", audio, audio_torch), ("lip", lip, lip_torch)):
    assert got.shape == want.shape == (len(want), 1024), name
    rel = np.max(np.abs(got - want)) / np.max(np.abs(want))
    print(f"SyncNet {name}: max |diff| / max |torch| = {rel:.2e}")
    assert rel < 1e-4, name


def test_safetensors_state_dict_needs_no_torch(torch_syncnet, tmp_path, monkeypatch):
  import safetensors.torch

  source = tmp_path / "syncnet.state.safetensors"
  safetensors.torch.save_file({k: v.contiguous() for k, v in torch_syncnet.state_dict().items()},
                              str(source))
  monkeypatch.setitem(sys.modules, "torch", None)
  variables = convert.load_syncnet(convert.convert_syncnet(source, tmp_path / "out.safetensors"))
  np.testing.assert_array_equal(
      variables["params"]["lip"]["netcnnlip_0"]["kernel"],
      torch_syncnet.netcnnlip[0].weight.detach().numpy().transpose(2, 3, 4, 1, 0))
  np.testing.assert_array_equal(variables["batch_stats"]["audio"]["netfcaud_1"]["var"],
                                torch_syncnet.netfcaud[1].running_var.numpy())


def test_wrong_files_are_user_errors(torch_syncnet, tmp_path):
  import safetensors.numpy

  with pytest.raises(UserError, match="does not exist"):
    convert.convert_syncnet(tmp_path / "missing.model", tmp_path / "out.safetensors")
  other = tmp_path / "other.safetensors"
  safetensors.numpy.save_file({"features.0.weight": np.zeros((64, 3, 3, 3), np.float32)},
                              str(other))
  with pytest.raises(UserError, match="not the state dict of syncnet_python"):
    convert.convert_syncnet(other, tmp_path / "out.safetensors")
  with pytest.raises(UserError, match="not converted SyncNet weights"):
    convert.load_syncnet(other)
  # A complete state dict with one tensor of another shape, and one with an extra tensor.
  state = {k: v.numpy() for k, v in torch_syncnet.state_dict().items()}
  wrong = dict(state, **{"netfcaud.3.weight": np.zeros((512, 512), np.float32)})
  safetensors.numpy.save_file(wrong, str(tmp_path / "wrong.safetensors"))
  with pytest.raises(UserError, match="`netfcaud.3.weight` has shape"):
    convert.convert_syncnet(tmp_path / "wrong.safetensors", tmp_path / "out.safetensors")
  extra = dict(state, **{"netcnnlip.21.weight": np.zeros((3,), np.float32)})
  safetensors.numpy.save_file(extra, str(tmp_path / "extra.safetensors"))
  with pytest.raises(UserError, match="netcnnlip.21.weight"):
    convert.convert_syncnet(tmp_path / "extra.safetensors", tmp_path / "out.safetensors")
