"""The public surface is the documented API.

A module is public when no component of its dotted path starts with an
underscore (``semiclip.metrics``, ``semiclip.cli``; not ``semiclip._nn`` nor
``semiclip.metrics._ap``). A public name is one a user can import from a
public module: its ``__all__``, plus every other non-underscore name the
module binds to something semiclip defines (a function, class or constant
written in the module or imported from another semiclip module). Names bound
to the standard library or a third-party library (``np``, ``torch``,
``TYPE_CHECKING``) are not semiclip's surface.

Every public name must be documented in ``docs/api.rst`` (an ``autosummary``
entry under its module, or under another public module when it is the same
object, e.g. ``semiclip.exceptions.GeneralizationWarning`` is
``semiclip.GeneralizationWarning``), and every public module must have its
own section there. The checkers are functions of plain data so that the last
test can show they fail on a small broken example.
"""

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import semiclip

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api.rst"


# ------------------------------------------------------------------ checkers
def documented(api_text):
    """``(names, modules)`` documented by an api.rst text.

    ``names`` holds the dotted path of every ``autosummary`` entry, read under
    the last ``currentmodule``; ``modules`` the modules given an
    ``automodule`` or ``currentmodule`` directive.
    """
    names, modules = set(), set()
    current, in_summary = None, False
    for line in api_text.splitlines():
        directive = re.match(r"\.\. (automodule|currentmodule|autosummary)::\s*(\S*)", line)
        if directive:
            kind, arg = directive.groups()
            if kind == "autosummary":
                in_summary = True
            else:
                current, in_summary = arg, False
                modules.add(arg)
            continue
        if in_summary:
            entry = line.strip()
            if not entry or entry.startswith(":"):
                continue
            if not line.startswith(" "):  # the directive's body ended
                in_summary = False
                continue
            names.add(f"{current}.{entry}")
    return names, modules


def _bound_names(source):
    """Top-level names a module's source binds to semiclip's own objects.

    Definitions, assignments and imports from semiclip (relative, or absolute
    ``semiclip...``); imports of other libraries are left out.
    """
    out = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                out |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").split(".")[0] == "semiclip"):
            out |= {alias.asname or alias.name for alias in node.names}
    return {n for n in out if not n.startswith("_")}


def public_names(module_name, source, all_names):
    """Dotted paths of the public names of one module (its ``__all__`` and the
    other non-underscore names its source binds to semiclip's objects)."""
    names = set(all_names) | _bound_names(source)
    return {f"{module_name}.{n}" for n in names if not n.startswith("_")}


def undocumented(public, objects, api_names, api_modules, modules):
    """Public names and modules missing from api.rst.

    ``public`` holds dotted names, ``objects`` maps a dotted name to its object
    (a re-exported function or class counts as documented when the same
    object is documented under another path), ``modules`` the public modules.
    """
    documented_ids = {id(objects[n]) for n in api_names if n in objects}
    missing = sorted(n for n in public
                     if n not in api_names
                     and not (n in objects and callable(objects[n])
                              and id(objects[n]) in documented_ids))
    # a public submodule bound as an attribute is documented by its own section
    missing = [n for n in missing if n not in modules]
    missing += sorted(f"module {m}" for m in modules if m not in api_modules)
    return missing


# ------------------------------------------------------------------ the package
def public_modules():
    """Every importable module of semiclip whose path has no underscore component."""
    found = ["semiclip"]
    for info in pkgutil.walk_packages(semiclip.__path__, "semiclip."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.append(info.name)
    return sorted(found)


def package_surface():
    """``(public names, their objects, public modules)`` of the installed package."""
    public, objects = set(), {}
    modules = public_modules()
    for name in modules:
        module = importlib.import_module(name)
        path = Path(module.__file__)
        names = public_names(name, path.read_text(encoding="utf-8"),
                             getattr(module, "__all__", []))
        for dotted in names:
            attr = dotted.rpartition(".")[2]
            if hasattr(module, attr):
                objects[dotted] = getattr(module, attr)
        public |= names
    return public, objects, modules


def test_public_modules_are_the_documented_ones():
    assert public_modules() == sorted([
        "semiclip", "semiclip.callbacks", "semiclip.cli", "semiclip.datasets",
        "semiclip.distributed", "semiclip.exceptions", "semiclip.interpret",
        "semiclip.metrics", "semiclip.model_selection", "semiclip.persistence",
        "semiclip.plotting"])


def test_every_public_name_is_documented():
    public, objects, modules = package_surface()
    api_names, api_modules = documented(API.read_text(encoding="utf-8"))
    assert len(public) > 50
    assert undocumented(public, objects, api_names, api_modules, modules) == []


def test_every_documented_name_exists():
    """No api.rst entry names something that cannot be imported."""
    api_names, api_modules = documented(API.read_text(encoding="utf-8"))
    for module in api_modules:
        importlib.import_module(module)
    missing = []
    for dotted in sorted(api_names):
        module, _, attr = dotted.rpartition(".")
        if not hasattr(importlib.import_module(module), attr):
            missing.append(dotted)
    assert missing == []


# ------------------------------------------------- the checkers catch breakage
BROKEN_API = """\
Things
------

.. currentmodule:: pkg

.. autosummary::
   :toctree: generated

   documented
   Alias

Text after the list.

.. automodule:: pkg.sub
   :no-members:
"""
BROKEN_SOURCE = """\
import numpy as np
from typing import TYPE_CHECKING
from ._impl import documented, helper as exported_helper
from . import _impl

__all__ = ["documented", "listed"]

LIMIT = 3
_PRIVATE = 4


def undocumented_function():
    pass


def _private():
    pass
"""


def test_checkers_fail_on_a_broken_example():
    names, modules = documented(BROKEN_API)
    assert names == {"pkg.documented", "pkg.Alias"}
    assert modules == {"pkg", "pkg.sub"}
    public = public_names("pkg", BROKEN_SOURCE, ["documented", "listed"])
    assert public == {"pkg.documented", "pkg.listed", "pkg.exported_helper", "pkg.LIMIT",
                      "pkg.undocumented_function"}
    alias = type("Alias", (), {})
    objects = {"pkg.Alias": alias, "pkg.listed": alias, "pkg.documented": len}
    assert undocumented(public, objects, names, modules, ["pkg", "pkg.sub", "pkg.other"]) == [
        "pkg.LIMIT", "pkg.exported_helper", "pkg.undocumented_function", "module pkg.other"]
