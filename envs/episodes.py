"""Whole-episode rollouts of a policy in B copies of an env, with no Ray and no training code.

Rollout actors (trainers/rollout.py) and evaluators call :func:`run_episodes`. Envs with
a batched core (the robust MDPs) are stepped as arrays; any other Gymnasium env is stepped
one copy at a time through its public API. Finished copies are frozen, not auto-reset, so
an episode batch is a padded array with per-episode lengths (observations hold T + 1
entries: the Minari convention).

A policy is any picklable object with ``act(obs, h, rng) -> actions`` taking a batch of
observations (B, ...) and the step index h (finite-horizon policies are per step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium
import numpy as np


class Policy(Protocol):
    def act(self, obs: np.ndarray, h: int, rng: np.random.Generator) -> np.ndarray: ...


@dataclass
class Episodes:
    """A padded batch of episodes.

    Attributes:
        observations: (n, T + 1, *obs_shape); entries past ``lengths[i] + 1`` repeat the last.
        actions: (n, T, *act_shape); zero past the end.
        rewards: (n, T); zero past the end.
        terminations: (n, T) bool; True at the terminal step of terminated episodes.
        truncations: (n, T) bool; True at the last step of time-limited episodes.
        lengths: (n,) number of steps of each episode.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    lengths: np.ndarray

    def returns(self) -> np.ndarray:
        return self.rewards.sum(axis=1)

    @property
    def n(self) -> int:
        return len(self.lengths)

    @staticmethod
    def concat(parts: list[Episodes]) -> Episodes:
        """Concatenates batches, padding to the longest horizon."""
        T = max(p.rewards.shape[1] for p in parts)

        def pad(x: np.ndarray, length: int, edge: bool) -> np.ndarray:
            extra = length - x.shape[1]
            if extra == 0:
                return x
            widths = [(0, 0), (0, extra)] + [(0, 0)] * (x.ndim - 2)
            return np.pad(x, widths, mode="edge" if edge else "constant")

        return Episodes(
            observations=np.concatenate([pad(p.observations, T + 1, True) for p in parts]),
            actions=np.concatenate([pad(p.actions, T, False) for p in parts]),
            rewards=np.concatenate([pad(p.rewards, T, False) for p in parts]),
            terminations=np.concatenate([pad(p.terminations, T, False) for p in parts]),
            truncations=np.concatenate([pad(p.truncations, T, False) for p in parts]),
            lengths=np.concatenate([p.lengths for p in parts]),
        )


def run_episodes(
    env: gymnasium.Env,
    policy: Policy,
    n: int,
    seed: int,
    options: dict[str, Any] | None = None,
    max_steps: int = 100_000,
) -> Episodes:
    """Runs ``n`` episodes of ``policy`` in ``env`` and returns them padded.

    Deterministic in ``seed``: the env's and the policy's generators are spawned from it,
    so the same (seed, n, options) gives the same episodes in any process.

    Args:
        env: a built env (a RobustEnv is stepped as a batch of n copies).
        policy: object with ``act(obs, h, rng)``.
        n: number of episodes.
        seed: base seed.
        options: reset options, e.g. a shift ``{"q": 0.3}``.
        max_steps: safety limit on the episode length.
    """
    env_seed, policy_seed = np.random.SeedSequence(seed).spawn(2)
    policy_rng = np.random.default_rng(policy_seed)
    core = getattr(env, "core", None)
    if core is not None and hasattr(core, "step"):
        if options:
            core = core.with_shift(**options)
        return _run_core(core, policy, n, np.random.default_rng(env_seed), policy_rng, max_steps)
    env_seeds = np.random.default_rng(env_seed).integers(0, 2**31 - 1, size=n)
    return Episodes.concat([_run_single(env, policy, int(s), policy_rng, options, max_steps) for s in env_seeds])


def _run_core(core: Any, policy: Policy, n: int, env_rng, policy_rng, max_steps: int) -> Episodes:
    obs, state = core.reset(env_rng, n)
    T = min(core.horizon, max_steps)
    observations = np.repeat(obs[:, None], T + 1, axis=1)
    actions = np.zeros((n, T), dtype=np.int64)
    rewards = np.zeros((n, T))
    terms = np.zeros((n, T), dtype=bool)
    truncs = np.zeros((n, T), dtype=bool)
    alive = np.ones(n, dtype=bool)
    lengths = np.zeros(n, dtype=np.int64)
    for h in range(T):
        a = np.asarray(policy.act(obs, h, policy_rng))
        obs, r, term, state = core.step(state, a, env_rng)
        actions[alive, h] = a[alive]
        rewards[alive, h] = r[alive]
        terms[alive, h] = term[alive]
        lengths[alive] += 1
        observations[alive, h + 1] = obs[alive]
        # Frozen rows keep their last observation (padding convention).
        observations[~alive, h + 1] = observations[~alive, h]
        alive &= ~term
        if not alive.any():
            k = h + 1
            return Episodes(
                observations[:, : k + 1], actions[:, :k], rewards[:, :k], terms[:, :k], truncs[:, :k], lengths
            )
    truncs[alive, T - 1] = True
    return Episodes(observations, actions, rewards, terms, truncs, lengths)


def _run_single(env: gymnasium.Env, policy: Policy, seed: int, policy_rng, options, max_steps: int) -> Episodes:
    obs, _ = env.reset(seed=seed, options=options)
    observations, actions, rewards, terms, truncs = [np.asarray(obs)], [], [], [], []
    for h in range(max_steps):
        a = np.asarray(policy.act(np.asarray(obs)[None], h, policy_rng))[0]
        obs, r, term, trunc, _ = env.step(a)
        observations.append(np.asarray(obs))
        actions.append(a)
        rewards.append(float(r))
        terms.append(bool(term))
        truncs.append(bool(trunc) and not term)
        if term or trunc:
            break
    else:
        truncs[-1] = True
    return Episodes(
        observations=np.stack(observations)[None],
        actions=np.stack(actions)[None],
        rewards=np.asarray(rewards)[None],
        terminations=np.asarray(terms)[None],
        truncations=np.asarray(truncs)[None],
        lengths=np.asarray([len(rewards)]),
    )
