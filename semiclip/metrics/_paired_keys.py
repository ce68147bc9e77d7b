"""Student and teacher key means over the keys both sides share (cross-modal metrics, RSA)."""

from dataclasses import dataclass

import numpy as np

from .._core import ImageBank, check_finite_rows, check_labels, control_mask, format_examples

__all__ = ["SharedKeys", "check_embeddings", "check_teacher", "shared_key_means"]


@dataclass(frozen=True)
class SharedKeys:
    """Per-key means of both sides on the keys they share (sorted)."""

    keys: np.ndarray
    student: np.ndarray
    teacher: np.ndarray
    n_student_keys: int
    n_teacher_keys: int


def check_embeddings(X, name):
    """A finite 2-D float64 array, with errors naming ``name``."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric; got dtype {X.dtype}.")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {X.shape}.")
    X = X.astype(np.float64, copy=False)
    check_finite_rows(X, name, fix="drop or impute those rows first")
    return X


def check_teacher(teacher, teacher_keys):
    """``(embeddings float64, keys)`` of an :class:`~semiclip.ImageBank` or an array."""
    if isinstance(teacher, ImageBank):
        if teacher_keys is not None:
            raise ValueError(
                "teacher_keys must not be given with an ImageBank teacher: the bank carries "
                "its keys (bank.keys). Pass teacher_keys only with an array teacher."
            )
        return teacher.embeddings.astype(np.float64), teacher.keys
    if isinstance(teacher, (str, bytes)) or not hasattr(teacher, "__len__") and not hasattr(
            teacher, "__array__"):
        raise TypeError(
            f"teacher must be an ImageBank or a 2-D numeric array with teacher_keys; got "
            f"{type(teacher).__name__}."
        )
    T = np.asarray(teacher)
    if T.dtype.kind not in "biuf" or T.ndim != 2:
        raise TypeError(
            f"teacher must be an ImageBank or a 2-D numeric array with teacher_keys; got an "
            f"array of dtype {T.dtype} and shape {T.shape}."
        )
    T = check_embeddings(T, "teacher")
    if teacher_keys is None:
        raise ValueError(
            f"teacher_keys is required with an array teacher: pass the key of each of its "
            f"{T.shape[0]} rows, or pass an ImageBank."
        )
    keys = check_labels(teacher_keys, T.shape[0], "teacher_keys", rows="teacher", item="key")
    return T, keys


def _means(X, keys, control_label):
    """Distinct keys (sorted) and the mean row of each, controls dropped."""
    keep = ~control_mask(keys, control_label)
    names, codes = np.unique(keys[keep], return_inverse=True)
    codes = codes.ravel()
    if not names.size:
        return names, np.zeros((0, X.shape[1]))
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sums = np.add.reduceat(X[keep][order], starts, axis=0)
    return names, sums / counts[:, np.newaxis]


def _kind(keys):
    if keys.dtype.kind in "US" or (keys.dtype.kind == "O" and keys.size
                                   and isinstance(keys.flat[0], (str, bytes))):
        return "strings"
    if keys.dtype.kind in "biu":
        return "integers"
    return None


def shared_key_means(embeddings, keys, teacher, teacher_keys, control_label, min_keys, what):
    """Validated per-key means of both sides on their shared keys.

    ``min_keys`` is the fewest shared keys ``what`` (the metric's name) needs.
    """
    X = check_embeddings(embeddings, "embeddings")
    keys = check_labels(keys, X.shape[0], "keys", rows="embeddings", item="key")
    T, tkeys = check_teacher(teacher, teacher_keys)
    s_names, s_means = _means(X, keys, control_label)
    t_names, t_means = _means(T, tkeys, control_label)
    lookup = {k: i for i, k in enumerate(t_names.tolist())}
    found = np.array([lookup.get(k, -1) for k in s_names.tolist()], dtype=np.int64)
    hit = found >= 0
    if not hit.any():
        kinds = (_kind(s_names), _kind(t_names))
        hint = ""
        if None not in kinds and kinds[0] != kinds[1]:
            hint = (f" keys are {kinds[0]} but teacher_keys are {kinds[1]}: no key can match; "
                    "convert both to one type (e.g. .astype(str)).")
        raise ValueError(
            f"No key of keys is in teacher_keys (overlap 0 of {s_names.size} student keys and "
            f"{t_names.size} teacher keys). keys: {format_examples(s_names)}; teacher_keys: "
            f"{format_examples(t_names)}.{hint} Key the embeddings and the teacher alike."
        )
    if hit.sum() < min_keys:
        n_hit = int(hit.sum())
        raise ValueError(
            f"keys and teacher_keys share only {n_hit} key{'' if n_hit == 1 else 's'} "
            f"({format_examples(s_names[hit])}); {what} needs at least {min_keys}. Evaluate "
            "more perturbations, or check that both sides use the same keys."
        )
    return SharedKeys(
        keys=s_names[hit],
        student=s_means[hit],
        teacher=t_means[found[hit]],
        n_student_keys=int(s_names.size),
        n_teacher_keys=int(t_names.size),
    )
