"""Training throughput of the value-decomposition agents: env steps per second including
learning, at PyMARL's update ratio, on the SMAC-like 3m and surComb3.

    python benchmarks/value_decomp_throughput.py [--cases 3m:qmix,surComb3:qmix,surComb3:trama]
        [--env-steps 30000] [--workers 0] [--out benchmarks/results]

Each case is a fresh training run of the shipped config (configs/<agent>/<env>.yaml) through
the off-policy loop, from scratch, with one update of a 32-episode batch per collected
episode (PyMARL's episode runner and QLearner), greedy tests off, for ``--env-steps`` env
steps; the rate is env steps over the loop's wall time (from the first collected episode to
the last update; building the learner and compiling the simulator are excluded and reported
separately). ``--workers 0`` samples in the learner's process (one core); ``--workers 1``
samples on a Ray actor on the second core. Runs start from a random policy, so episodes
are those of early training (long on surComb3: timeouts at 200 steps are common).

The anchor is PyMARL with StarCraft II at about 2M env steps per day (the spec's figure for
PyMARL's published runs; StarCraft II cannot run here, so it is cited, not measured). The
issue's target is 20M env steps per day on this 2-core machine.

Writes <out>/value_decomp_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
PYMARL_SC2_PER_DAY = 2_000_000
TARGET_PER_DAY = 20_000_000


def measure(env: str, agent: str, env_steps: int, workers: int) -> dict[str, Any]:
    import torch

    from trainers.config import load_config
    from trainers.run import execute_run, prepare_runs

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            ROOT / "configs" / agent / f"{env}.yaml",
            [
                f"agent_config.env_steps={env_steps}",
                "agent_config.updates_per_episode=1.0",
                "eval.every=0",
                "eval.episodes=1",
                f"ray.num_workers={workers}",
                f"runs_dir={tmp}",
            ],
        )
        (run,) = prepare_runs(cfg, 1)
        t0 = time.time()
        res = execute_run(run, workers)
        wall = time.time() - t0
        log = (run / "progress.log").read_text().splitlines()
    # the loop's own span: its first progress line ("... on ...: N env steps") to the end
    first = res["history"][0]
    steps = res["history"][-1]["env_steps"]
    updates = res["history"][-1]["updates"]
    start_line = next(i for i, line in enumerate(log) if " env steps, " in line and "sampling" in line)
    t_start = _clock(log[start_line])
    t_end = _clock(log[-1])
    span = (t_end - t_start) % 86_400 or wall
    rate = steps / span
    return {
        "env": env,
        "agent": agent,
        "workers": workers,
        "env_steps": steps,
        "updates": updates,
        "episodes_first_row": first.get("episodes"),
        "loop_seconds": span,
        "total_seconds": wall,
        "env_steps_per_s": rate,
        "env_steps_per_day_M": rate * 86_400 / 1e6,
        "vs_pymarl_sc2": rate * 86_400 / PYMARL_SC2_PER_DAY,
        "meets_target": rate * 86_400 >= TARGET_PER_DAY,
        "mean_episode_length": res["history"][-1].get("episode_length"),
    }


def _clock(line: str) -> float:
    h, m, s = line.split(" ", 1)[0].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Value decomposition: training throughput at PyMARL's update ratio",
        "",
        "Env steps per second depend on episode length (one update per episode): seconds per update is the "
        "figure that compares agents.",
        "",
        f"Measured {result['date']} on {result['machine']}; {result['env_steps']} env steps per case from a random "
        "policy, one update of a 32-episode batch per collected episode, tests off, one torch thread. "
        "Anchor: PyMARL with StarCraft II at about 2M env steps/day (cited, not measured here). "
        "Target: 20M env steps/day.",
        "",
        "| env | agent | sampling | env steps/s | M env steps/day | x PyMARL+SC2 | target met | updates | "
        "s per update (incl. sampling) | mean episode length |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["cases"]:
        where = "in-process" if r["workers"] == 0 else f"{r['workers']} Ray actor(s)"
        lines.append(
            f"| {r['env']} | {r['agent']} | {where} | {r['env_steps_per_s']:.0f} | {r['env_steps_per_day_M']:.1f} | "
            f"{r['vs_pymarl_sc2']:.1f}x | {'yes' if r['meets_target'] else 'no'} | {r['updates']} | "
            f"{r['loop_seconds'] / max(r['updates'], 1):.2f} | {r['mean_episode_length']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def rewrite(out: Path) -> None:
    """Regenerates the markdown from the JSON (``--rewrite``)."""
    from trainers.io import atomic_write_text

    result = json.loads((out / "value_decomp_throughput.json").read_text())
    atomic_write_text(out / "value_decomp_throughput.md", markdown(result))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="3m:qmix,surComb3:qmix,surComb3:qplex,surComb3:trama")
    ap.add_argument("--env-steps", type=int, default=30_000)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--rewrite", action="store_true", help="only regenerate the markdown from the JSON")
    args = ap.parse_args(argv)
    if args.rewrite:
        rewrite(Path(args.out))
        return
    from trainers.io import atomic_write_json, atomic_write_text

    cases = []
    for case in args.cases.split(","):
        env, agent = case.split(":")
        print(f"{time.strftime('%H:%M:%S')} {env} {agent} ...", flush=True)
        cases.append(measure(env, agent, args.env_steps, args.workers))
        print(json.dumps(cases[-1]), flush=True)
    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "env_steps": args.env_steps,
        "anchor_pymarl_sc2_per_day": PYMARL_SC2_PER_DAY,
        "target_per_day": TARGET_PER_DAY,
        "cases": cases,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "value_decomp_throughput.json", result)
    atomic_write_text(out / "value_decomp_throughput.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
