"""VGG19: converted torchvision-layout weights give torch's activations at every tap."""

from __future__ import annotations

import sys

import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.convert import vgg19 as convert
from vasa_jax.errors import UserError
from vasa_jax.models import vgg19

torch = pytest.importorskip("torch")
nn = torch.nn

# torchvision's ReLU indices of relu1_1 ... relu5_1 in `features`.
TORCH_RELU_INDICES = (1, 6, 11, 20, 29)


class TorchVGG19(nn.Module):
  """torchvision's VGG19 `features` layout (configuration "E"), with a stand-in classifier."""

  def __init__(self):
    super().__init__()
    layers, channels = [], 3
    for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                  512, 512, 512, 512, "M"):
      if width == "M":
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
      else:
        layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
        channels = width
    self.features = nn.Sequential(*layers)
    # The real classifier is large; the converter must skip any `classifier.*` tensor.
    self.classifier = nn.Sequential(nn.Linear(4, 2))

  def taps(self, x):
    out = []
    for i, layer in enumerate(self.features):
      x = layer(x)
      if i in TORCH_RELU_INDICES:
        out.append(x)
      if i == TORCH_RELU_INDICES[-1]:
        return out
    raise AssertionError


@pytest.fixture(scope="module")
def torch_vgg():
  torch.manual_seed(0)
  return TorchVGG19().eval()


def test_conv_indices_match_torchvision():
  indices = vgg19.conv_indices()
  assert [indices[t] + 1 for t in vgg19.DEFAULT_TAPS] == list(TORCH_RELU_INDICES)
  assert sum(np.prod(s) for m in vgg19.param_shapes().values() for s in m.values()) == 20_024_384


def test_parity_with_torch(torch_vgg, tmp_path):
  pth = tmp_path / "vgg19-test.pth"
  torch.save(torch_vgg.state_dict(), pth)
  out = convert.convert_vgg19(pth, tmp_path / "vgg19.safetensors")
  variables = convert.load_vgg19(out)

  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
  # The Flax model normalises [-1, 1] inputs itself; torch gets ImageNet-normalised NCHW.
  mean = np.array(vgg19.IMAGENET_MEAN, np.float32)
  std = np.array(vgg19.IMAGENET_STD, np.float32)
  normalised = ((images + 1) / 2 - mean) / std
  with torch.no_grad():
    expected = [t.numpy().transpose(0, 2, 3, 1)
                for t in torch_vgg.taps(torch.from_numpy(normalised.transpose(0, 3, 1, 2)))]
  got = vgg19.VGG19Features().apply(variables, jnp.asarray(images))
  assert len(got) == 5
  for name, g, e in zip(vgg19.DEFAULT_TAPS, got, expected):
    assert g.shape == e.shape, name
    rel = np.max(np.abs(np.asarray(g) - e)) / np.max(np.abs(e))
    print(f"VGG19 {name} {e.shape}: max |diff| / max |torch| = {rel:.2e}")
    assert rel < 1e-4, name

  # Any subset of taps, in any order; [0, 1] inputs through input_range.
  some = vgg19.VGG19Features(taps=("relu2_2", "relu1_2"), input_range=(0.0, 1.0)).apply(
      variables, jnp.asarray((images + 1) / 2))
  assert [s.shape for s in some] == [(2, 32, 32, 128), (2, 64, 64, 64)]


def test_safetensors_state_dict_needs_no_torch(torch_vgg, tmp_path, monkeypatch):
  import safetensors.torch

  source = tmp_path / "vgg19.state.safetensors"
  safetensors.torch.save_file({k: v.contiguous() for k, v in torch_vgg.state_dict().items()},
                              str(source))
  monkeypatch.setitem(sys.modules, "torch", None)
  out = convert.convert_vgg19(source, tmp_path / "out.safetensors")
  params = convert.load_vgg19(out)["params"]
  np.testing.assert_array_equal(
      params["features_0"]["kernel"],
      torch_vgg.features[0].weight.detach().numpy().transpose(2, 3, 1, 0))


def test_pickle_without_torch_is_a_user_error(tmp_path, monkeypatch):
  pth = tmp_path / "vgg19.pth"
  pth.write_bytes(b"not read")
  monkeypatch.setitem(sys.modules, "torch", None)
  with pytest.raises(UserError, match="needs torch"):
    convert.convert_vgg19(pth, tmp_path / "out.safetensors")


def test_wrong_files_are_user_errors(tmp_path):
  import safetensors.numpy

  with pytest.raises(UserError, match="does not exist"):
    convert.convert_vgg19(tmp_path / "missing.pth", tmp_path / "out.safetensors")
  source = tmp_path / "other.safetensors"
  safetensors.numpy.save_file({"features.0.weight": np.zeros((64, 3, 3, 3), np.float32)},
                              str(source))
  with pytest.raises(UserError, match="lacks `features.0.bias`"):
    convert.convert_vgg19(source, tmp_path / "out.safetensors")
  with pytest.raises(UserError, match="not converted VGG19 weights"):
    convert.load_vgg19(source)
