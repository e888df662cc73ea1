"""The rollout runtime of learning agents: env runners holding B environments and a CPU copy
of the policy, as Ray actors (or in-process with ``num_workers=0``).

- :class:`EnvRunner` steps a :class:`envs.vector.BatchEnv` (the SMAC-like batched core
  directly, any Gymnasium or PettingZoo env through a vector wrapper) with one batched
  policy forward per step. It returns *segments* (fixed T steps of self-resetting envs, for
  on-policy loops), whole *episodes* (padded, for replay buffers) or *evaluation* results
  (greedy episodes at fixed reset options). Batch keys: agents/protocols.py.
- :class:`RunnerGroup` drives several runners. Weights travel by object reference
  (``ray.put`` once per update, shared by every runner). Synchronous ``sample`` is
  deterministic under a seed for a fixed number of runners: runner i's streams derive
  from (seed, i) only. Asynchronous ``stream`` keeps one request in flight per runner and
  yields episodes as they arrive, with whatever weights each runner had: it is *not*
  bit-reproducible (arrival order depends on timing), which off-policy learners accept.
- Tasks and levels: a runner may be given a distribution over reset options (a level
  sampler's current probabilities); each reset draws from it and the episode's index is
  recorded in ``task`` so the sampler can be sent per-episode scores back.
- A runner that dies (a crashed process, a killed node) is replaced by a new one with the
  same index and a new generation, and its request re-run; the run goes on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import envs
from agents.protocols import Batch, EnvSpaces, Policy
from envs.vector import BatchEnv, make_batch_env

log = logging.getLogger("shiftrl")


def spaces_of(batch_env: BatchEnv, env_id: str) -> EnvSpaces:
    """The :class:`EnvSpaces` an agent is built from."""
    b = batch_env
    return EnvSpaces(
        env_id=env_id,
        n_agents=b.n_agents,
        obs_shape=tuple(b.obs_shape),
        state_shape=tuple(b.state_shape),
        n_actions=b.n_actions,
        action_shape=tuple(b.action_shape),
        action_low=tuple(b.action_low),
        action_high=tuple(b.action_high),
        has_mask=b.has_mask,
        tasks=tuple(b.tasks),
        episode_limit=b.episode_limit,
        state_agent_dim=getattr(b, "state_agent_dim", None),
    )


def env_spaces(env_id: str, env_kwargs: dict[str, Any] | None = None) -> EnvSpaces:
    return spaces_of(make_batch_env(envs.spec(env_id), 1, env_kwargs), env_id)


@dataclass(frozen=True)
class ResetDistribution:
    """Where each reset draws its options from: ``options[i]`` with probability ``probs[i]``
    (a task or level sampler's current distribution). ``None`` probs = uniform.

    With ``per_env`` the options are an assignment instead of a distribution: env ``j`` of
    the group (runner ``i``'s env ``b`` is ``j = i * B + b``) always resets to
    ``options[j % len(options)]``, so each env replays one level for the whole segment
    (dcd's level-replay rollouts: one level per env process, replayed until the next cycle).
    """

    options: tuple[dict[str, Any], ...]
    probs: np.ndarray | None = None
    per_env: bool = False


class EnvRunner:
    """B environments and a policy copy; see the module docstring.

    Args:
        env_id: registered env id.
        env_kwargs: constructor kwargs.
        n_envs: B, environments stepped together.
        seed: run seed, or a tuple of ints (e.g. (seed, resume point)) keying the streams.
        index: this runner's index (its streams derive from (seed, index, generation)).
        policy: the acting copy (weights are replaced by ``set_weights``).
        imports: plugin modules to import first (user envs resolve in workers).
        generation: bumped when a dead runner is replaced (fresh streams).
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any],
        n_envs: int,
        seed: int | tuple[int, ...],
        index: int,
        policy: Policy,
        imports: Sequence[str] = (),
        generation: int = 0,
    ) -> None:
        try:
            import torch

            torch.set_num_threads(1)  # 30x slow-down seen when workers share cores (ray-runtime.md)
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
        envs.load_plugins(tuple(imports))
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs)
        self.spec = envs.spec(env_id)
        self.env = make_batch_env(self.spec, n_envs, env_kwargs)
        self.B, self.N = n_envs, self.env.n_agents
        self.index = index
        self.policy = policy
        key = list(seed) if isinstance(seed, tuple) else [seed]
        ss = np.random.SeedSequence([*key, index, generation])
        act_ss, env_ss, pick_ss = ss.spawn(3)
        self.rng = np.random.default_rng(act_ss)
        self.seed_rng = np.random.default_rng(env_ss)
        self.pick_rng = np.random.default_rng(pick_ss)
        self.distribution: ResetDistribution | None = None
        self._eval_envs: dict[int, BatchEnv] = {}
        self._open: list[dict[str, Any]] | None = None  # partial episodes of ``episodes``
        self._started = False

    # -- configuration --------------------------------------------------------------------
    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        try:
            import ray

            return ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - in-process runner
            return "local"

    def set_weights(self, weights: dict[str, Any]) -> None:
        self.policy.load_weights(weights)

    # -- resets ---------------------------------------------------------------------------
    def _reset(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, np.int64)
        seeds = [int(s) for s in self.seed_rng.integers(0, 2**31 - 1, size=len(ids))]
        options: list[dict | None] = [None] * len(ids)
        d = self.distribution
        if d is not None and d.options:
            if d.per_env:
                picks = (self.index * self.B + ids) % len(d.options)
            else:
                picks = self.pick_rng.choice(len(d.options), size=len(ids), p=d.probs)
            options = [dict(d.options[int(k)]) for k in picks]
            self._task[ids] = picks
        self.env.reset(ids.tolist(), seeds, options)
        if d is None or not d.options:
            self._task[ids] = self.env.episode_info()["task"][ids]
        self._hidden[ids] = self.policy.initial_hidden(len(ids))
        self._ret[ids] = 0.0
        self._len[ids] = 0
        self._first[ids] = True

    def _start(self) -> None:
        self._task = np.full(self.B, -1, np.int64)
        self._hidden = self.policy.initial_hidden(self.B)
        self._ret = np.zeros(self.B)
        self._len = np.zeros(self.B, np.int64)
        self._first = np.ones(self.B, bool)
        self._reset(np.arange(self.B))
        self._started = True

    # -- segments (on-policy) ---------------------------------------------------------------
    def sample(
        self,
        n_steps: int,
        weights: dict[str, Any] | None = None,
        distribution: ResetDistribution | None = None,
        restart: bool = False,
    ) -> tuple[Batch, list[dict[str, Any]]]:
        """T = ``n_steps`` steps of every env; returns the segment batch and the finished
        episodes' records (return, length, won, task). ``restart`` first resets every env
        (from ``distribution``), dropping the episodes in flight."""
        if weights is not None:
            self.set_weights(weights)
        if distribution is not None:
            self.distribution = distribution
        if not self._started:
            self._start()
        elif restart:
            self._reset(np.arange(self.B))
        if self._open is not None:  # switching from whole episodes to segments: restart cleanly
            self._reset(np.arange(self.B))
            self._open = None
        B, N, T = self.B, self.N, n_steps
        cols: dict[str, list[np.ndarray]] = {}
        finals_obs = np.zeros((T, B, N, *self.env.obs_shape), np.float32)
        finals_state = np.zeros((T, B, *self.env.state_shape), np.float32)
        h0 = self._hidden.copy()
        episodes: list[dict[str, Any]] = []
        for t in range(T):
            obs, state, mask, alive = self.env.observe()
            out = self.policy.act(obs, mask, self._hidden, False, self.rng, state=state)
            step = {
                "obs": obs,
                "state": state,
                "mask": mask,
                "alive": alive,
                "actions": out.actions,
                "first": self._first.copy(),
                "task": self._task.copy(),
            }
            for k, v in out.extras.items():
                step[f"extra/{k}"] = v
            reward, term, trunc = self.env.step(out.actions)
            self._hidden = out.hidden
            self._first[:] = False
            step.update(rewards=reward, terminated=term, truncated=trunc)
            for k, v in step.items():
                cols.setdefault(k, []).append(v)
            self._ret += reward
            self._len += 1
            done = term | trunc
            if done.any():
                if trunc.any():
                    fo, fs, _, _ = self.env.observe()
                    finals_obs[t, trunc] = fo[trunc]
                    finals_state[t, trunc] = fs[trunc]
                episodes.extend(self._finished(np.flatnonzero(done), term))
                self._reset(np.flatnonzero(done))
        batch: Batch = {k: np.stack(v, axis=1) for k, v in cols.items()}  # (B, T, ...)
        batch["final_obs"] = finals_obs.swapaxes(0, 1)
        batch["final_state"] = finals_state.swapaxes(0, 1)
        batch["filled"] = np.ones((B, T), bool)
        nobs, nstate, nmask, nalive = self.env.observe()
        batch.update(next_obs=nobs, next_state=nstate, next_mask=nmask, next_alive=nalive, h0=h0)
        return batch, episodes

    def _finished(self, ids: np.ndarray, term: np.ndarray) -> list[dict[str, Any]]:
        info = self.env.episode_info()
        return [
            {
                "return": float(self._ret[b]),
                "length": int(self._len[b]),
                "won": bool(info["won"][b]),
                "task": int(self._task[b]),
                "terminated": bool(term[b]),
                "env": int(b),
            }
            for b in ids
        ]

    # -- whole episodes (off-policy) ----------------------------------------------------------
    def episodes(
        self, n_episodes: int, weights: dict[str, Any] | None = None, distribution: ResetDistribution | None = None
    ) -> tuple[Batch, list[dict[str, Any]]]:
        """At least ``n_episodes`` complete episodes, padded to the longest (``filled``)."""
        if weights is not None:
            self.set_weights(weights)
        if distribution is not None:
            self.distribution = distribution
        if not self._started:
            self._start()
        if self._open is None:  # episodes in flight carry over between calls
            self._open = [self._new_episode(b) for b in range(self.B)]
        open_eps = self._open
        done_eps: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        while len(done_eps) < n_episodes:
            obs, state, mask, alive = self.env.observe()
            out = self.policy.act(obs, mask, self._hidden, False, self.rng, state=state)
            reward, term, trunc = self.env.step(out.actions)
            for i in range(self.B):
                e = open_eps[i]
                e["obs"].append(obs[i])
                e["state"].append(state[i])
                e["mask"].append(mask[i])
                e["alive"].append(alive[i])
                e["actions"].append(out.actions[i])
                e["rewards"].append(reward[i])
                e["terminated"].append(term[i])
                e["truncated"].append(trunc[i])
                for k, v in out.extras.items():
                    e.setdefault(f"extra/{k}", []).append(v[i])
            self._hidden = out.hidden
            self._ret += reward
            self._len += 1
            done = term | trunc
            if done.any():
                nobs, nstate, nmask, nalive = self.env.observe()
                ids = np.flatnonzero(done)
                recs = self._finished(ids, term)
                for j, rec in zip(ids.tolist(), recs):
                    e = open_eps[j]
                    ep: dict[str, Any] = {k: np.stack(v) for k, v in e.items() if isinstance(v, list)}
                    ep.update(
                        next_obs=nobs[j],
                        next_state=nstate[j],
                        next_mask=nmask[j],
                        next_alive=nalive[j],
                        task=np.int64(self._task[j]),
                        h0=e["h0"],
                    )
                    done_eps.append(ep)
                    records.append(rec)
                self._reset(ids)
                for j in ids.tolist():
                    open_eps[j] = self._new_episode(j)
        return pad_episodes(done_eps), records

    def _new_episode(self, b: int) -> dict[str, Any]:
        return {k: [] for k in ("obs", "state", "mask", "alive", "actions", "rewards", "terminated", "truncated")} | {
            "h0": self._hidden[b].copy()
        }

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(
        self, weights: dict[str, Any] | None, options: dict[str, Any] | None, n: int, seed: int, batch: int = 32
    ) -> dict[str, np.ndarray]:
        """``n`` greedy episodes at fixed reset ``options`` (a shift, task or level); the
        result depends only on (weights, options, n, seed), never on the runner."""
        return self.evaluate_points(weights, [options], n, [seed], batch)[0]

    def evaluate_points(
        self,
        weights: dict[str, Any] | None,
        points: list[dict[str, Any] | None],
        n: int,
        seeds: list[int],
        batch: int = 32,
        sample: bool = False,
    ) -> list[dict[str, np.ndarray]]:
        """``n`` greedy episodes at each point, the (point, episode) pairs stepped together
        in batches of ``batch`` envs (a 2048-level test set is 64 batches, not 2048 runs);
        episode i of a point always gets the same env seed, from (point seed, i). With
        ``sample`` the policy samples its actions from a stream seeded by the batch's first
        env seed (the batches are fixed by the points, so results never depend on runners)."""
        if weights is not None:
            self.set_weights(weights)
        jobs: list[tuple[int, dict[str, Any] | None, int]] = []
        for j, (options, seed) in enumerate(zip(points, seeds)):
            ss = np.random.SeedSequence([seed, 7])
            env_seeds = np.random.default_rng(ss).integers(0, 2**31 - 1, size=n)
            jobs += [(j, options, int(s)) for s in env_seeds]
        res = {k: np.zeros(len(jobs), t) for k, t in (("return", float), ("length", np.int64), ("won", bool))}
        res["task"] = np.zeros(len(jobs), np.int64)
        limit = self.spec.max_episode_steps or 100_000
        for start in range(0, len(jobs), batch):
            chunk = jobs[start : start + batch]
            k = len(chunk)
            env = self._eval_envs.get(k)
            if env is None:
                env = self._eval_envs[k] = make_batch_env(self.spec, k, self.env_kwargs)
            opts = [o for _, o, _ in chunk]
            env.reset(list(range(k)), [s for _, _, s in chunk], opts)
            task = env.episode_info()["task"].copy()
            hidden = self.policy.initial_hidden(k)
            ret, length = np.zeros(k), np.zeros(k, np.int64)
            won = np.zeros(k, bool)
            running = np.ones(k, bool)
            rng = np.random.default_rng([chunk[0][2], 5])  # greedy acting draws nothing
            for _ in range(limit):
                obs, state, mask, _ = env.observe()
                out = self.policy.act(obs, mask, hidden, not sample, rng, state=state)
                reward, term, trunc = env.step(out.actions)
                hidden = out.hidden
                ret += np.where(running, reward, 0.0)
                length += running
                ended = term | trunc
                done = ended & running
                if done.any():
                    won[done] = env.episode_info()["won"][done]
                    running &= ~done
                    if not running.any():
                        break
                if ended.any():
                    # finished envs restart (the batch steps together); their data is ignored
                    ids = np.flatnonzero(ended)
                    env.reset(ids.tolist(), [0] * len(ids), [opts[i] for i in ids])
            sl = slice(start, start + k)
            res["return"][sl], res["length"][sl], res["won"][sl], res["task"][sl] = ret, length, won, task
        owner = np.array([j for j, _, _ in jobs])
        return [{key: v[owner == j] for key, v in res.items()} for j in range(len(points))]


def pad_episodes(eps: list[dict[str, Any]]) -> Batch:
    """Stacks episodes of different lengths into (E, T_max, ...) arrays with ``filled``."""
    T = max(len(e["rewards"]) for e in eps)
    out: dict[str, list] = {}
    for e in eps:
        L = len(e["rewards"])
        for k, v in e.items():
            if v.ndim >= 1 and k not in ("next_obs", "next_state", "next_mask", "next_alive", "h0") and len(v) == L:
                pad = np.zeros((T - L, *v.shape[1:]), v.dtype)
                out.setdefault(k, []).append(np.concatenate([v, pad]))
            else:
                out.setdefault(k, []).append(v)
        out.setdefault("filled", []).append(np.arange(T) < L)
        out.setdefault("first", []).append(np.arange(T) == 0)
    batch = {k: np.stack(v) for k, v in out.items()}
    batch["task"] = np.repeat(batch["task"][:, None], T, axis=1)
    return batch


def concat_batches(parts: list[Batch]) -> Batch:
    """Concatenates runners' batches along the env axis (episode batches are padded)."""
    if len(parts) == 1:
        return parts[0]
    T = max(p["rewards"].shape[1] for p in parts)
    out: Batch = {}
    for k in parts[0]:
        arrs = []
        for p in parts:
            v = p[k]
            if v.ndim >= 2 and v.shape[1] == p["rewards"].shape[1] and k not in ("h0",) and not k.startswith("next_"):
                if v.shape[1] < T:
                    v = np.concatenate([v, np.zeros((v.shape[0], T - v.shape[1], *v.shape[2:]), v.dtype)], axis=1)
            arrs.append(v)
        out[k] = np.concatenate(arrs)
    return out


class RunnerGroup:
    """``num_workers`` runner actors (or one in-process runner when 0).

    Args:
        env_id, env_kwargs, imports: the env (user envs resolve through ``imports``).
        policy: the acting copy every runner starts from.
        seed: run seed, or a tuple keying the streams (a resumed run adds its resume point).
        num_workers: Ray actors (0 = in-process, for tests and tiny runs).
        envs_per_worker: B per runner.
        max_replacements: dead runners replaced before the run gives up.
        schedule_timeout: seconds the actors may take to start before the request is
            declared impossible (ResourceError) instead of hanging.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any],
        policy: Policy,
        seed: int | tuple[int, ...],
        num_workers: int,
        envs_per_worker: int,
        imports: Sequence[str] = (),
        max_replacements: int = 10,
        schedule_timeout: float = 120.0,
    ) -> None:
        self.args = (env_id, dict(env_kwargs), envs_per_worker, seed)
        self.policy, self.imports = policy, tuple(imports)
        self.num_workers = num_workers
        self.max_replacements, self.replacements = max_replacements, 0
        self.generation = [0] * max(num_workers, 1)
        self._weights_ref: Any = None
        if num_workers == 0:
            self.local: EnvRunner | None = self._make_local(0)
            self.actors: list[Any] = []
        else:
            self.local = None
            self.actors = [self._spawn(i) for i in range(num_workers)]
            self._await_start(schedule_timeout)
        self._inflight: dict[Any, int] = {}

    def _await_start(self, timeout: float) -> None:
        """Fails fast when the actors cannot be placed (a request larger than the cluster
        would otherwise stay pending forever)."""
        import ray

        from trainers.runtime import ResourceError

        refs = [a.pid.remote() for a in self.actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        if len(ready) < len(refs):
            total = ray.cluster_resources().get("CPU", 0)
            free = ray.available_resources().get("CPU", 0)
            self.close()
            raise ResourceError(
                f"{len(refs) - len(ready)} of {len(refs)} rollout actors (1 CPU each) could not start within "
                f"{timeout:.0f} s: the cluster has {total:g} CPUs, {free:g} free; lower ray.num_workers"
            )

    def _make_local(self, i: int) -> EnvRunner:
        env_id, kw, B, seed = self.args
        return EnvRunner(env_id, kw, B, seed, i, self.policy, self.imports, self.generation[i])

    def _spawn(self, i: int) -> Any:
        import ray

        env_id, kw, B, seed = self.args
        actor_cls = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(EnvRunner)
        return actor_cls.remote(env_id, kw, B, seed, i, self.policy, self.imports, self.generation[i])

    @property
    def n_runners(self) -> int:
        return max(self.num_workers, 1)

    def set_weights(self, weights: dict[str, Any]) -> None:
        """Publishes new weights: one object in the store, shared by every runner."""
        if self.local is not None:
            self.local.set_weights(weights)
            return
        import ray

        self._weights_ref = ray.put(weights)

    def _call(self, i: int, method: str, *args: Any) -> Any:
        actor = self.actors[i]
        return getattr(actor, method).remote(*args)

    def _gather(self, method: str, args_of: Any) -> list[Any]:
        """Runs ``method`` on every runner (sync), replacing dead runners and retrying."""
        if self.local is not None:
            return [getattr(self.local, method)(*args_of(0))]
        import ray
        from ray.exceptions import ActorDiedError, RayActorError, WorkerCrashedError

        refs = {self._call(i, method, *args_of(i)): i for i in range(self.num_workers)}
        results: list[Any] = [None] * self.num_workers
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            i = refs.pop(done[0])
            try:
                results[i] = ray.get(done[0])
            except (RayActorError, ActorDiedError, WorkerCrashedError) as exc:
                self._replace(i, exc)
                refs[self._call(i, method, *args_of(i))] = i
        return results

    def _replace(self, i: int, exc: Exception) -> None:
        import ray

        self.replacements += 1
        if self.replacements > self.max_replacements:
            raise RuntimeError(
                f"rollout runners died {self.replacements} times (limit {self.max_replacements}); last error: {exc}"
            ) from exc
        log.warning("rollout runner %d died (%s); replacing it", i, type(exc).__name__)
        try:
            ray.kill(self.actors[i])
        except Exception:  # noqa: BLE001 - already dead is fine
            pass
        self.generation[i] += 1
        # the new runner starts from the initial policy copy; every request carries the
        # latest published weights, so the re-run request acts with them
        self.actors[i] = self._spawn(i)

    def sample(
        self, n_steps: int, distribution: ResetDistribution | None = None, restart: bool = False
    ) -> tuple[Batch, list[dict[str, Any]]]:
        """Synchronous segments from every runner, concatenated in runner order (env ``j``
        of the batch is runner ``j // B``'s env ``j % B``); ``restart`` resets every env first."""
        res = self._gather("sample", lambda i: (n_steps, self._weights_ref, distribution, restart))
        return concat_batches([b for b, _ in res]), [e for _, eps in res for e in eps]

    def episodes(
        self, n_per_runner: int, distribution: ResetDistribution | None = None
    ) -> tuple[Batch, list[dict[str, Any]]]:
        """Synchronous whole episodes (at least ``n_per_runner`` from each runner)."""
        res = self._gather("episodes", lambda i: (n_per_runner, self._weights_ref, distribution))
        return concat_batches([b for b, _ in res]), [e for _, eps in res for e in eps]

    def stream(self, n_per_request: int) -> Iterator[tuple[Batch, list[dict[str, Any]]]]:
        """Asynchronous episodes: one request in flight per runner, yielded as they arrive;
        each new request carries the latest published weights. Not bit-reproducible."""
        if self.local is not None:
            while True:
                yield self.local.episodes(n_per_request)
        import ray
        from ray.exceptions import ActorDiedError, RayActorError, WorkerCrashedError

        for i in range(self.num_workers):
            if i not in self._inflight.values():
                self._inflight[self._call(i, "episodes", n_per_request, self._weights_ref, None)] = i
        while True:
            done, _ = ray.wait(list(self._inflight), num_returns=1)
            i = self._inflight.pop(done[0])
            try:
                result = ray.get(done[0])
            except (RayActorError, ActorDiedError, WorkerCrashedError) as exc:
                self._replace(i, exc)
                result = None
            self._inflight[self._call(i, "episodes", n_per_request, self._weights_ref, None)] = i
            if result is not None:
                yield result

    def node_ids(self) -> list[str]:
        if self.local is not None:
            return [self.local.node_id()]
        import ray

        return ray.get([a.node_id.remote() for a in self.actors])

    def pids(self) -> list[int]:
        if self.local is not None:
            return [self.local.pid()]
        import ray

        return ray.get([a.pid.remote() for a in self.actors])

    def evaluate(
        self,
        weights: dict[str, Any] | None,
        points: list[dict[str, Any] | None],
        episodes: int,
        seeds: list[int],
        sample: bool = False,
    ) -> list[dict[str, np.ndarray]]:
        """Greedy evaluation at each reset-options point, spread over the runners in chunks
        of points (about 32 episodes per call); each point's result depends only on its seed."""
        per = max(1, 32 // max(episodes, 1))
        chunks = [list(range(i, min(i + per, len(points)))) for i in range(0, len(points), per)]
        if self.local is not None:
            out = []
            for c in chunks:
                out += self.local.evaluate_points(
                    weights, [points[j] for j in c], episodes, [seeds[j] for j in c], sample=sample
                )
            return out
        import ray
        from ray.exceptions import ActorDiedError, RayActorError, WorkerCrashedError

        w = ray.put(weights) if weights is not None else None
        results: list[Any] = [None] * len(chunks)
        pending = list(range(len(chunks)))[::-1]
        running: dict[Any, tuple[int, int]] = {}
        idle = list(range(self.num_workers))
        while pending or running:
            while pending and idle:
                slot, j = idle.pop(), pending.pop()
                c = chunks[j]
                args = (w, [points[i] for i in c], episodes, [seeds[i] for i in c], 32, sample)
                running[self._call(slot, "evaluate_points", *args)] = (j, slot)
            done, _ = ray.wait(list(running), num_returns=1)
            j, slot = running.pop(done[0])
            try:
                results[j] = ray.get(done[0])
            except (RayActorError, ActorDiedError, WorkerCrashedError) as exc:
                self._replace(slot, exc)
                pending.append(j)
            idle.append(slot)
        return [r for chunk in results for r in chunk]

    def close(self) -> None:
        if self.local is not None:
            return
        import ray

        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001
                pass
        self.actors = []
