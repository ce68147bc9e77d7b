"""Figure plumbing shared by every plot: matplotlib on demand, new axes, saving."""

from .._core import fill_doc as _fill_doc

__all__ = ["PARAM_DOCS", "axes", "fill_doc", "finish"]

#: numpydoc entries every plot shares (``[[name]]`` lines of its docstring)
PARAM_DOCS = {
    "ax": """\
ax : matplotlib Axes, optional
    Where to draw; a new figure by default.""",
    "path": """\
path : str or path-like, optional
    Also save the figure there as a PNG.""",
}

fill_doc = _fill_doc(PARAM_DOCS)


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "semiclip.plotting needs matplotlib; install it with `pip install semiclip[plot]`."
        ) from exc


def axes(ax, path, figsize):
    _require_matplotlib()
    if ax is not None:
        return ax
    if path is not None:
        from matplotlib.figure import Figure

        return Figure(figsize=figsize).add_subplot()
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def finish(ax, path):
    if path is not None:
        ax.figure.savefig(path, dpi=150, bbox_inches="tight")
    return ax
