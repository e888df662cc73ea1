"""The runtime's loops, one module per kind of agent (trainers/agents.py maps names to them).

Every loop module offers the same surface, so shared code never branches on agent names:

- ``EVAL_FIELDS`` / ``RAY_FIELDS``: the ``eval`` and ``ray`` config keys it uses (any other
  key set in a config is an error naming it);
- ``validate(cfg, env_spec)``: checks that need the env (raises ValueError);
- ``num_workers(cfg)``: rollout actors it wants (None = derive from the cluster);
- ``run(cfg, run_dir, ctx)``: trains or resumes the run in ``run_dir``, returns results;
- ``evaluate_run(run_dir, cfg, request)``: ``shiftrl evaluate`` for its runs;
- ``load_policy(run_dir, cfg)`` (multi-agent loops): the greedy policy ``shiftrl render`` plays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunContext:
    """What a loop receives besides its config and run directory.

    Attributes:
        num_workers: rollout actors this trial may start (0 = in-process).
        progress: prints a progress line (and appends it to progress.log).
        report: forwards metrics to Ray Tune (None outside Tune).
    """

    num_workers: int = 0
    progress: Callable[[str], None] = print
    report: Callable[[dict[str, Any]], None] | None = None
    started: float = field(default_factory=time.time)


def progress_printer(run_dir: Path) -> Callable[[str], None]:
    """Progress lines on stdout and in ``<run_dir>/progress.log`` (tail -f it on a cluster)."""

    def progress(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} [{run_dir.name}] {msg}"
        print(line, flush=True)
        with open(run_dir / "progress.log", "a") as f:
            f.write(line + "\n")

    return progress


def build_learner(cfg: Any) -> tuple[Any, Any]:
    """(learner, spaces) of a torch agent for the config's env."""
    from trainers.agents import agent_spec
    from trainers.sampling import env_spaces

    spaces = env_spaces(cfg.env.id, cfg.env.kwargs)
    return agent_spec(cfg.agent).make_learner(cfg.agent_config, spaces, cfg.seed), spaces


def load_policy(run_dir: Path, cfg: Any) -> Any:
    """A torch agent's acting policy with the run's last checkpointed weights."""
    from trainers import checkpoint
    from trainers.config import ConfigError

    ckpt = run_dir / "checkpoints" / "state.pt"
    if not ckpt.is_file():
        raise ConfigError(f"{run_dir}: no checkpoint yet (checkpoints/state.pt)")
    learner, _ = build_learner(cfg)
    state, _ = checkpoint.load(ckpt)
    try:
        learner.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"checkpoint {ckpt}: does not fit agent {cfg.agent!r} on {cfg.env.id} ({exc})") from exc
    return learner.policy()


def evaluate_run(run_dir: Path, cfg: Any, ctx: RunContext, checkpoint_path: Path | None = None) -> Any:
    """``shiftrl evaluate`` for torch agents (on- and off-policy loops)."""
    from trainers.evaluation import evaluate_run_with

    return evaluate_run_with(load_policy(run_dir, cfg), run_dir, cfg, ctx.num_workers)
