"""`shiftrl collect`: an offline dataset by Ray rollouts of a behaviour policy
(envs/datasets.py format; written atomically, independent of the worker count)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import envs
from envs import datasets
from trainers.config import ConfigError


def collect(
    env_id: str,
    out: str,
    episodes: int,
    policy: str = "random",
    seed: int = 0,
    shift: dict[str, float] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    num_workers: int | None = None,
    address: str | None = None,
    overwrite: bool = False,
    chunk: int = 50,
) -> Path:
    """Ray rollouts of a behaviour policy into a dataset directory (envs/datasets.py)."""
    from envs.episodes import Episodes
    from trainers.loops.closed_form import derive_seeds
    from trainers.policies import behaviour_policy, parse_behaviour
    from trainers.rollout import Job, RolloutPool
    from trainers.runtime import init_ray, plan

    if episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {episodes}")
    try:
        spec = envs.spec(env_id)
        for name in shift or {}:
            spec.shift(name)
    except envs.EnvError as exc:
        raise ConfigError(str(exc)) from exc
    if spec.kind != "gymnasium":
        raise ConfigError(
            f"collect: {env_id!r} is a {spec.kind} env; collect writes single-agent (Gymnasium) datasets only"
        )
    if Path(out).exists() and not overwrite:
        raise ConfigError(f"--out {out} exists; pass --overwrite to replace it")
    env = spec.make(**(env_kwargs or {}))
    try:
        kind, arg = parse_behaviour(policy)
        pol = behaviour_policy(kind, arg, env.action_space)
    except ValueError as exc:
        raise ConfigError(f"--policy: {exc}") from exc
    if num_workers is not None and num_workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {num_workers}")
    init_ray(address)
    workers = plan(1, None).cpus if num_workers is None else num_workers
    if workers:
        plan(1, workers - 1)  # fails fast when the cluster cannot hold the actors
    pool = RolloutPool(spec, env_kwargs or {}, num_workers=workers)
    sizes = [min(chunk, episodes - i) for i in range(0, episodes, chunk)]
    seeds = derive_seeds(seed, 0, 0, len(sizes))
    done = [0]

    def progress(i: int, ep: Any) -> None:
        done[0] += ep.n
        print(f"collect: {done[0]}/{episodes} episodes", flush=True)

    try:
        eps = Episodes.concat(pool.map([Job(pol, n, s, dict(shift or {})) for n, s in zip(sizes, seeds)], progress))
    finally:
        pool.close()
    meta = {
        "env_id": env_id,
        "env_kwargs": env_kwargs or {},
        "shift": shift or {},
        "behaviour": policy,
        "seed": seed,
        "chunk": chunk,
    }
    return datasets.save(datasets.Dataset.from_episodes(eps, meta), out, overwrite=overwrite)
