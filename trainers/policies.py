"""Picklable policies that travel to rollout actors (``act(obs, h, rng) -> actions``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.r2pvi import LinearVI


class RandomPolicy:
    """Uniform over ``n_actions`` discrete actions."""

    def __init__(self, n_actions: int) -> None:
        self.n_actions = int(n_actions)

    def act(self, obs: np.ndarray, h: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self.n_actions, size=len(obs))


class UniformBoxPolicy:
    """Uniform over a Box action space (D4RL's "random" datasets)."""

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        self.low, self.high = np.asarray(low, np.float32), np.asarray(high, np.float32)

    def act(self, obs: np.ndarray, h: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=(len(obs), *self.low.shape)).astype(np.float32)


class ConstantPolicy:
    """Always the same action (the option's behaviour policy holds)."""

    def __init__(self, action: int) -> None:
        self.action = int(action)

    def act(self, obs: np.ndarray, h: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(len(obs), self.action, dtype=np.int64)


class LinearGreedyPolicy:
    """argmax_a Q_h(s, a) of a fitted linear learner, with the env's features."""

    def __init__(self, learner: LinearVI, structure: Any) -> None:
        self.learner = learner
        self.structure = structure

    def greedy(self, obs: np.ndarray, h: int) -> np.ndarray:
        """The (deterministic) action at step h; the form exact evaluators take."""
        s = self.structure
        return self.learner.act(s.features(obs), s.stop_values(obs), min(h, self.learner.horizon - 1))

    def act(self, obs: np.ndarray, h: int, rng: np.random.Generator | None) -> np.ndarray:
        return self.greedy(obs, h)


def parse_behaviour(text: str) -> tuple[str, int | None]:
    """'random' -> ('random', None); 'constant:0' -> ('constant', 0)."""
    if text == "random":
        return "random", None
    kind, _, arg = text.partition(":")
    if kind == "constant" and arg.strip().lstrip("-").isdigit():
        return "constant", int(arg)
    raise ValueError(f"behaviour {text!r} is not a behaviour policy; expected 'random' or 'constant:<action>'")


def behaviour_policy(kind: str, arg: int | None, action_space: Any) -> Any:
    if kind == "random":
        if hasattr(action_space, "n"):
            return RandomPolicy(action_space.n)
        if (
            hasattr(action_space, "low")
            and np.isfinite(action_space.low).all()
            and np.isfinite(action_space.high).all()
        ):
            return UniformBoxPolicy(action_space.low, action_space.high)
        raise ValueError(f"behaviour 'random' needs a Discrete or bounded Box action space, got {action_space}")
    if arg is None or not action_space.contains(arg):
        raise ValueError(f"behaviour constant:{arg}: action {arg} is not in {action_space}")
    return ConstantPolicy(int(arg))


class AgentPolicy:
    """A learning agent's acting policy (agents.protocols.Policy) as a behaviour policy for
    ``shiftrl collect``: greedy actions plus Gaussian noise of ``noise`` x the half action
    range, clipped to the bounds (D4RL's medium and expert policies were rolled out noisy)."""

    def __init__(self, policy: Any, low: np.ndarray, high: np.ndarray, noise: float = 0.0) -> None:
        self.policy, self.noise = policy, float(noise)
        self.low, self.high = np.asarray(low, np.float32), np.asarray(high, np.float32)

    def act(self, obs: np.ndarray, h: int, rng: np.random.Generator) -> np.ndarray:
        B = len(obs)
        out = self.policy.act(obs[:, None], np.ones((B, 1, 1), bool), self.policy.initial_hidden(B), True, rng)
        a = out.actions[:, 0].astype(np.float32)
        if self.noise > 0:
            a = a + rng.normal(0.0, self.noise, a.shape).astype(np.float32) * (self.high - self.low) / 2
        return np.clip(a, self.low, self.high)
