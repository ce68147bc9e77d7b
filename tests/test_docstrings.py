"""Every object in docs/api.rst passes numpydoc's docstring validation.

The objects are the ``autosummary`` entries of ``docs/api.rst`` and, for a
class, the public methods semiclip defines on it (scikit-learn's inherited
``get_params``/``set_params`` and the generated ``set_*_request`` are
scikit-learn's to document). ``fit_transform`` is checked even where it is
inherited, since its parameters must be described for these estimators.
"""

import dataclasses
import importlib
import inspect

import pytest

from tests.test_public_api import API, documented

numpydoc_validate = pytest.importorskip("numpydoc.validate", reason="needs numpydoc (test extra)")
docscrape = pytest.importorskip("numpydoc.docscrape")

#: numpydoc checks left out, each for a reason:
IGNORED = {
    "ES01",  # no extended summary: optional; a one-line summary is enough for small objects
    "SA01",  # no See Also section: optional; the user guide links related objects
    "EX01",  # no Examples section: the gallery (examples/) and the tutorial hold the
             # worked examples; doctests are added where an example fits in a few lines
    "RT02",  # "only the type on the first Returns line": scikit-learn's convention names
             # the returned value (``X_new : ndarray of shape ...``), as this package does
}


def _resolve(dotted):
    """The object at a dotted path (a module's attribute, or a class's)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def _documented_objects():
    names, _ = documented(API.read_text(encoding="utf-8"))
    return sorted(names)


def _attribute_names(obj):
    """Names listed in a class docstring's Attributes section."""
    doc = docscrape.NumpyDocString(inspect.getdoc(obj) or "")
    return {name.strip() for item in doc["Attributes"]
            for name in item.name.split(":")[0].split(",")}


def objects_to_validate(dotted_names):
    """Dotted paths of the documented objects and their own public methods.

    A property listed in its class's Attributes section is documented there
    and is not validated on its own.
    """
    out = []
    for dotted in dotted_names:
        obj = _resolve(dotted)
        out.append(dotted)
        if not inspect.isclass(obj):
            continue
        attributes = _attribute_names(obj)
        for name, value in inspect.getmembers(obj):
            if name.startswith("_") or (name.startswith("set_") and name.endswith("_request")):
                continue
            static = inspect.getattr_static(obj, name)
            if isinstance(static, property):
                if name not in attributes:
                    out.append(f"{dotted}.{name}")
            elif callable(value) and (
                    (getattr(value, "__module__", "") or "").startswith("semiclip")
                    or name == "fit_transform"):
                out.append(f"{dotted}.{name}")
    return out


def validation_errors(dotted, validate=None):
    """numpydoc's errors for one object, less the ignored codes.

    A dataclass documents its fields once, under Attributes: numpydoc's
    "parameters not documented" (PR01) is dropped for the fields listed there.
    """
    validate = validate or numpydoc_validate.validate
    result = validate(dotted)
    errors = [(code, message) for code, message in result["errors"] if code not in IGNORED]
    obj = _resolve(dotted)
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
        fields = {f.name for f in dataclasses.fields(obj) if f.init}
        if fields <= _attribute_names(obj):
            errors = [(c, m) for c, m in errors if c != "PR01"]
    return errors


OBJECTS = objects_to_validate(_documented_objects())


def test_every_documented_object_is_validated():
    assert len(OBJECTS) > 80
    assert "semiclip.SemiClippedTransformer.fit_transform" in OBJECTS
    assert "semiclip.cli.main" in OBJECTS


@pytest.mark.parametrize("dotted", OBJECTS)
def test_docstring_passes_numpydoc_validation(dotted):
    errors = validation_errors(dotted)
    assert errors == [], "\n".join(f"{dotted}: {code} {message}" for code, message in errors)


def _broken(a, b):
    """compute things

    Parameters
    ----------
    a : int
    """
    return a + b


@dataclasses.dataclass
class _Result:
    """A result.

    Attributes
    ----------
    score : float
        The score.
    """

    score: float
    n: int


def test_validation_fails_on_a_broken_docstring():
    codes = [code for code, _ in validation_errors("tests.test_docstrings._broken")]
    # no capital, no period, b not documented, a not described, no Returns
    assert {"SS02", "SS03", "PR01", "PR07", "RT01"} <= set(codes), codes
    # a dataclass field missing from Attributes is still reported
    messages = [m for c, m in validation_errors("tests.test_docstrings._Result") if c == "PR01"]
    assert messages and "'n'" in messages[0], messages


def missing_type_hints(func):
    """Parameters (and ``"return"``) of a function without an annotation."""
    sig = inspect.signature(func)
    missing = [p.name for p in sig.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def _hinted_functions():
    """The documented functions and methods (classes: their own ``__init__``)."""
    out = []
    for dotted in OBJECTS:
        obj = _resolve(dotted)
        owner = _resolve(dotted.rpartition(".")[0]) if "." in dotted else None
        if inspect.isclass(owner) and isinstance(
                inspect.getattr_static(owner, dotted.rpartition(".")[2]), property):
            continue
        if inspect.isclass(obj):
            if "__init__" in vars(obj) and not dataclasses.is_dataclass(obj):
                out.append((f"{dotted}.__init__", obj.__init__))
        elif callable(obj):
            out.append((dotted, obj))
    return out


def test_documented_functions_have_type_hints():
    functions = _hinted_functions()
    assert len(functions) > 60
    missing = {name: m for name, func in functions if (m := missing_type_hints(func))}
    assert missing == {}


def test_type_hint_check_fails_on_an_unannotated_function():
    def f(a: int, b, *args, c=1, **kw) -> int:
        return a

    def g(x: int):
        return x

    assert missing_type_hints(f) == ["b", "args", "c", "kw"]
    assert missing_type_hints(g) == ["return"]
