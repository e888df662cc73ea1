"""k-means with warm starts and the cluster-quality scores TRAMA is judged by (numpy only).

TRAMA re-clusters the replay buffer's trajectory embeddings every so often; starting each
k-means from the previous centroids keeps class k meaning the same kind of trajectory
across re-clusterings (the release's flag_init_centroid), which the predictor and the
agents conditioned on it rely on.
"""

from __future__ import annotations

import numpy as np


def _plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007)."""
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(-1)
    for _ in range(1, k):
        total = d2.sum()
        i = rng.choice(len(x), p=d2 / total) if total > 0 else rng.integers(len(x))
        centres.append(x[i])
        d2 = np.minimum(d2, ((x - x[i]) ** 2).sum(-1))
    return np.stack(centres)


def kmeans(
    x: np.ndarray,
    k: int,
    rng: np.random.Generator,
    init: np.ndarray | None = None,
    iters: int = 300,
    tol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means of x (n, d): (centroids (k, d), labels (n,)).

    Args:
        x: points.
        k: clusters.
        rng: draws the k-means++ seeding when ``init`` is None.
        init: (k, d) starting centroids (a warm start: labels keep their meaning).
        iters: iterations at most.
        tol: stop when no centroid moves more than tol x (mean per-feature variance), as
            scikit-learn does.

    A cluster left without points restarts at the point farthest from its centre, as in
    scikit-learn; identical points can still leave the final labels with fewer than k
    clusters, so callers decide whether enough are non-empty.
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < k:
        raise ValueError(f"kmeans needs an (n, d) array with n >= k = {k}, got shape {x.shape}")
    c = _plus_plus(x, k, rng) if init is None else np.array(init, np.float64, copy=True)
    if c.shape != (k, x.shape[1]):
        raise ValueError(f"kmeans init must have shape {(k, x.shape[1])}, got {c.shape}")
    thresh = tol * float(x.var(0).mean())
    labels = np.zeros(len(x), np.int64)
    for _ in range(iters):
        d = np.maximum((x**2).sum(-1)[:, None] - 2 * x @ c.T + (c**2).sum(-1)[None], 0.0)
        labels = d.argmin(-1)
        empty = np.setdiff1d(np.arange(k), labels)
        if len(empty):
            # scikit-learn's rule: an empty cluster restarts at the point farthest from its
            # centre (a stale warm start must not leave a class dead for good)
            far = np.argsort(-d[np.arange(len(x)), labels])[: len(empty)]
            labels[far] = empty
        new = np.stack([x[labels == j].mean(0) for j in range(k)])
        shift = ((new - c) ** 2).sum(-1).max()
        c = new
        if shift <= thresh:
            break
    d = (x**2).sum(-1)[:, None] - 2 * x @ c.T + (c**2).sum(-1)[None]
    return c, d.argmin(-1)


def _contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)
    return table


def nmi(labels: np.ndarray, truth: np.ndarray) -> float:
    """Normalised mutual information I(L; Y) / mean(H(L), H(Y)) (scikit-learn's default
    arithmetic normalisation); 1 = the clusters are the hidden tasks, 0 = independent."""
    table = _contingency(np.asarray(labels), np.asarray(truth))
    p = table / table.sum()
    pa, pb = p.sum(1), p.sum(0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum())
    ha = float(-(pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = float(-(pb[pb > 0] * np.log(pb[pb > 0])).sum())
    if ha == 0.0 and hb == 0.0:
        return 1.0
    if ha == 0.0 or hb == 0.0:
        return 0.0
    return max(0.0, mi / (0.5 * (ha + hb)))


def purity(labels: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of points whose cluster's majority task is their task."""
    table = _contingency(np.asarray(labels), np.asarray(truth))
    return float(table.max(1).sum() / table.sum())
