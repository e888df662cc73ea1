"""Rollouts on Ray actors that hold batched envs and a CPU copy of the policy.

:class:`RolloutPool` hands out jobs (policy, n episodes, seed, reset options) to its actors
and returns results in job order. Results depend only on the jobs, never on which actor ran
them, so a crashed actor is simply replaced and its job resubmitted: the run goes on and
its numbers are unchanged. With ``num_workers=0`` the same jobs run in-process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray
from ray.exceptions import ActorDiedError, RayActorError, WorkerCrashedError

import envs
from envs.episodes import Episodes, Policy, run_episodes

log = logging.getLogger("shiftrl")


@dataclass(frozen=True)
class Job:
    """One unit of rollout work.

    Attributes:
        policy: picklable object with ``act(obs, h, rng)``.
        n: episodes.
        seed: base seed of the episodes.
        options: reset options (a shift).
        returns_only: send back only the per-episode returns (evaluation).
    """

    policy: Policy
    n: int
    seed: int
    options: dict[str, Any] = field(default_factory=dict)
    returns_only: bool = False


def _execute(env: Any, job: Job) -> Episodes | np.ndarray:
    ep = run_episodes(env, job.policy, job.n, job.seed, job.options or None)
    return ep.returns() if job.returns_only else ep


class _Local:
    """In-process executor with the worker's interface (num_workers = 0)."""

    def __init__(self, spec: envs.EnvSpec, env_kwargs: dict[str, Any]) -> None:
        self.env = spec.make(**env_kwargs)

    def run(self, job: Job) -> Episodes | np.ndarray:
        return _execute(self.env, job)


@ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)
class RolloutWorker:
    """A Ray actor owning one env (batched core where the env has one)."""

    def __init__(self, spec: envs.EnvSpec, env_kwargs: dict[str, Any], imports: Sequence[str]) -> None:
        try:
            import torch

            torch.set_num_threads(1)  # 30x slow-down seen when workers share cores (ray-runtime.md)
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
        envs.load_plugins(tuple(imports))
        # The spec carries the entry point string, so user envs resolve in this process.
        self.env = spec.make(**env_kwargs)

    def pid(self) -> int:
        return os.getpid()

    def run(self, job: Job) -> Episodes | np.ndarray:
        return _execute(self.env, job)


class RolloutPool:
    """Actors that run :class:`Job` lists; dead actors are replaced and their jobs re-run."""

    def __init__(
        self,
        spec: envs.EnvSpec,
        env_kwargs: dict[str, Any] | None = None,
        num_workers: int = 1,
        imports: Sequence[str] = (),
        max_replacements: int = 10,
    ) -> None:
        self.spec, self.env_kwargs, self.imports = spec, dict(env_kwargs or {}), tuple(imports)
        self.num_workers = num_workers
        self.max_replacements = max_replacements
        self.replacements = 0
        self._local = _Local(spec, self.env_kwargs) if num_workers == 0 else None
        self.workers = [self._spawn() for _ in range(num_workers)]

    def _spawn(self):
        return RolloutWorker.remote(self.spec, self.env_kwargs, self.imports)

    def worker_pids(self) -> list[int]:
        return ray.get([w.pid.remote() for w in self.workers])

    def map(self, jobs: Sequence[Job], on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        """Runs ``jobs`` and returns their results in order.

        Args:
            jobs: the work.
            on_result: called as ``on_result(index, result)`` when each job finishes
                (progress output; tests use it to kill an actor mid-run).
        """
        if self._local is not None:
            out = []
            for i, job in enumerate(jobs):
                out.append(self._local.run(job))
                if on_result:
                    on_result(i, out[-1])
            return out
        results: list[Any] = [None] * len(jobs)
        pending = list(range(len(jobs)))[::-1]
        running: dict[Any, tuple[int, int]] = {}  # ref -> (job index, worker slot)
        idle = list(range(len(self.workers)))
        while pending or running:
            while pending and idle:
                slot, i = idle.pop(), pending.pop()
                running[self.workers[slot].run.remote(jobs[i])] = (i, slot)
            done, _ = ray.wait(list(running), num_returns=1)
            ref = done[0]
            i, slot = running.pop(ref)
            try:
                results[i] = ray.get(ref)
            except (RayActorError, ActorDiedError, WorkerCrashedError) as exc:
                self._replace(slot, exc)
                pending.append(i)
            else:
                if on_result:
                    on_result(i, results[i])
            idle.append(slot)
        return results

    def _replace(self, slot: int, exc: Exception) -> None:
        self.replacements += 1
        if self.replacements > self.max_replacements:
            raise RuntimeError(
                f"rollout actors died {self.replacements} times (limit {self.max_replacements}); last error: {exc}"
            ) from exc
        log.warning("rollout worker %d died (%s); replacing it and re-running its job", slot, type(exc).__name__)
        try:
            ray.kill(self.workers[slot])
        except Exception:  # noqa: BLE001 - already dead is fine
            pass
        self.workers[slot] = self._spawn()

    def close(self) -> None:
        for w in self.workers:
            try:
                ray.kill(w)
            except Exception:  # noqa: BLE001
                pass
        self.workers = []
