"""The on-policy loop, shared by every agent registered with ``loop="on_policy"`` (PPO,
MAPPO; DRED's PPO next): each iteration the rollout runners sample T steps of their B
self-resetting envs with the latest weights (synchronously: deterministic under a seed for
a fixed number of runners), the learner updates once, and the runtime logs, evaluates and
checkpoints.

The agent config must have ``env_steps`` (budget), ``n_steps`` (T) and
``checkpoint_every`` (iterations). Checkpoints hold the learner's state dicts (networks,
optimiser, RNGs, counters) and the loop's counters and history; ``--resume`` restores them
exactly. The envs' in-flight episodes are not checkpointed: a resumed run starts fresh
episodes with streams keyed by (seed, resume iteration), so it continues the same learner
but is not bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

import envs
from trainers import checkpoint
from trainers.config import ConfigError, ExperimentConfig
from trainers.loops import RunContext, build_learner
from trainers.loops import evaluate_run as evaluate_run  # the loop surface (shiftrl evaluate)
from trainers.loops import load_policy as load_policy  # the loop surface (shiftrl render)
from trainers.loops.online import OnlineLog

EVAL_FIELDS = frozenset({"shifts", "tasks", "levels", "episodes", "every", "sample"})
RAY_FIELDS = frozenset({"address", "num_workers", "envs_per_worker", "include_dashboard"})
ENV_FIELDS = frozenset({"levels"})
DEFAULT_ENVS_PER_WORKER = 8
REQUIRED = ("env_steps", "n_steps", "checkpoint_every")


def validate(cfg: ExperimentConfig, env_spec: envs.EnvSpec) -> None:
    missing = [k for k in REQUIRED if not hasattr(cfg.agent_config, k)]
    if missing:
        raise ConfigError(f"agent {cfg.agent!r}: an on_policy agent's config needs fields {missing}")


def num_workers(cfg: ExperimentConfig) -> int | None:
    return cfg.ray.num_workers


def envs_per_worker(cfg: ExperimentConfig) -> int:
    return cfg.ray.envs_per_worker or DEFAULT_ENVS_PER_WORKER


def run(cfg: ExperimentConfig, run_dir: Path, ctx: RunContext) -> dict[str, Any]:
    from trainers.sampling import RunnerGroup

    a = cfg.agent_config
    learner, spaces = build_learner(cfg)
    ckpt = run_dir / "checkpoints" / "state.pt"
    loop: dict[str, Any] = {"iteration": 0, "env_steps": 0}
    if ckpt.exists():
        learner_state, loop = checkpoint.load(ckpt)
        learner.load_state_dict(learner_state)
        ctx.progress(f"resuming {run_dir.name} from iteration {loop['iteration']} ({loop['env_steps']} env steps)")
    B = envs_per_worker(cfg)
    runners = max(ctx.num_workers, 1)
    steps_per_iter = runners * B * a.n_steps
    iterations = max(1, math.ceil(a.env_steps / steps_per_iter))
    sampler: Any = None
    distribution: Any = None
    level_options: tuple[dict[str, Any], ...] = ()
    if cfg.env.levels:
        from agents.protocols import UniformLevelSampler
        from envs.levels import load_level_set
        from trainers.sampling import ResetDistribution

        level_set = load_level_set(cfg.env.levels)
        level_options = tuple({"level": dict(p)} for p in level_set.levels)
        make = getattr(learner, "make_level_sampler", None)
        sampler = make(len(level_options), cfg.seed) if make else UniformLevelSampler(len(level_options))
        if "sampler" in loop:
            sampler.load_state_dict(loop["sampler"])
    group = RunnerGroup(
        cfg.env.id, cfg.env.kwargs, learner.policy(), (cfg.seed, loop["iteration"]), ctx.num_workers, B, cfg.imports
    )
    log = OnlineLog(cfg, run_dir, spaces.n_agents, loop, fresh=loop["iteration"] == 0)
    ctx.progress(
        f"{cfg.agent} on {cfg.env.id}: {iterations} iterations x {steps_per_iter} env steps "
        f"({runners} runner(s) x {B} envs x {a.n_steps} steps), {spaces.n_agents} agent(s)"
    )
    try:
        for it in range(loop["iteration"], iterations):
            t0 = time.time()
            group.set_weights(learner.weights())
            if sampler is not None:
                distribution = ResetDistribution(level_options, np.asarray(sampler.probs(), float))
            batch, episodes = group.sample(a.n_steps, distribution)
            t_sample = time.time() - t0
            losses = learner.update(batch)
            if sampler is not None and episodes:
                # the agent's per-episode scores when it defines them (level replay), else returns
                score = getattr(learner, "episode_scores", None)
                scores = score(batch, episodes) if score else np.array([e["return"] for e in episodes])
                sampler.update(np.array([e["task"] for e in episodes]), np.asarray(scores, float))
                loop["sampler"] = sampler.state_dict()
            loop["env_steps"] += steps_per_iter
            steps = loop["env_steps"]
            sps, sample_sps = steps_per_iter / max(time.time() - t0, 1e-9), steps_per_iter / max(t_sample, 1e-9)
            msg = f"iter {it + 1}/{iterations}: " + log.record(
                episodes, steps, losses, iteration=it + 1, sps=sps, sample_sps=sample_sps
            )
            msg += f", {sps:.0f} steps/s (sampling {sample_sps:.0f})"
            last = it + 1 == iterations
            msg += log.maybe_evaluate(group, learner.weights(), steps, last)
            loop["iteration"] = it + 1
            if (it + 1) % a.checkpoint_every == 0 or last:
                checkpoint.save(ckpt, learner.state_dict(), loop)
            ctx.progress(msg)
            if ctx.report:
                ctx.report({"iteration": it + 1, "env_steps": steps})
    finally:
        log.close()
        group.close()
    return log.results(level_sampler=loop.get("sampler"))
