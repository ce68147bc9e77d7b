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
import io
import json
import math

import numpy as np

__all__ = [
    "ArrayWriter",
    "Damaged",
    "decode",
    "encode",
    "read_array",
    "read_json",
    "trusted_names",
    "trusted_types",
]

_BIT_GENERATORS = {c.__name__: c for c in (np.random.PCG64, np.random.PCG64DXSM,
                                           np.random.MT19937, np.random.Philox,
                                           np.random.SFC64)}
_PLAIN = (type(None), bool, int, str)


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
    """Collects the arrays of a tree; ``arrays[i]`` is written as ``arrays/i.npy``."""

    def __init__(self):
        self.arrays = []

    def add(self, arr):
        self.arrays.append(arr)
        return len(self.arrays) - 1


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


def decode(node, read_array):
    """The object of a JSON tree; ``read_array(i)`` returns ``arrays/i.npy``."""
    if type(node) in _PLAIN or type(node) is float:
        return node
    if type(node) is list:
        return [decode(v, read_array) for v in node]
    if type(node) is not dict or len(node) == 0:
        raise Damaged(f"unexpected {type(node).__name__} in the state")
    tag = next(iter(node))
    if tag == "$object":
        return _decode_object(node, read_array)
    extra = {"object", "readonly"} if tag == "$array" else set()
    if set(node) - {tag} - extra:
        raise Damaged(f"unexpected entries {sorted(node)!r} in the state")
    value = node[tag]
    if tag == "$float":
        if value not in ("nan", "inf", "-inf"):
            raise Damaged(f"unexpected float {value!r}")
        return float(value)
    if tag == "$tuple":
        return tuple(decode(_list(value), read_array))
    if tag == "$dict":
        out = {}
        for pair in _list(value):
            if type(pair) is not list or len(pair) != 2:
                raise Damaged("a dict entry is not a [key, value] pair")
            key = decode(pair[0], read_array)
            try:
                out[key] = decode(pair[1], read_array)
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
        return _decode_generator(decode(value, read_array))
    if tag == "$random_state":
        rs = np.random.RandomState()
        _set_state(rs.set_state, decode(value, read_array), "RandomState")
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


def _decode_object(node, read_array):
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
    state = decode(node.get("state"), read_array)
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
    if node.get("adapter") is not None:
        obj.adapter_ = _decode_adapter(node["adapter"], read_array)
    return obj


def _decode_adapter(node, read_array):
    import torch

    from ._nn import adapter_from_state

    try:
        sizes = [int(s) for s in _list(node["sizes"])]
        weights = {str(k): torch.from_numpy(np.ascontiguousarray(decode(v, read_array)))
                   for k, v in _list(node["weights"])}
        return adapter_from_state(sizes, weights)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise Damaged(f"the adapter's weights do not fit its layer sizes ({exc})") from None


def read_json(zf, name):
    """The JSON member ``name`` of a zip archive."""
    try:
        return json.loads(zf.read(name).decode("utf-8"))
    except KeyError:
        raise Damaged(f"no {name}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Damaged(f"{name} is not JSON: {exc}") from None


def read_array(zf, i):
    """The array ``arrays/i.npy`` of a zip archive, read with ``allow_pickle=False``."""
    name = f"arrays/{i}.npy"
    if type(i) is not int:
        raise Damaged(f"array reference {i!r}")
    try:
        blob = zf.read(name)
    except KeyError:
        raise Damaged(f"{name} is missing") from None
    try:
        return np.lib.format.read_array(io.BytesIO(blob), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise Damaged(f"{name} is not a plain array: {exc}") from None
