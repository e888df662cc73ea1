"""Nearest-neighbour search behind one small interface (PRDC's dataset constraint).

An index is built once over a fixed point set (PRDC: every dataset sample's
``[beta * s_norm, a]``) and answers batches of queries with the row of each query's nearest
point (Euclidean). It lives on the learner that built it: there is no module-level or
class-level cache, so two learners (two datasets, two betas) can never share or overwrite
an index (d3rlpy keeps its sklearn index as a class attribute, ../shared/specs/offline-prdc.md).

- :class:`KDTreeIndex` (default): scipy's cKDTree, exact with ``eps=0`` (the PRDC reference
  builds a scipy KDTree over all N points); ``eps > 0`` is the approximate option: each
  returned point is within (1 + eps) of the true nearest distance (cKDTree's guarantee),
  measured 4-17 ms vs 29-213 ms per 256 queries over 1M points here.
- :class:`GemmIndex`: exact brute force at float32 GEMM speed. Scores every point with one
  float32 matrix product per block, keeps the minimum of each run of ``sub`` points, and
  re-checks in float64 every run whose float32 minimum lies within a proven rounding bound
  of the best one, so the answer is the float64 answer. Its cost does not depend on where
  the keys lie. A k-d tree's does: on HalfCheetah's 23-dim keys [beta s, pi(s)] of a
  trained actor, cKDTree took 708 ms per 256 keys against 3 ms for keys next to the data
  (benchmarks/results/prdc_vs_d3rlpy_actor_keys.md).
- :class:`BruteForceIndex`: chunked brute force in numpy float64, the reference the tests
  compare against. It ranks by the expanded ||q||^2 - 2 q.x + ||x||^2, so points whose
  distances differ by less than float64's rounding of the norms (1e-13 on a tight cluster)
  can be misordered; GemmIndex's re-check computes the distances directly and does not.

``make_index("auto", ...)`` picks cKDTree up to 15 key dimensions and GemmIndex above, the
rule scikit-learn's ``algorithm="auto"`` uses (brute force when ``n_features > 15``; d3rlpy's
PRDC leaves sklearn on that default), and cKDTree whenever ``eps > 0``. Every exact kind returns
the same rows (up to exact distance ties), so the choice changes speed, not training.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

KINDS = ("auto", "kdtree", "gemm", "brute")
AUTO_MAX_TREE_DIMS = 15  # scikit-learn NearestNeighbors(algorithm="auto"): brute force above 15 features


class NearestIndex(Protocol):
    def query(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distances (B,), rows (B,)) of each key's nearest point."""
        ...


class KDTreeIndex:
    """scipy cKDTree over ``points`` (N, d); exact unless ``eps > 0``."""

    def __init__(self, points: np.ndarray, eps: float = 0.0, leafsize: int = 16, workers: int = 1) -> None:
        from scipy.spatial import cKDTree

        if eps < 0:
            raise ValueError(f"nearest-neighbour eps must be >= 0 (0 = exact), got {eps}")
        self.points = np.ascontiguousarray(points, dtype=np.float64)
        self.eps, self.workers = float(eps), int(workers)
        self.tree = cKDTree(self.points, leafsize=leafsize, balanced_tree=False, compact_nodes=False)

    def query(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d, i = self.tree.query(np.asarray(keys, np.float64), k=1, eps=self.eps, workers=self.workers)
        return d, i.astype(np.int64)


class BruteForceIndex:
    """Exact search by ||q||^2 - 2 q.p + ||p||^2 over chunks of points, then the winner's
    distance recomputed directly (no cancellation error in the reported distance)."""

    def __init__(self, points: np.ndarray, chunk: int = 65536) -> None:
        self.points = np.ascontiguousarray(points, dtype=np.float64)
        self.sq = (self.points**2).sum(1)
        self.chunk = int(chunk)

    def query(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(keys, np.float64)
        best_d = np.full(len(q), np.inf)
        best_i = np.zeros(len(q), np.int64)
        qq = (q**2).sum(1)[:, None]
        for start in range(0, len(self.points), self.chunk):
            p = self.points[start : start + self.chunk]
            d2 = qq - 2.0 * q @ p.T + self.sq[None, start : start + len(p)]
            j = d2.argmin(1)
            dj = d2[np.arange(len(q)), j]
            better = dj < best_d
            best_d[better], best_i[better] = dj[better], start + j[better]
        dist = np.sqrt(((self.points[best_i] - q) ** 2).sum(1))
        return dist, best_i


class GemmIndex:
    """Exact nearest neighbours by float32 GEMM with a float64 re-check.

    With keys and points centred on the points' mean, f(x) = ||x||^2 - 2 q.x ranks the points
    as the distance does. Its float32 value f~(x) (inputs rounded to float32, the dot product
    in any summation order, ||x||^2 rounded once) satisfies |f~(x) - f(x)| <= e_q with
    e_q = 2 (gamma_d + 8u) (R^2 + ||q||^2), u = 2^-24, gamma_d = d u / (1 - d u) and
    R^2 = max ||x||^2 (Higham, Accuracy and Stability of Numerical Algorithms, eq. 3.5 for
    the dot product; the other terms are one rounding each; the factor 2 covers the
    second-order terms), plus 8 * 2^-52 ||c|| (R + ||q||) for centring in float64 on the mean
    c. So if m is the smallest f~, every point with f~(x) > m + 2 e_q is strictly farther than
    the point attaining m. The search keeps the minimum of f~ over each run of ``sub``
    consecutive points and recomputes, directly in float64 on the uncentred points, the
    distances of the runs whose minimum is within m + 2 e_q: usually one or two runs per key.
    """

    def __init__(self, points: np.ndarray, block: int = 2048, sub: int = 128) -> None:
        import torch

        if block % sub:
            raise ValueError(f"GemmIndex: block ({block}) must be a multiple of sub ({sub})")
        self.points = np.ascontiguousarray(points, dtype=np.float64)
        n, d = self.points.shape
        self.n, self.block, self.sub = n, int(block), int(sub)
        self.center = self.points.mean(0)
        centred = self.points - self.center
        self.r2 = float((centred**2).sum(1).max())
        self.c_norm = float(np.sqrt((self.center**2).sum()))
        gamma = d * 2.0**-24 / (1 - d * 2.0**-24)
        self.bound = 2.0 * (gamma + 8 * 2.0**-24)  # e_q = bound * (R^2 + ||q||^2)
        pad = -n % sub  # padded rows sit far away and never win a run
        far = np.full((pad, d), 1e15)
        self.runs64 = np.concatenate([self.points, self.center + far]).reshape(-1, sub, d)  # (runs, sub, d)
        p32 = torch.from_numpy(np.concatenate([centred, far]).astype(np.float32))
        self.pt32 = p32.t().contiguous()  # (d, N'): one GEMM per block of columns
        self.sq32 = (p32.double() ** 2).sum(1).float()  # ||x'||^2, rounded once

    def query(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        keys = np.asarray(keys, np.float64)
        if not np.isfinite(keys).all():
            raise ValueError("nearest-neighbour keys contain NaN or inf (a diverged actor or unnormalised state?)")
        q = keys - self.center
        q32 = torch.from_numpy(q.astype(np.float32))
        width = self.pt32.shape[1]
        run_min = torch.empty(len(q), width // self.sub)
        for s in range(0, width, self.block):
            f = torch.addmm(self.sq32[s : s + self.block], q32, self.pt32[:, s : s + self.block], alpha=-2.0)
            r0 = s // self.sub
            run_min[:, r0 : r0 + f.shape[1] // self.sub] = f.view(len(q), -1, self.sub).amin(2)
        rm = run_min.numpy().astype(np.float64)
        m = rm.min(1)
        qq = (q**2).sum(1)
        slack = 2.0 * (self.bound * (self.r2 + qq) + 8 * 2.0**-52 * self.c_norm * (np.sqrt(self.r2) + np.sqrt(qq)))
        qi, ri = np.nonzero(rm <= (m + slack)[:, None])  # candidate (key, run) pairs
        d2 = ((self.runs64[ri] - keys[qi, None, :]) ** 2).sum(2)  # (pairs, sub), directly in float64
        j = d2.argmin(1)
        val, row = d2[np.arange(len(qi)), j], ri * self.sub + j
        order = np.lexsort((row, val, qi))  # per key: smallest distance, then lowest row
        first = order[np.r_[True, qi[order][1:] != qi[order][:-1]]]
        return np.sqrt(val[first]), row[first].astype(np.int64)


def make_index(kind: str, points: np.ndarray, eps: float = 0.0) -> KDTreeIndex | GemmIndex | BruteForceIndex:
    """An index of ``kind`` (see the module docstring; "auto" picks by key dimension)."""
    if kind not in KINDS:
        raise ValueError(f"nearest-neighbour kind must be one of {list(KINDS)}, got {kind!r}")
    if eps and kind not in ("auto", "kdtree"):
        raise ValueError(f"nearest-neighbour eps applies to kind 'kdtree' only ({kind!r} is exact)")
    dims = np.asarray(points).shape[1]
    if kind == "kdtree" or (kind == "auto" and (eps or dims <= AUTO_MAX_TREE_DIMS)):
        return KDTreeIndex(points, eps=eps)
    if kind in ("gemm", "auto"):
        return GemmIndex(points)
    return BruteForceIndex(points)
