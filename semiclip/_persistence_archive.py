"""The zip archive of a model file, bounded before it is read: sizes, counts, headers.

Everything is checked from the zip directory and the ``.npy`` headers before
a member's data is read, so a crafted file costs at most a small multiple of
its own size (see :class:`Archive`).
"""

import json
import math
import re
import zipfile

import numpy as np

from ._persistence_types import Damaged

__all__ = ["MAX_EXPANSION", "MAX_JSON_BYTES", "MAX_MEMBERS", "MIN_BUDGET", "STATE_SLACK",
           "Archive"]

#: at most this many members in a model file
MAX_MEMBERS = 10_000
#: at most this many bytes in manifest.json / state.json
MAX_JSON_BYTES = {"manifest.json": 4 << 20, "state.json": 16 << 20}
#: ... and state.json at most this many bytes more than twice manifest.json
STATE_SLACK = 1 << 20
#: the members, all together, expand to at most this many times the file's size ...
MAX_EXPANSION = 32
#: ... or to this many bytes, whichever is larger
MIN_BUDGET = 64 << 20
#: the dtypes an array member may have: booleans, numbers, unicode strings
_ARRAY_KINDS = "biufcU"
_ARRAY_NAME = re.compile(r"arrays/(0|[1-9][0-9]{0,8})\.npy")


class Archive:
    """The members of a model zip, checked from its directory before any is read.

    Every member's name, flags, compression and sizes are checked first: no
    duplicate or unknown names, no encryption, stored or deflated only, and
    the sizes together at most ``max(MIN_BUDGET, MAX_EXPANSION * file size)``
    bytes; a JSON member at most ``MAX_JSON_BYTES``, and ``state.json`` at
    most ``STATE_SLACK`` more than twice ``manifest.json``. An array member's
    ``.npy`` header is read (a few hundred bytes) and its shape times item
    size must be the member's size before the data is read, and each array is
    decoded once (a second reference shares it).
    """

    def __init__(self, zf, file_size):
        self.zf = zf
        self._arrays = {}
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise Damaged(f"{len(infos)} members (a model file has at most {MAX_MEMBERS})")
        seen, total = set(), 0
        for info in infos:
            name = info.filename
            if name in seen:
                raise Damaged(f"two members named {name!r}")
            seen.add(name)
            if name not in MAX_JSON_BYTES and not _ARRAY_NAME.fullmatch(name):
                raise Damaged(f"an unexpected member {name!r}")
            if info.flag_bits & 0x41:
                raise Damaged(f"{name} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise Damaged(f"{name} uses compression method {info.compress_type}, not "
                              "stored or deflated")
            if name in MAX_JSON_BYTES and info.file_size > MAX_JSON_BYTES[name]:
                raise Damaged(f"{name} holds {info.file_size:,} bytes (at most "
                              f"{MAX_JSON_BYTES[name]:,})")
            total += info.file_size
        sizes = {i.filename: i.file_size for i in infos}
        if "manifest.json" in sizes and sizes.get("state.json", 0) > (
                STATE_SLACK + 2 * sizes["manifest.json"]):
            # the tree holds what the manifest describes (parameters, column names) + refs
            raise Damaged(f"state.json holds {sizes['state.json']:,} bytes, more than "
                          f"{STATE_SLACK >> 20} MiB + twice its manifest's "
                          f"{sizes['manifest.json']:,}")
        budget = max(MIN_BUDGET, MAX_EXPANSION * file_size)
        if total > budget:
            raise Damaged(f"its members expand to {total:,} bytes, more than {MAX_EXPANSION} "
                          f"times the file's {file_size:,} bytes")
        self.names = seen

    def json(self, name):
        """The JSON member ``name``."""
        if name not in self.names:
            raise Damaged(f"no {name}")
        try:
            with self.zf.open(name) as fh:
                text = fh.read(MAX_JSON_BYTES[name] + 1)
            return json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Damaged(f"{name} is not JSON: {exc}") from None
        except RecursionError:
            raise Damaged(f"{name} is nested too deeply") from None

    def array(self, i):
        """The array ``arrays/i.npy``, decoded once, read with ``allow_pickle=False``."""
        if type(i) is not int:
            raise Damaged(f"array reference {i!r}")
        if i in self._arrays:
            return self._arrays[i]
        name = f"arrays/{i}.npy"
        if name not in self.names:
            raise Damaged(f"{name} is missing")
        info = self.zf.getinfo(name)
        with self.zf.open(info) as fh:
            try:
                version = np.lib.format.read_magic(fh)
                header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = header(fh)
            except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
                raise Damaged(f"{name} is not a plain array: {exc}") from None
            if dtype.hasobject or dtype.kind not in _ARRAY_KINDS or dtype.names is not None:
                raise Damaged(f"{name} has the dtype {dtype}, not booleans, numbers or strings")
            count = math.prod(shape)
            if count * dtype.itemsize != info.file_size - fh.tell():
                raise Damaged(f"{name} declares the shape {shape} of {dtype} "
                              f"({count * dtype.itemsize:,} bytes) but holds "
                              f"{info.file_size - fh.tell():,}")
            arr = _read_into(fh, np.empty(shape[::-1] if fortran else shape, dtype), name)
        arr = arr.T if fortran else arr
        if not dtype.isnative:
            arr = arr.astype(dtype.newbyteorder("="))
        self._arrays[i] = arr
        return arr


def _read_into(fh, arr, name):
    """Fill ``arr`` (C-contiguous) from ``fh`` in 1 MiB chunks: no second copy."""
    if arr.nbytes:
        view = memoryview(arr.reshape(-1).view(np.uint8))
        pos = 0
        while pos < arr.nbytes:
            chunk = fh.read(min(1 << 20, arr.nbytes - pos))
            if not chunk:
                raise Damaged(f"{name} is truncated")
            view[pos:pos + len(chunk)] = chunk
            pos += len(chunk)
    if fh.read(1):  # pragma: no cover - the sizes were checked from the directory
        raise Damaged(f"{name} has trailing bytes")
    return arr
