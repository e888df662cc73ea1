"""`shiftrl train`: config -> run directories -> Ray Tune trials (one per seed) -> results.

Each trial owns one run directory ``<runs_dir>/<env>__<agent>__<seed>__<time>/`` holding the
resolved config.yaml, TensorBoard files (tb/), checkpoints/ and results.json. A trial
reads everything from its run directory, which is what makes ``--resume RUN_DIR`` work:
the same trial is started again on the same directory and continues from its checkpoint.
The trial runs the loop the agent registry names for the agent (trainers/agents.py); this
module never looks at agent names.

Where files go on a cluster: a trial writes its run directory with plain file I/O on the
node it runs on. ``runs_dir`` must therefore be a path every node shares (NFS or any
mounted shared filesystem) on a multi-node cluster; on one machine (the embedded Ray, or a
head node running every trial) it is simply local. Rollout actors on other nodes write
nothing: they send batches back to the trial.
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

from trainers.config import ConfigError, ExperimentConfig, dump_config, load_config, to_dict

log = logging.getLogger("shiftrl")


def run_name(cfg: ExperimentConfig, seed: int) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    suffix = f"__{cfg.name}" if cfg.name else ""
    return f"{cfg.env.id}__{cfg.agent}__{seed}__{stamp}{suffix}"


def absolute_paths(cfg: ExperimentConfig) -> ExperimentConfig:
    """The config with its file paths (datasets, level sets) made absolute, as the run's
    config.yaml records them: Ray Tune starts trials in their own working directory, so a
    path relative to where the user typed the command would not resolve there."""

    def fix(obj: Any) -> Any:
        changes = {}
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if dataclasses.is_dataclass(v):
                changes[f.name] = fix(v)
            elif f.name in ("dataset", "levels") and isinstance(v, str) and v and not Path(v).is_absolute():
                changes[f.name] = str(Path(v).resolve())
        return dataclasses.replace(obj, **changes) if changes else obj

    return fix(cfg)


def prepare_runs(cfg: ExperimentConfig, seeds: int) -> list[Path]:
    """Creates one run directory per seed with its resolved config.yaml. Directory creation
    is the lock: two runs started in the same second (even by two processes) get distinct
    directories (``_1``, ``_2``, ... suffixes)."""
    root = Path(cfg.runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    dirs = []
    for i in range(seeds):
        seeded = dataclasses.replace(absolute_paths(cfg), seed=cfg.seed + i)
        base = run_name(cfg, seeded.seed)
        n = 0
        while True:
            d = root / (base if n == 0 else f"{base}_{n}")
            try:
                d.mkdir()
                break
            except FileExistsError:
                n += 1
        (d / "config.yaml").write_text(dump_config(seeded))
        dirs.append(d.resolve())
    return dirs


def execute_run(run_dir: str | Path, num_workers: int, report=None) -> dict[str, Any]:
    """Runs (or resumes) the experiment of one run directory; used inside Tune trials."""
    from trainers.agents import agent_spec
    from trainers.loops import RunContext, progress_printer

    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml", stored=True)
    ctx = RunContext(num_workers=num_workers, progress=progress_printer(run_dir), report=report)
    return agent_spec(cfg.agent).loop_module().run(cfg, run_dir, ctx)


def _trial(config: dict[str, Any]) -> None:
    import torch
    from ray import tune

    torch.set_num_threads(1)  # the trial shares cores with its rollout actors
    execute_run(config["run_dir"], config["num_workers"], report=lambda m: tune.report(m))
    tune.report({"finished": 1})


def _resume_config(run_dir: Path, overrides: list[str], force: bool) -> ExperimentConfig:
    """The stored config, with overrides only when they change nothing or ``force`` is set
    (a resumed run never silently mixes two configs)."""
    stored = load_config(run_dir / "config.yaml", stored=True)
    if not overrides:
        return stored
    cfg = load_config(run_dir / "config.yaml", overrides, stored=True)
    changed = _diff(to_dict(stored), to_dict(cfg))
    if changed and not force:
        raise ConfigError(
            f"--resume {run_dir}: the overrides change {changed} from the stored config; a resumed run would mix "
            "two configs. Start a new run, or pass --force to continue with the new values"
        )
    if changed:
        (run_dir / "config.yaml").write_text(dump_config(cfg))
        with open(run_dir / "progress.log", "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} [{run_dir.name}] config changed on resume (--force): {changed}\n")
    return cfg


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [prefix]


def train(
    config_path: str | None,
    overrides: list[str] | None = None,
    seeds: int = 1,
    address: str | None = None,
    resume: str | None = None,
    force: bool = False,
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
        cfg = _resume_config(rd, overrides or [], force)
        run_dirs = [rd.resolve()]
    else:
        cfg = load_config(config_path, overrides)
        run_dirs = prepare_runs(cfg, seeds)

    from ray import tune
    from ray.tune import RunConfig, TuneConfig
    from ray.tune.execution.placement_groups import PlacementGroupFactory

    from trainers.agents import agent_spec
    from trainers.runtime import init_ray, plan

    where = init_ray(address or cfg.ray.address, include_dashboard=cfg.ray.include_dashboard)
    layout = plan(len(run_dirs), agent_spec(cfg.agent).loop_module().num_workers(cfg))
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
