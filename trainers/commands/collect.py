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


QUALITIES = ("random", "medium", "medium-replay", "expert", "medium-expert")


def snapshots(run_dir: Path) -> list[tuple[int, float, Path]]:
    """(env steps, greedy eval return, file) of a behaviour run's snapshots, in order."""
    from trainers import checkpoint

    out = []
    for f in sorted((run_dir / "checkpoints").glob("snapshot_*.pt")):
        _, meta = checkpoint.load(f)
        out.append((int(meta["env_steps"]), float(meta["eval_return"]), f))
    return out


def pick_medium(snaps: list[tuple[int, float, Path]], random_return: float, fraction: float) -> tuple[int, float, Path]:
    """The snapshot, up to the best one, whose return is closest to
    ``random + fraction x (best - random)`` (D4RL's medium: a policy at about a third of
    the expert's performance)."""
    i_best = max(range(len(snaps)), key=lambda i: snaps[i][1])
    target = random_return + fraction * (snaps[i_best][1] - random_return)
    return min(snaps[: i_best + 1], key=lambda s: abs(s[1] - target))


def collect_quality(
    run: str,
    quality: str,
    out: str,
    transitions: int = 200_000,
    seed: int = 0,
    noise: float | None = None,
    medium_fraction: float = 1 / 3,
    num_workers: int | None = None,
    address: str | None = None,
    overwrite: bool = False,
    chunk: int = 10,
) -> Path:
    """A D4RL-style dataset from a behaviour run of the suite (``td3`` with
    ``keep_snapshots``), ~``transitions`` steps of whole episodes:

    - random: uniform actions; medium: the snapshot (up to the best one) whose return is
      closest to ``medium_fraction`` of the way from the random return to the best
      (:func:`pick_medium`; rolled out with ``noise``, default 0.1);
    - expert: the best snapshot (noise default 0); medium-expert: half of each;
    - medium-replay: the run's replay buffer up to the medium snapshot (whole episodes).

    Reference returns for normalised scores: the random policy's mean return (measured
    here over 20 episodes) and the best snapshot's greedy evaluation return.
    """
    import numpy as np

    from envs.episodes import Episodes
    from trainers.config import load_config
    from trainers.loops import build_learner
    from trainers.loops.closed_form import derive_seeds
    from trainers.policies import AgentPolicy, UniformBoxPolicy
    from trainers.rollout import Job, RolloutPool
    from trainers.runtime import init_ray, plan

    if quality not in QUALITIES:
        raise ConfigError(f"--quality must be one of {list(QUALITIES)}, got {quality!r}")
    run_dir = Path(run)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"--from-run {run}: not a run directory (no config.yaml)")
    if Path(out).exists() and not overwrite:
        raise ConfigError(f"--out {out} exists; pass --overwrite to replace it")
    if transitions < 1:
        raise ConfigError(f"--transitions must be >= 1, got {transitions}")
    cfg = load_config(run_dir / "config.yaml", stored=True)
    snaps = snapshots(run_dir)
    if not snaps:
        raise ConfigError(
            f"--from-run {run}: no snapshots (checkpoints/snapshot_*.pt); train the behaviour policy with "
            "agent td3 and keep_snapshots: true"
        )
    spec = envs.spec(cfg.env.id)
    env = spec.make(**cfg.env.kwargs)
    low, high = env.action_space.low, env.action_space.high
    if num_workers != 0:
        init_ray(address)
    workers = plan(1, None).cpus if num_workers is None else num_workers
    pool = RolloutPool(spec, cfg.env.kwargs, num_workers=workers)

    def policy_of(snap: Path, eps: float) -> AgentPolicy:
        from trainers import checkpoint

        learner, _ = build_learner(cfg)
        learner.load_state_dict(checkpoint.load(snap)[0])
        return AgentPolicy(learner.policy(), low, high, eps)

    def rollout(pol: Any, n_steps: int, stream: int, label: str) -> Episodes:
        parts: list[Episodes] = []
        got, round_ = 0, 0
        limit = spec.max_episode_steps or 1000
        while got < n_steps:
            n_eps = max(1, -(-(n_steps - got) // limit))
            sizes = [min(chunk, n_eps - i) for i in range(0, n_eps, chunk)]
            seeds = derive_seeds(seed, stream, round_, len(sizes))
            parts += pool.map([Job(pol, n, s) for n, s in zip(sizes, seeds)])
            got = sum(int(p.lengths.sum()) for p in parts)
            round_ += 1
            print(f"collect {label}: {got}/{n_steps} transitions", flush=True)
        ep = Episodes.concat(parts)
        keep = int(np.searchsorted(np.cumsum(ep.lengths), n_steps) + 1)  # whole episodes, >= n_steps
        return _take(ep, min(keep, ep.n))

    try:
        rand = rollout(UniformBoxPolicy(low, high), 20 * (spec.max_episode_steps or 1000), 7, "reference (random)")
        random_return = float(rand.returns()[:20].mean())
        best = max(snaps, key=lambda s: s[1])
        medium = pick_medium(snaps, random_return, medium_fraction)
        meta: dict[str, Any] = {
            "env_id": cfg.env.id,
            "env_kwargs": dict(cfg.env.kwargs),
            "shift": {},
            "quality": quality,
            "seed": seed,
            "behaviour_run": str(run_dir),
            "ref_min_score": random_return,
            "ref_max_score": best[1],
            "note": "ShiftRL's own D4RL-style dataset: not D4RL's levels (see README)",
        }
        if quality == "random":
            eps = rollout(UniformBoxPolicy(low, high), transitions, 0, quality)
            meta["behaviour"] = "uniform random"
        elif quality in ("medium", "expert"):
            snap = medium if quality == "medium" else best
            eps_noise = (0.1 if quality == "medium" else 0.0) if noise is None else noise
            eps = rollout(policy_of(snap[2], eps_noise), transitions, 1 if quality == "medium" else 2, quality)
            meta |= {
                "behaviour": f"td3 snapshot at {snap[0]} env steps (greedy return {snap[1]:.1f}), noise {eps_noise}"
            }
        elif quality == "medium-expert":
            n_med = transitions // 2
            m_noise = 0.1 if noise is None else noise
            e_noise = 0.0 if noise is None else noise
            a = rollout(policy_of(medium[2], m_noise), n_med, 1, "medium half")
            b = rollout(policy_of(best[2], e_noise), transitions - n_med, 2, "expert half")
            eps = Episodes.concat([a, b])
            meta["behaviour"] = f"medium (snapshot {medium[0]}) + expert (snapshot {best[0]})"
        else:
            eps = _replay_episodes(run_dir, medium[0])
            meta["behaviour"] = f"td3 replay buffer up to the medium snapshot ({medium[0]} env steps)"
    finally:
        pool.close()
    return datasets.save(datasets.Dataset.from_episodes(eps, meta), out, overwrite=overwrite)


def _take(ep: Any, n: int) -> Any:
    from envs.episodes import Episodes

    T = int(ep.lengths[:n].max())
    return Episodes(
        ep.observations[:n, : T + 1],
        ep.actions[:n, :T],
        ep.rewards[:n, :T],
        ep.terminations[:n, :T],
        ep.truncations[:n, :T],
        ep.lengths[:n],
    )


def _replay_episodes(run_dir: Path, up_to: int) -> Any:
    """Whole episodes of a behaviour run's saved replay buffer among its first ``up_to``
    transitions (rows are stored episode by episode, in arrival order)."""
    import numpy as np

    from envs.episodes import Episodes
    from trainers.io import load_npz

    f = run_dir / "checkpoints" / "replay.npz"
    if not f.is_file():
        raise ConfigError(f"medium-replay: {f} is missing (train the behaviour run with checkpoint_buffer: true)")
    z = load_npz(f)
    size = len(z["rewards"])
    lost = max(int(z.get("added", size)) - size, 0)  # a wrapped FIFO lost its oldest rows
    if lost:
        pos = int(z["pos"])
        z = {k: np.concatenate([v[pos:], v[:pos]]) if k not in ("pos", "added") else v for k, v in z.items()}
    n = min(up_to - lost, size)  # rows hold env steps [lost, added) in order
    ends = np.flatnonzero(z["terminals"][:n] | z["timeouts"][:n]) + 1
    if lost:
        first_end = np.flatnonzero(z["terminals"] | z["timeouts"])[0] + 1
        ends = ends[ends > first_end]  # the oldest surviving episode is partial: drop it
    if not len(ends) or n <= 0:
        raise ConfigError(f"medium-replay: no complete episode among the first {up_to} transitions of {f}")
    starts = np.r_[first_end if lost else 0, ends[:-1]]
    T = int((ends - starts).max())
    obs_shape, act_shape = z["observations"].shape[1:], z["actions"].shape[1:]
    k = len(ends)
    out = Episodes(
        np.zeros((k, T + 1, *obs_shape), z["observations"].dtype),
        np.zeros((k, T, *act_shape), z["actions"].dtype),
        np.zeros((k, T)),
        np.zeros((k, T), bool),
        np.zeros((k, T), bool),
        (ends - starts).astype(np.int64),
    )
    for i, (s, e) in enumerate(zip(starts, ends)):
        L = e - s
        out.observations[i, :L] = z["observations"][s:e]
        out.observations[i, L:] = z["next_observations"][e - 1]
        out.actions[i, :L] = z["actions"][s:e]
        out.rewards[i, :L] = z["rewards"][s:e]
        out.terminations[i, :L] = z["terminals"][s:e]
        out.truncations[i, :L] = z["timeouts"][s:e]
    return out
