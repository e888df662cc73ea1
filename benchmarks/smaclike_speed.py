"""SMAC-like simulator speed against JaxMARL's SMAX, same machine, same run.

    python benchmarks/smaclike_speed.py [--smax-python /path/to/python] [--seconds 2]

Both sides are pinned to one core (os.sched_setaffinity here, taskset for SMAX; the spec
measured JAX faster and far less noisy pinned) and step random valid actions; one env step
= every ally acts once, and includes observations, global state and action masks (SMAX's
step returns observations and world_state too). Batch 1 is the RL-relevant case (a torch
policy acts between steps); SMAX's batches are jit(vmap(step)) called from Python.

Scenarios: 3s5z on both sides; the 5v5 multi-task set is our reSurComb4 (TRAMA) against
SMAX's smacv2_5_units (random 5v5 teams and starts), the closest SMAX has. SMAX needs
`pip install "jax==0.10.2" "jaxlib==0.10.2" jaxmarl==0.2.0` in the interpreter given by
--smax-python (a separate venv keeps jax out of ShiftRL's environment); without it only
our side is measured and the ratio columns say "n/a".

Writes benchmarks/results/smaclike_speed.{json,md}; prints the table with the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from envs.smaclike.core import SMACCore
from envs.smaclike.scripted import random_actions

HERE = Path(__file__).resolve().parent
CASES = [("3s5z", "3s5z"), ("reSurComb4", "smacv2_5_units")]
BATCHES = (1, 64, 1024)
REPEATS = 5  # median of 5 windows on each side (this machine's neighbours make single runs noisy)


def ours(scenario: str, batch: int, seconds: float) -> dict:
    core = SMACCore(scenario, batch)
    core.reset(seeds=0)
    rng = np.random.default_rng(0)

    def run(limit: float) -> float:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < limit:
            core.step(random_actions(core, rng))
            core.obs(), core.state(), core.avail_actions()
            if core.done.any():
                core.reset(env_ids=np.flatnonzero(core.done))
            n += 1
        return n * batch / (time.perf_counter() - t0)

    run(0.3)  # warm-up
    rates = sorted(run(seconds) for _ in range(REPEATS))
    state_bytes = sum(v.nbytes for v in vars(core).values() if isinstance(v, np.ndarray))
    state_bytes += sum(v.nbytes for v in core.stats.values())
    return {"env_steps_per_s": rates[REPEATS // 2], "n_allies": core.N, "bytes_per_env": state_bytes / batch}


def smax(python: str, scenario: str, batch: int, seconds: float) -> dict | None:
    cmd = ["taskset", "-c", "0", python, str(HERE / "smax_worker.py"), scenario, str(batch), str(seconds), str(REPEATS)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError, subprocess.TimeoutExpired) as exc:
        err = getattr(exc, "stderr", "") or str(exc)
        print(f"SMAX {scenario} batch {batch} unavailable: {err.strip().splitlines()[-1] if err else exc}", flush=True)
        return None
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smax-python", default=os.environ.get("SHIFTRL_SMAX_PYTHON", sys.executable))
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args()
    os.sched_setaffinity(0, {0})
    rows = []
    for ours_sc, smax_sc in CASES:
        for batch in BATCHES:
            a = ours(ours_sc, batch, args.seconds)
            b = smax(args.smax_python, smax_sc, batch, args.seconds)
            row = {
                "scenario": ours_sc,
                "smax_scenario": smax_sc,
                "batch": batch,
                "ours_env_steps_per_s": a["env_steps_per_s"],
                "ours_agent_steps_per_s": a["env_steps_per_s"] * a["n_allies"],
                "ours_bytes_per_env": a["bytes_per_env"],
                "smax_env_steps_per_s": b["env_steps_per_s"] if b else None,
                "smax_agent_steps_per_s": b["env_steps_per_s"] * b["n_allies"] if b else None,
                "smax_rss_bytes": b["rss_bytes"] if b else None,
                "smax_compile_s": b["compile_s"] if b else None,
                "ratio": a["env_steps_per_s"] / b["env_steps_per_s"] if b else None,
            }
            rows.append(row)
            ratio = f"{row['ratio']:.2f}x" if row["ratio"] else "n/a"
            print(
                f"{ours_sc:>11} vs {smax_sc:<15} batch {batch:>5}: ours {a['env_steps_per_s']:>9.0f} "
                f"env steps/s, SMAX {row['smax_env_steps_per_s'] or float('nan'):>9.0f}, ours/SMAX {ratio}",
                flush=True,
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"machine": os.uname().machine, "cpus_used": 1, "seconds_per_repeat": args.seconds, "repeats": REPEATS}
    (out / "smaclike_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "| ours (SMAX) | batch | ours env steps/s | ours agent steps/s | SMAX env steps/s | SMAX agent steps/s "
        "| ours / SMAX | ours bytes/env | SMAX RSS MB, compile s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sm = r["smax_env_steps_per_s"]
        lines.append(
            f"| {r['scenario']} ({r['smax_scenario']}) | {r['batch']} | {r['ours_env_steps_per_s']:.0f} | "
            f"{r['ours_agent_steps_per_s']:.0f} | {sm:.0f} | {r['smax_agent_steps_per_s']:.0f} | {r['ratio']:.2f} | "
            f"{r['ours_bytes_per_env']:.0f} | {r['smax_rss_bytes'] / 2**20:.0f}, {r['smax_compile_s']:.1f} |"
            if sm
            else f"| {r['scenario']} | {r['batch']} | {r['ours_env_steps_per_s']:.0f} | "
            f"{r['ours_agent_steps_per_s']:.0f} | n/a | n/a | n/a | {r['ours_bytes_per_env']:.0f} | n/a |"
        )
    (out / "smaclike_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
