"""Parameter docs written once and substituted, so that estimators do not drift apart.

A docstring line holding only ``[[name]]`` is replaced by the numpydoc entry
``entries[name]`` (written without indentation), indented like the line.
"""

import inspect
import textwrap

__all__ = ["fill_doc"]


def _fill(doc, entries, where):
    lines = []
    for line in doc.splitlines():
        text = line.strip()
        if text.startswith("[[") and text.endswith("]]"):
            name = text[2:-2]
            if name not in entries:
                raise RuntimeError(f"{where}: no shared docstring entry {name!r}.")
            indent = line[: len(line) - len(line.lstrip())]
            lines.extend(textwrap.indent(entries[name].strip("\n"), indent).splitlines())
        else:
            lines.append(line)
    return "\n".join(lines)


def fill_doc(entries):
    """Decorator: fill the ``[[name]]`` lines of a function's or class's docstrings.

    For a class, the docstrings of the methods it defines are filled too.
    """

    def decorate(obj):
        if obj.__doc__:
            obj.__doc__ = _fill(obj.__doc__, entries, obj.__qualname__)
        if inspect.isclass(obj):
            for value in vars(obj).values():
                func = getattr(value, "__func__", value)
                if callable(func) and getattr(func, "__doc__", None) and "[[" in func.__doc__:
                    func.__doc__ = _fill(func.__doc__, entries, func.__qualname__)
        return obj

    return decorate
