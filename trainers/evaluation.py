"""Greedy evaluation of any learning agent's policy on Ray actors: over a shift grid, per
task of a multi-task env, or per level of a level-set file (the config's ``eval`` section
or ``shiftrl evaluate`` flags). Each point's episodes derive their seeds from (seed, point)
only, so results do not depend on the number of actors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import envs
from trainers.config import ExperimentConfig
from trainers.stats import summary

MAX_POINT_TAGS = 64


def eval_points(cfg: ExperimentConfig) -> tuple[str, list[tuple[str, dict[str, Any] | None]]]:
    """(set name, [(point label, reset options)]) for the config's eval section."""
    ev = cfg.eval
    if ev.shifts:
        ((name, values),) = ev.shifts.items()
        return "shifts", [(f"{name}={float(v):g}", {name: float(v)}) for v in values]
    if ev.levels:
        from envs.levels import load_level_set

        ls = load_level_set(ev.levels)
        return "levels", [(n, {"level": dict(p)}) for n, p in zip(ls.names, ls.levels)]
    tasks = ev.tasks or envs.spec(cfg.env.id).tasks
    if tasks:
        return "tasks", [(f"task={t}", {"task": t}) for t in tasks]
    return "greedy", [("greedy", None)]


def nominal_point(cfg: ExperimentConfig) -> str | None:
    """The label of the eval point on the dynamics the data came from: the single point of a
    plain greedy evaluation, or the shift grid's point at the env's nominal value (e.g.
    ``friction=1``); None when the grid leaves the nominal value out, the shift has none
    (the linear MDP's q), or the env's kwargs already move that shift."""
    ev = cfg.eval
    if not ev.shifts:
        return None if ev.levels or ev.tasks or envs.spec(cfg.env.id).tasks else "greedy"
    ((name, values),) = ev.shifts.items()
    if name in cfg.env.kwargs:
        return None
    nominal = next((s.nominal for s in envs.spec(cfg.env.id).shifts if s.name == name), None)
    at = [float(v) for v in values if nominal is not None and np.isclose(float(v), nominal)]
    return f"{name}={at[0]:g}" if at else None


def point_seeds(seed: int, n: int) -> list[int]:
    ss = np.random.SeedSequence([seed, 31337])
    return [int(s.generate_state(1)[0]) for s in ss.spawn(n)]


def evaluate_policy(group: Any, weights: dict[str, Any] | None, cfg: ExperimentConfig, seed: int) -> dict[str, Any]:
    """Runs the eval set on a RunnerGroup; JSON-ready summary per point and overall."""
    set_name, points = eval_points(cfg)
    raw = group.evaluate(
        weights, [o for _, o in points], cfg.eval.episodes, point_seeds(seed, len(points)), sample=cfg.eval.sample
    )
    out: dict[str, Any] = {"set": set_name, "episodes": cfg.eval.episodes, "points": {}}
    for (label, options), r in zip(points, raw):
        out["points"][label] = {
            "options": options,
            "return": summary(r["return"]),
            "win_rate": summary(r["won"].astype(float)),
            "length": float(np.mean(r["length"])),
        }
    pooled_ret = np.concatenate([r["return"] for r in raw])
    pooled_won = np.concatenate([r["won"] for r in raw]).astype(float)
    out["overall"] = {"return": summary(pooled_ret), "win_rate": summary(pooled_won)}
    return out


def eval_scalars(result: dict[str, Any]) -> dict[str, float]:
    """TensorBoard scalars of an evaluation: eval/greedy/<metric> pooled, and
    eval/<point>/<metric> per shift, task or level (per point only up to ``MAX_POINT_TAGS``
    points: a 2048-level test set gives pooled charts, its per-level results stay in
    results.json)."""
    tags = {
        "eval/greedy/return": result["overall"]["return"]["mean"],
        "eval/greedy/win_rate": result["overall"]["win_rate"]["mean"],
    }
    if 1 < len(result["points"]) <= MAX_POINT_TAGS:
        for label, p in result["points"].items():
            tags[f"eval/{label}/return"] = p["return"]["mean"]
            tags[f"eval/{label}/win_rate"] = p["win_rate"]["mean"]
    return tags


def evaluate_run_with(policy: Any, run_dir: Any, cfg: ExperimentConfig, num_workers: int) -> dict[str, Any]:
    """``shiftrl evaluate`` for a learning agent: its policy over ``cfg.eval``'s set, on
    ``num_workers`` actors (0 = in-process)."""
    from trainers.sampling import RunnerGroup

    group = RunnerGroup(cfg.env.id, cfg.env.kwargs, policy, cfg.seed, num_workers, 1, cfg.imports)
    try:
        result = evaluate_policy(group, None, cfg, seed=cfg.seed + 10_000)
    finally:
        group.close()
    return {"kind": "eval_points", "target": str(run_dir), "env": cfg.env.id, "agent": cfg.agent, **result}
