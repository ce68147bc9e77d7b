"""Pickles of earlier semiclip versions, read only with ``allow_pickle=True``: their module
names are mapped to where the classes are now (semiclip's names only, classes only)."""

__all__ = ["find_class", "parses_as_pickle", "unpickle"]

#: modules of earlier semiclip versions -> where their classes are now (first match wins)
_MOVED_MODULES = (
    ("semiclip.nn.training._validation", "semiclip._nn.training._heldout"),
    ("semiclip.datasets._keys", "semiclip.datasets._matching"),
    ("semiclip.distill", "semiclip._distill"),
    ("semiclip.nn", "semiclip._nn"),
    ("semiclip.correction", "semiclip._correction"),
    ("semiclip.experiments", "semiclip._experiments"),
    ("semiclip._bank", "semiclip._core._bank"),
    ("semiclip._validation", "semiclip._core._inputs"),
    ("semiclip._keys", "semiclip._core._keys"),
    ("semiclip._stats", "semiclip._core._stats"),
    ("semiclip._docstrings", "semiclip._core._docstrings"),
    ("semiclip._constraints", "semiclip._core.compat"),
)


def _moved(module):
    for old, new in _MOVED_MODULES:
        if module == old or module.startswith(old + "."):
            return new + module[len(old):]
    return module


def find_class(find_class, module, name):
    """``find_class`` with semiclip's moved modules mapped; from semiclip, classes only."""
    if module != "semiclip" and not module.startswith("semiclip."):
        return find_class(module, name)
    obj = find_class(_moved(module), name)
    if not isinstance(obj, type):
        raise ValueError(f"the pickle names {module}.{name}, which is not a class")
    return obj


def unpickle(path):
    """Unpickle a (joblib) pickle, mapping the modules of earlier semiclip versions.

    An uncompressed file (what ``semiclip fit`` wrote) goes through joblib's
    unpickler with :func:`find_class` mapping moved modules; a compressed
    joblib file is read by :func:`joblib.load` as it is.
    """
    import joblib
    from joblib.numpy_pickle import NumpyUnpickler

    class Unpickler(NumpyUnpickler):
        def find_class(self, module, name):
            return find_class(super().find_class, module, name)

    with open(path, "rb") as fh:
        if not fh.read(1) == b"\x80" and not parses_as_pickle(path):
            return joblib.load(path)  # compressed: joblib's own reader, no mapping
        fh.seek(0)
        return Unpickler(str(path), fh, True).load()


def parses_as_pickle(path):
    """Whether the file's first 64 KiB read as pickle opcodes (e.g. protocol 0, which has no
    magic bytes); the opcodes are only parsed, never run."""
    import pickletools

    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    n = 0
    try:
        for op, _, _ in pickletools.genops(head):
            n += 1
            if op.name == "STOP":
                return n > 1
    except Exception:  # noqa: BLE001 - not opcodes (or cut at 64 KiB)
        return n >= 16
    return False
