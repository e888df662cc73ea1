"""DRED beside PLR and U on a shifted-dynamics env: a level is a vector of CartPole's physics
scales, the training levels an initial set (pole length x pole mass), and the evaluation
moves the pole length beyond it (configs/{dred,plr,uniform}/cartpole.yaml).

    python benchmarks/shift_curriculum.py [--updates 40] [--seeds 0,1] [--resume] [--report-only]

Each run is a subprocess with one torch thread, ``--parallel`` at a time, resumable; each
finished run is recorded in the results JSON's ledger (benchmarks/common.py). Writes
<out>/shift_curriculum.{json,md}: per method and pole length, the mean and standard
deviation over seeds of the last evaluation's mean return (20 episodes per length).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from common import Ledger, file_digest, finished, machine, now, pool, run_dir_of, train_argv  # noqa: E402

GRID = {"length": [0.5, 0.75, 1.0, 1.5, 2.0], "masspole": [0.5, 1.0, 2.0]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", default="dred,plr,uniform")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--updates", type=int, default=40)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--runs-dir", default=str(ROOT / "runs" / "benchmarks"))
    ap.add_argument("--levels", default=str(ROOT / "levels" / "cartpole" / "initial.json"))
    ap.add_argument("--name", default="shift_curriculum")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    import envs
    from envs.levels import save_level_set, shift_levels

    def cfg_of(a: str) -> Path:
        return ROOT / "configs" / a / "cartpole.yaml"

    agents, seeds = args.agents.split(","), [int(s) for s in args.seeds.split(",")]
    levels = Path(args.levels)
    if not levels.is_file():
        save_level_set(shift_levels(envs.spec("ShiftedCartPole-v0"), GRID), levels)
    base = Path(args.runs_dir) / args.name
    runs = {(a, s): base / f"{a}__{s}" for s in seeds for a in agents}  # seed-major
    ledger = Ledger(Path(args.out) / f"{args.name}.json")
    levels_digest = file_digest(levels)

    def fingerprint(a: str) -> dict[str, Any]:
        return {"levels": levels_digest, "config": file_digest(cfg_of(a)), "updates": args.updates}

    def record(a: str, s: int) -> None:
        run = run_dir_of(runs[(a, s)])
        if run is not None and finished(runs[(a, s)], "iteration", args.updates):
            points = json.loads((run / "results.json").read_text())["eval"]["points"]
            ledger.put(f"{a}__{s}", fingerprint(a), {k: p["return"]["mean"] for k, p in points.items()})

    for (a, s), root in runs.items():  # finished runs not in the ledger yet (--report-only too)
        if ledger.get(f"{a}__{s}", fingerprint(a)) is None and finished(root, "iteration", args.updates):
            record(a, s)
    if not args.report_only:
        jobs, label_of = [], {}
        for (a, s), root in runs.items():
            if ledger.get(f"{a}__{s}", fingerprint(a)) is not None:
                continue
            ov = [
                f"seed={s}",
                f"runs_dir={root}",
                f"env.levels={levels}",
                f"agent_config.updates={args.updates}",
                "ray.num_workers=0",
            ]
            label_of[f"{a} seed {s}"] = (a, s)
            jobs.append((f"{a} seed {s}", [train_argv(root, cfg_of(a), ov, args.resume)], root, root / "benchmark.log"))
        pool(jobs, args.parallel, on_done=lambda label, ok: record(*label_of[label]) if ok else None)
    table: list[dict[str, Any]] = []
    for a in agents:
        evals = [e for s in seeds if (e := ledger.get(f"{a}__{s}", fingerprint(a))) is not None]
        if not evals:
            continue
        row: dict[str, Any] = {"agent": a, "seeds": len(evals)}
        for label in evals[0]:
            vals = np.array([e[label] for e in evals])
            row[label] = {"mean": float(vals.mean()), "std": float(vals.std())}
        table.append(row)
    labels = [k for k in (table[0] if table else {}) if k not in ("agent", "seeds")]
    result = {
        "name": args.name,
        "date": now(),
        "machine": machine(),
        "updates": args.updates,
        "env_steps_per_update": 16 * 512,
        "initial_set": GRID,
        "runs_planned": len(runs),
        "table": table,
    }
    lines = [
        "# DRED, PLR and U on ShiftedCartPole (levels = physics parameters)",
        "",
        f"- {args.updates} PPO updates of 16 envs x 512 steps per run; initial set: pole length "
        f"{GRID['length']} x pole mass {GRID['masspole']}; {result['date']}, {result['machine']}.",
        f"- Cells: mean +- std over seeds of the last evaluation's mean return (20 episodes) at each pole length; "
        f"{sum(r['seeds'] for r in table)} of {len(runs)} runs finished.",
        "",
        "| method | seeds | " + " | ".join(labels) + " |",
        "|---|---|" + "---|" * len(labels),
    ]
    for r in table:
        lines.append(
            f"| {r['agent']} | {r['seeds']} | "
            + " | ".join(f"{r[k]['mean']:.1f} +- {r[k]['std']:.1f}" for k in labels)
            + " |"
        )
    ledger.write(result, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
