"""API checks that every registered env gets (tests/test_env_api.py, ``shiftrl envs --check``).

Gymnasium envs: ``gymnasium.utils.env_checker.check_env``; PettingZoo ParallelEnvs:
``pettingzoo.test.parallel_api_test``, ``parallel_seed_test`` and ``render_test`` (for envs
with render modes). Both kinds: same seed gives the same trajectory, and
a pickled copy of a built env behaves exactly as the original.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from envs.registry import EnvSpec


def _gym_rollout(env: Any, seed: int, steps: int, actions_seed: int = 123) -> list[Any]:
    env.action_space.seed(actions_seed)
    obs, _ = env.reset(seed=seed)
    trace: list[Any] = [_tolist(obs)]
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        trace.append((_tolist(obs), float(r), bool(term), bool(trunc)))
        if term or trunc:
            obs, _ = env.reset()
            trace.append(_tolist(obs))
    return trace


def _pz_rollout(env: Any, seed: int, steps: int) -> list[Any]:
    obs, _ = env.reset(seed=seed)
    for i, agent in enumerate(env.possible_agents):
        env.action_space(agent).seed(seed + i)
    trace: list[Any] = [_tolist(obs)]
    for _ in range(steps):
        if not env.agents:
            break
        actions = {}
        for a in env.agents:
            mask = obs[a].get("action_mask") if isinstance(obs[a], dict) else None
            actions[a] = env.action_space(a).sample(mask)
        obs, rew, term, trunc, _ = env.step(actions)
        trace.append((_tolist(obs), _tolist(rew), _tolist(term), _tolist(trunc)))
    return trace


def _tolist(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _tolist(v) for k, v in sorted(x.items())}
    if isinstance(x, np.ndarray | np.generic):
        return x.tolist()
    return x


def check_env_spec(spec: EnvSpec, seed: int = 0, steps: int = 50) -> None:
    """Raises AssertionError (or the checker's error) if the env breaks the contract."""
    if spec.kind == "gymnasium":
        from gymnasium.utils.env_checker import check_env

        check_env(spec.make(), skip_render_check=True)
        rollout = _gym_rollout
    else:
        from pettingzoo.test import parallel_api_test, parallel_seed_test, render_test

        parallel_api_test(spec.make(), num_cycles=steps)
        # PettingZoo's own seed test, as a user runs it: it samples actions without masks
        parallel_seed_test(spec.make, num_cycles=steps)
        if spec.make().metadata.get("render_modes"):
            from pettingzoo.utils.conversions import parallel_to_aec

            # PettingZoo's render test drives the AEC API: the standard wrapper gives it one
            render_test(lambda **kw: parallel_to_aec(spec.make(**kw)))
        rollout = _pz_rollout  # type: ignore[assignment]

    a, b = rollout(spec.make(), seed, steps), rollout(spec.make(), seed, steps)
    assert a == b, f"env {spec.id}: two runs with seed {seed} differ (seed only through reset(seed=...))"

    env = spec.make()
    restored = pickle.loads(pickle.dumps(env))
    assert rollout(env, seed, steps) == rollout(restored, seed, steps), (
        f"env {spec.id}: a pickled copy behaves differently from the original"
    )
