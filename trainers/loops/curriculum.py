"""The curriculum loop: on-policy PPO on a level curriculum (unsupervised environment design),
shared by DRED, EL-DRED and the UED baselines (U, PLR, RPLR, DR, ACCEL).

Each cycle (DRED's training cycle, ../shared/specs/cave-dred.md):

1. the agent's curriculum (``learner.make_curriculum``, agents/dred/curriculum.py) plans a
   training rollout - one level per env, replayed for the whole segment (dcd's rollouts) -
   or none this cycle;
2. the rollout actors play it (every env restarts on its level), the learner scores the
   levels from its pre-update critic (``learner.step_scores``) and updates once;
3. the curriculum proposes new levels (generator, edits, random levels); the actors play
   them for one segment without any gradient (the scoring rollout), and the curriculum
   admits the ones its rule accepts into its level buffer.

The budget is ``updates`` (PPO updates): methods are compared at equal numbers of gradient
updates (DRED's protocol), while the x-axis of every chart is env steps, scoring rollouts
included (``env_steps``; ``student_env_steps`` counts training rollouts only). Config
fields: ``updates``, ``n_steps``, ``checkpoint_every``. Checkpoints hold the learner, the
curriculum (buffer, scores, generator weights, RNG) and the loop's counters; ``--resume``
continues from the last one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import envs
from trainers import checkpoint
from trainers.config import ConfigError, ExperimentConfig
from trainers.loops import RunContext, build_learner
from trainers.loops import evaluate_run as evaluate_run  # the loop surface (shiftrl evaluate)
from trainers.loops.online import OnlineLog

EVAL_FIELDS = frozenset({"levels", "shifts", "episodes", "every", "sample"})
RAY_FIELDS = frozenset({"address", "num_workers", "envs_per_worker", "include_dashboard"})
ENV_FIELDS = frozenset({"levels"})
DEFAULT_ENVS_PER_WORKER = 36  # DRED: 36 env processes x 256 steps per rollout
REQUIRED = ("updates", "n_steps", "checkpoint_every")


def validate(cfg: ExperimentConfig, env_spec: envs.EnvSpec) -> None:
    missing = [k for k in REQUIRED if not hasattr(cfg.agent_config, k)]
    if missing:
        raise ConfigError(f"agent {cfg.agent!r}: a curriculum agent's config needs fields {missing}")
    if env_spec.level_type is None:
        raise ConfigError(
            f"env.id: agent {cfg.agent!r} designs levels, but env {env_spec.id!r} declares no level type "
            "(it does not accept reset(options={'level': ...}))"
        )


def num_workers(cfg: ExperimentConfig) -> int | None:
    return cfg.ray.num_workers


def envs_per_worker(cfg: ExperimentConfig) -> int:
    return cfg.ray.envs_per_worker or DEFAULT_ENVS_PER_WORKER


def run(cfg: ExperimentConfig, run_dir: Path, ctx: RunContext) -> dict[str, Any]:
    from envs.levels import load_level_set
    from trainers.sampling import ResetDistribution, RunnerGroup

    a = cfg.agent_config
    try:
        learner, _ = build_learner(cfg)
    except ValueError as exc:  # the env does not fit the network (observation size, action kind)
        raise ConfigError(f"agent {cfg.agent!r} on {cfg.env.id}: {exc}") from exc
    spec = envs.spec(cfg.env.id)
    dataset = [dict(p) for p in load_level_set(cfg.env.levels).levels] if cfg.env.levels else []
    B = envs_per_worker(cfg)
    runners = max(ctx.num_workers, 1)
    n_envs = runners * B
    try:
        curriculum = learner.make_curriculum(spec=spec, dataset=dataset, env_kwargs=dict(cfg.env.kwargs), n_envs=n_envs)
    except ValueError as exc:
        raise ConfigError(f"agent {cfg.agent!r}: {exc}") from exc
    ckpt = run_dir / "checkpoints" / "state.pt"
    loop: dict[str, Any] = {"cycle": 0, "updates": 0, "env_steps": 0, "student_env_steps": 0}
    if ckpt.exists():
        learner_state, loop = checkpoint.load(ckpt)
        learner.load_state_dict(learner_state)
        curriculum.load_state_dict(loop["curriculum"])
        ctx.progress(f"resuming {run_dir.name} at update {loop['updates']} ({loop['env_steps']} env steps)")
    group = RunnerGroup(
        cfg.env.id, cfg.env.kwargs, learner.policy(), (cfg.seed, loop["cycle"]), ctx.num_workers, B, cfg.imports
    )
    log = OnlineLog(cfg, run_dir, 1, loop, fresh=loop["cycle"] == 0)
    seg = n_envs * a.n_steps
    ctx.progress(
        f"{cfg.agent} on {cfg.env.id}: {a.updates} PPO updates x {seg} env steps ({runners} runner(s) x {B} envs x "
        f"{a.n_steps} steps), plus scoring rollouts of generated levels; "
        f"{len(dataset)} training levels" + (f" from {cfg.env.levels}" if cfg.env.levels else "")
    )
    ignored = a.ignored() if hasattr(a, "ignored") else []
    if ignored:
        ctx.progress(
            f"WARNING: agent {cfg.agent!r} does not use agent_config {', '.join(ignored)} (set away from the "
            "default): they have no effect on this run"
        )
    curriculum.prepare(ctx.progress)  # e.g. DRED's VAE, trained once (a resume reads it from the checkpoint)

    def play(levels: list[dict[str, Any]]) -> tuple[Any, Any]:
        dist = ResetDistribution(tuple({"level": p} for p in levels), per_env=True)
        return group.sample(a.n_steps, dist, restart=True)

    try:
        while loop["updates"] < a.updates:
            t0 = time.time()
            group.set_weights(learner.weights())
            levels = curriculum.plan(loop["updates"] / a.updates)
            losses: dict[str, float] = {}
            episodes: list[dict[str, Any]] = []
            if levels is not None:
                batch, episodes = play(levels)
                step_scores = learner.step_scores(batch)  # pre-update critic (PLR scores the rollout's values)
                losses = learner.update(batch)
                curriculum.after_training(batch, step_scores)
                loop["updates"] += 1
                loop["env_steps"] += seg
                loop["student_env_steps"] += seg
            new = curriculum.proposals()
            admitted = 0
            if new:
                group.set_weights(learner.weights())
                sbatch, _ = play(new)
                admitted = curriculum.after_scoring(new, sbatch, learner.step_scores(sbatch))
                loop["env_steps"] += seg
            loop["cycle"] += 1
            steps, last = loop["env_steps"], loop["updates"] >= a.updates
            sps = seg * ((levels is not None) + bool(new)) / max(time.time() - t0, 1e-9)
            if levels is not None:
                msg = f"update {loop['updates']}/{a.updates}: " + log.record(
                    episodes, steps, losses, iteration=loop["updates"], sps=sps
                )
                stats = curriculum.stats()
                log.scalars({f"curriculum/{k}": v for k, v in stats.items()}, steps)
                log.scalars({"charts/student_env_steps": float(loop["student_env_steps"])}, steps)
                msg += f", {sps:.0f} steps/s"
                if new:
                    msg += f", admitted {admitted}/{len(new)} new levels (buffer {int(stats.get('buffer_size', 0))})"
                msg += log.maybe_evaluate(group, learner.weights(), steps, last)
                if loop["updates"] % a.checkpoint_every == 0 or last:
                    loop["curriculum"] = curriculum.state_dict()
                    checkpoint.save(ckpt, learner.state_dict(), loop)
                ctx.progress(msg)
                if ctx.report:
                    ctx.report({"iteration": loop["updates"], "env_steps": steps})
            else:
                ctx.progress(
                    f"cycle {loop['cycle']}: scored {len(new)} new levels without training, admitted {admitted}"
                )
    finally:
        log.close()
        group.close()
    return log.results(
        curriculum=curriculum.stats(), updates=loop["updates"], student_env_steps=loop["student_env_steps"]
    )
