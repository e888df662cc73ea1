"""Classic control with shifted physics: CartPole and Pendulum (discretised torques).

Each env owns a Gymnasium classic-control env and rewrites its physical constants from the
shift parameters (constructor kwargs, ``reset(options=...)`` or a level,
``reset(options={"level": {...}})``). Shifts are *scales* of the nominal constants, as in
robust-RL papers that write force_mag * (1 + p) with p in [-0.8, 4)
(../shared/specs/robust-r2pvi.md): ``length=1.5`` means 1.5 x the nominal length. Derived
quantities (CartPole's total_mass and polemass_length) are recomputed.

Linear methods get simplex features: normalised Gaussian RBFs over a grid on the (clipped,
scaled) state, one block per action, so phi(s, a) >= 0 and sums to 1.
"""

from __future__ import annotations

import itertools
from typing import Any

import gymnasium
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from envs.registry import EnvError
from envs.robust.base import shift_from_options, validate_shift


class SimplexRBF:
    """phi(s, a) = onehot(a) (x) softmax-normalised RBF(s): nonnegative, sums to 1."""

    def __init__(self, low: np.ndarray, high: np.ndarray, per_dim: int, n_actions: int, horizon: int) -> None:
        self.low, self.high = np.asarray(low, float), np.asarray(high, float)
        grid = np.linspace(0.0, 1.0, per_dim)
        self.centres = np.array(list(itertools.product(grid, repeat=len(self.low))))  # (C, D)
        self.width = 1.0 / max(per_dim - 1, 1)
        self.n_actions = n_actions
        self.feature_dim = n_actions * len(self.centres)
        self.horizon = horizon
        self.theta = None

    def state_features(self, obs: np.ndarray) -> np.ndarray:
        z = (np.clip(obs, self.low, self.high) - self.low) / (self.high - self.low)
        d2 = ((z[:, None, :] - self.centres[None]) ** 2).sum(-1) / (2 * self.width**2)
        w = np.exp(-(d2 - d2.min(axis=1, keepdims=True)))
        return w / w.sum(axis=1, keepdims=True)

    def features(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
        rbf = self.state_features(obs)  # (B, C)
        out = np.zeros((len(obs), self.n_actions, self.feature_dim))
        C = rbf.shape[1]
        for a in range(self.n_actions):
            out[:, a, a * C : (a + 1) * C] = rbf
        return out

    def stop_values(self, obs: np.ndarray) -> np.ndarray:
        return np.full((len(obs), self.n_actions), np.nan)

    def null_states(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(len(obs), dtype=bool)


class _ShiftedClassic(gymnasium.Env):
    """Common facade: an inner Gymnasium env whose constants follow the shift scales."""

    shift_names: tuple[str, ...] = ()
    scale_bounds: tuple[float, float] = (0.2, 5.0)

    def __init__(self, inner: Any, max_episode_steps: int, shift: dict[str, float]) -> None:
        self.inner: Any = inner
        self.max_episode_steps = int(max_episode_steps)
        self.observation_space = inner.observation_space
        self._nominal = {k: float(getattr(inner, k)) for k in self.shift_names}
        self.shift = {k: 1.0 for k in self.shift_names}
        self._set_shift(shift)
        self._t = 0

    def _set_shift(self, shift: dict[str, Any]) -> None:
        scales = validate_shift(type(self).__name__, shift, dict.fromkeys(self.shift_names, self.scale_bounds))
        for name, v in scales.items():
            self.shift[name] = v
            setattr(self.inner, name, self._nominal[name] * v)
        self._derived()

    def _derived(self) -> None:
        """Recompute constants that depend on the shifted ones."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        shift = shift_from_options(options, type(self).__name__)
        if shift:
            self._set_shift(shift)
        self._t = 0
        # Seed the inner env from our generator so reset(seed) alone fixes everything.
        obs, _ = self.inner.reset(seed=int(self.np_random.integers(2**31 - 1)))
        return obs, {"shift": dict(self.shift)}

    def _inner_step(self, inner_action: Any):
        obs, reward, terminated, _, _ = self.inner.step(inner_action)
        self._t += 1
        truncated = self._t >= self.max_episode_steps and not terminated
        return obs, float(reward), bool(terminated), truncated, {"shift": dict(self.shift)}


class ShiftedCartPole(_ShiftedClassic):
    """CartPole-v1 with scaled gravity, masses, pole (half-)length and force."""

    shift_names = ("gravity", "masscart", "masspole", "length", "force_mag")
    scale_bounds = (0.2, 5.0)  # (1 + p) with p in [-0.8, 4]

    def __init__(self, max_episode_steps: int = 500, rbf_per_dim: int = 3, **shift: float) -> None:
        super().__init__(CartPoleEnv(), max_episode_steps, shift)
        self.action_space = self.inner.action_space
        high = np.array([2.4, 3.0, 0.21, 3.5])
        self._features = SimplexRBF(-high, high, rbf_per_dim, 2, max_episode_steps)

    def _derived(self) -> None:
        env: Any = self.inner
        env.total_mass = env.masspole + env.masscart
        env.polemass_length = env.masspole * env.length

    def step(self, action):
        return self._inner_step(int(action))

    def linear_structure(self) -> SimplexRBF:
        return self._features


class ShiftedPendulum(_ShiftedClassic):
    """Pendulum-v1 with scaled g, m, l and ``n_torques`` evenly spaced discrete torques."""

    shift_names = ("g", "m", "l")
    scale_bounds = (0.2, 5.0)

    def __init__(self, n_torques: int = 5, max_episode_steps: int = 200, rbf_per_dim: int = 3, **shift: float) -> None:
        if n_torques < 2:
            raise EnvError(f"ShiftedPendulum: n_torques must be >= 2, got {n_torques}")
        super().__init__(PendulumEnv(), max_episode_steps, shift)
        self.torques = np.linspace(-self.inner.max_torque, self.inner.max_torque, n_torques)
        self.action_space = gymnasium.spaces.Discrete(n_torques)
        high = np.array([1.0, 1.0, 8.0])
        self._features = SimplexRBF(-high, high, rbf_per_dim, n_torques, max_episode_steps)

    def step(self, action):
        return self._inner_step(np.array([self.torques[int(action)]], dtype=np.float32))

    def linear_structure(self) -> SimplexRBF:
        return self._features


class ShiftedPendulumContinuous(_ShiftedClassic):
    """Pendulum-v1 with scaled g, m, l and its own continuous torque in [-2, 2]: the small
    continuous-control case offline agents (PRDC, TD3+BC, BC) learn on in CI."""

    shift_names = ("g", "m", "l")
    scale_bounds = (0.2, 5.0)

    def __init__(self, max_episode_steps: int = 200, **shift: float) -> None:
        super().__init__(PendulumEnv(), max_episode_steps, shift)
        self.action_space = self.inner.action_space  # Box(-2, 2, (1,), float32)

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float32).reshape(1), -self.inner.max_torque, self.inner.max_torque)
        return self._inner_step(a)
