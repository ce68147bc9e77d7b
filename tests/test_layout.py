"""The layer rules of the package, checked on its source (see docs: the package layout).

- ``semiclip._nn`` imports no scikit-learn; ``semiclip._correction`` and
  ``semiclip._distill`` import no torch (``distill`` reaches torch through
  ``semiclip._nn`` only);
- no import cycle among the package's modules, function-level imports included
  (imports under ``if TYPE_CHECKING:`` never run, so they cannot form one);
- the layers are private packages directly below ``semiclip`` (``_core``,
  ``_nn``, ``_correction``, ``_distill``, ``_experiments``): every module may
  import a layer's own names (``from .._nn import fit_loop``), but no
  underscore-prefixed module or name below a layer is imported from outside
  the package that owns it (``semiclip._nn._losses`` only inside
  ``semiclip._nn``);
- no private attribute of another object is read (``bank._inverse``);
- scikit-learn's private names (an underscore module or name, e.g.
  ``sklearn.base._fit_context``) are imported by ``semiclip._core.compat``
  only, in the package and in the tests, so that the supported scikit-learn
  range is fixed in one place;
- no module has more than 800 lines: one estimator may live in one module
  (cut by concept, not by size; scikit-learn's MLP module is 1,800 lines), and
  800 is a ceiling, not a target;
- every public module has an ``__all__`` whose names exist.

Each checker is a function of ``{module name: source}`` so that the tests
below can also show it fails on a small broken example.
"""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "semiclip"
MAX_LINES = 800
#: subpackage -> top-level distributions its modules must not import
FORBIDDEN = {
    "semiclip._nn": {"sklearn"},
    "semiclip._correction": {"torch"},
    "semiclip._distill": {"torch"},
}
#: private attributes of other objects that may be read (the standard library's)
ALLOWED_PRIVATE = {"os._exit"}


def package_sources(root=PACKAGE):
    """``{dotted module name: source}`` of every module of the package."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path.read_text(encoding="utf-8")
    return out


def _is_package(name, sources):
    return any(other.startswith(name + ".") for other in sources)


def _package_of(module, sources):
    """The package a module belongs to (itself for a package)."""
    return module if _is_package(module, sources) else module.rpartition(".")[0]


def _type_checking_only(tree):
    """The import nodes under ``if TYPE_CHECKING:`` (they run only in a type checker)."""
    nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            nodes |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return nodes


def imports(module, source, sources, runtime_only=False):
    """``(lineno, target module, imported name or None, top-level distribution)`` of every import.

    ``runtime_only`` leaves out the imports under ``if TYPE_CHECKING:``.
    """
    out = []
    package = _package_of(module, sources)
    tree = ast.parse(source)
    skip = _type_checking_only(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((node.lineno, alias.name, None, alias.name.split(".")[0]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                out.append((node.lineno, target, alias.name, target.split(".")[0]))
    return out


def _edge(target, name, sources):
    """The module an import statement loads: ``target.name`` when that is a module."""
    if name is not None and f"{target}.{name}" in sources:
        return f"{target}.{name}"
    return target


def forbidden_imports(sources, forbidden=FORBIDDEN):
    """Imports of a forbidden distribution inside a subpackage (``[(module, line, dist)]``)."""
    bad = []
    for module, source in sources.items():
        for prefix, dists in forbidden.items():
            if module == prefix or module.startswith(prefix + "."):
                bad += [(module, line, dist)
                        for line, _, _, dist in imports(module, source, sources)
                        if dist in dists]
    return bad


def import_cycles(sources):
    """Every cycle of the import graph among the package's modules (lists of modules)."""
    graph = {m: set() for m in sources}
    for module, source in sources.items():
        for _, target, name, _ in imports(module, source, sources, runtime_only=True):
            edge = _edge(target, name, sources)
            if edge in sources and edge != module:
                graph[module].add(edge)
    # Tarjan's strongly connected components
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def is_layer(name, sources):
    """A private package directly below ``semiclip`` (``semiclip._nn``)."""
    parts = name.split(".")
    return (len(parts) == 2 and parts[0] == "semiclip" and parts[1].startswith("_")
            and not parts[1].startswith("__") and _is_package(name, sources))


def private_imports(sources):
    """Underscore modules or names imported from outside the package that owns them."""
    bad = []
    for module, source in sources.items():
        for line, target, name, dist in imports(module, source, sources):
            if dist != "semiclip":
                continue
            parts = target.split(".") + ([] if name is None else [name])
            # a layer (a private package right below semiclip) is a border like a public package
            start = 2 if len(parts) > 1 and is_layer(".".join(parts[:2]), sources) else 0
            for i, part in enumerate(parts):
                if i < start or not part.startswith("_") or part.startswith("__"):
                    continue
                owner_path = ".".join(parts[:i])
                owner = owner_path if _is_package(owner_path, sources) \
                    else owner_path.rpartition(".")[0]
                if not (module == owner or module.startswith(owner + ".")):
                    bad.append((module, line, ".".join(parts[: i + 1])))
                break
    return bad


def private_attributes(sources, allowed=ALLOWED_PRIVATE):
    """Reads of ``obj._name`` where ``obj`` is not ``self`` or ``cls``."""
    bad = []
    for module, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                text = ast.unparse(node)
                if text not in allowed:
                    bad.append((module, node.lineno, text))
    return bad


def sklearn_private_imports(sources, allowed=("semiclip._core.compat",)):
    """Imports of an underscore module or name of scikit-learn outside ``allowed``."""
    bad = []
    for module, source in sources.items():
        if module in allowed:
            continue
        for line, target, name, dist in imports(module, source, sources):
            parts = target.split(".") + ([] if name is None else [name])
            if dist == "sklearn" and any(p.startswith("_") and not p.startswith("__")
                                         for p in parts):
                bad.append((module, line, ".".join(parts)))
    return bad


def suite_sources(root=PACKAGE.parent / "tests"):
    """``{dotted name: source}`` of the test modules (for the scikit-learn rule)."""
    return {f"tests.{k}": v for k, v in package_sources(root).items()}


def long_modules(sources, max_lines=MAX_LINES):
    return [(m, s.count("\n")) for m, s in sources.items() if s.count("\n") > max_lines]


def public_modules(sources):
    return [m for m in sources
            if not any(p.startswith("_") for p in m.split(".")) and m != "semiclip.__main__"]


# ---------------------------------------------------------------- the package
SOURCES = package_sources()


def test_the_package_is_found():
    assert ({"semiclip._nn", "semiclip._correction", "semiclip._distill", "semiclip.cli"}
            <= set(SOURCES))


def test_layers_import_only_what_they_may():
    assert forbidden_imports(SOURCES) == []


@pytest.mark.parametrize("package, dist", [("semiclip._nn", "sklearn"),
                                           ("semiclip._correction", "torch")])
def test_importing_a_layer_loads_no_forbidden_library(package, dist):
    """Also what the layer's imports import in turn (a fresh interpreter)."""
    code = f"import sys, {package}; print({dist!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_no_import_cycle():
    assert import_cycles(SOURCES) == []


def test_no_private_name_crosses_a_package_border():
    assert private_imports(SOURCES) == []


def test_no_private_attribute_of_another_object_is_read():
    assert private_attributes(SOURCES) == []


def test_sklearn_private_names_only_through_compat():
    assert sklearn_private_imports({**SOURCES, **suite_sources()}) == []


def test_no_module_is_over_800_lines():
    assert long_modules(SOURCES) == []


@pytest.mark.parametrize("module", public_modules(SOURCES))
def test_public_modules_declare_all(module):
    assert "__all__" in SOURCES[module], f"{module} has no __all__"
    mod = importlib.import_module(module)
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert missing == [], f"{module}.__all__ names missing attributes: {missing}"


# ------------------------------------------------- the checkers catch breakage
BROKEN = {
    "semiclip": "",
    "semiclip._util": "x = 1\n",
    "semiclip._nn": "from ._a import f\n",
    "semiclip._nn._a": "import sklearn.base\nfrom .. import _util\n\ndef f():\n"
                      "    from .._correction import g\n",
    "semiclip._correction": "from ._b import g\n",
    "semiclip._correction._b": "import torch\n\ndef g():\n    from .._nn._a import f\n"
                              "    return bank._inverse\n",
    "semiclip._correction._c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from ._d import D\n",
    "semiclip._correction._d": "from ._c import C\n",  # a cycle for the type checker only
    "semiclip._correction._e": "from sklearn.base import _fit_context, clone\n"
                              "import sklearn.utils._param_validation\n",
    "semiclip._core.compat": "from sklearn.base import _fit_context\n",
}


def test_checkers_fail_on_a_broken_example():
    assert forbidden_imports(BROKEN) == [("semiclip._nn._a", 1, "sklearn"),
                                         ("semiclip._correction._b", 1, "torch")]
    # nn._a -> correction (function level) -> correction._b -> nn._a (function level)
    assert import_cycles(BROKEN) == [["semiclip._correction", "semiclip._correction._b",
                                      "semiclip._nn._a"]]
    assert private_imports(BROKEN) == [("semiclip._correction._b", 4, "semiclip._nn._a")]
    assert private_attributes(BROKEN) == [("semiclip._correction._b", 5, "bank._inverse")]
    assert sklearn_private_imports(BROKEN) == [
        ("semiclip._correction._e", 1, "sklearn.base._fit_context"),
        ("semiclip._correction._e", 2, "sklearn.utils._param_validation")]
    assert long_modules({"m": "\n" * 801}) == [("m", 801)]
    assert long_modules({"m": "\n" * 800}) == []
