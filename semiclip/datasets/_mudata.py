"""Adapter from a MuData object (``.h5mu``) with a transcriptomics and an image modality.

Weakly paired by construction: each modality has its own observations (wells
of different experiments), and the two are joined only by the pairing key, an
``obs`` column of each. mudata is an optional extra (``pip install
semiclip[mudata]``) imported only here.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from .._core import ImageBank, format_examples
from ._adapters import from_anndata

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sklearn.utils import Bunch

__all__ = ["from_mudata", "mudata_modality"]


def _as_mudata(mdata):
    """``mdata``, or the MuData read from an ``.h5mu`` path."""
    if not isinstance(mdata, (str, os.PathLike)):
        return mdata
    try:
        import mudata
    except ImportError as exc:
        raise ImportError("reading .h5mu files needs mudata; install it with "
                          "`pip install semiclip[mudata]`.") from exc
    with warnings.catch_warnings():  # mudata's notice of a future default, not about the data
        warnings.filterwarnings("ignore", category=FutureWarning, module="mudata")
        return mudata.read_h5mu(mdata)


def mudata_modality(mdata: Any, mod: str | None, what: str = "mod") -> Any:
    """The AnnData of modality ``mod`` of a MuData object or ``.h5mu`` path.

    Parameters
    ----------
    mdata : mudata.MuData or path-like
        The object, or the path of an ``.h5mu`` file (read whole).
    mod : str
        Name of the modality (a key of ``mdata.mod``).
    what : str, default="mod"
        Name of the argument, for the error messages.

    Returns
    -------
    adata : anndata.AnnData
        The modality.
    """
    mdata = _as_mudata(mdata)
    if not hasattr(mdata, "mod"):
        raise TypeError(f"mdata must be a MuData object or the path of an .h5mu file; got "
                        f"{type(mdata).__name__}.")
    names = list(mdata.mod)
    if mod is None or mod not in mdata.mod:
        if not names:
            raise ValueError(f"{what}: the MuData has no modality.")
        given = "none was named" if mod is None else f"{mod!r} is not one of them"
        example = f"{what} {names[0]}" if what.startswith("--") else f"{what}={names[0]!r}"
        raise ValueError(f"{what}: the MuData has modalities {format_examples(names)}; "
                         f"{given}. Name one, e.g. {example}.")
    return mdata.mod[mod]


def from_mudata(mdata: Any, *, tx_mod: str, image_mod: str, key: str | Sequence[str],
                image_key: str | Sequence[str] | None = None, batch: str | None = None,
                control: str | tuple[str, Any] | None = None, control_label: Any = None,
                layer: str | None = None, image_obsm: str | None = None,
                as_frame: bool = False) -> Bunch:
    """Take transcriptomics samples and the image bank from the two modalities of a MuData.

    The transcriptomics modality is read as :func:`from_anndata` reads an
    AnnData; every observation of the image modality becomes one teacher
    embedding of an :class:`~semiclip.ImageBank`, keyed by its ``image_key``
    columns. Nothing pairs the observations of the two modalities but the key.

    Parameters
    ----------
    mdata : mudata.MuData or path-like
        The object, or the path of an ``.h5mu`` file.
    tx_mod : str
        Name of the transcriptomics modality.
    image_mod : str
        Name of the image (teacher) modality.
    key : str or list of str
        ``obs`` column(s) of the transcriptomics modality holding the pairing key.
    image_key : str or list of str, default=None
        ``obs`` column(s) of the image modality holding the key (default: ``key``).
    batch : str, default=None
        ``obs`` column of the transcriptomics modality holding the plate.
    control : str or (str, value or list), default=None
        Controls of the transcriptomics modality, as in :func:`from_anndata`.
    control_label : object, default=None
        Key of the controls, as in :func:`from_anndata`.
    layer : str, default=None
        Transcriptomics features from ``.layers[layer]`` instead of ``.X``.
    image_obsm : str, default=None
        Image features from ``.obsm[image_obsm]`` instead of ``.X``.
    as_frame : bool, default=False
        ``data`` as a DataFrame, as in :func:`from_anndata`.

    Returns
    -------
    data : Bunch
        The fields of :func:`from_anndata` for the transcriptomics modality,
        plus ``image_bank`` (:class:`~semiclip.ImageBank`) and ``tx_adata``
        (the transcriptomics AnnData, to add ``obsm["X_semiclip"]`` to).

    Examples
    --------
    >>> import anndata, mudata, numpy as np, pandas as pd
    >>> from semiclip.datasets import from_mudata
    >>> _ = mudata.set_options(pull_on_update=False)  # mudata's future default
    >>> tx = anndata.AnnData(np.ones((4, 3), dtype=np.float32),
    ...                      obs=pd.DataFrame({"gene": ["A", "B", "A", "ctl"]},
    ...                                       index=["w1", "w2", "w3", "w4"]),
    ...                      var=pd.DataFrame(index=["TP53", "KRAS", "MYC"]))
    >>> img = anndata.AnnData(np.zeros((2, 5), dtype=np.float32),
    ...                       obs=pd.DataFrame({"gene": ["A", "B"]}, index=["i1", "i2"]),
    ...                       var=pd.DataFrame(index=[f"cp{j}" for j in range(5)]))
    >>> d = from_mudata(mudata.MuData({"rna": tx, "cp": img}), tx_mod="rna", image_mod="cp",
    ...                 key="gene", control_label="ctl")
    >>> d.X.shape, d.image_bank.n_dims, d.is_control.tolist()
    ((4, 3), 5, [False, False, False, True])
    """
    mdata = _as_mudata(mdata)
    tx = mudata_modality(mdata, tx_mod, "tx_mod")
    img = mudata_modality(mdata, image_mod, "image_mod")
    data = from_anndata(tx, key=key, batch=batch, control=control, control_label=control_label,
                        layer=layer, as_frame=as_frame)
    teacher = from_anndata(img, key=key if image_key is None else image_key, obsm=image_obsm)
    data.image_bank = ImageBank(teacher.X, teacher.y)
    data.tx_adata = tx
    return data
