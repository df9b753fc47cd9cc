"""ArcFace: converted insightface-layout iresnet weights give torch's embedding."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vasa_jax.convert import arcface as convert
from vasa_jax.errors import UserError
from vasa_jax.models import arcface

torch = pytest.importorskip("torch")
nn = torch.nn

SMALL_BLOCKS = (1, 2, 1, 1)


class TorchIBasicBlock(nn.Module):
  """insightface's IBasicBlock: BN-conv-BN-PReLU-conv(stride)-BN plus a shortcut."""

  def __init__(self, inplanes, planes, stride, downsample):
    super().__init__()
    self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
    self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
    self.prelu = nn.PReLU(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
    self.downsample = downsample

  def forward(self, x):
    out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
    return out + (x if self.downsample is None else self.downsample(x))


class TorchIResNet(nn.Module):
  """insightface's iresnet with its state-dict keys; 112x112 input, 512-d features."""

  def __init__(self, layers):
    super().__init__()
    self.inplanes = 64
    self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
    self.prelu = nn.PReLU(64)
    self.layer1 = self._stage(64, layers[0])
    self.layer2 = self._stage(128, layers[1])
    self.layer3 = self._stage(256, layers[2])
    self.layer4 = self._stage(512, layers[3])
    self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
    self.dropout = nn.Dropout(p=0.0)
    self.fc = nn.Linear(512 * 7 * 7, 512)
    self.features = nn.BatchNorm1d(512, eps=1e-5)

  def _stage(self, planes, blocks):
    downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, 2, bias=False),
                               nn.BatchNorm2d(planes, eps=1e-5))
    stage = [TorchIBasicBlock(self.inplanes, planes, 2, downsample)]
    self.inplanes = planes
    stage += [TorchIBasicBlock(planes, planes, 1, None) for _ in range(1, blocks)]
    return nn.Sequential(*stage)

  def forward(self, x):
    x = self.prelu(self.bn1(self.conv1(x)))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    x = torch.flatten(self.bn2(x), 1)
    return self.features(self.fc(self.dropout(x)))


def _torch_iresnet(blocks):
  """A random iresnet in eval mode with perturbed BN statistics and PReLU slopes."""
  torch.manual_seed(0)
  model = TorchIResNet(blocks)
  generator = torch.Generator().manual_seed(1)
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        n = module.num_features
        module.weight.copy_(1 + 0.2 * torch.randn(n, generator=generator))
        module.bias.copy_(0.1 * torch.randn(n, generator=generator))
        module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
        module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
      elif isinstance(module, nn.PReLU):
        module.weight.copy_(0.25 + 0.1 * torch.randn(module.weight.shape, generator=generator))
  return model.eval()


@pytest.fixture(scope="module")
def torch_model():
  return _torch_iresnet(SMALL_BLOCKS)


@pytest.mark.parametrize("depth", [None, 50])
def test_parity_with_torch(torch_model, depth, tmp_path):
  """None: the reduced [1, 2, 1, 1] variant; 50: the full r50 (about 5 s on CPU)."""
  blocks = SMALL_BLOCKS if depth is None else arcface.STAGE_BLOCKS[depth]
  source = torch_model if depth is None else _torch_iresnet(blocks)
  pth = tmp_path / "backbone.pth"
  torch.save(source.state_dict(), pth)
  if depth is None:
    out = convert.convert_arcface(pth, tmp_path / "arcface.safetensors", stage_blocks=blocks)
  else:
    out = convert.convert_arcface(pth, tmp_path / "arcface.safetensors", depth=depth)
  model, variables = convert.load_arcface(out)
  assert model.stage_blocks == blocks

  faces = np.random.default_rng(0).uniform(-1, 1, (2, 112, 112, 3)).astype(np.float32)
  with torch.no_grad():
    expected = source(torch.from_numpy(faces.transpose(0, 3, 1, 2))).numpy()
  got = np.asarray(jax.jit(model.apply)(variables, jnp.asarray(faces)))
  assert got.shape == (2, 512)
  rel = np.max(np.abs(got - expected)) / np.max(np.abs(expected))
  print(f"ArcFace iresnet{list(blocks)} embedding: max |diff| / max |torch| = {rel:.2e}")
  assert rel < 1e-4


def test_safetensors_input_and_depth_check(torch_model, tmp_path, monkeypatch):
  import safetensors.torch

  source = tmp_path / "backbone.safetensors"
  safetensors.torch.save_file({k: v.contiguous() for k, v in torch_model.state_dict().items()},
                              str(source))
  monkeypatch.setitem(sys.modules, "torch", None)
  with pytest.raises(UserError, match=r"stage blocks \[1, 2, 1, 1\].*stage_blocks=\[1, 2, 1, 1\]"):
    convert.convert_arcface(source, tmp_path / "out.safetensors", depth=50)
  out = convert.convert_arcface(source, tmp_path / "out.safetensors", stage_blocks=SMALL_BLOCKS)
  _, variables = convert.load_arcface(out)
  np.testing.assert_array_equal(variables["batch_stats"]["layer2_0"]["downsample_1"]["var"],
                                torch_model.layer2[0].downsample[1].running_var.numpy())


def test_paper_sizes_by_eval_shape():
  counts = {}
  for depth in (50, 100):
    shapes = arcface.init_shapes(arcface.STAGE_BLOCKS[depth])
    counts[depth] = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))
    out = jax.eval_shape(arcface.IResNet(arcface.STAGE_BLOCKS[depth]).apply, shapes,
                         jax.ShapeDtypeStruct((3, 112, 112, 3), jnp.float32))
    assert out.shape == (3, 512)
  print(f"ArcFace parameters: r50 {counts[50]:,}, r100 {counts[100]:,}")
  assert counts == {50: 43_590_848, 100: 65_156_160}
  with pytest.raises(UserError, match="not an insightface iresnet"):
    arcface.stage_blocks_for_depth(77)


def test_torch_key_names():
  assert convert.torch_key("params/layer1_0/downsample_0/kernel") == "layer1.0.downsample.0.weight"
  assert convert.torch_key("batch_stats/layer3_12/bn2/mean") == "layer3.12.bn2.running_mean"
  assert convert.torch_key("params/features/scale") == "features.weight"
  assert convert.torch_key("params/prelu/weight") == "prelu.weight"
