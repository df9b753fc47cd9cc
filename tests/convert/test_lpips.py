"""LPIPS: converted torchvision VGG16 + lpips "lin" weights give the PyTorch formula's distance."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.convert import lpips as convert
from vasa_jax.errors import UserError
from vasa_jax.models import lpips

torch = pytest.importorskip("torch")
nn = torch.nn

# torchvision's ReLU indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in vgg16().features.
TORCH_TAP_RELUS = (3, 8, 15, 22, 29)
_distance = jax.jit(lpips.LPIPS().apply)


class TorchLPIPS(nn.Module):
  """torchvision's VGG16 `features` (configuration "D") and LPIPS v0.1's scaling and lin layers."""

  def __init__(self):
    super().__init__()
    layers, channels = [], 3
    for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                  512, 512, 512, "M"):
      if width == "M":
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
      else:
        layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
        channels = width
    self.features = nn.Sequential(*layers)
    self.classifier = nn.Sequential(nn.Linear(4, 2))  # Stands in for the real (unused) one.
    self.lins = nn.ModuleList(
        nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, bias=False)) for c in (64, 128, 256, 512,
                                                                               512))
    self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
    self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

  def taps(self, x):
    out = []
    for i, layer in enumerate(self.features):
      x = layer(x)
      if i in TORCH_TAP_RELUS:
        out.append(x)
      if i == TORCH_TAP_RELUS[-1]:
        return out
    raise AssertionError

  def forward(self, a, b):
    taps_a = self.taps((a - self.shift) / self.scale)
    taps_b = self.taps((b - self.shift) / self.scale)
    total = 0
    for lin, fa, fb in zip(self.lins, taps_a, taps_b):
      fa = fa / (torch.sqrt(torch.sum(fa**2, dim=1, keepdim=True)) + 1e-10)
      fb = fb / (torch.sqrt(torch.sum(fb**2, dim=1, keepdim=True)) + 1e-10)
      total = total + lin((fa - fb) ** 2).mean(dim=(2, 3))
    return total[:, 0]

  def lin_state_dict(self):
    return {f"lin{k}.model.1.weight": lin[1].weight.detach().clone()
            for k, lin in enumerate(self.lins)}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """(torch model, converted variables, folder with vgg16.pth and vgg_lin.pth)."""
  torch.manual_seed(0)
  model = TorchLPIPS()
  with torch.no_grad():
    for module in model.features:
      if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        module.bias.normal_(0, 0.05)
    for lin in model.lins:
      lin[1].weight.abs_()  # LPIPS's lin weights are non-negative.
  model.eval()
  folder = tmp_path_factory.mktemp("lpips")
  state = model.state_dict()
  torch.save({k: v for k, v in state.items() if k.startswith(("features.", "classifier."))},
             folder / "vgg16.pth")
  torch.save(model.lin_state_dict(), folder / "vgg_lin.pth")
  out = convert.convert_lpips(folder / "vgg16.pth", folder / "vgg_lin.pth",
                              folder / "lpips.safetensors")
  return model, convert.load_lpips(out), folder


def test_layout_matches_torchvision():
  indices = lpips.conv_indices()
  assert [indices[t] + 1 for t in lpips.TAPS] == list(TORCH_TAP_RELUS)
  shapes = lpips.param_shapes()
  vgg_count = sum(np.prod(s) for m in shapes["vgg16"].values() for s in m.values())
  assert vgg_count == 14_714_688  # torchvision's vgg16 minus its classifier.
  assert sum(shapes[f"lin{k}"][0] for k in range(5)) == 1472


def test_parity_with_torch(converted):
  model, variables, _ = converted
  rng = np.random.default_rng(0)
  a = rng.uniform(-1, 1, (3, 64, 64, 3)).astype(np.float32)
  b = np.clip(a + rng.normal(0, 0.3, a.shape), -1, 1).astype(np.float32)
  b[2] = rng.uniform(-1, 1, (64, 64, 3))  # An unrelated image too.
  with torch.no_grad():
    expected = model(torch.from_numpy(a.transpose(0, 3, 1, 2)),
                     torch.from_numpy(b.transpose(0, 3, 1, 2))).numpy()
  got = np.asarray(_distance(variables, jnp.asarray(a), jnp.asarray(b)))
  rel = np.max(np.abs(got - expected) / expected)
  print(f"LPIPS torch {expected}, ours {got}: max relative diff {rel:.2e}")
  assert got.shape == (3,) and np.all(expected > 0)
  assert rel < 1e-4


def test_zero_for_the_same_image_and_growing_with_noise(converted):
  _, variables, _ = converted
  rng = np.random.default_rng(1)
  image = rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
  noise = rng.normal(0, 1, image.shape).astype(np.float32)
  sigmas = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
  images = np.concatenate([image] * len(sigmas))
  noisy = np.clip(images + np.array(sigmas, np.float32)[:, None, None, None] * noise, -1, 1)
  # Batches of 3, the parity test's shape, so the compiled function is reused.
  got = np.concatenate([_distance(variables, jnp.asarray(images[i:i + 3]),
                                  jnp.asarray(noisy[i:i + 3])) for i in (0, 3)])
  print(f"LPIPS at noise sigma {sigmas}: {got}")
  assert got[0] < 1e-12  # Up to float rounding of the two halves of the batch.
  assert np.all(np.diff(got) > 0)


def test_safetensors_inputs_need_no_torch(converted, tmp_path, monkeypatch):
  import safetensors.torch

  model, variables, _ = converted
  vgg = tmp_path / "vgg16.safetensors"
  lin = tmp_path / "vgg_lin.safetensors"
  safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()
                               if k.startswith("features.")}, str(vgg))
  safetensors.torch.save_file(model.lin_state_dict(), str(lin))
  monkeypatch.setitem(sys.modules, "torch", None)
  params = convert.load_lpips(convert.convert_lpips(vgg, lin, tmp_path / "out.safetensors"))
  for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(variables)):
    np.testing.assert_array_equal(got, want)


def test_wrong_files_are_user_errors(converted, tmp_path):
  import safetensors.numpy

  _, _, folder = converted
  vgg, lin = folder / "vgg16.pth", folder / "vgg_lin.pth"
  with pytest.raises(UserError, match="lacks `features.0.weight`.*VGG16"):
    convert.convert_lpips(lin, lin, tmp_path / "out.safetensors")
  with pytest.raises(UserError, match="lacks `lin0.model.1.weight`.*v0.1/vgg.pth"):
    convert.convert_lpips(vgg, vgg, tmp_path / "out.safetensors")
  alex = tmp_path / "alex.safetensors"
  safetensors.numpy.save_file({f"lin{k}.model.1.weight": np.ones((1, c, 1, 1), np.float32)
                               for k, c in enumerate((64, 192, 384, 256, 256))}, str(alex))
  with pytest.raises(UserError, match="lin1.model.1.weight` has shape"):
    convert.convert_lpips(vgg, alex, tmp_path / "out.safetensors")
  negative = tmp_path / "negative.safetensors"
  safetensors.numpy.save_file({f"lin{k}.model.1.weight": -np.ones((1, c, 1, 1), np.float32)
                               for k, c in enumerate(lpips.TAP_CHANNELS)}, str(negative))
  with pytest.raises(UserError, match="negative weights"):
    convert.convert_lpips(vgg, negative, tmp_path / "out.safetensors")
  with pytest.raises(UserError, match="not converted LPIPS weights"):
    convert.load_lpips(alex)
