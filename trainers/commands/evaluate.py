"""`shiftrl evaluate RUN_DIR [--shift k=v,...] [--task ...] [--levels FILE] [--env-kwarg k=v] [--episodes N]`:
any agent's saved policy over shifts, tasks or levels, on Ray actors; JSON out with mean,
std and a 95% interval per grid point (per method and replication pooled for R2PVI)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from trainers.commands import read_run
from trainers.config import ConfigError, validate


def parse_shift_arg(text: str) -> tuple[str, list[float]]:
    """'q=0,0.5,1' -> ('q', [0, 0.5, 1]); 'q=0:1:11' -> 11 evenly spaced values."""
    name, sep, raw = text.partition("=")
    if not sep or not name or not raw:
        raise ConfigError(f"--shift {text!r}: expected NAME=v1,v2,... or NAME=start:stop:count")
    try:
        if raw.count(":") == 2:
            a, b, n = raw.split(":")
            return name, np.linspace(float(a), float(b), int(n)).round(10).tolist()
        return name, [float(v) for v in raw.split(",")]
    except ValueError as exc:
        raise ConfigError(f"--shift {text!r}: values must be numbers ({exc})") from exc


def parse_env_kwargs(items: list[str]) -> dict[str, Any]:
    """['size=45', 'families=[maze]'] -> {'size': 45, 'families': ['maze']} (YAML values)."""
    import yaml

    out = {}
    for text in items:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--env-kwarg {text!r}: expected KEY=VALUE, e.g. size=45")
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--env-kwarg {text!r}: the value is not YAML ({exc})") from exc
    return out


def evaluate(
    target: str,
    env_id: str | None = None,
    shift: str | None = None,
    episodes: int | None = None,
    exact: bool | None = None,
    num_workers: int = 0,
    address: str | None = None,
    tasks: list[str] | None = None,
    levels: str | None = None,
    env_kwargs: list[str] | None = None,
) -> dict[str, Any]:
    """Evaluates a run directory (or one of its checkpoint files) and returns the JSON;
    ``env_kwargs`` ("KEY=VALUE", YAML values) go on top of the run's ``env.kwargs``."""
    from trainers.agents import agent_spec
    from trainers.loops import RunContext

    path = Path(target)
    checkpoint = None
    if path.is_file() and path.parent.name == "checkpoints":
        checkpoint, path = path, path.parent.parent
    cfg = read_run(path)
    ev = cfg.eval
    if shift or tasks or levels:  # a new evaluation set replaces the run's
        ev = dataclasses.replace(ev, shifts={}, tasks=(), levels=None)
    if shift:
        name, grid = parse_shift_arg(shift)
        ev = dataclasses.replace(ev, shifts={name: grid})
    if tasks:
        ev = dataclasses.replace(ev, tasks=tuple(tasks))
    if levels:
        ev = dataclasses.replace(ev, levels=levels)
    if episodes is not None:
        ev = dataclasses.replace(ev, episodes=episodes)
    if exact is not None:
        ev = dataclasses.replace(ev, exact=exact)
    env = dataclasses.replace(cfg.env, id=env_id) if env_id else cfg.env
    if env_kwargs:
        # the training levels (env.levels) play no part in an evaluation and need not fit the
        # new kwargs (a 15x15 training set, 45x45 evaluation levels)
        env = dataclasses.replace(env, kwargs={**dict(env.kwargs), **parse_env_kwargs(env_kwargs)}, levels=None)
    cfg = dataclasses.replace(cfg, eval=ev, env=env)
    validate(cfg)
    if num_workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {num_workers}")
    if num_workers:
        from trainers.runtime import init_ray, plan

        init_ray(address)
        plan(1, num_workers - 1)  # fails fast when the cluster cannot hold the actors
    return agent_spec(cfg.agent).loop_module().evaluate_run(path, cfg, RunContext(num_workers=num_workers), checkpoint)
