"""Fit time of R2PVI / PEVI / DRPVI vs dataset size N and feature dimension d.

Anchor: the R2PVI paper's figure 2 (reference implementation, i5-11300H) for N in
{1k, 5k, 10k} at d = 30 (../shared/specs/robust-r2pvi.md). Absolute seconds on different
machines are not comparable to the digit, so the table prints the speed-up ratio against
the paper and, measured in this same run, each method's time relative to PEVI.

Data: American put option, N always-hold trajectories of H = 20 steps, d hat features
(the paper's setting). Median of ``--repeats`` fits, one thread.

    python benchmarks/r2pvi_fit_time.py [--repeats 5] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import envs
from agents.r2pvi import LinearVI, MethodConfig, R2PVIConfig, make_linear_batch
from envs.episodes import run_episodes

PAPER_SECONDS = {  # figure 2, d = 30
    "pevi": {1000: 0.80, 5000: 4.07, 10000: 8.15},
    "r2pvi_tv": {1000: 1.08, 5000: 5.05, 10000: 8.99},
    "r2pvi_kl": {1000: 1.04, 5000: 5.02, 10000: 9.03},
    "drpvi": {1000: 1.70, 5000: 6.77, 10000: 13.40},
}
METHODS = (
    MethodConfig("pevi"),
    MethodConfig("r2pvi_tv", lam=1.0),
    MethodConfig("r2pvi_kl", lam=1.0),
    MethodConfig("r2pvi_chi2", lam=1.0),
    MethodConfig("drpvi", rho=0.1),
)


class Hold:
    def act(self, obs, h, rng):
        return np.zeros(len(obs), dtype=np.int64)


def batch_for(n: int, d: int, seed: int = 0):
    env = envs.make("AmericanPutOption-v0", feature_dim=d)
    ep = run_episodes(env, Hold(), n, seed)
    return make_linear_batch(
        ep.observations, ep.actions, ep.rewards, ep.lengths, ep.terminations, env.linear_structure()
    )


def time_fit(method: MethodConfig, batch, repeats: int) -> float:
    cfg = R2PVIConfig(methods=(method,), beta=0.1, ridge=1.0)
    times = []
    for _ in range(repeats):
        learner = LinearVI(method, cfg)
        t = time.perf_counter()
        learner.fit(batch)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    grid = [(n, 30) for n in (1000, 5000, 10000)] + [(1000, 60), (1000, 120), (10000, 60), (10000, 120)]
    rows = []
    for n, d in grid:
        batch = batch_for(n, d)
        times = {m.algo: time_fit(m, batch, args.repeats) for m in METHODS}
        for algo, sec in times.items():
            paper = PAPER_SECONDS.get(algo, {}).get(n) if d == 30 else None
            rows.append(
                {
                    "N": n,
                    "d": d,
                    "method": algo,
                    "seconds": sec,
                    "relative_to_pevi": sec / times["pevi"],
                    "paper_seconds": paper,
                    "speedup_vs_paper": (paper / sec) if paper else None,
                }
            )
        print(f"N={n:>5} d={d:>3}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in times.items()), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "repeats": args.repeats,
        "threads": 1,
    }
    (out / "r2pvi_fit_time.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "| N | d | method | ours (ms) | x PEVI (same run) | paper (s) | speed-up vs paper |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        paper = f"{r['paper_seconds']:.2f}" if r["paper_seconds"] else "-"
        speed = f"{r['speedup_vs_paper']:.0f}x" if r["speedup_vs_paper"] else "-"
        lines.append(
            f"| {r['N']} | {r['d']} | {r['method']} | {r['seconds'] * 1e3:.1f} | {r['relative_to_pevi']:.2f} | {paper} | {speed} |"
        )
    table = "\n".join(lines)
    (out / "r2pvi_fit_time.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
