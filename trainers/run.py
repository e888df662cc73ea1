"""`shiftrl train`: config -> run directories -> Ray Tune trials (one per seed) -> results.

Each trial owns one run directory ``<runs_dir>/<env>__<agent>__<seed>__<time>/`` holding the
resolved config.yaml, TensorBoard files (tb/), checkpoints/ and results.json. A trial
reads everything from its run directory, which is what makes ``--resume RUN_DIR`` work:
the same trial is started again on the same directory and skips what is checkpointed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # our own TB files only
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

from trainers.config import ConfigError, ExperimentConfig, dump_config, load_config

log = logging.getLogger("shiftrl")


def run_name(cfg: ExperimentConfig, seed: int) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    suffix = f"__{cfg.name}" if cfg.name else ""
    return f"{cfg.env.id}__{cfg.agent}__{seed}__{stamp}{suffix}"


def prepare_runs(cfg: ExperimentConfig, seeds: int) -> list[Path]:
    """Creates one run directory per seed with its resolved config.yaml."""
    root = Path(cfg.runs_dir)
    dirs = []
    for i in range(seeds):
        seeded = dataclasses.replace(cfg, seed=cfg.seed + i)
        d = root / run_name(cfg, seeded.seed)
        n = 1
        while d.exists():
            d = root / f"{run_name(cfg, seeded.seed)}_{n}"
            n += 1
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(dump_config(seeded))
        dirs.append(d.resolve())
    return dirs


def execute_run(run_dir: str | Path, num_workers: int, report=None) -> dict[str, Any]:
    """Runs (or resumes) the experiment of one run directory; used inside Tune trials."""
    import envs
    from trainers.robust import run_robust
    from trainers.rollout import RolloutPool

    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml")

    def progress(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} [{run_dir.name}] {msg}"
        print(line, flush=True)
        with open(run_dir / "progress.log", "a") as f:  # `tail -f` it on a cluster
            f.write(line + "\n")

    if cfg.agent == "rllib_ppo":
        from trainers.rllib import run_rllib_ppo

        return run_rllib_ppo(cfg, run_dir, progress=progress, report=report)
    spec = envs.spec(cfg.env.id)
    pool = RolloutPool(spec, cfg.env.kwargs, num_workers=num_workers, imports=cfg.imports)
    try:
        return run_robust(cfg, run_dir, pool, progress=progress, report=report)
    finally:
        pool.close()


def _trial(config: dict[str, Any]) -> None:
    import torch
    from ray import tune

    torch.set_num_threads(1)  # the trial shares cores with its rollout actors
    results = execute_run(config["run_dir"], config["num_workers"], report=lambda m: tune.report(m))
    tune.report({"done": results.get("replications", results.get("iterations", 0)), "finished": 1})


def train(
    config_path: str | None,
    overrides: list[str] | None = None,
    seeds: int = 1,
    address: str | None = None,
    resume: str | None = None,
) -> list[Path]:
    """Validates the config, starts/attaches Ray, runs one Tune trial per seed.

    Returns:
        The run directories (each with results.json).
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if resume:
        rd = Path(resume)
        if not (rd / "config.yaml").is_file():
            raise ConfigError(f"--resume {resume}: not a run directory (no config.yaml inside)")
        if config_path:
            raise ConfigError("--resume takes the config from the run directory; do not pass a CONFIG too")
        cfg = load_config(rd / "config.yaml", overrides)
        if overrides:
            (rd / "config.yaml").write_text(dump_config(cfg))
        run_dirs = [rd.resolve()]
    else:
        cfg = load_config(config_path, overrides)
        run_dirs = prepare_runs(cfg, seeds)

    from ray import tune
    from ray.tune import RunConfig, TuneConfig
    from ray.tune.execution.placement_groups import PlacementGroupFactory

    from trainers.runtime import init_ray, plan

    where = init_ray(address or cfg.ray.address, include_dashboard=cfg.ray.include_dashboard)
    workers = cfg.agent_config.num_env_runners if cfg.agent == "rllib_ppo" else cfg.ray.num_workers
    layout = plan(len(run_dirs), workers)
    print(
        f"shiftrl: Ray {where}, {layout.cpus} CPUs; {len(run_dirs)} run(s), {layout.concurrent_trials} at a time, "
        f"{layout.workers_per_trial} rollout actor(s) each",
        flush=True,
    )
    for d in run_dirs:
        print(f"shiftrl: run directory {d}", flush=True)
    bundles: list[dict[str, int | float]] = [{"CPU": 1} for _ in range(1 + layout.workers_per_trial)]
    resources = PlacementGroupFactory(bundles)
    tuner = tune.Tuner(
        tune.with_resources(_trial, resources),
        param_space={"run_dir": tune.grid_search([str(d) for d in run_dirs]), "num_workers": layout.workers_per_trial},
        tune_config=TuneConfig(max_concurrent_trials=layout.concurrent_trials, reuse_actors=False),
        run_config=RunConfig(
            name=run_dirs[0].name,
            storage_path=str(Path(cfg.runs_dir).resolve() / ".tune"),
            verbose=0,
        ),
    )
    # Tune's result files are off (TUNE_DISABLE_AUTO_CALLBACK_LOGGERS): our run directories
    # hold the results, so its "could not fetch metrics" warning is noise.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    grid = tuner.fit()
    errors = [grid[i].error for i in range(len(grid)) if grid[i].error]
    if errors:
        raise RuntimeError(f"{len(errors)} trial(s) failed; first error:\n{errors[0]}")
    return run_dirs
