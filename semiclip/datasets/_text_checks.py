"""Checks of the text of relationship files: control bytes, white space, UTF-8."""

import gzip
import re

import numpy as np

__all__ = ["has_control", "not_utf8", "refuse_control_bytes", "strip"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def refuse_control_bytes(path):
    """Refuse NUL and other control bytes before parsing: the CSV reader would cut a value at
    a NUL, silently changing a pair."""
    opener = gzip.open if path.suffix == ".gz" else open
    offset, line = 0, 1
    with opener(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            found = _CONTROL_BYTES.search(chunk)
            if found:
                at = found.start()
                line += chunk.count(b"\n", 0, at)
                raise ValueError(
                    f"{str(path)!r} holds the control byte 0x{chunk[at]:02x} at offset "
                    f"{offset + at} (line {line}, header included); gene names are printable "
                    "text. Fix or remove that line (e.g. the file was cut or is not a text "
                    "file)."
                )
            offset += len(chunk)
            line += chunk.count(b"\n")


def strip(values):
    """Values without surrounding white space (files written ``"A, B"``), like the header."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        return [v.strip() for v in values]
    return pd.Series(values, dtype=object).str.strip().to_numpy()


def has_control(values):
    """Which values hold control characters (NUL, escapes...)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        return np.array([bool(_CONTROL.search(v)) for v in values], dtype=bool)
    return pd.Series(values, dtype=object).str.contains(_CONTROL, regex=True).to_numpy(bool)


def not_utf8(path):
    """The ValueError for a file that is not UTF-8: the file, the first bad byte, the fix."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start]
        where = f"byte 0x{byte:02x} at offset {exc.start} (line {line}) cannot be decoded"
    else:  # pragma: no cover - decodes whole but not in chunks: cannot happen with UTF-8
        where = "it cannot be decoded"
    return ValueError(
        f"{str(path)!r} is not UTF-8 text: {where}. Relationship files are read as UTF-8 "
        "(optionally gzip-compressed); re-save it as UTF-8, e.g. with "
        "`iconv -f latin1 -t utf-8 old.csv > new.csv` or pandas' "
        "read_csv(..., encoding='latin1').to_csv(..., encoding='utf-8')."
    )
