"""American put option (R2PVI paper, section 6; Tamar et al. 2014 setting).

Strike K = 100; each step the price is multiplied by 1.02 with probability ``p_up`` and
by 0.98 otherwise (nominal p_up = 0.5, the shift parameter). H = 20 decisions; action 1
exercises (reward max(0, K - s), episode ends), action 0 holds (reward 0). The start price
is drawn from U[95, 105] at every reset, or fixed by ``s0``.

Linear structure: d hat functions phi_i(s) = max(0, 1 - |s - s_i| / Delta) with
Delta = 100 / d and anchors s_i = 80 + i * Delta (reference code American_put_opt/env.py);
they are the features of *holding*. Exercising has a known value, the payoff, exposed
through ``stop_values`` (the reference compares Q_hold with the payoff the same way).
Hat functions sum to 1 between anchors; outside [80, 80 + (d - 1) Delta] they vanish, so
phi is on the simplex or zero, as the d-rectangular model allows.
"""

from __future__ import annotations

import gymnasium
import numpy as np

from envs.robust.base import CoreState, RobustCore, RobustEnv

UP, DOWN = 1.02, 0.98


class AmericanPutCore(RobustCore):
    """Batched core of the American put option."""

    def __init__(
        self,
        p_up: float = 0.5,
        strike: float = 100.0,
        horizon: int = 20,
        feature_dim: int = 30,
        s0: float | None = None,
        s0_low: float = 95.0,
        s0_high: float = 105.0,
    ) -> None:
        if horizon < 1 or feature_dim < 2:
            raise ValueError(f"AmericanPutOption needs horizon >= 1 and feature_dim >= 2, got {horizon}, {feature_dim}")
        if s0 is None and not 0 < s0_low <= s0_high:
            raise ValueError(f"AmericanPutOption needs 0 < s0_low <= s0_high, got {s0_low}, {s0_high}")
        super().__init__({"p_up": p_up})
        self.strike = float(strike)
        self.horizon = int(horizon)
        self.feature_dim = int(feature_dim)
        self.s0 = None if s0 is None else float(s0)
        self.s0_low, self.s0_high = float(s0_low), float(s0_high)
        self.delta = 100.0 / feature_dim
        self.anchors = 80.0 + self.delta * np.arange(feature_dim)
        self.observation_space = gymnasium.spaces.Box(0.0, np.inf, shape=(1,), dtype=np.float64)
        self.action_space = gymnasium.spaces.Discrete(2)

    @classmethod
    def shift_bounds(cls) -> dict[str, tuple[float, float]]:
        return {"p_up": (0.0, 1.0)}

    @property
    def p_up(self) -> float:
        value = self.shift["p_up"]
        assert value is not None
        return value

    # -- linear structure ---------------------------------------------------------------
    def hat(self, price: np.ndarray) -> np.ndarray:
        """Hat-function features (..., d) of prices (...)."""
        return np.maximum(0.0, 1.0 - np.abs(price[..., None] - self.anchors) / self.delta)

    def features(self, obs: np.ndarray) -> np.ndarray:
        price = np.asarray(obs, dtype=np.float64).reshape(-1)
        phi = np.zeros((len(price), 2, self.feature_dim))
        phi[:, 0] = self.hat(price)
        return phi

    def stop_values(self, obs: np.ndarray) -> np.ndarray:
        price = np.asarray(obs, dtype=np.float64).reshape(-1)
        out = np.full((len(price), 2), np.nan)
        out[:, 1] = np.maximum(0.0, self.strike - price)
        return out

    @property
    def theta(self) -> np.ndarray:
        return np.zeros((self.horizon, self.feature_dim))  # holding pays nothing

    # -- dynamics -----------------------------------------------------------------------
    def reset(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, CoreState]:
        price = np.full(n, self.s0) if self.s0 is not None else rng.uniform(self.s0_low, self.s0_high, n)
        return price[:, None].copy(), CoreState(h=np.zeros(n, dtype=np.int64), fields={"price": price})

    def step(self, state: CoreState, actions: np.ndarray, rng: np.random.Generator):
        price = state.fields["price"]
        exercise = np.asarray(actions) == 1
        reward = np.where(exercise, np.maximum(0.0, self.strike - price), 0.0)
        up = rng.random(len(price)) < self.p_up
        new_price = np.where(exercise, price, price * np.where(up, UP, DOWN))
        new_h = state.h + 1
        terminated = exercise | (new_h >= self.horizon)
        return new_price[:, None].copy(), reward, terminated, CoreState(h=new_h, fields={"price": new_price})

    # -- exact evaluation ----------------------------------------------------------------
    def tree_prices(self, s0: float) -> list[np.ndarray]:
        """Prices of the binomial tree: entry h holds the h + 1 prices after h steps."""
        return [s0 * UP ** np.arange(h + 1) * DOWN ** (h - np.arange(h + 1)) for h in range(self.horizon + 1)]

    def evaluate(self, policy=None, s0: float | None = None, n_quad: int = 101) -> float:
        """Exact expected return on the binomial tree.

        Args:
            policy: callable ``(obs (n, 1), h) -> actions (n,)``; None gives the optimal
                (exercise-when-better) value under the current shift.
            s0: start price; None averages over U[s0_low, s0_high] with an ``n_quad``-point
                midpoint rule (or uses the env's fixed ``s0``).
            n_quad: quadrature points over the start-price distribution.
        """
        if s0 is None and self.s0 is None:
            edges = np.linspace(self.s0_low, self.s0_high, n_quad + 1)
            mids = 0.5 * (edges[1:] + edges[:-1])
            return float(np.mean([self.evaluate(policy, s0=float(m)) for m in mids]))
        start = s0 if s0 is not None else self.s0
        assert start is not None
        prices = self.tree_prices(float(start))
        p = self.p_up
        V = np.zeros(self.horizon + 1)  # value after the last decision: 0
        for h in reversed(range(self.horizon)):
            cont = p * V[1 : h + 2] + (1.0 - p) * V[: h + 1]  # index u = number of up moves
            payoff = np.maximum(0.0, self.strike - prices[h])
            if policy is None:
                V = np.maximum(cont, payoff)
            else:
                act = np.asarray(policy(prices[h][:, None], h))
                V = np.where(act == 1, payoff, cont)
        return float(V[0])


class AmericanPutOption(RobustEnv):
    """Gymnasium env of the American put option; ``p_up`` is the shift."""

    def __init__(
        self,
        p_up: float = 0.5,
        strike: float = 100.0,
        horizon: int = 20,
        feature_dim: int = 30,
        s0: float | None = None,
        s0_low: float = 95.0,
        s0_high: float = 105.0,
    ) -> None:
        super().__init__(
            AmericanPutCore(
                p_up=p_up,
                strike=strike,
                horizon=horizon,
                feature_dim=feature_dim,
                s0=s0,
                s0_low=s0_low,
                s0_high=s0_high,
            )
        )
