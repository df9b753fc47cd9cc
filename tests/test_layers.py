"""The package's imports point one way, down the layers the README's Layout section draws, and
no module imports itself back through others. Every import counts, the ones inside functions too."""

import ast
import pathlib
import sys

import pytest

import vasa_jax

PACKAGE = pathlib.Path(vasa_jax.__file__).parent

# Bottom to top: a module may import modules of its own package and of the layers below its own.
# The base modules may import one another; other packages of one layer may not.
LAYERS = (
    ("errors", "rates", "framing", "atomic", "configs", "runs"),
    ("models",),
    ("convert",),
    ("losses", "diffusion"),
    ("data",),
    ("evaluators",),
    ("trainers",),
    ("inference",),
    ("protocol", "bench"),
    ("demo",),
    ("main",),
)
BASE = 0


def module_name(path: pathlib.Path) -> str:
  parts = ("vasa_jax",) + path.relative_to(PACKAGE).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
  """{module: the package's modules it imports}, each import resolved to the module it names (an
  imported function or class counts as its module)."""
  files = {module_name(path): path for path in PACKAGE.rglob("*.py")}

  def resolve(name: str) -> str:
    while name not in files and "." in name:
      name = name.rsplit(".", 1)[0]
    return name

  graph = {}
  for module, path in files.items():
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
      if isinstance(node, ast.Import):
        targets.update(alias.name for alias in node.names)
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
          anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
          base = ".".join(anchor + ([node.module] if node.module else []))
        targets.update(f"{base}.{alias.name}" for alias in node.names)
    graph[module] = {resolve(t) for t in targets
                     if t.split(".")[0] == "vasa_jax" and resolve(t) not in (module, "vasa_jax")}
  return graph


def layer_of(module: str) -> tuple[int, str]:
  """(layer index, top-level name) of a module of the package."""
  top = module.split(".")[1]
  for index, names in enumerate(LAYERS):
    if top in names:
      return index, top
  raise AssertionError(f"{module} is in no layer: add {top!r} to LAYERS (and to the README)")


def violations(graph: dict[str, set[str]]) -> list[str]:
  found = []
  for module, targets in sorted(graph.items()):
    if module == "vasa_jax":
      continue
    here, top = layer_of(module)
    for target in sorted(targets):
      there, target_top = layer_of(target)
      if there > here or (there == here and target_top != top and here != BASE):
        found.append(f"{module} imports {target}")
  return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for target in graph.get(node, ()):
      if target not in index:
        visit(target)
        low[node] = min(low[node], low[target])
      elif target in on_stack:
        low[node] = min(low[node], index[target])
    if low[node] == index[node]:
      component = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == node:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return found


def test_every_import_points_down_the_layers_without_cycles():
  graph = import_graph()
  assert len(graph) > 100 and graph["vasa_jax.trainers.common"]  # The walk found the package.
  assert violations(graph) == []
  assert cycles(graph) == []


def test_the_check_finds_an_upward_import_a_sibling_import_and_a_cycle():
  graph = {"vasa_jax.models.layers": {"vasa_jax.errors"},
           "vasa_jax.models.vgg19": {"vasa_jax.trainers.common"},  # Up.
           "vasa_jax.losses.identity": {"vasa_jax.diffusion.sampler"},  # A sibling.
           "vasa_jax.configs": {"vasa_jax.atomic"},  # Base modules may.
           "vasa_jax.data.prepare": {"vasa_jax.data.faces"},
           "vasa_jax.data.faces": {"vasa_jax.data.prepare"}}
  assert violations(graph) == ["vasa_jax.losses.identity imports vasa_jax.diffusion.sampler",
                               "vasa_jax.models.vgg19 imports vasa_jax.trainers.common"]
  assert cycles(graph) == [["vasa_jax.data.faces", "vasa_jax.data.prepare"]]
  with pytest.raises(AssertionError, match="'plugins' to LAYERS"):
    violations({"vasa_jax.plugins.x": set()})


def test_lazy_and_relative_imports_are_counted(tmp_path, monkeypatch):
  package = tmp_path / "vasa_jax"
  (package / "models").mkdir(parents=True)
  (package / "trainers").mkdir()
  for path in ("__init__.py", "models/__init__.py", "trainers/__init__.py", "trainers/common.py"):
    (package / path).write_text("")
  (package / "models" / "a.py").write_text(
      "def f():\n  from vasa_jax.trainers.common import train\n")
  (package / "models" / "b.py").write_text("from . import a\nfrom ..trainers import common\n")
  monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
  graph = import_graph()
  assert graph["vasa_jax.models.a"] == {"vasa_jax.trainers.common"}
  assert graph["vasa_jax.models.b"] == {"vasa_jax.models.a", "vasa_jax.trainers.common"}
