"""SMAC-like simulator speed against JaxMARL's SMAX, same machine, same run.

    python benchmarks/smaclike_speed.py [--smax-python /path/to/python] [--seconds 2]

Ours is the batched core with the compiled kernel (backend "numba", one thread), under both
rules modes ("sc2", the default, and "smax"); the numpy reference is measured at batch 1
and 64 for comparison. Also reported: the kernel's first-call latency in a fresh process
(cold: compiling into an empty cache; warm: loading numba's on-disk cache), and the
two-thread speed-up at batch 1024 (``threads=2``, both cores, against one thread).

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
RULES = ("sc2", "smax")
FIRST_CALL = """
import time, numpy as np
t0 = time.perf_counter()
from envs.smaclike import SMACCore
core = SMACCore("3s5z", 1)
core.reset(seeds=0)
core.step(np.ones((1, core.N), np.int64))
print(time.perf_counter() - t0)
"""


def first_call_seconds(cache_dir: str) -> float:
    """Import + construct + first step in a fresh interpreter with numba's cache in ``cache_dir``."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


REPEATS = 5  # median of 5 windows on each side (this machine's neighbours make single runs noisy)


def ours(
    scenario: str, batch: int, seconds: float, rules: str = "sc2", backend: str = "numba", threads: int = 1
) -> dict:
    core = SMACCore(scenario, batch, rules=rules, backend=backend, threads=threads)
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
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        cold = first_call_seconds(cache)
        warm = first_call_seconds(cache)
    print(f"kernel first call in a fresh process: {cold:.1f} s compiling, {warm:.2f} s from the disk cache", flush=True)
    # two threads against one at batch 1024 (both cores), before pinning to one core
    threads = []
    for ours_sc, _ in CASES:
        one = ours(ours_sc, 1024, args.seconds, threads=1)["env_steps_per_s"]
        two = ours(ours_sc, 1024, args.seconds, threads=2)["env_steps_per_s"]
        threads.append({"scenario": ours_sc, "batch": 1024, "one_thread": one, "two_threads": two, "ratio": two / one})
        print(f"{ours_sc:>11} batch 1024: 2 threads / 1 thread = {two / one:.2f}", flush=True)
    os.sched_setaffinity(0, {0})
    rows = []
    for ours_sc, smax_sc in CASES:
        for batch in BATCHES:
            b = smax(args.smax_python, smax_sc, batch, args.seconds)
            for rules in RULES:
                a = ours(ours_sc, batch, args.seconds, rules=rules)
                ref = ours(ours_sc, batch, args.seconds, rules=rules, backend="numpy") if batch <= 64 else None
                row = {
                    "scenario": ours_sc,
                    "smax_scenario": smax_sc,
                    "rules": rules,
                    "batch": batch,
                    "ours_env_steps_per_s": a["env_steps_per_s"],
                    "ours_agent_steps_per_s": a["env_steps_per_s"] * a["n_allies"],
                    "numpy_reference_env_steps_per_s": ref["env_steps_per_s"] if ref else None,
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
                    f"{ours_sc:>11} ({rules}) vs {smax_sc:<15} batch {batch:>5}: ours {a['env_steps_per_s']:>9.0f} "
                    f"env steps/s, SMAX {row['smax_env_steps_per_s'] or float('nan'):>9.0f}, ours/SMAX {ratio}",
                    flush=True,
                )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": os.uname().machine,
        "cpus_used": 1,
        "seconds_per_repeat": args.seconds,
        "repeats": REPEATS,
        "kernel_first_call_cold_s": cold,
        "kernel_first_call_warm_s": warm,
        "targets": "ours/SMAX >= 10 at batch 1 (below 5: not done), >= 3 at 1024",
    }
    result = {"meta": meta, "rows": rows, "threads": threads}
    (out / "smaclike_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "| ours (SMAX) | rules | batch | ours env steps/s | ours agent steps/s | numpy reference env steps/s "
        "| SMAX env steps/s | SMAX agent steps/s | ours / SMAX | target met | ours bytes/env | SMAX RSS MB, compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sm = r["smax_env_steps_per_s"]
        ref = r["numpy_reference_env_steps_per_s"]
        ref_s = f"{ref:.0f}" if ref else "-"
        if sm:
            target = 10.0 if r["batch"] == 1 else 3.0 if r["batch"] == 1024 else None
            met = "-" if target is None else ("yes" if r["ratio"] >= target else f"no (< {target:g})")
            lines.append(
                f"| {r['scenario']} ({r['smax_scenario']}) | {r['rules']} | {r['batch']} | "
                f"{r['ours_env_steps_per_s']:.0f} | {r['ours_agent_steps_per_s']:.0f} | {ref_s} | {sm:.0f} | "
                f"{r['smax_agent_steps_per_s']:.0f} | {r['ratio']:.2f} | {met} | {r['ours_bytes_per_env']:.0f} | "
                f"{r['smax_rss_bytes'] / 2**20:.0f}, {r['smax_compile_s']:.1f} |"
            )
        else:
            lines.append(
                f"| {r['scenario']} | {r['rules']} | {r['batch']} | {r['ours_env_steps_per_s']:.0f} | "
                f"{r['ours_agent_steps_per_s']:.0f} | {ref_s} | n/a | n/a | n/a | n/a | {r['ours_bytes_per_env']:.0f} | n/a |"
            )
    lines += [
        "",
        f"Kernel first call in a fresh process (import + construct + first step): {cold:.1f} s compiling into an "
        f"empty cache, {warm:.2f} s loading numba's on-disk cache.",
        "",
        "| scenario | batch | 1 thread env steps/s | 2 threads env steps/s | 2 / 1 |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {t['scenario']} | {t['batch']} | {t['one_thread']:.0f} | {t['two_threads']:.0f} | {t['ratio']:.2f} |"
        for t in threads
    ]
    (out / "smaclike_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
