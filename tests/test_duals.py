"""Every dual against a brute-force primal solve (scipy), on random distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog, minimize

from agents.r2pvi import duals

CASES = [np.random.default_rng(s) for s in range(6)]


def _case(rng, n=6, full_support=True):
    p = rng.dirichlet(np.ones(n))
    if not full_support:
        p[rng.integers(n)] = 0.0
        p /= p.sum()
    V = rng.uniform(0, 3, n)
    return p, V


def _tv_lp(p, V, lam=0.0, rho=None):
    """min_mu V.mu + lam TV(mu, p) [s.t. TV(mu, p) <= rho] over the simplex, as an LP in
    x = [mu, t] with t >= |mu - p| and TV = sum(t) / 2."""
    n = len(p)
    c = np.concatenate([V, np.full(n, lam / 2)])
    A = np.block([[np.eye(n), -np.eye(n)], [-np.eye(n), -np.eye(n)]])
    b = np.concatenate([p, -p])
    if rho is not None:
        A = np.vstack([A, np.concatenate([np.zeros(n), np.full(n, 0.5)])])
        b = np.concatenate([b, [rho]])
    eq = np.concatenate([np.ones(n), np.zeros(n)])[None]
    return linprog(c, A_ub=A, b_ub=b, A_eq=eq, b_eq=[1.0], bounds=[(0, None)] * (2 * n)).fun


def _simplex_min(f, p):
    support = p > 0
    n = int(support.sum())
    best = np.inf
    for start in [p[support], np.full(n, 1 / n)]:
        res = minimize(
            lambda m: f(m, support),
            start,
            method="SLSQP",
            bounds=[(0, 1)] * n,
            constraints=[{"type": "eq", "fun": lambda m: m.sum() - 1}],
            options={"ftol": 1e-12, "maxiter": 500},
        )
        best = min(best, res.fun)
    return best


@pytest.mark.parametrize("rng", CASES)
@pytest.mark.parametrize("lam", [0.05, 0.5, 2.0])
def test_tv_regularised_dual_matches_lp(rng, lam):
    p, V = _case(rng)
    assert duals.tv(p[None], V, lam)[0] == pytest.approx(_tv_lp(p, V, lam=lam), abs=1e-7)


@pytest.mark.parametrize("rng", CASES)
@pytest.mark.parametrize("lam", [0.1, 1.0])
def test_kl_dual_matches_primal(rng, lam):
    p, V = _case(rng, full_support=False)

    def f(m, s):
        m = np.maximum(m, 1e-300)
        return m @ V[s] + lam * np.sum(m * np.log(m / p[s]))

    assert duals.kl(p[None], V, lam)[0] == pytest.approx(_simplex_min(f, p), abs=1e-6)


@pytest.mark.parametrize("rng", CASES)
@pytest.mark.parametrize("lam", [0.1, 0.5, 3.0])
def test_chi2_dual_is_the_supremum_and_matches_primal(rng, lam):
    p, V = _case(rng, full_support=False)

    def f(m, s):
        return m @ V[s] + lam * np.sum((m - p[s]) ** 2 / p[s])

    primal = _simplex_min(f, p)
    exact = duals.chi2(p[None], V, lam, alpha_max=3.0)[0]
    assert exact == pytest.approx(primal, abs=1e-6)
    # A fine grid over alpha never beats the exact supremum (and gets close to it).
    grid = np.linspace(0, 3, 30001)
    Va = np.minimum(V[None], grid[:, None])
    g = Va @ p - ((Va**2) @ p - (Va @ p) ** 2) / (4 * lam)
    assert g.max() <= exact + 1e-12
    assert g.max() == pytest.approx(exact, abs=1e-6)
    # The reference code's minimisation gives a (weakly) smaller value, never the dual.
    assert duals.chi2(p[None], V, lam, 3.0, mode="reference_min")[0] <= exact + 1e-12


@pytest.mark.parametrize("rng", CASES)
@pytest.mark.parametrize("rho", [0.0, 0.05, 0.3, 1.0])
def test_tv_constrained_dual_matches_lp(rng, rho):
    p, V = _case(rng)
    assert duals.tv_constrained(p[None], V, rho, alpha_max=3.0)[0] == pytest.approx(_tv_lp(p, V, rho=rho), abs=1e-7)


def test_dropping_the_min_v_term_changes_drpvi_when_min_v_is_positive():
    p, V = np.array([0.5, 0.5]), np.array([1.0, 2.0])
    exact = duals.tv_constrained(p[None], V, 0.3, 3.0)[0]
    reference = duals.tv_constrained(p[None], V, 0.3, 3.0, min_v_term=False)[0]
    assert exact == pytest.approx(1.5 - 0.3 * 1.0)  # move 0.3 mass from V=2 to V=1
    assert reference < exact


def test_duals_are_rowwise_for_regression_weights():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 50))
    V = rng.uniform(0, 3, 50)
    for fn in (
        lambda w: duals.chi2(w, V, 0.3, 3.0),
        lambda w: duals.tv_constrained(w, V, 0.2, 3.0),
        lambda w: duals.kl(w, V, 0.5, floor=1e-6),
        lambda w: duals.tv(w, V, 0.1),
    ):
        full = fn(W)
        rows = np.array([fn(W[i : i + 1])[0] for i in range(4)])
        np.testing.assert_allclose(full, rows, rtol=1e-12, atol=1e-12)
