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
