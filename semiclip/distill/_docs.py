"""Parameter constraints and docs shared by the distillation estimators, written once.

:func:`fill_doc` replaces ``[[name]]`` lines of a docstring with the
shared numpydoc entry of parameter ``name``, so that
:class:`~semiclip.SemiClippedTransformer` and :class:`~semiclip.RidgeDistiller`
describe their common parameters with the same words.
"""

import numbers

from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from .._bank import ImageBank

__all__ = ["SHARED_CONSTRAINTS", "fill_doc"]

SHARED_CONSTRAINTS = {
    "encoder": [StrOptions({"pca"}), None, HasMethods(["transform"])],
    "encoder_dim": [Interval(numbers.Integral, 1, None, closed="left")],
    "unpaired": [StrOptions({"raise", "drop"})],
    "control_label": "no_validation",
    "image_bank": [None, ImageBank],
    "random_state": ["random_state"],
}

_PARAMS = {
    "encoder_dim": """\
    encoder_dim : int, default=256
        Components of the ``"pca"`` encoder (capped by the data size).""",
    "unpaired": """\
    unpaired : {"raise", "drop"}, default="raise"
        What to do with non-control training samples whose key has no bank
        row: raise a ValueError naming them, or drop them from the
        distillation (they still shape the encoder and decoder).""",
    "control_label": """\
    control_label : scalar or None, default=None
        Key of control samples (``y == control_label``); they are never
        paired with the teacher.""",
    "image_bank": """\
    image_bank : ImageBank or None, default=None
        Teacher bank used when ``fit`` receives none. Passing the bank to
        ``fit`` (routed as metadata in pipelines and grid searches) is the
        usual path; this parameter serves tools that can only set
        parameters. ``clone`` shares the (immutable) bank instead of copying it.""",
}


def fill_doc(obj):
    """Class decorator: put the shared parameter entries in place of ``[[name]]`` lines."""
    doc = obj.__doc__
    for name, text in _PARAMS.items():
        doc = doc.replace(f"    [[{name}]]", text)
    if "[[" in doc:
        raise RuntimeError(f"{obj.__name__}: unknown shared parameter in its docstring.")
    obj.__doc__ = doc
    return obj
