"""Figure plumbing shared by every plot: matplotlib on demand, new axes, saving."""

__all__ = ["axes", "finish"]


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
