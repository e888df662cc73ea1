"""The robust offline experiment: per replication, collect -> fit every method -> evaluate
every method over the shift grid; checkpoint each replication; aggregate into results.json.

This is the protocol of the R2PVI paper's figure 1 (20 replications of K trajectories,
100 test episodes per shift). Every random stream derives from (seed, replication), and
all methods of a replication are evaluated on the same episode seeds (common random
numbers), so a resumed or re-run experiment reproduces its numbers exactly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import envs
from agents.r2pvi import LinearVI, make_linear_batch
from envs import datasets
from envs.episodes import Episodes
from trainers.config import ExperimentConfig, parse_behaviour, to_dict
from trainers.io import atomic_save_npz, atomic_write_json
from trainers.policies import LinearGreedyPolicy, behaviour_policy
from trainers.rollout import Job, RolloutPool
from trainers.tb import TBLogger, shift_step


def shift_grid(cfg: ExperimentConfig) -> tuple[str, list[float | None]]:
    """(parameter name, values); the env's nominal kernel alone when no grid is given."""
    if not cfg.eval.shifts:
        return "nominal", [None]
    ((name, values),) = cfg.eval.shifts.items()
    return name, [float(v) for v in values]


def _seeds(seed: int, rep: int, purpose: int, n: int) -> list[int]:
    ss = np.random.SeedSequence([seed, rep, purpose])
    return [int(s.generate_state(1)[0]) for s in ss.spawn(n)]


def collect(cfg: ExperimentConfig, pool: RolloutPool, rep: int, env: Any) -> Episodes:
    """K behaviour-policy episodes for replication ``rep`` (chunked into fixed-size jobs)."""
    kind, arg = parse_behaviour(cfg.data.behaviour)
    policy = behaviour_policy(kind, arg, env.action_space)
    K, chunk = cfg.data.episodes, cfg.data.chunk
    sizes = [min(chunk, K - i) for i in range(0, K, chunk)]
    seeds = _seeds(cfg.seed, rep, 0, len(sizes))
    jobs = [Job(policy, n, s, dict(cfg.data.shift)) for n, s in zip(sizes, seeds)]
    return Episodes.concat(pool.map(jobs))


def load_or_collect(cfg: ExperimentConfig, pool: RolloutPool, rep: int, env: Any) -> Episodes:
    if cfg.data.dataset is None:
        return collect(cfg, pool, rep, env)
    ds = datasets.load(cfg.data.dataset)
    if ds.metadata.get("env_id") not in (None, cfg.env.id):
        raise datasets.DatasetError(
            f"dataset {cfg.data.dataset} was collected on {ds.metadata['env_id']!r}, config env.id is {cfg.env.id!r}"
        )
    return ds.episodes


def evaluate_policies(
    cfg: ExperimentConfig, pool: RolloutPool, learners: dict[str, LinearVI], structure: Any, rep: int
) -> dict[str, list[float]]:
    """Mean return of each learner's greedy policy at each shift of the grid."""
    name, values = shift_grid(cfg)
    seeds = _seeds(cfg.seed, rep, 1, len(values))
    if cfg.eval.exact:
        if not hasattr(structure, "evaluate"):
            raise ValueError(f"eval.exact: env {cfg.env.id} has no exact evaluator; set eval.exact: false")
        out = {}
        for label, learner in learners.items():
            policy = LinearGreedyPolicy(learner, structure)
            out[label] = [
                structure.with_shift(**({} if v is None else {name: v})).evaluate(policy.greedy) for v in values
            ]
        return out
    labels = list(learners)
    jobs = [
        Job(LinearGreedyPolicy(learners[label], structure), cfg.eval.episodes, s, {} if v is None else {name: v}, True)
        for label in labels
        for v, s in zip(values, seeds)
    ]
    returns = pool.map(jobs)
    k = len(values)
    return {label: [float(np.mean(r)) for r in returns[i * k : (i + 1) * k]] for i, label in enumerate(labels)}


def run_robust(
    cfg: ExperimentConfig,
    run_dir: Path,
    pool: RolloutPool,
    progress: Callable[[str], None] = print,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Runs (or resumes) the experiment in ``run_dir`` and returns the results dict."""
    spec = envs.spec(cfg.env.id)
    env = spec.make(**cfg.env.kwargs)
    if not hasattr(env, "linear_structure"):
        raise ValueError(f"env {cfg.env.id} exposes no linear structure (features) for {cfg.agent}")
    structure = env.linear_structure()
    methods = cfg.agent_config.methods
    shift_name, shift_values = shift_grid(cfg)
    ckpt = run_dir / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    tb = TBLogger(run_dir)
    per_rep: list[dict[str, Any]] = []
    start = time.time()
    done = sorted(ckpt.glob("rep_*.json"))
    if done:
        progress(f"resuming {run_dir.name}: {len(done)}/{cfg.replications} replications already checkpointed")
    for rep in range(cfg.replications):
        rec_path = ckpt / f"rep_{rep:04d}.json"
        if rec_path.exists():
            per_rep.append(json.loads(rec_path.read_text()))
            continue
        t0 = time.time()
        episodes = load_or_collect(cfg, pool, rep, env)
        t_collect = time.time() - t0
        batch = make_linear_batch(
            episodes.observations,
            episodes.actions,
            episodes.rewards,
            episodes.lengths,
            episodes.terminations,
            structure,
        )
        learners, fit_seconds, diagnostics = {}, {}, {}
        for m in methods:
            learner = LinearVI(m, cfg.agent_config)
            t1 = time.perf_counter()
            diagnostics[m.label] = learner.fit(batch)
            fit_seconds[m.label] = time.perf_counter() - t1
            learners[m.label] = learner
        t2 = time.time()
        returns = evaluate_policies(cfg, pool, learners, structure, rep)
        t_eval = time.time() - t2
        arrays = {f"{label}/{k}": v for label, ln in learners.items() for k, v in ln.state_dict().items()}
        atomic_save_npz(ckpt / f"rep_{rep:04d}.npz", arrays)
        record = {
            "replication": rep,
            "returns": returns,
            "fit_seconds": fit_seconds,
            "diagnostics": diagnostics,
            "dataset": {"episodes": int(episodes.n), "steps": int(episodes.lengths.sum())},
        }
        atomic_write_json(rec_path, record)  # written last: its presence marks the replication done
        per_rep.append(record)
        n_done = rep + 1
        elapsed = time.time() - start
        eta = elapsed / max(1, n_done - len(done)) * (cfg.replications - n_done)
        best = {k: round(float(np.mean(v)), 3) for k, v in returns.items()}
        progress(
            f"[rep {n_done}/{cfg.replications}] data {episodes.n} eps ({t_collect:.2f}s) | fit "
            f"{sum(fit_seconds.values()) * 1e3:.1f} ms | eval {len(shift_values)} shifts ({t_eval:.2f}s) | "
            f"mean return over shifts {best} | ETA {eta:.0f}s"
        )
        if report:
            report({"replications_done": n_done, "env_steps_collected": int(episodes.lengths.sum()) * n_done})
    results = aggregate(cfg, per_rep, shift_name, shift_values)
    for label, stats in results["methods"].items():
        for v, mean, std in zip(shift_values, stats["mean"], stats["std"]):
            tb.scalars(label, {"robust/return": mean, "robust/return_std": std}, shift_step(0.0 if v is None else v))
        n_steps = per_rep[0]["dataset"]["steps"] if per_rep else 0
        tb.scalars(label, {"charts/fit_seconds": stats["fit_seconds_mean"]}, n_steps)
    tb.close()
    atomic_write_json(run_dir / "results.json", results)
    return results


def aggregate(cfg: ExperimentConfig, per_rep: list[dict[str, Any]], shift_name: str, values: list) -> dict[str, Any]:
    methods = {}
    for m in cfg.agent_config.methods:
        table = np.array([r["returns"][m.label] for r in per_rep])  # (reps, shifts)
        methods[m.label] = {
            "algo": m.algo,
            "lam": m.lam,
            "rho": m.rho,
            "mean": table.mean(axis=0).tolist(),
            "std": table.std(axis=0).tolist(),
            "per_replication": table.tolist(),
            "fit_seconds_mean": float(np.mean([r["fit_seconds"][m.label] for r in per_rep])),
        }
    return {
        "kind": "robust",
        "env": cfg.env.id,
        "agent": cfg.agent,
        "seed": cfg.seed,
        "replications": len(per_rep),
        "shift_name": shift_name,
        "shifts": values,
        "eval": to_dict(cfg.eval),
        "methods": methods,
    }
