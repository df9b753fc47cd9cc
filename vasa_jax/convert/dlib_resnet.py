"""dlib's `dlib_face_recognition_resnet_model_v1.dat` -> `models.dlib_resnet.DlibResNet` variables.

The file is dlib's own binary serialisation of the trained network object (dlib's
dnn_face_recognition_ex `anet_type`), not a pickle or an archive, so it is read here by a small
parser of that format (numpy only; dlib itself is not needed):

  integer   a control byte (bit 7: negative; low 4 bits: the count n of bytes that follow, 1..8;
            bits 4-6 are always 0), then the magnitude in n little-endian bytes;
  float     two integers, mantissa and exponent: value = mantissa * 2**exponent (exponents
            32000/32001/32002 stand for +inf, -inf, NaN);
  bool      one ASCII byte, '0' or '1';
  string    its length as an integer, then the bytes (layers start with a version string such as
            "con_4" or "affine_");
  tensor    integer version 2, four integers (samples, k, rows, cols), then samples*k*rows*cols
            float32 little-endian (read in one `np.frombuffer`, so conversion takes well under a
            second);
  alias     integer version 1 and the four sizes, no data (a view into a layer's `params`).

A network is written outermost first, and every wrapper writes its sub-network before its own
layer: the loss (version, "loss_metric_*" and its fields), then one version integer per wrapper from
the fc down to the first convolution (add_layer: 1 or 2, tag and skip layers: 1, the add_layer over
the input: 2 or 3), then, from the input up, the input layer ("input_rgb_image_sized", the three
channel means, rows and cols) and each add_layer's layer details followed by its bookkeeping (three
bools and the x_grad, cached_output and params_grad/grad_final tensors, all empty in a published
file). The expected wrapper sequence is derived from the architecture in `models.dlib_resnet`, so
a file of another network stops at the first difference with a message naming it.

Layer details: con_ = params tensor (filters [out, in, kh, kw], then biases [out]), number of
filters, kh, kw, stride y/x, padding y/x, the filters and biases aliases, four learning-rate/
weight-decay multipliers, and (con_5+) use_bias, (con_6) use_relu; affine_ = params (gamma, then
beta), the gamma and beta aliases, mode, and (affine_2) disabled; fc_ = outputs, inputs, params
([inputs, outputs], then biases when the layer has them), the aliases, bias mode, four multipliers
and (fc_3) use_bias; relu_ (relu_2: disabled flag), max_pool_2/avg_pool_2 (window, stride,
padding), add_prev_ (nothing).
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

import numpy as np

from vasa_jax.convert import packaged
from vasa_jax.convert.common import flatten, read_safetensors, unflatten
from vasa_jax.errors import UserError
from vasa_jax.models import dlib_resnet

PyTree = Any

PACKAGED = packaged.PackagedWeights(
    "face-recognition-models", "0.3.0",
    "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
    "dlib's ResNet face recogniser")
_FORMAT = "vasa_jax.dlib_resnet"
_HOW = "dlib_resnet.convert_dlib_resnet(dat_path)"
_FIX = ("pass dlib_face_recognition_resnet_model_v1.dat as published (reinstall it with "
        f"`{PACKAGED.install_hint} --force-reinstall`)")
_SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


class _Reader:
  """A cursor over the file's bytes; every failure is a UserError naming the file and offset."""

  def __init__(self, data: bytes, path: pathlib.Path):
    self.data, self.path, self.pos = data, path, 0

  def fail(self, what: str) -> UserError:
    return UserError(f"{self.path} is not dlib's face recognition ResNet in dlib's format: {what} "
                     f"at byte {self.pos} of {len(self.data)}; fix: {_FIX}")

  def take(self, n: int, what: str) -> bytes:
    if n < 0 or self.pos + n > len(self.data):
      raise self.fail(f"the file ends inside {what} (truncated?)")
    chunk = self.data[self.pos:self.pos + n]
    self.pos += n
    return chunk

  def integer(self, what: str = "an integer") -> int:
    control = self.take(1, what)[0]
    size = control & 0x0F
    if control & 0x70 or not 1 <= size <= 8:
      self.pos -= 1
      raise self.fail(f"byte {control:#04x} cannot start {what}")
    value = int.from_bytes(self.take(size, what), "little")
    return -value if control & 0x80 else value

  def floating(self, what: str = "a float") -> float:
    mantissa, exponent = self.integer(what), self.integer(what)
    if exponent in _SPECIAL_EXPONENTS:
      return _SPECIAL_EXPONENTS[exponent]
    return math.ldexp(mantissa, exponent)

  def boolean(self, what: str = "a bool") -> bool:
    byte = self.take(1, what)
    if byte not in (b"0", b"1"):
      self.pos -= 1
      raise self.fail(f"{byte!r} is not a bool ('0' or '1') in {what}")
    return byte == b"1"

  def string(self, what: str = "a version string") -> str:
    size = self.integer(what)
    if not 0 <= size <= 256:
      raise self.fail(f"a string of {size} bytes in {what}")
    try:
      return self.take(size, what).decode("ascii")
    except UnicodeDecodeError:
      raise self.fail(f"{what} is not text") from None

  def version(self, expected: tuple[int, ...], what: str) -> int:
    start = self.pos
    value = self.integer(f"the version of {what}")
    if value not in expected:
      self.pos = start
      raise self.fail(f"{what} has version {value}, expected {' or '.join(map(str, expected))}")
    return value

  def sizes(self, what: str) -> tuple[int, int, int, int]:
    sizes = tuple(self.integer(f"the sizes of {what}") for _ in range(4))
    if any(s < 0 for s in sizes):
      raise self.fail(f"negative sizes {sizes} in {what}")
    return sizes  # type: ignore[return-value]

  def tensor(self, what: str) -> np.ndarray:
    self.version((2,), f"the tensor {what}")
    sizes = self.sizes(what)
    count = math.prod(sizes)
    raw = self.take(4 * count, f"the data of {what} ({count} floats)")
    return np.frombuffer(raw, "<f4").astype(np.float32).reshape(sizes)

  def alias(self, what: str) -> tuple[int, int, int, int]:
    self.version((1,), f"the alias {what}")
    return self.sizes(what)


def _split(params: np.ndarray, shapes: list[tuple[int, ...]], reader: _Reader,
           what: str) -> list[np.ndarray]:
  """The consecutive pieces of a layer's flat `params` tensor that its aliases describe."""
  flat, out, offset = params.reshape(-1), [], 0
  for shape in shapes:
    size = math.prod(shape)
    out.append(flat[offset:offset + size].reshape(shape))
    offset += size
  if offset > flat.size:
    raise reader.fail(f"{what}'s parameters hold {flat.size} floats, its aliases need {offset}")
  return out


def _con(r: _Reader, version: str, features: int, kernel: int, stride: int) -> dict:
  what = f"con {features} {kernel}x{kernel}/{stride}"
  if version not in ("con_4", "con_5", "con_6"):
    raise r.fail(f"layer version {version!r} where {what} (con_4..6) belongs")
  params = r.tensor(f"{what} params")
  found = tuple(r.integer(f"{what} geometry") for _ in range(7))
  pad = 0 if stride != 1 else kernel // 2
  if found != (features, kernel, kernel, stride, stride, pad, pad):
    raise r.fail(f"{what} has (filters, rows, cols, strides, paddings) {found}")
  filters, biases = r.alias(f"{what} filters"), r.alias(f"{what} biases")
  for _ in range(4):
    r.floating(f"{what} multipliers")
  use_bias = r.boolean(f"{what} use_bias") if version in ("con_5", "con_6") else True
  if version == "con_6":
    r.boolean(f"{what} use_relu")
  kernel_oihw, bias = _split(params, [filters, biases], r, what)
  if not use_bias:
    bias = np.zeros_like(bias)
  return {"kernel": kernel_oihw.transpose(2, 3, 1, 0), "bias": bias.reshape(-1)}


def _affine(r: _Reader, version: str) -> dict:
  if version not in ("affine_", "affine_2"):
    raise r.fail(f"layer version {version!r} where an affine layer (affine_, affine_2) belongs")
  params = r.tensor("affine params")
  gamma, beta = r.alias("affine gamma"), r.alias("affine beta")
  r.integer("affine mode")
  disabled = r.boolean("affine disabled") if version == "affine_2" else False
  gamma_v, beta_v = _split(params, [gamma, beta], r, "affine")
  if disabled:
    gamma_v, beta_v = np.ones_like(gamma_v), np.zeros_like(beta_v)
  return {"gamma": gamma_v.reshape(-1), "beta": beta_v.reshape(-1)}


def _relu(r: _Reader, version: str) -> None:
  if version == "relu_2":
    if r.boolean("relu disabled"):
      raise r.fail("a disabled relu, which this network never has")
  elif version != "relu_":
    raise r.fail(f"layer version {version!r} where a relu (relu_, relu_2) belongs")


def _pool(r: _Reader, version: str, kind: str, window: int, stride: int) -> None:
  if version != f"{kind}_2":
    raise r.fail(f"layer version {version!r} where {kind}_2 belongs")
  found = tuple(r.integer(f"{kind} geometry") for _ in range(6))
  pad = 0 if stride != 1 else window // 2
  if found != (window, window, stride, stride, pad, pad):
    raise r.fail(f"{kind} has (rows, cols, strides, paddings) {found}, expected "
                 f"{(window, window, stride, stride, pad, pad)}")


def _fc(r: _Reader, version: str, outputs: int, inputs: int) -> dict:
  if version not in ("fc_2", "fc_3"):
    raise r.fail(f"layer version {version!r} where fc_no_bias (fc_2, fc_3) belongs")
  found = (r.integer("fc outputs"), r.integer("fc inputs"))
  if found != (outputs, inputs):
    raise r.fail(f"fc has (outputs, inputs) {found}, expected {(outputs, inputs)}")
  params = r.tensor("fc params")
  weights, _ = r.alias("fc weights"), r.alias("fc biases")
  if r.integer("fc bias mode") != 1:  # dlib's FC_NO_BIAS
    raise r.fail("an fc layer with a bias, where fc_no_bias belongs")
  for _ in range(4):
    r.floating("fc multipliers")
  if version == "fc_3":
    r.boolean("fc use_bias")
  (kernel,) = _split(params, [weights], r, "fc")
  return {"kernel": kernel.reshape(inputs, outputs)}


def _layers() -> list[tuple]:
  """The network's wrappers from the first convolution to the fc: ("tag", id), ("skip", id), or
  (layer kind, name, arguments...) for an add_layer."""
  seq: list[tuple] = [("con", "conv", dlib_resnet.STEM_FEATURES, 7, 2), ("affine", "affine"),
                      ("relu",), ("pool", "max_pool", 3, 2)]
  width = dlib_resnet.STEM_FEATURES
  for level, features, blocks, down in dlib_resnet.LEVELS:
    for k in range(blocks):
      name, stride = f"{level}_ares{k}", 2 if down and k == 0 else 1
      seq += [("tag", 1), ("con", f"{name}/con1", features, 3, stride),
              ("affine", f"{name}/affine1"), ("relu",), ("con", f"{name}/con2", features, 3, 1),
              ("affine", f"{name}/affine2")]
      if stride == 2:
        seq += [("tag", 2), ("skip", 1), ("pool", "avg_pool", 2, 2), ("add_prev", 2)]
      else:
        seq += [("add_prev", 1)]
      seq += [("relu",)]
    width = features
  # avg_pool_everything is avg_pool<0, 0, 1, 1>: a window of 0 means "the whole image".
  seq += [("pool", "avg_pool", 0, 1), ("fc", "fc", dlib_resnet.DESCRIPTOR_SIZE, width)]
  return seq


def _parse(r: _Reader) -> dict[str, np.ndarray]:
  r.version((1,), "the loss layer")
  loss = r.string("the loss layer's version")
  if loss == "loss_metric_2":
    r.floating("the loss margin"), r.floating("the loss distance threshold")
  elif loss != "loss_metric_":
    raise r.fail(f"the loss is {loss!r}, not dlib's metric loss (loss_metric_)")
  layers = _layers()
  # Wrapper versions come outermost first.
  versions = []
  for k, layer in reversed(list(enumerate(layers))):
    if layer[0] in ("tag", "skip"):
      versions.append(r.version((1,), f"the {layer[0]}{layer[1]} layer"))
    else:
      versions.append(r.version((2, 3) if k == 0 else (1, 2), f"the {layer[0]} add_layer"))
  versions.reverse()
  if r.string("the input layer") != "input_rgb_image_sized":
    raise r.fail("the input layer is not input_rgb_image_sized")
  avg_rgb = [r.floating("the input's channel means") for _ in range(3)]
  size = (r.integer("the input size"), r.integer("the input size"))
  if size != (dlib_resnet.CHIP_SIZE,) * 2:
    raise r.fail(f"the input size is {size}, expected 150x150")
  flat: dict[str, np.ndarray] = {"avg_rgb": np.asarray(avg_rgb, np.float32)}
  for k, (layer, version) in enumerate(zip(layers, versions)):
    kind = layer[0]
    if kind in ("tag", "skip"):
      continue
    details = r.string(f"the version of the {kind} layer")
    if kind == "con":
      values = _con(r, details, *layer[2:])
    elif kind == "affine":
      values = _affine(r, details)
    elif kind == "fc":
      values = _fc(r, details, *layer[2:])
    else:
      values = {}
      if kind == "relu":
        _relu(r, details)
      elif kind == "pool":
        _pool(r, details, *layer[1:])
      elif details != "add_prev_":
        raise r.fail(f"layer version {details!r} where add_prev_ belongs")
    for key, value in values.items():
      flat[f"{layer[1]}/{key}"] = value
    # The add_layer's training state: three flags, then cached tensors nobody needs here.
    for _ in range(3):
      r.boolean(f"the {kind} layer's flags")
    for name in ("x_grad", "cached_output"):
      r.tensor(f"the {kind} layer's {name}")
    if k == 0 or version == 2:
      r.tensor(f"the {kind} layer's gradient")
    if k == 0 and version == 3:
      r.integer("the sample expansion factor")
  if r.pos != len(r.data):
    raise r.fail(f"{len(r.data) - r.pos} bytes follow the network")
  return flat


def convert_dlib_resnet(dat_path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """Flat float32 variables ("alevel3_ares0/con1/kernel" -> [3, 3, 32, 64], ...) of a dlib
  `dlib_face_recognition_resnet_model_v1.dat`; a file of anything else raises a UserError."""
  path = pathlib.Path(dat_path).expanduser()
  try:
    data = path.read_bytes()
  except OSError as e:
    raise UserError(f"cannot read {path}: {e}; fix: check the path and its permissions") from None
  flat = _parse(_Reader(data, path))
  expected = flatten(dlib_resnet.param_shapes())
  found = {k: tuple(v.shape) for k, v in flat.items()}
  if found != expected:
    raise UserError(f"{path}: the parameters do not match dlib's face recognition ResNet "
                    f"(differ at {sorted(set(found.items()) ^ set(expected.items()))[:3]}); "
                    f"fix: {_FIX}")
  for key, value in flat.items():
    if not np.all(np.isfinite(value)):
      raise UserError(f"{path}: `{key}` holds non-finite values; fix: {_FIX}")
  return flat


def packaged_dlib_resnet_path() -> pathlib.Path:
  """The cached safetensors of the `face-recognition-models` package's network, converted on first
  use; raises `packaged.MissingPackage` when the package is not installed."""
  return packaged.converted(PACKAGED, "dlib_resnet", _FORMAT, convert_dlib_resnet)


def load_dlib_resnet(path: str | pathlib.Path | None = None,
                     ) -> tuple[dlib_resnet.DlibResNet, dict[str, PyTree]]:
  """(model, variables) for `model.apply(variables, chips [b, 150, 150, 3] in 0..255)`.

  Args:
    path: None for the file the `face-recognition-models` package ships, converted once into the
      cache folder (`packaged.cache_dir()`); or a converted safetensors file; or a dlib `.dat`
      file, parsed directly.
  """
  if path is None:
    path = packaged_dlib_resnet_path()
  path = pathlib.Path(path).expanduser()
  if path.suffix == ".dat":
    flat = convert_dlib_resnet(path)
  else:
    _, flat = read_safetensors(path, _FORMAT, "dlib ResNet", _HOW)
    if {k: tuple(v.shape) for k, v in flat.items()} != flatten(dlib_resnet.param_shapes()):
      raise UserError(f"{path}: variables do not match dlib's face recognition ResNet; fix: "
                      "delete it so that it is converted again")
  return dlib_resnet.DlibResNet(), {"params": unflatten(flat)}
