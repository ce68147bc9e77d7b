"""Figures: training curves, recall bars, embedding maps, gene attributions.

matplotlib is an optional extra (``pip install semiclip[plot]``), imported
only when a function is called. Every function draws on ``ax`` (a new figure
when None), returns the Axes, and with ``path=`` also writes a PNG. With
``path=`` and no ``ax`` the figure is created without pyplot (so it needs no
display, is not shown and is not kept open); otherwise pyplot creates it, as
usual in notebooks.
"""

import numbers

import numpy as np

from ._validation import control_mask

__all__ = [
    "plot_loss_curves",
    "plot_recall_bars",
    "plot_embedding_map",
    "plot_gene_attributions",
]


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "semiclip.plotting needs matplotlib; install it with `pip install semiclip[plot]`."
        ) from exc


def _axes(ax, path, figsize):
    _require_matplotlib()
    if ax is not None:
        return ax
    if path is not None:
        from matplotlib.figure import Figure

        return Figure(figsize=figsize).add_subplot()
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def _finish(ax, path):
    if path is not None:
        ax.figure.savefig(path, dpi=150, bbox_inches="tight")
    return ax


# -- training curves ----------------------------------------------------------
def _curve(source, names):
    for name in names:
        value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
        if value is not None:
            return np.asarray(value, dtype=np.float64).ravel()
    return None


def plot_loss_curves(estimator_or_history, ax=None, *, path=None):
    """Plot the training loss and, when recorded, the validation score per epoch.

    Parameters
    ----------
    estimator_or_history : estimator, history or mapping or sequence
        A fitted estimator with ``loss_curve_`` (and ``validation_scores_``
        with early stopping), such as
        :class:`~semiclip.SemiClippedTransformer` or scikit-learn's
        ``MLPClassifier``; a training history with ``loss_curve`` and
        ``validation_scores``; a dict with those keys; or a sequence of
        losses.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    path : str or path-like, optional
        Also save the figure there as a PNG.

    Returns
    -------
    ax : matplotlib Axes
        The loss axes. The validation scores are drawn on a twin axes
        sharing the epoch axis (``ax.figure.axes[-1]``), with a dotted line
        at the best epoch.

    Examples
    --------
    >>> from semiclip.plotting import plot_loss_curves
    >>> history = {"loss_curve": [2.1, 1.4, 1.1], "validation_scores": [0.2, 0.3, 0.28]}
    >>> ax = plot_loss_curves(history)
    >>> len(ax.get_lines()), ax.get_ylabel()
    (1, 'training loss')
    """
    source = estimator_or_history
    if isinstance(source, (list, tuple, np.ndarray)):
        loss, val = np.asarray(source, dtype=np.float64).ravel(), None
    else:
        loss = _curve(source, ("loss_curve_", "loss_curve"))
        val = _curve(source, ("validation_scores_", "validation_scores"))
    if loss is None or loss.size == 0:
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(
            f"{type(source).__name__} has no loss curve (loss_curve_ / loss_curve); fit the "
            "estimator first or pass the list of losses."
        )
    ax = _axes(ax, path, (6, 4))
    epochs = np.arange(1, loss.size + 1)
    handles = ax.plot(epochs, loss, color="C0", marker="." if loss.size < 30 else None,
                      label="training loss")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    if val is not None and val.size:
        twin = ax.twinx()
        val_epochs = np.arange(1, val.size + 1)
        handles += twin.plot(val_epochs, val, color="C1", marker="." if val.size < 30 else None,
                             label="validation score")
        best = int(val_epochs[np.nanargmax(val)])
        handles.append(twin.axvline(best, color="C1", linestyle=":", label=f"best epoch ({best})"))
        twin.set_ylabel("validation score")
    ax.legend(handles=handles, loc="best")
    return _finish(ax, path)


# -- recall bars ----------------------------------------------------------------
def _values(value, where):
    """Floats from a number, an object with ``.recall``, a dict with "recall", or a list."""
    if isinstance(value, numbers.Real):
        return [float(value)]
    if hasattr(value, "recall"):
        return _values(value.recall, where)
    if isinstance(value, dict) and "recall" in value:
        return _values(value["recall"], where)
    if isinstance(value, (list, tuple, np.ndarray)):
        out = [v for item in np.asarray(value, dtype=object).ravel() for v in _values(item, where)]
        if out:
            return out
    raise TypeError(
        f"results[{where}] must be a number, an object with .recall, or a list of them; got "
        f"{type(value).__name__}."
    )


def _interval(values, ci):
    """Mean and Student-t half-width of a ``ci`` interval of the mean (NaN for one value)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if values.size < 2 or ci is None:
        return mean, np.nan
    from scipy.stats import t

    half = t.ppf(0.5 + ci / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return mean, float(half)


def plot_recall_bars(results, ax=None, *, ci=0.95, chance=None, ylabel="recall", path=None):
    """Bar plot of recall per database, with intervals over seeds.

    Parameters
    ----------
    results : mapping
        Either ``{database: values}`` (one bar per database) or
        ``{method: {database: values}}`` (bars grouped by database, one
        colour per method). ``values`` is a number, an object with a
        ``.recall`` attribute, or a list of them (one per seed).
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    ci : float or None, default=0.95
        Level of the error bars: a Student-t interval of the mean over
        seeds, ``mean +/- t_{(1+ci)/2, n-1} * sd / sqrt(n)``; no bar for a
        single value or ``ci=None``.
    chance : float, optional
        Draw a dashed horizontal line at the chance level.
    ylabel : str, default="recall"
    path : str or path-like, optional
        Also save the figure there as a PNG.

    Returns
    -------
    ax : matplotlib Axes
        One ``BarContainer`` per method in ``ax.containers``.

    Examples
    --------
    >>> from semiclip.plotting import plot_recall_bars
    >>> ax = plot_recall_bars({"raw": {"CORUM": [0.10, 0.12], "HuMAP": [0.09, 0.11]},
    ...                        "Semi-Clipped": {"CORUM": [0.18, 0.2], "HuMAP": [0.15, 0.17]}},
    ...                       chance=0.1)
    >>> len(ax.patches)
    4
    """
    if not isinstance(results, dict) or not results:
        raise TypeError(
            "results must be a non-empty dict {database: values} or "
            f"{{method: {{database: values}}}}; got {type(results).__name__}."
        )
    if ci is not None and not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1) or None; got {ci!r}.")
    nested = all(isinstance(v, dict) and "recall" not in v for v in results.values())
    series = results if nested else {None: results}
    databases = list(dict.fromkeys(db for per_db in series.values() for db in per_db))
    ax = _axes(ax, path, (max(4.0, 1.2 * len(databases) + 1), 4))
    width = 0.8 / len(series)
    x = np.arange(len(databases), dtype=np.float64)
    for i, (method, per_db) in enumerate(series.items()):
        stats = [
            _interval(_values(per_db[db], f"{method!r}][{db!r}" if nested else repr(db)), ci)
            if db in per_db
            else (np.nan, np.nan)
            for db in databases
        ]
        means, halves = np.array(stats).T
        offset = (i - (len(series) - 1) / 2) * width
        ax.bar(
            x + offset,
            means,
            width=width,
            yerr=halves if np.isfinite(halves).any() else None,
            capsize=3,
            color=f"C{i}",
            label=None if method is None else str(method),
        )
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(x)
    ax.set_xticklabels([str(db) for db in databases])
    ax.set_ylabel(ylabel)
    if nested or chance is not None:
        ax.legend(loc="best")
    return _finish(ax, path)


# -- embedding map -----------------------------------------------------------------
def _group_of_keys(groups, uniq, first_row, n_rows):
    """Group label of every distinct key (None where unknown)."""
    if hasattr(groups, "index") and hasattr(groups, "to_dict"):  # pandas Series key -> group
        groups = groups.to_dict()
    if isinstance(groups, dict):
        labels = [groups.get(k) for k in uniq.tolist()]
    else:
        arr = np.asarray(groups, dtype=object)
        if arr.shape != (n_rows,):
            raise ValueError(
                f"groups must be a dict {{key: group}} or one group per row of embeddings "
                f"({n_rows}); got shape {arr.shape}."
            )
        labels = arr[first_row].tolist()
    return np.array(
        [None if g is None or (isinstance(g, float) and g != g) else g for g in labels],
        dtype=object,
    )


def plot_embedding_map(
    embeddings,
    keys,
    *,
    groups=None,
    method="pca",
    control_label=None,
    max_groups=10,
    random_state=0,
    ax=None,
    path=None,
):
    """2-D map of the mean embedding of every perturbation, coloured by group.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_dims)
        Embeddings (or profiles) of the samples.
    keys : array-like of shape (n_samples,)
        Perturbation of every sample; the map has one point per distinct key
        (the mean of its rows).
    groups : dict or array-like, optional
        Group of every key (e.g. its known complex): a dict / Series
        ``{key: group}``, or one group per row (the group of a key's first
        row is used). Keys without a group are grey ("other").
    method : {"pca", "umap"}, default="pca"
        Projection to 2-D. ``"umap"`` needs ``umap-learn``.
    control_label : scalar, optional
        Key of controls, left out of the map.
    max_groups : int, default=10
        Colour the ``max_groups`` largest groups; the others join "other".
    random_state : int, default=0
        Seed of the projection (PCA's solver, UMAP).
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    path : str or path-like, optional
        Also save the figure there as a PNG.

    Returns
    -------
    ax : matplotlib Axes
        One scatter collection per coloured group (plus one for "other").

    Examples
    --------
    >>> import numpy as np
    >>> from semiclip.plotting import plot_embedding_map
    >>> emb = np.random.default_rng(0).normal(size=(40, 8))
    >>> keys = np.repeat(["A", "B", "C", "D", "E"], 8)
    >>> ax = plot_embedding_map(emb, keys, groups={"A": "complex 1", "B": "complex 1"})
    >>> [(c.get_label(), len(c.get_offsets())) for c in ax.collections]
    [('other', 3), ('complex 1', 2)]
    """
    E = np.asarray(embeddings, dtype=np.float64)
    keys = np.asarray(keys)
    if E.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n_samples, n_dims); got shape {E.shape}.")
    if keys.shape != (E.shape[0],):
        raise ValueError(
            f"keys must have one entry per row of embeddings ({E.shape[0]}); got shape {keys.shape}."
        )
    if method not in ("pca", "umap"):
        raise ValueError(f"method must be 'pca' or 'umap'; got {method!r}.")
    if not isinstance(max_groups, numbers.Integral) or max_groups < 1:
        raise ValueError(f"max_groups must be a positive integer; got {max_groups!r}.")
    keep = ~control_mask(keys, control_label)
    E_kept, keys_kept = E[keep], keys[keep]
    uniq, first_row, inverse = np.unique(keys_kept, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    if uniq.size < 3:
        raise ValueError(f"a map needs at least 3 distinct keys; got {uniq.size}.")
    group = None
    if groups is not None:  # checked before the (possibly slow) projection
        group = _group_of_keys(groups, uniq, np.flatnonzero(keep)[first_row], E.shape[0])
    from scipy.sparse import csr_matrix

    counts = np.bincount(inverse, minlength=uniq.size)
    indicator = csr_matrix(
        (np.ones(inverse.size), (inverse, np.arange(inverse.size))), shape=(uniq.size, inverse.size)
    )
    means = np.asarray(indicator @ E_kept) / counts[:, None]
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=random_state)
        xy = pca.fit_transform(means)
        ratio = pca.explained_variance_ratio_
        axis_labels = (f"PC1 ({ratio[0]:.0%})", f"PC2 ({ratio[1]:.0%})")
    else:
        try:
            import umap
        except ImportError as exc:
            raise ImportError(
                "method='umap' needs umap-learn (`pip install umap-learn`); or use method='pca'."
            ) from exc
        n_neighbors = int(min(15, uniq.size - 1))
        xy = umap.UMAP(n_components=2, n_neighbors=n_neighbors,
                       random_state=random_state).fit_transform(means)
        axis_labels = ("UMAP1", "UMAP2")

    ax = _axes(ax, path, (6, 5))
    if group is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=14, color="C0")
    else:
        known = np.array([g is not None for g in group], dtype=bool)
        text = np.array([str(g) for g in group], dtype=object)
        names, sizes = np.unique(text[known].astype(str), return_counts=True)
        shown = names[np.argsort(-sizes, kind="stable")][:max_groups]
        other = ~(known & np.isin(text.astype(str), shown))
        if other.any():
            ax.scatter(xy[other, 0], xy[other, 1], s=8, color="lightgrey", label="other")
        for i, name in enumerate(shown.tolist()):
            sel = ~other & (text == name)
            ax.scatter(xy[sel, 0], xy[sel, 1], s=18, color=f"C{i % 10}", label=name)
        ax.legend(loc="best", fontsize="small", markerscale=1.5)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(f"{uniq.size} perturbations ({method.upper()})")
    return _finish(ax, path)


# -- gene attributions ------------------------------------------------------------------
def plot_gene_attributions(scores, feature_names=None, *, top=20, ax=None, path=None):
    """Horizontal bars of the ``top`` features with the largest absolute attribution.

    Parameters
    ----------
    scores : array-like of shape (n_features,)
        One attribution per feature (gene); a pandas Series gives its index
        as names. Average 2-D attributions first (e.g.
        ``np.abs(A).mean(axis=0)``).
    feature_names : array-like of shape (n_features,), optional
        Names of the features; default the Series index or ``"feature i"``.
    top : int, default=20
        Number of features shown, largest ``|score|`` at the top.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    path : str or path-like, optional
        Also save the figure there as a PNG.

    Returns
    -------
    ax : matplotlib Axes
        Positive scores in red, negative in blue.

    Examples
    --------
    >>> from semiclip.plotting import plot_gene_attributions
    >>> ax = plot_gene_attributions([0.5, -2.0, 1.0], ["TP53", "KRAS", "MYC"], top=2)
    >>> [t.get_text() for t in ax.get_yticklabels()]  # from the top
    ['KRAS', 'MYC']
    """
    if feature_names is None and hasattr(scores, "index") and hasattr(scores, "to_numpy"):
        feature_names = np.asarray(scores.index)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(
            f"scores must be 1-D (one value per feature); got shape {s.shape}. Average over "
            "samples first, e.g. np.abs(scores).mean(axis=0)."
        )
    if not np.all(np.isfinite(s)):
        raise ValueError(f"scores contain {int((~np.isfinite(s)).sum())} NaN or inf value(s).")
    names = (
        np.array([f"feature {j}" for j in range(s.size)], dtype=object)
        if feature_names is None
        else np.asarray(feature_names, dtype=object)
    )
    if names.shape != s.shape:
        raise ValueError(
            f"feature_names has {names.size} entries but scores has {s.size}; pass one name "
            "per score."
        )
    if not isinstance(top, numbers.Integral) or top < 1:
        raise ValueError(f"top must be a positive integer; got {top!r}.")
    order = np.argsort(-np.abs(s), kind="stable")[:top]
    ax = _axes(ax, path, (5, 0.3 * order.size + 1))
    positions = np.arange(order.size)[::-1]  # largest at the top
    colors = np.where(s[order] >= 0, "C3", "C0")
    ax.barh(positions, s[order], color=colors)
    ax.set_yticks(positions)
    ax.set_yticklabels([str(n) for n in names[order]])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("attribution")
    return _finish(ax, path)
