"""Slow, obviously-correct reference computations shared by several test modules."""

import numpy as np


def slow_recall(emb, keys, pairs, lo=0.05, hi=0.95):
    """EFAAR-style known-relationship recall, written independently of semiclip.metrics."""
    uk = sorted(set(keys))
    means = np.stack([emb[keys == k].mean(0) for k in uk])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    sim = means @ means.T
    null = np.sort(sim[np.triu_indices(len(uk), 1)])
    index = {k: i for i, k in enumerate(uk)}
    hits = []
    for a, b in pairs:
        if a in index and b in index:
            v = sim[index[a], index[b]]
            hits.append(np.searchsorted(null, v, "right") / null.size <= lo
                        or np.searchsorted(null, v, "left") / null.size >= hi)
    return float(np.mean(hits))


def center_plates_on_controls(X, batch, is_control):
    """Subtract each plate's control mean (loop over plates)."""
    X = np.array(X, dtype=np.float64)
    for p in np.unique(batch):
        m = batch == p
        X[m] -= X[m & is_control].mean(0)
    return X


def slow_center_scale(X, y, batch, control_label, scale):
    """Per-batch centring (and scaling) on that batch's controls, loop over batches."""
    ref = np.empty_like(X)
    for b in np.unique(batch):
        rows = batch == b
        c = X[rows & (y == control_label)]
        ref[rows] = X[rows] - c.mean(axis=0)
        if scale:
            ref[rows] /= c.std(axis=0)
    return ref
