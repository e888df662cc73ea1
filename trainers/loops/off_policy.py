"""The off-policy loop, shared by every agent registered with ``loop="off_policy"`` (VDN,
QMIX; TRAMA next): rollout runners stream whole episodes into a replay buffer of episodes
and the learner trains on batches of episodes sampled from it.

With Ray actors (``ray.num_workers >= 1``) sampling is asynchronous: each runner keeps one
request in flight and gets the latest weights with its next request, so learning never
waits for the slowest runner. That mode is not bit-reproducible (which runner answers
first depends on timing). With ``ray.num_workers: 0`` the same loop runs in-process and
is deterministic under a seed.

A config with ``replay: transitions`` (TD3, the suite's behaviour-policy learner) gets a
replay of single transitions instead (:class:`TransitionReplay`, fields ``buffer_size``,
``batch_size``, ``warmup_steps``, ``updates_per_step``) and transition batches.
Otherwise the agent config must have ``env_steps``, ``batch_episodes``, ``buffer_episodes``,
``episodes_per_request``, ``updates_per_episode``, ``warmup_episodes`` and
``checkpoint_every`` (updates); the learner must have ``set_env_steps(n)`` (exploration
schedules follow env steps). A learner that also has ``observe_replay`` (an
:class:`agents.protocols.ReplayObserver`, e.g. TRAMA's trajectory classes) sees the buffer
after every request and may label its episodes; what it returns is logged under
``diagnostics/<name>``. The replay buffer is not checkpointed unless the config has
``checkpoint_buffer: true``: a resumed run refills it (``warmup_episodes``) before
learning resumes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

import envs
from agents.protocols import Batch
from trainers import checkpoint
from trainers.config import ConfigError, ExperimentConfig
from trainers.io import atomic_save_npz, load_npz
from trainers.loops import RunContext, build_learner
from trainers.loops import evaluate_run as evaluate_run  # the loop surface (shiftrl evaluate)
from trainers.loops import load_policy as load_policy  # the loop surface (shiftrl render)
from trainers.loops.online import OnlineLog

EVAL_FIELDS = frozenset({"shifts", "tasks", "levels", "episodes", "every"})
RAY_FIELDS = frozenset({"address", "num_workers", "envs_per_worker", "include_dashboard"})
DEFAULT_ENVS_PER_WORKER = 8
REQUIRED = (
    "env_steps",
    "batch_episodes",
    "buffer_episodes",
    "episodes_per_request",
    "updates_per_episode",
    "warmup_episodes",
    "checkpoint_every",
)
# agents whose config says ``replay: transitions`` (TD3) learn from single transitions
REQUIRED_TRANSITIONS = (
    "env_steps",
    "batch_size",
    "buffer_size",
    "episodes_per_request",
    "updates_per_step",
    "warmup_steps",
    "checkpoint_every",
)
_PER_EPISODE = ("next_obs", "next_state", "next_mask", "next_alive", "h0")


def uses_transitions(a: Any) -> bool:
    return getattr(a, "replay", "episodes") == "transitions"


def validate(cfg: ExperimentConfig, env_spec: envs.EnvSpec) -> None:
    a = cfg.agent_config
    required = REQUIRED_TRANSITIONS if uses_transitions(a) else REQUIRED
    missing = [k for k in required if not hasattr(a, k)]
    if missing:
        raise ConfigError(f"agent {cfg.agent!r}: an off_policy agent's config needs fields {missing}")
    if uses_transitions(a):
        if a.batch_size > a.buffer_size:
            raise ConfigError(
                f"agent_config: batch_size ({a.batch_size}) must not exceed buffer_size ({a.buffer_size})"
            )
        return
    if a.warmup_episodes > a.buffer_episodes or a.batch_episodes > a.buffer_episodes:
        raise ConfigError(
            f"agent_config: warmup_episodes ({a.warmup_episodes}) and batch_episodes ({a.batch_episodes}) must "
            f"not exceed buffer_episodes ({a.buffer_episodes})"
        )


def num_workers(cfg: ExperimentConfig) -> int | None:
    return cfg.ray.num_workers


class EpisodeReplay:
    """A FIFO buffer of whole episodes (variable lengths, stored unpadded); sampled
    uniformly with the generator it is given, padded on the way out."""

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        self.capacity, self.rng = capacity, rng
        self.episodes: list[dict[str, Any]] = []
        self.added = 0

    def __len__(self) -> int:
        return len(self.episodes)

    def add(self, batch: Batch) -> int:
        """Splits a padded episode batch into episodes; returns how many were added."""
        lengths = batch["filled"].sum(1)
        for e, L in enumerate(lengths.tolist()):
            ep: dict[str, Any] = {}
            for k, v in batch.items():
                if k in ("filled", "first"):
                    continue
                if k in _PER_EPISODE:
                    ep[k] = v[e]
                elif k == "task":
                    ep[k] = np.int64(v[e, 0])
                else:
                    ep[k] = v[e, :L]
            self.episodes.append(ep)
            self.added += 1
        if len(self.episodes) > self.capacity:
            del self.episodes[: len(self.episodes) - self.capacity]
        return len(lengths)

    def sample(self, n: int) -> Batch:
        from trainers.sampling import pad_episodes

        idx = self.rng.choice(len(self.episodes), size=n, replace=len(self.episodes) < n)
        return pad_episodes([self.episodes[i] for i in idx])

    def save(self, path: Path) -> None:
        """All episodes as one npz (arrays concatenated along time, plus lengths)."""
        if not self.episodes:
            return
        keys = list(self.episodes[0])
        per_episode = [k for k in keys if k in _PER_EPISODE or np.ndim(self.episodes[0][k]) == 0]
        arrays = {
            "lengths": np.array([len(e["rewards"]) for e in self.episodes]),
            "per_episode_keys": np.array(per_episode),
        }
        for k in keys:
            stack = np.stack if k in per_episode else np.concatenate
            arrays[k.replace("/", "__")] = stack([np.asarray(e[k]) for e in self.episodes])
        atomic_save_npz(path, arrays)

    def load(self, path: Path) -> None:
        try:
            arrays = load_npz(path)
            lengths = arrays.pop("lengths")
            # buffers saved before per-episode keys were recorded held these two kinds only
            default = [*_PER_EPISODE, "task"]
            per_episode = set(arrays.pop("per_episode_keys", np.array(default)).tolist())
        except Exception as exc:
            raise ConfigError(f"replay buffer {path}: unreadable or corrupt ({exc}); delete it to refill") from exc
        ends = np.cumsum(lengths)
        starts = ends - lengths
        self.episodes = []
        for i, (s, t) in enumerate(zip(starts, ends)):
            ep = {}
            for k, v in arrays.items():
                key = k.replace("__", "/")
                ep[key] = v[i] if key in per_episode else v[s:t]
            self.episodes.append(ep)


class TransitionReplay:
    """A FIFO ring of single transitions (TD3-style learners): episodes from the runners
    are cut into (s, a, r, s', terminal, timeout) rows, s' of an episode's last step being
    the observation after it (``next_obs``), so no row crosses an episode boundary.
    Sampled uniformly; batches are the offline loop's transition batches
    (agents.protocols.DatasetLearner)."""

    KEYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        self.capacity, self.rng = capacity, rng
        self.data: dict[str, np.ndarray] = {}
        self.size = self.pos = 0
        self.added = 0
        self.episodes: list[dict[str, Any]] = []  # ReplayObserver surface: not kept here

    def __len__(self) -> int:
        return self.size

    def add(self, batch: Batch) -> int:
        lengths = batch["filled"].sum(1)
        rows: dict[str, list[np.ndarray]] = {k: [] for k in self.KEYS}
        for e, L in enumerate(lengths.tolist()):
            obs = batch["obs"][e, :L, 0]
            rows["observations"].append(obs)
            rows["next_observations"].append(np.concatenate([obs[1:], batch["next_obs"][e, None, 0]]))
            rows["actions"].append(batch["actions"][e, :L, 0])
            rows["rewards"].append(batch["rewards"][e, :L])
            rows["terminals"].append(batch["terminated"][e, :L])
            rows["timeouts"].append(batch["truncated"][e, :L])
        for k, parts in rows.items():
            self._write(k, np.concatenate(parts))
        return len(lengths)

    def _write(self, key: str, x: np.ndarray) -> None:
        if key not in self.data:
            self.data[key] = np.zeros((self.capacity, *x.shape[1:]), x.dtype)
        n = len(x)
        keep = x[-self.capacity :]  # more rows than the capacity: the newest survive
        start = (self.pos + n - len(keep)) % self.capacity
        self.data[key][(start + np.arange(len(keep))) % self.capacity] = keep
        if key == self.KEYS[-1]:  # the last key of a row: advance once per add
            self.pos = int((self.pos + n) % self.capacity)
            self.size = min(self.size + n, self.capacity)
            self.added += n

    def sample(self, n: int) -> Batch:
        idx = self.rng.integers(0, self.size, size=n)
        return {k: v[idx] for k, v in self.data.items()}

    def save(self, path: Path) -> None:
        if self.size:
            arrays = {k: v[: self.size] for k, v in self.data.items()}
            atomic_save_npz(path, {**arrays, "pos": np.array(self.pos), "added": np.array(self.added)})

    def load(self, path: Path) -> None:
        try:
            arrays = load_npz(path)
            pos = int(arrays.pop("pos"))
            self.added = int(arrays.pop("added", 0))
        except Exception as exc:
            raise ConfigError(f"replay buffer {path}: unreadable or corrupt ({exc}); delete it to refill") from exc
        self.size = len(arrays["rewards"])
        self.data = {}
        for k, v in arrays.items():
            self.data[k] = np.zeros((self.capacity, *v.shape[1:]), v.dtype)
            self.data[k][: self.size] = v
        self.pos = pos


def run(cfg: ExperimentConfig, run_dir: Path, ctx: RunContext) -> dict[str, Any]:
    from trainers.sampling import RunnerGroup

    a = cfg.agent_config
    learner, spaces = build_learner(cfg)
    ckpt = run_dir / "checkpoints" / "state.pt"
    buf_file = run_dir / "checkpoints" / "replay.npz"
    loop: dict[str, Any] = {"updates": 0, "env_steps": 0, "episodes": 0, "next_log": 0}
    if ckpt.exists():
        learner_state, loop = checkpoint.load(ckpt)
        learner.load_state_dict(learner_state)
        ctx.progress(f"resuming {run_dir.name} from {loop['updates']} updates ({loop['env_steps']} env steps)")
    flat = uses_transitions(a)
    buf_rng = np.random.default_rng([cfg.seed, 23, loop["updates"]])
    buffer: EpisodeReplay | TransitionReplay = (
        TransitionReplay(a.buffer_size, buf_rng) if flat else EpisodeReplay(a.buffer_episodes, buf_rng)
    )
    warmup = a.warmup_steps if flat else a.warmup_episodes
    batch_n = a.batch_size if flat else a.batch_episodes
    keep_buffer = bool(getattr(a, "checkpoint_buffer", False))
    if keep_buffer and buf_file.exists():
        buffer.load(buf_file)
    elif loop["updates"]:
        ctx.progress(
            f"refilling the replay buffer ({warmup} {'steps' if flat else 'episodes'}) before learning resumes"
        )
    B = cfg.ray.envs_per_worker or DEFAULT_ENVS_PER_WORKER
    group = RunnerGroup(
        cfg.env.id, cfg.env.kwargs, learner.policy(), (cfg.seed, loop["updates"]), ctx.num_workers, B, cfg.imports
    )
    log = OnlineLog(cfg, run_dir, spaces.n_agents, loop, fresh=not loop["updates"] and not loop["env_steps"])
    mode = "asynchronous" if ctx.num_workers else "in-process (deterministic)"
    ctx.progress(
        f"{cfg.agent} on {cfg.env.id}: {a.env_steps} env steps, {mode} sampling with {max(ctx.num_workers, 1)} "
        f"runner(s) x {B} envs, buffer {a.buffer_size if flat else a.buffer_episodes} "
        f"{'transitions' if flat else 'episodes'}, batch {batch_n}"
    )
    losses: dict[str, float] = {}
    fresh: dict[str, float] = {}  # diagnostics reported since the last log row
    observe = getattr(learner, "observe_replay", None)  # agents.protocols.ReplayObserver
    pending: list[dict[str, Any]] = []  # finished episodes since the last log row
    t_last, steps_last = time.time(), loop["env_steps"]
    learner.set_env_steps(loop["env_steps"])
    group.set_weights(learner.weights())
    try:
        for batch, records in group.stream(a.episodes_per_request):
            n_new = buffer.add(batch)
            new_steps = int(batch["filled"].sum())
            loop["env_steps"] += new_steps
            loop["episodes"] += len(records)
            pending += records
            steps = loop["env_steps"]
            learner.set_env_steps(steps)  # schedules (epsilon, TRAMA's VQ-VAE) see this request's steps
            if observe is not None and not flat:
                fresh |= observe(buffer.episodes, min(n_new, len(buffer)), steps)
            if len(buffer) >= warmup:
                # PyMARL's pace: updates_per_episode updates per collected episode (TD3's:
                # updates_per_step per env step), the fraction carried to the next request
                owed = new_steps * a.updates_per_step if flat else n_new * a.updates_per_episode
                loop["update_credit"] = loop.get("update_credit", 0.0) + owed
                while loop["update_credit"] >= 1.0:
                    losses = learner.update(buffer.sample(batch_n))
                    loop["update_credit"] -= 1.0  # after the update: a checkpoint keeps what is owed
                    loop["updates"] += 1
                    if loop["updates"] % a.checkpoint_every == 0:
                        checkpoint.save(ckpt, learner.state_dict(), loop)
                        if keep_buffer:
                            buffer.save(buf_file)
            group.set_weights(learner.weights())
            done = steps >= a.env_steps
            if steps >= loop["next_log"] or done:
                sps = (steps - steps_last) / max(time.time() - t_last, 1e-9)
                t_last, steps_last = time.time(), steps
                loop["next_log"] = steps + max(a.env_steps // 200, 1)
                msg = log.record(pending, steps, losses, updates=loop["updates"], sps=sps)
                log.scalars({f"diagnostics/{k}": v for k, v in fresh.items()}, steps)
                pending = []
                msg = f"{msg}, {loop['updates']} updates, {sps:.0f} steps/s"
                if fresh:
                    msg += " | " + ", ".join(f"{k} {v:.3g}" for k, v in sorted(fresh.items()))
                    fresh = {}
                n_evals = len(loop["evals"])
                msg += log.maybe_evaluate(group, learner.weights(), steps, done)
                if getattr(a, "keep_snapshots", False) and len(loop["evals"]) > n_evals:
                    # behaviour-policy runs: one snapshot per evaluation (`shiftrl collect`
                    # picks its medium and expert policies among them)
                    ret = loop["evals"][-1]["overall"]["return"]["mean"]
                    snap = run_dir / "checkpoints" / f"snapshot_{steps:010d}.pt"
                    checkpoint.save(snap, learner.state_dict(), {"env_steps": steps, "eval_return": ret})
                ctx.progress(msg)
                if ctx.report:
                    ctx.report({"env_steps": steps})
            if done:
                break
        checkpoint.save(ckpt, learner.state_dict(), loop)
        if keep_buffer:
            buffer.save(buf_file)
    finally:
        log.close()
        group.close()
    return log.results()
