"""B copies of an environment behind one array interface (no training code, no Ray).

Rollout actors and evaluators step a :class:`BatchEnv`: every array has a leading env axis
B and an agent axis N (N = 1 for Gymnasium envs), so one runtime serves single- and
multi-agent envs alike. Three implementations:

- an env class's own ``batched(n, **kwargs)`` classmethod when it has one (the SMAC-like
  simulator returns :class:`envs.smaclike.batch.SMACBatch`, its batched numpy core used
  directly: no per-env Python objects);
- :class:`GymBatch` for any Gymnasium env (B env objects stepped in a loop);
- :class:`PettingZooBatch` for any PettingZoo ParallelEnv.

Envs are reset explicitly (``reset(ids, seeds, options)``), never automatically: the caller
reads the final observation of a finished episode (truncation bootstrap) and chooses the
next task or level (a sampler hook) before resetting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import gymnasium
import numpy as np

from envs.registry import EnvError, EnvSpec, load_entry_point


class BatchEnv(Protocol):
    """The array interface rollout actors use. Attributes describe one agent's spaces."""

    n_envs: int
    n_agents: int
    obs_shape: tuple[int, ...]
    state_shape: tuple[int, ...]
    n_actions: int  # 0 = continuous actions
    action_shape: tuple[int, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    has_mask: bool
    tasks: tuple[str, ...]
    episode_limit: int | None
    # optional: ``state_agent_dim`` (int), the width of each agent's block at the start of
    # the global state, for mixers that attend over agents (QPLEX)

    def reset(self, ids: Sequence[int], seeds: Sequence[int | None], options: Sequence[dict | None]) -> None:
        """Starts new episodes in envs ``ids`` with the given seeds and reset options."""
        ...

    def observe(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(obs (B, N, *obs), state (B, *state), mask (B, N, A) bool, alive (B, N) bool)."""
        ...

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Steps every unfinished env: (reward (B,), terminated (B,), truncated (B,))."""
        ...

    def episode_info(self) -> dict[str, np.ndarray]:
        """Per-env facts of the current episode, (B,) arrays: at least ``task`` (index into
        ``tasks``, -1 unknown) and ``won`` (battle won; False for envs without battles)."""
        ...


def make_batch_env(spec: EnvSpec, n: int, kwargs: dict[str, Any] | None = None) -> BatchEnv:
    """B = ``n`` copies of a registered env as a :class:`BatchEnv`."""
    if n < 1:
        raise EnvError(f"env {spec.id!r}: a batch needs n >= 1 envs, got {n}")
    kw = {**dict(spec.kwargs), **dict(kwargs or {})}
    cls = load_entry_point(spec.entry_point)
    if hasattr(cls, "batched"):
        return cls.batched(n, **kw)
    if spec.kind == "gymnasium":
        return GymBatch([spec.make(**(kwargs or {})) for _ in range(n)], spec)
    return PettingZooBatch([spec.make(**(kwargs or {})) for _ in range(n)], spec)


def _action_info(space: gymnasium.Space) -> tuple[int, tuple[int, ...], tuple[float, ...], tuple[float, ...]]:
    if isinstance(space, gymnasium.spaces.Discrete):
        return int(space.n), (), (), ()
    if isinstance(space, gymnasium.spaces.Box):
        return 0, tuple(space.shape), tuple(space.low.ravel().tolist()), tuple(space.high.ravel().tolist())
    raise EnvError(f"action space {space} is not supported by the batch runtime (Discrete or Box only)")


class GymBatch:
    """B Gymnasium envs; N = 1, the state is the flattened observation, no masks."""

    def __init__(self, envs: list[gymnasium.Env], spec: EnvSpec) -> None:
        self.envs = envs
        self.n_envs, self.n_agents = len(envs), 1
        space = envs[0].observation_space
        if not isinstance(space, gymnasium.spaces.Box | gymnasium.spaces.Discrete):
            raise EnvError(f"env {spec.id!r}: observation space {space} is not Box or Discrete")
        self._discrete_obs = isinstance(space, gymnasium.spaces.Discrete)
        self.obs_shape: tuple[int, ...] = (int(space.n),) if self._discrete_obs else tuple(space.shape or ())  # type: ignore[union-attr]
        self.state_shape: tuple[int, ...] = (int(np.prod(self.obs_shape)),)
        self.n_actions, self.action_shape, self.action_low, self.action_high = _action_info(envs[0].action_space)
        self.has_mask = False
        self.tasks = tuple(spec.tasks)
        self.episode_limit = spec.max_episode_steps
        self._obs = np.zeros((self.n_envs, 1, *self.obs_shape), np.float32)
        self._done = np.ones(self.n_envs, bool)
        self._mask = np.ones((self.n_envs, 1, max(self.n_actions, 1)), bool)

    def _encode(self, obs: Any) -> np.ndarray:
        if self._discrete_obs:
            out = np.zeros(self.obs_shape, np.float32)
            out[int(obs)] = 1.0
            return out
        return np.asarray(obs, np.float32)

    def reset(self, ids: Sequence[int], seeds: Sequence[int | None], options: Sequence[dict | None]) -> None:
        for b, s, o in zip(ids, seeds, options):
            obs, _ = self.envs[b].reset(seed=s, options=o)
            self._obs[b, 0] = self._encode(obs)
            self._done[b] = False

    def observe(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        obs = self._obs.copy()
        return obs, obs.reshape(self.n_envs, -1), self._mask, ~self._done[:, None]

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        B = self.n_envs
        rew, term, trunc = np.zeros(B), np.zeros(B, bool), np.zeros(B, bool)
        for b in np.flatnonzero(~self._done):
            a = actions[b, 0]
            act = int(a) if self.n_actions else np.asarray(a, np.float32)
            obs, r, te, tr, _ = self.envs[b].step(act)
            self._obs[b, 0] = self._encode(obs)
            rew[b], term[b], trunc[b] = float(r), bool(te), bool(tr) and not te
            self._done[b] = te or tr
        return rew, term, trunc

    def episode_info(self) -> dict[str, np.ndarray]:
        return {"task": np.full(self.n_envs, -1), "won": np.zeros(self.n_envs, bool)}


class PettingZooBatch:
    """B PettingZoo ParallelEnvs with a fixed agent list (``possible_agents``).

    Observations may be arrays or dicts with "observation" and "action_mask" (PettingZoo's
    convention). Agents that left ``env.agents`` are dead: zero observations, only action 0
    allowed, and their actions are not sent. The team reward is the mean reward of the
    agents that acted (SMAC-style envs give every agent the same team reward). The state
    is ``env.state()`` when the env has one, else the concatenated observations.
    """

    def __init__(self, envs: list[Any], spec: EnvSpec) -> None:
        self.envs = envs
        e = envs[0]
        self.agents = list(e.possible_agents)
        self.n_envs, self.n_agents = len(envs), len(self.agents)
        space = e.observation_space(self.agents[0])
        self._dict_obs = isinstance(space, gymnasium.spaces.Dict)
        inner = space["observation"] if self._dict_obs else space
        self.obs_shape = tuple(inner.shape)
        self.n_actions, self.action_shape, self.action_low, self.action_high = _action_info(
            e.action_space(self.agents[0])
        )
        self.has_mask = self._dict_obs and "action_mask" in space.spaces
        self._has_state = hasattr(e, "state_space")
        self.state_shape = (
            tuple(e.state_space.shape) if self._has_state else (self.n_agents * int(np.prod(inner.shape)),)
        )
        self.tasks = tuple(spec.tasks)
        self.episode_limit = spec.max_episode_steps
        B, N = self.n_envs, self.n_agents
        self._obs = np.zeros((B, N, *self.obs_shape), np.float32)
        self._mask = np.ones((B, N, max(self.n_actions, 1)), bool)
        self._alive = np.zeros((B, N), bool)
        self._state = np.zeros((B, *self.state_shape), np.float32)
        self._info: list[dict] = [{} for _ in range(B)]

    def _store(self, b: int, obs: dict[str, Any], infos: dict[str, Any]) -> None:
        env = self.envs[b]
        live = set(env.agents)
        for i, a in enumerate(self.agents):
            alive = a in live and a in obs
            self._alive[b, i] = alive
            if not alive:
                self._obs[b, i] = 0.0
                self._mask[b, i] = False
                self._mask[b, i, 0] = True
                continue
            o = obs[a]
            self._obs[b, i] = o["observation"] if self._dict_obs else o
            self._mask[b, i] = np.asarray(o["action_mask"], bool) if self.has_mask else True
        self._state[b] = env.state() if self._has_state else self._obs[b].reshape(-1)
        if infos:
            self._info[b] = next(iter(infos.values()))

    def reset(self, ids: Sequence[int], seeds: Sequence[int | None], options: Sequence[dict | None]) -> None:
        for b, s, o in zip(ids, seeds, options):
            obs, infos = self.envs[b].reset(seed=s, options=o)
            self._store(b, obs, infos)

    def observe(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self._obs.copy(), self._state.copy(), self._mask.copy(), self._alive.copy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        B = self.n_envs
        rew, term, trunc = np.zeros(B), np.zeros(B, bool), np.zeros(B, bool)
        for b, env in enumerate(self.envs):
            if not env.agents:
                continue
            acts = {}
            for i, a in enumerate(self.agents):
                if a in env.agents:
                    acts[a] = int(actions[b, i]) if self.n_actions else np.asarray(actions[b, i], np.float32)
            obs, r, te, tr, infos = env.step(acts)
            rew[b] = float(np.mean([r[a] for a in acts])) if acts else 0.0
            self._store(b, obs, infos)
            if not env.agents:
                term[b] = any(te.values()) and not any(tr.values())
                trunc[b] = not term[b]
        return rew, term, trunc

    def episode_info(self) -> dict[str, np.ndarray]:
        task = np.array([int(i.get("task_id", -1)) for i in self._info])
        won = np.array([bool(i.get("battle_won", False)) for i in self._info])
        return {"task": task, "won": won}
