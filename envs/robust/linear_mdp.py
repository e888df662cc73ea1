"""The simulated linear MDP of Liu & Xu (2024), used by R2PVI's figure 1(a-c).

States x1..x5 (observations 0..4), start x1, horizon H = 3; x4 is a failure state (value
0 for every policy), x5 a good absorbing state. Actions are the 16 vectors of {-1, 1}^4
in ``itertools.product`` order; xi = (xi_norm / 4) * 1 so <xi, a> lies in [-xi_norm, xi_norm].

Features (d = 4): for x_k, k <= 3, slot k holds 1 - delta - <xi, a> and slot 4 holds
delta + <xi, a>; phi(x4) = e3, phi(x5) = e4. Rewards r_h = phi^T theta_h with theta_0 = 0,
theta_1 = theta_2 = e4.

Transitions from x_k (k <= 3): the slot-k mass goes to x_{k+1} w.p. 0.999 (to x4 when
k = 3) and to x4 w.p. 0.001; the slot-4 mass goes to x5. The shift ``q`` replaces the
first step's kernel (h = 0) by: x2 w.p. phi_1, x4 w.p. q * phi_4, x5 w.p. (1 - q) * phi_4;
``q=None`` is the nominal kernel (reference code, Simulated_Linear_MDP/env.py).
"""

from __future__ import annotations

import itertools

import gymnasium
import numpy as np

from envs.robust.base import CoreState, RobustCore, RobustEnv

N_STATES = 5
X1, X2, X3, X4, X5 = range(N_STATES)
ACTIONS = np.array(list(itertools.product([-1, 1], repeat=4)), dtype=np.float64)  # (16, 4)
FAIL_LEAK = 0.001


class LinearMDPCore(RobustCore):
    """Batched core of the simulated linear MDP."""

    horizon = 3
    feature_dim = 4

    def __init__(self, q: float | None = None, delta: float = 0.3, xi_norm: float = 0.2) -> None:
        if not 0.0 <= xi_norm <= delta <= 1.0 - xi_norm:
            raise ValueError(
                f"RobustLinearMDP needs 0 <= xi_norm <= delta <= 1 - xi_norm so features stay on the "
                f"simplex; got delta={delta}, xi_norm={xi_norm}"
            )
        super().__init__({"q": q})
        self.delta = float(delta)
        self.xi_norm = float(xi_norm)
        self.observation_space = gymnasium.spaces.Discrete(N_STATES)
        self.action_space = gymnasium.spaces.Discrete(len(ACTIONS))
        xi = np.full(4, xi_norm / 4.0)
        self._xa = ACTIONS @ xi  # (16,) <xi, a>
        # Feature table (state, action, d), precomputed once.
        table = np.zeros((N_STATES, len(ACTIONS), 4))
        for k in (X1, X2, X3):
            table[k, :, k] = 1.0 - self.delta - self._xa
            table[k, :, 3] = self.delta + self._xa
        table[X4, :, 2] = 1.0
        table[X5, :, 3] = 1.0
        self._table = table

    @classmethod
    def shift_bounds(cls) -> dict[str, tuple[float, float]]:
        return {"q": (0.0, 1.0)}

    # -- linear structure ---------------------------------------------------------------
    def features(self, obs: np.ndarray) -> np.ndarray:
        return self._table[np.asarray(obs, dtype=np.int64)]

    def null_states(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs) == X4

    @property
    def theta(self) -> np.ndarray:
        theta = np.zeros((self.horizon, 4))
        theta[1:, 3] = 1.0
        return theta

    # -- dynamics -----------------------------------------------------------------------
    def transition_matrix(self, h: int) -> np.ndarray:
        """P_h(s' | s, a) as an array (S, A, S) under the current shift."""
        phi = self._table  # (S, A, 4)
        P = np.zeros((N_STATES, len(ACTIONS), N_STATES))
        P[X4, :, X4] = 1.0
        P[X5, :, X5] = 1.0
        for k in (X1, X2, X3):
            mass_k, mass_4 = phi[k, :, k], phi[k, :, 3]
            q = self.shift.get("q")
            if h == 0 and k == X1 and q is not None:
                P[k, :, X2] = mass_k
                P[k, :, X4] = q * mass_4
                P[k, :, X5] = (1.0 - q) * mass_4
                continue
            nxt = k + 1 if k < X3 else X4
            P[k, :, nxt] += (1.0 - FAIL_LEAK) * mass_k if k < X3 else mass_k
            if k < X3:
                P[k, :, X4] += FAIL_LEAK * mass_k
            P[k, :, X5] += mass_4
        return P

    def reset(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, CoreState]:
        s = np.full(n, X1, dtype=np.int64)
        return s.copy(), CoreState(h=np.zeros(n, dtype=np.int64), fields={"s": s})

    def step(self, state: CoreState, actions: np.ndarray, rng: np.random.Generator):
        s, h = state.fields["s"], state.h
        actions = np.asarray(actions, dtype=np.int64)
        phi = self._table[s, actions]  # (B, 4)
        reward = np.einsum("bd,bd->b", phi, self.theta[np.minimum(h, self.horizon - 1)])
        probs = self._P[np.minimum(h, self.horizon - 1), s, actions]  # (B, S')
        u = rng.random(len(s))
        nxt = np.minimum((probs.cumsum(axis=1) < u[:, None]).sum(axis=1), N_STATES - 1)
        new_h = h + 1
        return nxt.copy(), reward, new_h >= self.horizon, CoreState(h=new_h, fields={"s": nxt})

    @property
    def _P(self) -> np.ndarray:
        """All kernels (H, S, A, S) under the current shift, cached per shift value."""
        key = self.shift.get("q")
        cache = self.__dict__.setdefault("_P_cache", {})
        if key not in cache:
            cache[key] = np.stack([self.transition_matrix(h) for h in range(self.horizon)])
        return cache[key]

    # -- exact evaluation ----------------------------------------------------------------
    def evaluate(self, policy=None) -> float:
        """Exact expected return from x1 under the current shift.

        Args:
            policy: callable ``(obs (n,), h) -> actions (n,)`` (any per-step deterministic
                policy, e.g. a fitted learner's greedy policy); None gives the optimum.
        """
        V = np.zeros(N_STATES)
        R = np.einsum("sad,hd->hsa", self._table, self.theta)  # (H, S, A)
        states = np.arange(N_STATES)
        for h in reversed(range(self.horizon)):
            Q = R[h] + self._P[h] @ V  # (S, A)
            V = Q.max(axis=1) if policy is None else Q[states, np.asarray(policy(states, h))]
        return float(V[X1])


class RobustLinearMDP(RobustEnv):
    """Gymnasium env of the simulated linear MDP; ``q`` is the shift (None = nominal)."""

    def __init__(self, q: float | None = None, delta: float = 0.3, xi_norm: float = 0.2) -> None:
        super().__init__(LinearMDPCore(q=q, delta=delta, xi_norm=xi_norm))
