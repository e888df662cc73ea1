"""Shared shape of the robust-MDP environments: a batched numpy core plus a Gymnasium facade.

The core steps B copies of the MDP at once (arrays of shape (B, ...)); the facade is the
B = 1 Gymnasium view of the same core, so a batched rollout and a Gymnasium rollout with
the same generator draws give the same trajectory. A shift is data: a constructor kwarg,
a ``reset(options={name: value})`` entry or the same dict as a level,
``reset(options={"level": {name: value}})`` (level type ``"shift"``, see
:mod:`envs.levels`), never a subclass.

Linear methods (R2PVI, PEVI, DRPVI) read the env's *linear structure*:
``features(obs) -> (B, A, d)`` with phi >= 0 and sum_i phi_i = 1 (the d-rectangular
model), ``stop_values(obs) -> (B, A)`` for actions whose value is known exactly (an
option's exercise payoff; NaN where the value is to be learned), ``null_states(obs)``
for states whose value is known to be 0 (failure / absorbing-zero), and ``theta`` (H, d)
when the reward parameters are known (None otherwise).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np

from envs.registry import EnvError


def validate_shift(owner: str, shift: Mapping[str, Any], ranges: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """Every entry of ``shift`` as a float inside its range, checked before any is applied
    (a bad level leaves the physics as they were); EnvError names the problem."""
    out: dict[str, float] = {}
    for name, value in shift.items():
        if name not in ranges:
            raise EnvError(f"{owner}: unknown shift {name!r} (allowed: {list(ranges)})")
        try:
            v = float(value)
        except (TypeError, ValueError) as exc:
            raise EnvError(f"{owner}: shift {name}={value!r} is not a number") from exc
        lo, hi = ranges[name]
        if not lo <= v <= hi:
            raise EnvError(f"{owner}: shift {name}={v} outside the scale range [{lo}, {hi}]")
        out[name] = v
    return out


def shift_from_options(options: Mapping[str, Any] | None, owner: str) -> dict[str, Any]:
    """The shift a ``reset(options=...)`` asks for, from shift entries and/or a level.

    A level of a shifted env is its dict of shift parameters, so ``{"level": {"q": 0.3}}``
    and ``{"q": 0.3}`` must mean the same thing; both go through this one function so the
    two forms cannot drift apart. Values are validated by the caller (the env's own shift
    validation), which names an unknown parameter or an out-of-range value.

    Args:
        options: the reset options; None or empty means "keep the current shift".
        owner: class name used in error messages.

    Returns:
        Shift parameter -> value (possibly empty).

    Raises:
        EnvError: the level is not a mapping with string keys, or a parameter is given both
            in the level and directly (two knobs for one thing).
    """
    if not options:
        return {}
    shift = {k: v for k, v in options.items() if k != "level"}
    if "level" not in options:
        return shift
    level = options["level"]
    if not isinstance(level, Mapping) or not all(isinstance(k, str) for k in level):
        raise EnvError(f"{owner}: options['level'] must be a dict of shift parameter names to values, got {level!r}")
    both = sorted(set(level) & set(shift))
    if both:
        raise EnvError(f"{owner}: shift parameters {both} given both in options['level'] and directly; give each once")
    return {**level, **shift}


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

    ``reset(options={shift_name: value})`` or ``reset(options={"level": {shift_name: value}})``
    changes the shift for this and later episodes, which is how evaluators sweep a grid or
    a level set without rebuilding the env.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium.Env declares it an instance attribute

    def __init__(self, core: RobustCore) -> None:
        self.core = core
        self.observation_space = core.observation_space
        self.action_space = core.action_space
        self._state: CoreState | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        shift = shift_from_options(options, type(self).__name__)
        if shift:
            self.core = self.core.with_shift(**shift)
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
