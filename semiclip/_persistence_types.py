"""The trusted types of a semiclip model file and the tree that holds them: JSON plus arrays.

A fitted object is written as a JSON tree: plain JSON values as they are,
containers and numpy values tagged (``{"$tuple": [...]}``,
``{"$array": 3}`` for the array stored as ``arrays/3.npy``...), and every
object as ``{"$object": name, "state": ...}`` where ``name`` is a key of
:func:`trusted_types` and ``state`` its ``__getstate__()`` dict. Reading
looks ``name`` up in that table, never imports anything named by the file,
and rebuilds the object from its state (``__setstate__``, or the
``__dict__`` of a dataclass): no code from the file runs. Arrays are read
with ``allow_pickle=False``. Anything outside the table is refused on
writing (``TypeError``) and on reading (``ValueError``).
"""

import functools
import math

import numpy as np

__all__ = [
    "MAX_DEPTH",
    "ArrayWriter",
    "Damaged",
    "decode",
    "encode",
    "trusted_names",
    "trusted_types",
]

_BIT_GENERATORS = {c.__name__: c for c in (np.random.PCG64, np.random.PCG64DXSM,
                                           np.random.MT19937, np.random.Philox,
                                           np.random.SFC64)}
_PLAIN = (type(None), bool, int, str)
#: the JSON tree of a state is at most this deep
MAX_DEPTH = 64


@functools.lru_cache(maxsize=1)
def trusted_types():
    """``{name in the file: class}`` of the objects a model file may hold."""
    from sklearn.decomposition import PCA, IncrementalPCA
    from sklearn.linear_model import Ridge

    from ._core import ImageBank
    from ._correction import (
        CenterScale,
        ControlNormalizer,
        Coral,
        PEAAugmenter,
        PEAFamily,
        TVNStats,
        Whitening,
    )
    from ._distill import RidgeDistiller, SemiClippedTransformer
    from ._nn import History, LinearDecoder

    # file-format names, fixed when the files were defined: they stay when modules move
    return {
        "semiclip.SemiClippedTransformer": SemiClippedTransformer,
        "semiclip.RidgeDistiller": RidgeDistiller,
        "semiclip.ControlNormalizer": ControlNormalizer,
        "semiclip.PEAAugmenter": PEAAugmenter,
        "semiclip.ImageBank": ImageBank,
        "semiclip.correction.PEAFamily": PEAFamily,
        "semiclip.correction.TVNStats": TVNStats,
        "semiclip.correction.CenterScale": CenterScale,
        "semiclip.correction.Whitening": Whitening,
        "semiclip.correction.Coral": Coral,
        "semiclip.nn.History": History,
        "semiclip.nn.LinearDecoder": LinearDecoder,
        "sklearn.decomposition.PCA": PCA,
        "sklearn.decomposition.IncrementalPCA": IncrementalPCA,
        "sklearn.linear_model.Ridge": Ridge,
    }


def trusted_names():
    """The class names of :func:`trusted_types`, for messages."""
    return ", ".join(sorted(n.rpartition(".")[2] for n in trusted_types()))


@functools.lru_cache(maxsize=1)
def _name_of_type():
    return {cls: name for name, cls in trusted_types().items()}


class ArrayWriter:
    """Collects the arrays of a tree; ``arrays[i]`` is written as ``arrays/i.npy``.

    An array met again (the same object, e.g. a normaliser's ``components_``
    that is also its whitening's) is stored once and referenced twice; the
    reader shares it again.
    """

    def __init__(self):
        self.arrays = []
        self._index = {}

    def add(self, arr):
        i = self._index.get(id(arr))
        if i is None:
            i = self._index[id(arr)] = len(self.arrays)
            self.arrays.append(arr)  # kept alive: its id stays unique
        return i


# ------------------------------------------------------------------ writing
def encode(obj, store, where):
    """The JSON tree of ``obj``; its arrays go to ``store``. ``where`` names it in errors."""
    if type(obj) in _PLAIN:
        return obj
    if type(obj) is float:
        return obj if math.isfinite(obj) else {"$float": repr(obj)}
    if type(obj) is list:
        return [encode(v, store, f"{where}[{i}]") for i, v in enumerate(obj)]
    if type(obj) is tuple:
        return {"$tuple": [encode(v, store, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if type(obj) is dict:
        return {"$dict": [[encode(k, store, f"{where} key {k!r}"),
                           encode(v, store, f"{where}[{k!r}]")] for k, v in obj.items()]}
    if type(obj) in (np.ndarray, np.memmap):
        return _encode_array(np.asarray(obj), store, where)
    if isinstance(obj, np.generic) and not isinstance(obj, np.object_):
        return {"$scalar": store.add(np.asarray(obj))}
    if type(obj) is bytes:
        return {"$bytes": store.add(np.frombuffer(obj, dtype=np.uint8))}
    if type(obj) is np.random.Generator:
        return {"$generator": encode(obj.bit_generator.state, store, where)}
    if type(obj) is np.random.RandomState:
        return {"$random_state": encode(obj.get_state(legacy=False), store, where)}
    name = _name_of_type().get(type(obj))
    if name is None:
        raise TypeError(
            f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}, which a semiclip "
            f"model file cannot hold (it holds numbers, strings, arrays and the types "
            f"{trusted_names()}). Save this estimator with pickle or joblib from Python "
            "instead; a pickle runs code when it is loaded, so share it only with people "
            "who trust you."
        )
    state = obj.__getstate__() if hasattr(type(obj), "__getstate__") else vars(obj)
    state = {} if state is None else state  # object.__getstate__ of an empty __dict__
    if type(state) is dict:  # cached_property values are recomputed when needed: not stored
        state = {k: v for k, v in state.items()
                 if not isinstance(getattr(type(obj), k, None), functools.cached_property)}
    if type(state) is not dict or not all(isinstance(k, str) for k in state):
        raise TypeError(f"{where}: {type(obj).__name__}.__getstate__() is not a dict of "
                        "attributes; it cannot go in a semiclip model file.")
    node = {"$object": name}
    if name == "semiclip.SemiClippedTransformer":
        node["adapter"] = _encode_adapter(obj, state, store)
    node["state"] = {"$dict": [[k, encode(v, store, f"{where}.{k}")] for k, v in state.items()]}
    return node


def _encode_array(arr, store, where):
    node = {"$array": None}
    if arr.dtype.hasobject:
        if arr.dtype != object or not all(type(v) is str for v in arr.ravel().tolist()):
            raise TypeError(
                f"{where} is an array of Python objects (other than strings); a semiclip model "
                "file holds numeric and string arrays only. Save with pickle or joblib from "
                "Python instead (a pickle runs code when loaded: load only files you trust)."
            )
        arr = arr.astype(str) if arr.size else np.zeros(arr.shape, dtype="<U1")
        node["object"] = True
    if not arr.flags.writeable:
        node["readonly"] = True
    node["$array"] = store.add(arr)
    return node


def _encode_adapter(est, state, store):
    """The adapter's weights as plain arrays, in place of the torch bytes of ``__getstate__``."""
    state.pop("_adapter_state", None)
    sizes = state.pop("_adapter_sizes", None)
    if sizes is None:
        return None
    weights = est.adapter_.state_dict()
    return {"sizes": [int(s) for s in sizes],
            "weights": [[k, {"$array": store.add(v.detach().cpu().numpy())}]
                        for k, v in weights.items()]}


# ------------------------------------------------------------------ reading
class Damaged(ValueError):
    """The tree does not have the shape this module writes."""


def decode(node, read_array, depth=0):
    """The object of a JSON tree; ``read_array(i)`` returns ``arrays/i.npy``."""
    if depth > MAX_DEPTH:
        raise Damaged(f"the state is nested more than {MAX_DEPTH} levels deep")
    if type(node) in _PLAIN or type(node) is float:
        return node
    if type(node) is list:
        return [decode(v, read_array, depth + 1) for v in node]
    if type(node) is not dict or len(node) == 0:
        raise Damaged(f"unexpected {type(node).__name__} in the state")
    tag = next(iter(node))
    if tag == "$object":
        return _decode_object(node, read_array, depth)
    extra = {"object", "readonly"} if tag == "$array" else set()
    if set(node) - {tag} - extra:
        raise Damaged(f"unexpected entries {sorted(node)!r} in the state")
    value = node[tag]
    if tag == "$float":
        if value not in ("nan", "inf", "-inf"):
            raise Damaged(f"unexpected float {value!r}")
        return float(value)
    if tag == "$tuple":
        return tuple(decode(_list(value), read_array, depth + 1))
    if tag == "$dict":
        out = {}
        for pair in _list(value):
            if type(pair) is not list or len(pair) != 2:
                raise Damaged("a dict entry is not a [key, value] pair")
            key = decode(pair[0], read_array, depth + 1)
            try:
                out[key] = decode(pair[1], read_array, depth + 1)
            except TypeError:
                raise Damaged(f"unhashable dict key {key!r}") from None
        return out
    if tag == "$array":
        arr = read_array(value)
        if node.get("object"):
            arr = arr.astype(object)
        if node.get("readonly"):
            arr.flags.writeable = False
        return arr
    if tag == "$scalar":
        arr = read_array(value)
        if arr.ndim != 0:
            raise Damaged("a scalar entry holds an array")
        return arr[()]
    if tag == "$bytes":
        return read_array(value).tobytes()
    if tag == "$generator":
        return _decode_generator(decode(value, read_array, depth + 1))
    if tag == "$random_state":
        rs = np.random.RandomState()
        _set_state(rs.set_state, decode(value, read_array, depth + 1), "RandomState")
        return rs
    raise Damaged(f"unknown entry {tag!r} in the state")


def _list(value):
    if type(value) is not list:
        raise Damaged(f"expected a list, got {type(value).__name__}")
    return value


def _decode_generator(state):
    name = state.get("bit_generator") if type(state) is dict else None
    cls = _BIT_GENERATORS.get(name)
    if cls is None:
        raise ValueError(f"the file names the bit generator {name!r}, which is not one a "
                         f"semiclip model file may hold ({', '.join(sorted(_BIT_GENERATORS))}).")
    bit_generator = cls()
    _set_state(lambda s: setattr(bit_generator, "state", s), state, name)
    return np.random.Generator(bit_generator)


def _set_state(setter, state, what):
    try:
        setter(state)
    except (TypeError, ValueError, KeyError) as exc:
        raise Damaged(f"the state of a {what} is not valid ({exc})") from None


def _decode_object(node, read_array, depth):
    name = node.get("$object")
    cls = trusted_types().get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"the file names the type {name!r}, which is not a type a semiclip model file may "
            f"hold ({trusted_names()}); it was not imported and no code from the file ran. "
            "Load only model files written by semiclip."
        )
    if set(node) - {"$object", "state", "adapter"}:
        raise Damaged(f"unexpected entries {sorted(set(node))!r} of a {name}")
    state = decode(node.get("state"), read_array, depth + 1)
    if type(state) is not dict or not all(isinstance(k, str) for k in state):
        raise Damaged(f"the state of a {name} is not a dict of attributes")
    if cls.__name__ == "SemiClippedTransformer" and {"_adapter_state", "_adapter_sizes"} & set(
            state):
        raise Damaged("the adapter's weights must be arrays, not bytes")
    obj = cls.__new__(cls)
    setstate = getattr(obj, "__setstate__", None)
    try:
        if setstate is not None:
            setstate(state)
        else:
            obj.__dict__.update(state)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise Damaged(f"cannot rebuild a {name} from its state ({exc})") from None
    _check_params(obj, name)
    if node.get("adapter") is not None:
        obj.adapter_ = _decode_adapter(node["adapter"], read_array)
    return obj


#: parameters that set the reader's resources: never taken from a file, but the reader's default
READER_PARAMS = {"n_threads": None}


def _check_params(obj, name):
    """Validate a rebuilt estimator's parameters with its own constraints; the reader's
    resources (:data:`READER_PARAMS`) are set to the reader's defaults first."""
    from ._core.compat import has_param, validate_estimator_params

    for param, default in READER_PARAMS.items():
        if has_param(obj, param):
            setattr(obj, param, default)
    try:
        validate_estimator_params(obj)
    except AttributeError as exc:
        raise Damaged(f"a {name} lacks a parameter ({exc})") from None
    except (TypeError, ValueError) as exc:
        raise Damaged(f"a {name} has an invalid parameter: {exc}") from None


#: an adapter in a model file has at most this many layers
MAX_LAYERS = 64


def _decode_adapter(node, read_array):
    import torch

    from ._nn import adapter_from_state, adapter_state_shapes

    if type(node) is not dict or set(node) != {"sizes", "weights"}:
        raise Damaged("the adapter entry is not {sizes, weights}")
    sizes = _list(node["sizes"])
    if not 2 <= len(sizes) <= MAX_LAYERS + 1 or not all(
            type(s) is int and 1 <= s <= 1 << 24 for s in sizes):
        raise Damaged(f"the adapter's layer sizes are not 2 to {MAX_LAYERS + 1} positive "
                      "integers")
    pairs = _list(node["weights"])
    residual = bool(pairs) and type(pairs[0]) is list and len(pairs[0]) == 2 and \
        pairs[0][0] == "linear.weight"  # a residual adapter (its linear path first)
    expected = adapter_state_shapes(sizes, residual)
    refs = [pair[1].get("$array") if type(pair) is list and len(pair) == 2
            and type(pair[1]) is dict else None for pair in pairs]
    if [p[0] for p in pairs] != list(expected) or len(set(map(repr, refs))) != len(refs):
        raise Damaged("the adapter's weights are not one distinct array per layer weight and "
                      "bias")
    weights = {}
    for (key, value), shape in zip(pairs, expected.values()):
        arr = decode(value, read_array, 1)
        if type(arr) is not np.ndarray or arr.shape != shape or arr.dtype.kind != "f":
            raise Damaged(f"the adapter's {key} is not a float array of shape {shape}")
        weights[key] = torch.from_numpy(np.ascontiguousarray(arr))
    try:
        return adapter_from_state(sizes, weights)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise Damaged(f"the adapter's weights do not fit its layer sizes ({exc})") from None
