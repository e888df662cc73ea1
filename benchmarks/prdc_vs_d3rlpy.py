"""Our PRDC against d3rlpy's PRDC on the same Minari datasets, in one run.

    python benchmarks/prdc_vs_d3rlpy.py --d3rlpy-python /path/to/venv/bin/python \\
        [--datasets datasets/shiftrl/hopper/medium-v0,datasets/shiftrl/halfcheetah/medium-v0] \\
        [--steps 2000] [--score-dataset datasets/shiftrl/hopper/medium-v0 --score-steps 20000 --score-seeds 0,1,2]

d3rlpy 2.8 pins gymnasium 1.0.0, so it runs in its own interpreter
(``python -m venv V && V/bin/pip install torch==2.13.0 && V/bin/pip install d3rlpy==2.8.1
h5py``; torch first, so pip never resolves another torch) through
benchmarks/d3rlpy_worker.py. Both sides run one torch thread, the same settings (alpha,
beta by our preset for the env, standardised states, batch 256); the speed rows use seed 0.

Per dataset: gradient steps/s over ``--steps`` steps (index building excluded on both
sides) and the nearest-neighbour cost of one 256-query batch near the data (ours:
``nn_index: auto``, an exact cKDTree up to 15 key dimensions and the exact float32-GEMM
search above; d3rlpy: sklearn NearestNeighbors, which goes brute force above 15 dims too),
and ours with the trained actor's keys, which lie farther from the data (a k-d tree's cost
grows with that distance). The anchor is d3rlpy in the same run: the table reports ratios.
Target: >= 2x faster per gradient step. Score: both sides trained ``--score-steps`` on
``--score-dataset`` once per seed of ``--score-seeds``, each policy evaluated greedily on
the nominal env over ``--episodes`` episodes with the same env seeds; equal within noise
means the means differ by at most two standard errors of the seeds' spread.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def ours(dataset: Path, steps: int, seed: int = 0) -> tuple[dict[str, Any], Any]:
    import torch

    torch.set_num_threads(1)
    from agents.prdc.config import PRDCConfig
    from agents.prdc.learner import PRDCLearner
    from envs import datasets
    from trainers.sampling import env_spaces

    ds = datasets.load(dataset)
    tr = ds.transitions()
    learner = PRDCLearner(PRDCConfig(dataset=str(dataset)), env_spaces(ds.metadata["env_id"]), seed)
    t0 = time.perf_counter()
    learner.attach_dataset(tr)
    build = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    n = len(tr["rewards"])
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = rng.integers(0, n, 256)
        learner.update({k: v[idx] for k, v in tr.items()})
    fit = time.perf_counter() - t0
    X = learner.index.points
    keys = X[rng.integers(0, len(X), 256)] + rng.normal(0, 0.05, (256, X.shape[1]))
    t0 = time.perf_counter()
    for _ in range(5):
        learner.index.query(keys)
    nn = (time.perf_counter() - t0) / 5
    # the keys training really queries: [beta * s_norm, pi(s)] of the trained actor, which
    # sit farther from the data than the keys above - a k-d tree's cost grows with that
    # distance (a brute-force search's does not)
    idx = rng.integers(0, n, 256)
    s_norm = learner.norm(tr["observations"][idx])
    with torch.no_grad():
        pi = learner.actor(s_norm)
    t0 = time.perf_counter()
    for _ in range(5):
        learner.nearest_actions(s_norm, pi)
    nn_actor = (time.perf_counter() - t0) / 5
    out = {"steps": steps, "steps_per_s": steps / fit, "index_build_s": build, "nn_seconds_per_batch": nn}
    return out | {"nn_seconds_per_batch_actor_keys": nn_actor}, learner


def d3rlpy(
    python: str, dataset: Path, steps: int, out: Path, alpha: float, beta: float, seed: int = 0
) -> dict[str, Any]:
    cmd = [python, str(HERE / "d3rlpy_worker.py"), str(dataset), str(out), "--steps", str(steps), "--seed", str(seed)]
    cmd += ["--alpha", str(alpha), "--beta", str(beta)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"d3rlpy worker failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return json.loads((out / "d3rlpy.json").read_text())


class TorchScriptPolicy:
    """d3rlpy's exported policy (its scalers inside) as our acting Policy."""

    def __init__(self, path: Path) -> None:
        import torch

        self.module = torch.jit.load(str(path))

    def initial_hidden(self, n: int) -> np.ndarray:
        return np.zeros((n, 1, 0), np.float32)

    def load_weights(self, weights: dict[str, Any]) -> None:
        pass

    def act(self, obs, mask, hidden, greedy, rng, state=None):
        import torch

        from agents.protocols import PolicyOutput

        B = obs.shape[0]
        with torch.no_grad():
            a = self.module(torch.as_tensor(obs.reshape(B, -1), dtype=torch.float32)).numpy()
        return PolicyOutput(a.reshape(B, 1, -1).astype(np.float32), hidden)


def evaluate(policy: Any, env_id: str, episodes: int) -> float:
    from trainers.sampling import RunnerGroup

    group = RunnerGroup(env_id, {}, policy, 0, 0, 1)
    try:
        return float(group.evaluate(None, [None], episodes, [4242])[0]["return"].mean())
    finally:
        group.close()


def compare_scores(ours: list[float], theirs: list[float]) -> dict[str, Any]:
    """Mean and sample std over seeds per side, and whether the means differ by more than two
    standard errors of their difference (the seeds' spread; None with one seed: no spread)."""
    a, b = np.asarray(ours, float), np.asarray(theirs, float)
    out: dict[str, Any] = {"ours_mean": float(a.mean()), "d3rlpy_mean": float(b.mean())}
    if min(len(a), len(b)) < 2:
        return out | {"ours_std": None, "d3rlpy_std": None, "se_diff": None, "equal_within_noise": None}
    se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    return out | {
        "ours_std": float(a.std(ddof=1)),
        "d3rlpy_std": float(b.std(ddof=1)),
        "se_diff": se,
        "equal_within_noise": bool(abs(a.mean() - b.mean()) <= 2 * se),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--d3rlpy-python", default=os.environ.get("SHIFTRL_D3RLPY_PYTHON"), required=False)
    ap.add_argument(
        "--datasets",
        default="",
        help="comma-separated Minari dataset directories for the speed rows (none: keep the rows of the "
        "results JSON of the same --name, e.g. to rerun only the score)",
    )
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--score-dataset")
    ap.add_argument("--score-steps", type=int, default=20000)
    ap.add_argument(
        "--score-seeds", default="0,1,2", help="seeds of the score comparison (each side trains once per seed)"
    )
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--work", default=str(ROOT / "runs" / "benchmarks" / "prdc_vs_d3rlpy"))
    ap.add_argument("--name", default="prdc_vs_d3rlpy")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    if not args.d3rlpy_python:
        sys.exit("--d3rlpy-python (or SHIFTRL_D3RLPY_PYTHON) is required: the interpreter of d3rlpy's own venv")
    from agents.prdc.config import PRDCConfig
    from envs import datasets
    from trainers.io import atomic_write_json, atomic_write_text

    work = Path(args.work)
    rows = []
    speed_date, steps = dt.datetime.now().isoformat(timespec="seconds"), args.steps
    if not args.datasets:
        old = Path(args.out) / f"{args.name}.json"
        if not old.is_file():
            sys.exit(f"--datasets is empty and {old} has no speed rows to keep")
        kept = json.loads(old.read_text())
        rows, speed_date, steps = kept["rows"], kept.get("speed_date", kept["date"]), kept["steps"]
        print(f"speed rows kept from {old} (measured {speed_date})", flush=True)
    for d in map(Path, filter(None, args.datasets.split(","))):
        env_id = datasets.load(d).metadata["env_id"]
        alpha, beta, _, _ = PRDCConfig(dataset=str(d)).resolved(env_id)
        print(f"{time.strftime('%H:%M:%S')} speed on {d}", flush=True)
        mine, _ = ours(d, args.steps)
        tag = f"{d.parent.name}_{d.name}"  # datasets of several envs share names like medium-v0
        theirs = d3rlpy(args.d3rlpy_python, d, args.steps, work / tag / "speed", alpha, beta)
        rows.append(
            {
                "dataset": str(d),
                "transitions": theirs["transitions"],
                "ours": mine,
                "d3rlpy": theirs,
                "speedup": mine["steps_per_s"] / theirs["steps_per_s"],
                "nn_speedup": theirs["nn_seconds_per_batch"] / mine["nn_seconds_per_batch"],
            }
        )

    def report(score: dict[str, Any] | None, pending: str = "") -> None:
        """Writes the JSON and the table (after the speed rows too: a stopped run keeps them)."""
        result = {
            "name": args.name,
            "date": dt.datetime.now().isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
            "steps": steps,
            "speed_date": speed_date,
            "rows": rows,
            "score": score,
        }
        lines = [
            f"# {args.name}: our PRDC vs d3rlpy's PRDC (anchor), same datasets, one torch thread each",
            "",
            f"Speed rows measured {speed_date} on {result['machine']}; {steps} gradient steps per side per dataset."
            + (f" Score measured {result['date']}." if score else ""),
            "",
            "NN ms/batch: one 256-key query, keys within N(0, 0.05) of data points on both sides; ours also "
            "with the trained actor's own keys [beta * s, pi(s)], what training queries (d3rlpy's brute force "
            "costs the same for any keys above 15 dimensions).",
            "",
            "| dataset | transitions | ours steps/s | d3rlpy steps/s | speed-up (target >= 2x) | NN ms/batch ours "
            "(actor's keys) | NN ms/batch d3rlpy |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['dataset']} | {r['transitions']} | {r['ours']['steps_per_s']:.1f} | {r['d3rlpy']['steps_per_s']:.1f} "
                f"| {r['speedup']:.2f}x ({'met' if r['speedup'] >= 2 else 'missed'}) "
                f"| {1000 * r['ours']['nn_seconds_per_batch']:.2f} "
                f"({1000 * r['ours'].get('nn_seconds_per_batch_actor_keys', float('nan')):.2f}) "
                f"| {1000 * r['d3rlpy']['nn_seconds_per_batch']:.2f} |"
            )
        if pending:
            lines += ["", pending]
        if score:
            c = score["comparison"]
            if c["se_diff"] is None:
                verdict = "one seed: no spread, so equality within noise is not tested"
            else:
                verdict = f"difference {c['ours_mean'] - c['d3rlpy_mean']:+.1f}, 2 se = {2 * c['se_diff']:.1f}: " + (
                    "**equal within noise**" if c["equal_within_noise"] else "**not equal within noise**"
                )
            pm = {k: "" if c[f"{k}_std"] is None else f" +- {c[f'{k}_std']:.1f}" for k in ("ours", "d3rlpy")}
            lines += [
                "",
                f"Score after {score['steps']} gradient steps on {score['dataset']} (greedy return, {score['episodes']} "
                f"episodes per policy, seeds {score['seeds']}, mean +- sample std over seeds): ours "
                f"{c['ours_mean']:.1f}{pm['ours']}, d3rlpy {c['d3rlpy_mean']:.1f}{pm['d3rlpy']}; {verdict}.",
                f"Per seed: ours {[round(x, 1) for x in score['ours_returns']]}, "
                f"d3rlpy {[round(x, 1) for x in score['d3rlpy_returns']]}.",
            ]
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / f"{args.name}.json", result)
        atomic_write_text(out / f"{args.name}.md", "\n".join(lines) + "\n")
        print("\n".join(lines))

    report(None, "Score at the reduced budget: still running." if args.score_dataset else "")
    score = None
    if args.score_dataset:
        d = Path(args.score_dataset)
        env_id = datasets.load(d).metadata["env_id"]
        alpha, beta, _, _ = PRDCConfig(dataset=str(d)).resolved(env_id)
        tag = f"{d.parent.name}_{d.name}"
        seeds = [int(x) for x in args.score_seeds.split(",")]
        mine_r, their_r, their_sps = [], [], []
        for seed in seeds:
            print(f"{time.strftime('%H:%M:%S')} score on {d}, seed {seed}: {args.score_steps} steps each", flush=True)
            _, learner = ours(d, args.score_steps, seed)
            mine_r.append(evaluate(learner.policy(), env_id, args.episodes))
            where = work / tag / f"score_seed{seed}"
            their = d3rlpy(args.d3rlpy_python, d, args.score_steps, where, alpha, beta, seed)
            their_r.append(evaluate(TorchScriptPolicy(where / "policy.pt"), env_id, args.episodes))
            their_sps.append(their["steps_per_s"])
            score = {
                "dataset": str(d),
                "steps": args.score_steps,
                "episodes": args.episodes,
                "seeds": seeds[: len(mine_r)],
                "ours_returns": mine_r,
                "d3rlpy_returns": their_r,
                "d3rlpy_steps_per_s": their_sps,
                "comparison": compare_scores(mine_r, their_r),
            }
            report(score, "" if len(mine_r) == len(seeds) else f"Score: {len(mine_r)} of {len(seeds)} seeds so far.")
    report(score)


if __name__ == "__main__":
    main()
