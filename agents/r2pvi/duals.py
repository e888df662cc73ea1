"""Per-coordinate duals of the regularised (R2PVI) and constrained (DRPVI) robust Bellman step.

Every function takes a *weight matrix* W (m, n) and next-state values V (n,) and returns
m values, one per row. With W = mu0 as a single row (1, n) they are the exact duals of a
distribution mu0 over n states (tests compare them with brute-force primal solves); with
W = Lambda^-1 Phi^T (d, n) they are R2PVI's ridge-regression estimates nu_h
(Tang, Liu & Xu, ICML 2025, Algorithm 1 and Propositions 4.1-4.3), because every dual is
built from linear functionals E_mu0[f(V)] that the regression estimates coordinate-wise.

chi2 and DRPVI maximise over alpha in [0, H] a function that is a polynomial of degree
<= 2 in alpha between consecutive sorted values of V; the maximum is found *exactly* by
checking every piece's endpoints and stationary point (O(n m) after one sort), not by a
local Nelder-Mead search as in the reference code.
"""

from __future__ import annotations

import numpy as np


def tv(
    W: np.ndarray, V: np.ndarray, lam: float, v_min: float | None = None, left: np.ndarray | None = None
) -> np.ndarray:
    """TV regulariser: E[min(V, min_s V + lam)] (paper Prop. 4.1).

    ``v_min`` is min over *all* states of V; the estimator uses the minimum over the
    dataset's next states (alpha_hat in Algorithm 1). ``left`` (k, m) applies the weights
    ``left @ W`` without forming them: Lambda^-1 (Phi^T f) costs O(nd), Lambda^-1 Phi^T O(nd^2).
    """
    alpha = (V.min() if v_min is None else v_min) + lam
    out = W @ np.minimum(V, alpha)
    return out if left is None else left @ out


def kl(
    W: np.ndarray, V: np.ndarray, lam: float, floor: float | None = None, left: np.ndarray | None = None
) -> np.ndarray:
    """KL regulariser: -lam log E[exp(-V / lam)] (paper Prop. 4.2).

    The estimate of E[exp(-V/lam)] can be <= 0 coordinate-wise; the paper floors it at
    exp(-H / lam), passed as ``floor`` (None = no floor, exact population dual). ``left``
    as in :func:`tv`.
    """
    shift = V.min()  # log-sum-exp stabilisation: exp(-(V - shift)/lam) <= 1
    m = W @ np.exp(-(V - shift) / lam)
    if left is not None:
        m = left @ m
    if floor is not None:
        m = np.maximum(m, floor * np.exp(shift / lam))
    return shift - lam * np.log(m)


def _pieces(W: np.ndarray, V: np.ndarray):
    """Prefix sums that make z1(alpha) = W min(V, alpha) affine between sorted values of V.

    For alpha in the k-th piece (k values of V at or below alpha):
    W min(V, alpha) = P1[k] + alpha * Q[k], W min(V, alpha)^2 = P2[k] + alpha^2 * Q[k].
    """
    order = np.argsort(V, kind="stable")
    v = V[order]
    Ws = W[:, order]  # (m, n)
    zeros = np.zeros((W.shape[0], 1))
    P1 = np.concatenate([zeros, np.cumsum(Ws * v, axis=1)], axis=1)  # (m, n+1)
    P2 = np.concatenate([zeros, np.cumsum(Ws * v**2, axis=1)], axis=1)
    total = Ws.sum(axis=1, keepdims=True)
    Q = total - np.concatenate([zeros, np.cumsum(Ws, axis=1)], axis=1)
    return v, P1, P2, Q


def chi2(W: np.ndarray, V: np.ndarray, lam: float, alpha_max: float, mode: str = "sup") -> np.ndarray:
    """chi2 regulariser: sup_alpha E[V]_alpha - Var([V]_alpha) / (4 lam), [V]_a = min(V, a).

    Args:
        W: (m, n) weights.
        V: (n,) values.
        lam: regularisation strength.
        alpha_max: alpha ranges over [0, alpha_max] (the paper's [0, H]).
        mode: ``"sup"`` (paper, Prop. 4.3) or ``"reference_min"`` (the reference code
            minimises the same objective; offered for reproducing its numbers).
    """
    if mode not in ("sup", "reference_min"):
        raise ValueError(f"chi2 mode must be 'sup' or 'reference_min', got {mode!r}")
    v, P1, P2, Q = _pieces(W, V)
    # Piece k (k sorted values at or below alpha) spans [v_{k-1}, v_k], intersected with
    # [0, alpha_max]; pieces that miss that range are invalid.
    lo = np.maximum(np.concatenate([[-np.inf], v]), 0.0)
    hi = np.minimum(np.concatenate([v, [np.inf]]), alpha_max)
    a, b, c = P1, Q, P2  # z1 = a + b al, z2 = c + b al^2
    # g(al) = z1 - (z2 - z1^2) / (4 lam) = A2 al^2 + A1 al + A0
    A2 = -(b - b**2) / (4 * lam)
    A1 = b + a * b / (2 * lam)
    A0 = a - (c - a**2) / (4 * lam)

    def g(al: np.ndarray) -> np.ndarray:
        return A2 * al**2 + A1 * al + A0

    valid = (hi >= lo)[None, None, :]
    lo = np.minimum(lo, hi)
    cands = [g(np.broadcast_to(lo, A2.shape)), g(np.broadcast_to(hi, A2.shape))]
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(A2 != 0, -A1 / (2 * A2), lo)
    cands.append(g(np.clip(stat, lo, hi)))
    vals = np.stack(cands)  # (3, m, n+1)
    if mode == "sup":
        return np.where(valid, vals, -np.inf).max(axis=(0, 2))
    return np.where(valid, vals, np.inf).min(axis=(0, 2))


def tv_constrained(W: np.ndarray, V: np.ndarray, rho: float, alpha_max: float, min_v_term: bool = True) -> np.ndarray:
    """DRPVI's TV-constrained dual: max_alpha W[V]_alpha - rho (alpha - min_s [V]_alpha).

    ``min_v_term=False`` drops min_s [V]_alpha, as the reference code does.
    """
    v, P1, _, Q = _pieces(W, V)
    alphas = np.concatenate([[0.0], np.clip(v, 0.0, alpha_max), [alpha_max]])  # all breakpoints
    # z(alpha_j): alpha_j = 0 lies in piece 0; alpha_j = v_k in piece k (k values <= it);
    # alpha_max in the last piece whose lower edge is below it.
    k = np.searchsorted(v, alphas, side="right")
    z = P1[:, k] + alphas * Q[:, k]  # (m, n+2)
    penalty = alphas - (np.minimum(v[0], alphas) if min_v_term else 0.0)
    return (z - rho * penalty).max(axis=1)
