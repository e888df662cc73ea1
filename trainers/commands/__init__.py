"""One module per ``shiftrl`` command besides ``train`` (trainers/run.py): evaluate,
compare, render, collect, and the envs/agents listings. None branches on agent names:
agent-specific work goes through the registry (trainers/agents.py) to the agent's loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainers.config import ConfigError, ExperimentConfig, load_config
from trainers.io import atomic_write_json


def read_json(path: Path) -> Any:
    """A results or evaluation JSON, or a one-line error naming the file."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: corrupt or truncated JSON ({exc})") from exc


def read_run(run_dir: Path) -> ExperimentConfig:
    """The resolved config of a run directory (a one-line error when it is not one)."""
    if not run_dir.is_dir() or not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: not a ShiftRL run directory (no config.yaml inside)")
    return load_config(run_dir / "config.yaml", stored=True)


def read_results(run_dir: Path) -> dict[str, Any]:
    f = run_dir / "results.json"
    if not f.is_file():
        raise ConfigError(f"{run_dir}: no results.json (has the run finished? resume it with --resume)")
    return read_json(f)


def write_json(obj: Any, out: str | None) -> str:
    text = json.dumps(obj, indent=2)
    if out:
        atomic_write_json(out, obj)
    return text
