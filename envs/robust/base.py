"""Shared shape of the robust-MDP environments: a batched numpy core plus a Gymnasium facade.

The core steps B copies of the MDP at once (arrays of shape (B, ...)); the facade is the
B = 1 Gymnasium view of the same core, so a batched rollout and a Gymnasium rollout with
the same generator draws give the same trajectory. A shift is data: a constructor kwarg
or a ``reset(options={name: value})`` entry, never a subclass.

Linear methods (R2PVI, PEVI, DRPVI) read the env's *linear structure*:
``features(obs) -> (B, A, d)`` with phi >= 0 and sum_i phi_i = 1 (the d-rectangular
model), ``stop_values(obs) -> (B, A)`` for actions whose value is known exactly (an
option's exercise payoff; NaN where the value is to be learned), ``null_states(obs)``
for states whose value is known to be 0 (failure / absorbing-zero), and ``theta`` (H, d)
when the reward parameters are known (None otherwise).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np

from envs.registry import EnvError


@dataclass
class CoreState:
    """The per-copy state of a batched core; ``fields`` are arrays with leading dim B."""

    h: np.ndarray
    fields: dict[str, np.ndarray]


class RobustCore(ABC):
    """Batched numpy dynamics of one robust MDP family under a fixed shift."""

    observation_space: gymnasium.Space
    action_space: gymnasium.spaces.Discrete
    horizon: int
    feature_dim: int
    shift_names: tuple[str, ...] = ()

    def __init__(self, shift: dict[str, float | None]) -> None:
        self.shift = self.validate_shift(shift)

    # -- shifts -------------------------------------------------------------------------
    @classmethod
    def shift_bounds(cls) -> dict[str, tuple[float, float]]:
        """Inclusive bounds of every shift parameter."""
        return {}

    @classmethod
    def validate_shift(cls, shift: dict[str, Any]) -> dict[str, float | None]:
        bounds = cls.shift_bounds()
        out: dict[str, float | None] = {}
        for name, value in shift.items():
            if name not in bounds:
                raise EnvError(f"{cls.__name__}: unknown shift parameter {name!r} (allowed: {sorted(bounds)})")
            if value is None:
                out[name] = None
                continue
            lo, hi = bounds[name]
            try:
                v = float(value)
            except (TypeError, ValueError) as exc:
                raise EnvError(f"{cls.__name__}: shift {name}={value!r} is not a number") from exc
            if not (lo <= v <= hi):
                raise EnvError(f"{cls.__name__}: shift {name}={v} outside [{lo}, {hi}]")
            out[name] = v
        return out

    def with_shift(self, **shift: float | None) -> RobustCore:
        """A copy of this core under another shift (other parameters unchanged)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.shift = {**self.shift, **self.validate_shift(shift)}
        return clone

    # -- dynamics -------------------------------------------------------------------------
    @abstractmethod
    def reset(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, CoreState]:
        """Initial observations (n, ...) and state."""

    @abstractmethod
    def step(
        self, state: CoreState, actions: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, CoreState]:
        """One step of every copy: (obs, reward, terminated, new state)."""

    # -- linear structure ----------------------------------------------------------------
    @abstractmethod
    def features(self, obs: np.ndarray) -> np.ndarray:
        """phi(s, a) for every action: (B, A, d), each row on the simplex (or all zeros)."""

    def stop_values(self, obs: np.ndarray) -> np.ndarray:
        """Known action values (B, A); NaN where the value must be learned."""
        return np.full((len(obs), int(self.action_space.n)), np.nan)

    def null_states(self, obs: np.ndarray) -> np.ndarray:
        """(B,) True where the state's value is known to be 0 for every policy."""
        return np.zeros(len(obs), dtype=bool)

    @property
    def theta(self) -> np.ndarray | None:
        """Known reward parameters (H, d), r_h(s, a) = phi(s, a)^T theta_h; None if unknown."""
        return None


class RobustEnv(gymnasium.Env):
    """Gymnasium facade (B = 1) over a :class:`RobustCore`.

    ``reset(options={shift_name: value})`` changes the shift for this and later episodes,
    which is how evaluators sweep a grid without rebuilding the env.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium.Env declares it an instance attribute

    def __init__(self, core: RobustCore) -> None:
        self.core = core
        self.observation_space = core.observation_space
        self.action_space = core.action_space
        self._state: CoreState | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options:
            self.core = self.core.with_shift(**options)
        obs, self._state = self.core.reset(self.np_random, 1)
        return self._single(obs), {"h": 0, **self._shift_info()}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise EnvError(f"action {action!r} is not in {self.action_space}")
        obs, reward, terminated, self._state = self.core.step(self._state, np.asarray([action]), self.np_random)
        info = {"h": int(self._state.h[0]), **self._shift_info()}
        return self._single(obs), float(reward[0]), bool(terminated[0]), False, info

    def _single(self, obs: np.ndarray) -> Any:
        value = obs[0]
        if isinstance(self.observation_space, gymnasium.spaces.Discrete):
            return int(value)
        return np.asarray(value, dtype=self.observation_space.dtype)

    def _shift_info(self) -> dict[str, Any]:
        return {"shift": dict(self.core.shift)}

    # Linear structure of the current core, for linear methods and evaluators.
    def linear_structure(self) -> RobustCore:
        return self.core
