"""R2PVI's linear pipeline (the ``closed_form`` loop): per replication, collect (or load)
data -> fit every method in closed form -> evaluate every method over the shift grid;
checkpoint each replication; aggregate into results.json.

This is the protocol of the R2PVI paper's figure 1 (20 replications of K trajectories,
100 test episodes per shift). Every random stream derives from (seed, replication), and
all methods of a replication are evaluated on the same episode seeds (common random
numbers), so a resumed or re-run experiment reproduces its numbers exactly, whatever the
number of rollout actors.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import envs
from agents.r2pvi import LinearVI, R2PVILearner, make_linear_batch
from envs import datasets
from envs.episodes import Episodes
from trainers.config import ConfigError, ExperimentConfig, to_dict
from trainers.io import atomic_save_npz, atomic_write_json, load_npz
from trainers.loops import RunContext
from trainers.policies import LinearGreedyPolicy, behaviour_policy, parse_behaviour
from trainers.rollout import Job, RolloutPool
from trainers.stats import summary
from trainers.tb import TBLogger, shift_step

EVAL_FIELDS = frozenset({"shifts", "episodes", "exact"})
RAY_FIELDS = frozenset({"address", "num_workers", "include_dashboard"})


def validate(cfg: ExperimentConfig, env_spec: envs.EnvSpec) -> None:
    data = cfg.agent_config.data
    for name in data.shift:
        try:
            env_spec.shift(name)
        except envs.EnvError as exc:
            raise ConfigError(f"agent_config.data.shift: {exc}") from exc
    if data.dataset is not None and not Path(data.dataset).is_dir():
        raise ConfigError(f"agent_config.data.dataset: {data.dataset} is not a dataset directory (shiftrl collect)")


def num_workers(cfg: ExperimentConfig) -> int | None:
    return cfg.ray.num_workers


def shift_grid(cfg: ExperimentConfig) -> tuple[str, list[float | None]]:
    """(parameter name, values); the env's nominal kernel alone when no grid is given."""
    if not cfg.eval.shifts:
        return "nominal", [None]
    ((name, values),) = cfg.eval.shifts.items()
    return name, [float(v) for v in values]


def derive_seeds(seed: int, rep: int, purpose: int, n: int) -> list[int]:
    """n seeds derived from (seed, replication, purpose): 0 = data, 1 = evaluation."""
    ss = np.random.SeedSequence([seed, rep, purpose])
    return [int(s.generate_state(1)[0]) for s in ss.spawn(n)]


def collect(cfg: ExperimentConfig, pool: RolloutPool, rep: int, env: Any) -> Episodes:
    """K behaviour-policy episodes for replication ``rep`` (chunked into fixed-size jobs)."""
    data = cfg.agent_config.data
    kind, arg = parse_behaviour(data.behaviour)
    policy = behaviour_policy(kind, arg, env.action_space)
    K, chunk = data.episodes, data.chunk
    sizes = [min(chunk, K - i) for i in range(0, K, chunk)]
    seeds = derive_seeds(cfg.seed, rep, 0, len(sizes))
    jobs = [Job(policy, n, s, dict(data.shift)) for n, s in zip(sizes, seeds)]
    return Episodes.concat(pool.map(jobs))


def load_or_collect(cfg: ExperimentConfig, pool: RolloutPool, rep: int, env: Any) -> Episodes:
    path = cfg.agent_config.data.dataset
    if path is None:
        return collect(cfg, pool, rep, env)
    ds = datasets.load(path)
    if ds.metadata.get("env_id") not in (None, cfg.env.id):
        raise datasets.DatasetError(
            f"dataset {path} was collected on {ds.metadata['env_id']!r}, config env.id is {cfg.env.id!r}"
        )
    return ds.episodes


def evaluate_policies(
    cfg: ExperimentConfig, pool: RolloutPool, learners: dict[str, LinearVI], structure: Any, rep: int
) -> dict[str, list[list[float]]]:
    """Per-episode returns of each learner's greedy policy at each shift of the grid
    (one exact value per shift with ``eval.exact``)."""
    name, values = shift_grid(cfg)
    seeds = derive_seeds(cfg.seed, rep, 1, len(values))
    if cfg.eval.exact:
        if not hasattr(structure, "evaluate"):
            raise ConfigError(f"eval.exact: env {cfg.env.id} has no exact evaluator; set eval.exact: false")
        out = {}
        for label, learner in learners.items():
            policy = LinearGreedyPolicy(learner, structure)
            out[label] = [
                [structure.with_shift(**({} if v is None else {name: v})).evaluate(policy.greedy)] for v in values
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
    return {label: [np.asarray(r).tolist() for r in returns[i * k : (i + 1) * k]] for i, label in enumerate(labels)}


def _structure(cfg: ExperimentConfig) -> Any:
    env = envs.spec(cfg.env.id).make(**cfg.env.kwargs)
    if not hasattr(env, "linear_structure"):
        raise ConfigError(f"env {cfg.env.id} exposes no linear structure (features) for {cfg.agent}")
    return env, env.linear_structure()


def run(cfg: ExperimentConfig, run_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Runs (or resumes) the experiment in ``run_dir`` and returns the results dict."""
    from trainers.agents import agent_spec

    spec = envs.spec(cfg.env.id)
    pool = RolloutPool(spec, cfg.env.kwargs, num_workers=ctx.num_workers, imports=cfg.imports)
    try:
        return _run(cfg, run_dir, ctx, pool, agent_spec(cfg.agent))
    finally:
        pool.close()


def _run(cfg: ExperimentConfig, run_dir: Path, ctx: RunContext, pool: RolloutPool, spec: Any) -> dict[str, Any]:
    env, structure = _structure(cfg)
    a = cfg.agent_config
    shift_name, shift_values = shift_grid(cfg)
    ckpt = run_dir / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    tb = TBLogger(run_dir)
    if not list(ckpt.glob("rep_*.json")):
        tb.config(to_dict(cfg))
    per_rep: list[dict[str, Any]] = []
    start = time.time()
    done = sorted(ckpt.glob("rep_*.json"))
    if done:
        ctx.progress(f"resuming {run_dir.name}: {len(done)}/{a.replications} replications already checkpointed")
    for rep in range(a.replications):
        rec_path = ckpt / f"rep_{rep:04d}.json"
        if rec_path.exists():
            per_rep.append(read_json(rec_path))
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
        learner: R2PVILearner = spec.make_learner(a, structure, cfg.seed)
        diagnostics = learner.update(batch)
        steps = int(episodes.lengths.sum())
        tb.scalars("main", {f"losses/{k}": v for k, v in diagnostics.items()}, (rep + 1) * steps)
        t2 = time.time()
        returns = evaluate_policies(cfg, pool, learner.methods, structure, rep)
        t_eval = time.time() - t2
        atomic_save_npz(ckpt / f"rep_{rep:04d}.npz", learner.state_dict())
        record: dict[str, Any] = {
            "replication": rep,
            "returns": {k: [float(np.mean(r)) for r in v] for k, v in returns.items()},
            "episode_returns": returns,
            "fit_seconds": dict(learner.fit_seconds),
            "diagnostics": diagnostics,
            "dataset": {"episodes": int(episodes.n), "steps": steps},
        }
        atomic_write_json(rec_path, record)  # written last: its presence marks the replication done
        per_rep.append(record)
        n_done = rep + 1
        elapsed = time.time() - start
        eta = elapsed / max(1, n_done - len(done)) * (a.replications - n_done)
        best = {k: round(float(np.mean(v)), 3) for k, v in record["returns"].items()}
        ctx.progress(
            f"[rep {n_done}/{a.replications}] data {episodes.n} eps ({t_collect:.2f}s) | fit "
            f"{sum(learner.fit_seconds.values()) * 1e3:.1f} ms | eval {len(shift_values)} shifts ({t_eval:.2f}s) | "
            f"mean return over shifts {best} | ETA {eta:.0f}s"
        )
        if ctx.report:
            ctx.report({"replications_done": n_done, "env_steps": steps * n_done})
    results = aggregate(cfg, per_rep, shift_name, shift_values)
    for label, stats in results["methods"].items():
        for v, mean, std in zip(shift_values, stats["mean"], stats["std"]):
            tb.scalars(label, {"robust/return": mean, "robust/return_std": std}, shift_step(0.0 if v is None else v))
        n_steps = per_rep[0]["dataset"]["steps"] if per_rep else 0
        tb.scalars(label, {"charts/fit_seconds": stats["fit_seconds_mean"]}, n_steps)
    tb.close()
    atomic_write_json(run_dir / "results.json", results)
    return results


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable or corrupt JSON ({exc}); delete it to recompute that part") from exc


def aggregate(cfg: ExperimentConfig, per_rep: list[dict[str, Any]], shift_name: str, values: list) -> dict[str, Any]:
    """Mean and std over replications (the paper's error bars) plus a 95% interval of the
    mean, per method and shift."""
    methods = {}
    for m in cfg.agent_config.methods:
        table = np.array([r["returns"][m.label] for r in per_rep])  # (reps, shifts)
        stats = [summary(table[:, j]) for j in range(table.shape[1])]
        methods[m.label] = {
            "algo": m.algo,
            "lam": m.lam,
            "rho": m.rho,
            "mean": [s["mean"] for s in stats],
            "std": [s["std"] for s in stats],
            "ci95": [s["ci95"] for s in stats],
            "per_replication": table.tolist(),
            "fit_seconds_mean": float(np.mean([r["fit_seconds"][m.label] for r in per_rep])),
        }
    return {
        "kind": "shift_grid",
        "env": cfg.env.id,
        "agent": cfg.agent,
        "seed": cfg.seed,
        "replications": len(per_rep),
        "shift_name": shift_name,
        "shifts": values,
        "eval": to_dict(cfg.eval),
        "methods": methods,
    }


# -- shiftrl evaluate ------------------------------------------------------------------------
def load_learners(run_dir: Path, cfg: ExperimentConfig, files: list[Path] | None = None) -> list[R2PVILearner]:
    """The fitted learners of every checkpointed replication (or of ``files``)."""
    from trainers.agents import agent_spec

    files = files if files is not None else sorted((run_dir / "checkpoints").glob("rep_*.npz"))
    if not files:
        raise ConfigError(f"{run_dir}: no checkpoints yet (checkpoints/rep_*.npz)")
    _, structure = _structure(cfg)
    reps = []
    for f in files:
        try:
            arrays = load_npz(f)
        except Exception as exc:
            raise ConfigError(f"checkpoint {f}: unreadable or corrupt ({type(exc).__name__}: {exc})") from exc
        learner = agent_spec(cfg.agent).make_learner(cfg.agent_config, structure, cfg.seed)
        try:
            learner.load_state_dict(arrays)
        except ValueError as exc:
            raise ConfigError(f"checkpoint {f}: {exc}") from exc
        reps.append(learner)
    return reps


def evaluate_run(
    run_dir: Path, cfg: ExperimentConfig, ctx: RunContext, checkpoint: Path | None = None
) -> dict[str, Any]:
    """Evaluates every method of every replication over ``cfg.eval``'s shift grid."""
    reps = load_learners(run_dir, cfg, [checkpoint] if checkpoint else None)
    _, structure = _structure(cfg)
    d = next(iter(reps[0].methods.values())).feature_dim
    if structure.feature_dim != d:
        raise ConfigError(f"--env {cfg.env.id}: feature dimension {structure.feature_dim} != the policies' {d}")
    pool = RolloutPool(envs.spec(cfg.env.id), cfg.env.kwargs, num_workers=ctx.num_workers, imports=cfg.imports)
    try:
        per_rep = [evaluate_policies(cfg, pool, ln.methods, structure, rep) for rep, ln in enumerate(reps)]
    finally:
        pool.close()
    name, values = shift_grid(cfg)
    methods: dict[str, Any] = {}
    out: dict[str, Any] = {
        "kind": "shift_grid",
        "target": str(checkpoint or run_dir),
        "env": cfg.env.id,
        "agent": cfg.agent,
        "shift_name": name,
        "shifts": values,
        "episodes": cfg.eval.episodes,
        "exact": cfg.eval.exact,
        "replications": len(reps),
        "methods": methods,
    }
    for label in reps[0].methods:
        # pooled over replications and episodes: mean, std and a 95% interval per shift
        stats = [summary(np.concatenate([r[label][j] for r in per_rep])) for j in range(len(values))]
        methods[label] = {k: [s[k] for s in stats] for k in ("mean", "std", "ci95", "n")}
    return out
