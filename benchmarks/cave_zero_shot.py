"""Zero-shot transfer on Cave Escape: DRED vs EL-DRED, U, PLR, DR and ACCEL (and robust PLR
on request) at an equal number of PPO updates, then every policy on the held-out test set
and each edge-case set (DRED, Garcin et al. 2024, Table 1's protocol at a smaller budget).

    python benchmarks/cave_zero_shot.py --updates 300 [--resume] [--report-only]

1. the level sets: ``shiftrl make-levels cave`` into ``--levels-dir`` (once);
2. training: configs/<agent>/cave.yaml with the seed and ``--updates`` overridden,
   ``--parallel`` subprocesses at a time with one torch thread (``--resume`` continues
   unfinished runs from their checkpoints);
3. zero-shot evaluation, in the same subprocess slot as soon as a run's training ends: its
   last policy, one episode per level (actions sampled, dcd's evaluation) on test (2048
   levels), edge_unseen, edge_moss5, edge_lava50 and edge_45x45 (512 each; 45x45 grids).

Each finished run is recorded at once in the results JSON's ledger (benchmarks/common.py)
with a fingerprint of the level files, its config and the budget: run directories do not
survive a new clone, the committed ledger does, and ``--resume`` in a new clone retrains only
the runs it lacks. ``--report-only`` trains nothing: it records the runs under ``--runs-dir``
that finished but are not in the ledger yet (evaluating them), then rebuilds the table.

Writes <out>/cave_zero_shot.{json,md}: per method and set, the mean and standard deviation
over seeds of the mean return and solved rate (return > 0), and the interquartile mean of
the per-level returns pooled over seeds (rliable's IQM over runs x levels); then the paper's
claim (DRED above the others, larger margins on the edge cases) checked on those numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from common import Ledger, file_digest, finished, locked_by, log, machine, now, pool, run_dir_of, train_argv  # noqa: E402

SETS = ("test", "edge_unseen", "edge_moss5", "edge_lava50", "edge_45x45")
AGENTS = ("dred", "el_dred", "uniform", "plr", "dr", "accel")
ENVS = 36  # envs per run (DRED's 36 processes), stepped in the run's own process


def iqm(x: np.ndarray) -> float:
    """Mean of the middle 50% (rliable's interquartile mean)."""
    x = np.sort(np.asarray(x, float))
    n = len(x)
    lo, hi = int(np.floor(0.25 * n)), int(np.ceil(0.75 * n))
    return float(x[lo:hi].mean()) if hi > lo else float(x.mean())


def zero_shot(run: Path, set_name: str, levels_dir: Path, episodes: int) -> dict[str, Any]:
    """The run's policy on one level set (cached in <run>/zero_shot/<set>.json)."""
    from trainers.config import load_config
    from trainers.evaluation import evaluate_run_with
    from trainers.io import atomic_write_json
    from trainers.loops import load_policy

    out = run / "zero_shot" / f"{set_name}.json"
    if out.is_file():
        return json.loads(out.read_text())
    cfg = load_config(run / "config.yaml", stored=True)
    levels = levels_dir / f"{set_name}.json"
    t0 = time.time()
    last = json.loads((run / "results.json").read_text()).get("eval") or {}
    if (
        cfg.eval.levels
        and Path(cfg.eval.levels).resolve() == levels.resolve()
        and (cfg.eval.episodes, cfg.eval.sample, cfg.eval.shifts, cfg.env.kwargs) == (episodes, True, {}, {})
        and last.get("points")
    ):
        res = last  # the run's own final evaluation was this one (the training's eval set is test)
    else:
        kwargs = dict(cfg.env.kwargs) | ({"size": 45} if set_name == "edge_45x45" else {})
        cfg = dataclasses.replace(
            cfg,
            env=dataclasses.replace(cfg.env, kwargs=kwargs),
            eval=dataclasses.replace(cfg.eval, levels=str(levels), episodes=episodes, sample=True, shifts={}),
        )
        res = evaluate_run_with(load_policy(run, cfg), run, cfg, num_workers=0)
    returns = [p["return"]["mean"] for p in res["points"].values()]
    solved = [p["win_rate"]["mean"] for p in res["points"].values()]
    summary = {
        "set": set_name,
        "levels": len(returns),
        "episodes_per_level": episodes,
        "return": float(np.mean(returns)),
        "solved": float(np.mean(solved)),
        "per_level_return": [round(r, 4) for r in returns],  # 4 digits: the ledger is committed
        "seconds": round(time.time() - t0, 1),
    }
    atomic_write_json(out, summary)
    return summary


def random_policy(levels_dir: Path, seed: int = 0) -> dict[str, dict[str, float]]:
    """The reference every learner must beat: one episode per level of each set with actions
    uniform over the env's 7 (what a policy with flat logits does), seeded."""
    from envs.cave.env import N_ACTIONS, CaveCore
    from envs.cave.levels import CaveLevel
    from envs.levels import load_level_set

    out = {}
    rng = np.random.default_rng(seed)
    for name in SETS:
        levels = [CaveLevel.from_params(p) for p in load_level_set(levels_dir / f"{name}.json").levels]
        core = CaveCore(len(levels), levels[0].size)
        for b, lv in enumerate(levels):
            core.load(b, lv)
        ret = np.zeros(len(levels))
        while not core.done.all():
            r, _, _ = core.step(rng.integers(N_ACTIONS, size=len(levels)))
            ret += r
        out[name] = {"return": float(ret.mean()), "solved": float((ret > 0).mean()), "levels": len(levels)}
    return out


def zero_shot_all(run: Path, levels_dir: Path, episodes: int) -> dict[str, dict[str, Any]]:
    out = {}
    for name in SETS:
        log(f"zero-shot {run.name} on {name}")
        out[name] = zero_shot(run, name, levels_dir, episodes)
    return out


def summarise(results: dict[tuple[str, int], dict[str, dict[str, Any]]], agents: list[str]) -> list[dict[str, Any]]:
    rows = []
    for a in agents:
        seeds = sorted(s for (b, s) in results if b == a)
        if not seeds:
            continue
        row: dict[str, Any] = {"agent": a, "seeds": seeds}
        for name in SETS:
            got = [results[(a, s)][name] for s in seeds if name in results[(a, s)]]
            if not got:
                continue
            rets = np.array([g["return"] for g in got])
            sol = np.array([g["solved"] for g in got])
            pooled = np.concatenate([g["per_level_return"] for g in got])
            ddof = 1 if len(got) > 1 else 0  # the sample standard deviation over seeds
            row[name] = {
                "return_mean": float(rets.mean()),
                "return_std": float(rets.std(ddof=ddof)),
                "solved_mean": float(sol.mean()),
                "solved_std": float(sol.std(ddof=ddof)),
                "return_iqm": iqm(pooled),
                "n_seeds": len(got),
            }
        rows.append(row)
    return rows


def claim(rows: list[dict[str, Any]], rand: dict[str, dict[str, float]]) -> list[str]:
    """DRED's claim: above every other method on the held-out and edge-case sets, with the
    larger margins on the edge cases."""
    by = {r["agent"]: r for r in rows}
    if "dred" not in by:
        return ["DRED has no finished run yet: the claim cannot be checked"]
    out = []
    margins: dict[str, float] = {}
    for name in SETS:
        if name not in by["dred"]:
            continue
        d = by["dred"][name]["solved_mean"]
        others = {a: r[name]["solved_mean"] for a, r in by.items() if a != "dred" and name in r}
        if not others:
            continue
        best = max(others, key=lambda k: others[k])
        margin = d - others[best]
        margins[name] = margin
        verdict = "holds" if margin > 0 else "does not hold"
        ref = f"; a uniformly random policy solves {rand[name]['solved']:.3f}" if name in rand else ""
        out.append(
            f"{name}: DRED solves {d:.3f}, the best other ({best}) {others[best]:.3f}: margin {margin:+.3f}, "
            f"the claim {verdict} on this set{ref}"
        )
    if "test" in margins and margins["test"] <= 0:
        out.append("larger margins on the edge cases: moot, DRED is not ahead on the held-out test set")
    elif "test" in margins and len(margins) > 1:
        edge = {k: v for k, v in margins.items() if k != "test"}
        larger = [k for k, v in edge.items() if v > margins["test"]]
        out.append(
            f"larger margins on the edge cases: {len(larger)} of {len(edge)} edge sets have a larger margin than "
            f"the held-out test set ({margins['test']:+.3f})" + (f": {', '.join(larger)}" if larger else "")
        )
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Cave Escape zero-shot transfer (DRED vs the UED baselines)",
        "",
        f"- Budget: {result['updates']} PPO updates per run ({result['student_env_steps']:,} training env steps, "
        f"{result['envs']} envs x {result['n_steps']} steps per update; "
        "DRED, EL-DRED, robust PLR and ACCEL also spend env steps on scoring rollouts without gradients). "
        f"The paper trained 265M env steps: this is {100 * result['student_env_steps'] / 265e6:.2g}% of it.",
        f"- Runs finished: {result['runs_finished']} of {result['runs_planned']} planned; seeds {result['seeds']}.",
        f"- Evaluation: one episode per level, actions sampled (dcd's evaluation); {result['date']}, "
        f"{result['machine']}.",
        "- Cells: solved rate mean +- sample std over seeds / mean return / IQM of per-level returns pooled over "
        "seeds. The random policy (actions uniform over the 7, one seeded episode per level) is the floor.",
        "",
        "| method | seeds | " + " | ".join(SETS) + " |",
        "|---|---|" + "---|" * len(SETS),
    ]
    for r in result["table"]:
        cells = []
        for name in SETS:
            c = r.get(name)
            cells.append(
                f"{c['solved_mean']:.3f} +- {c['solved_std']:.3f} / {c['return_mean']:.3f} / {c['return_iqm']:.3f}"
                if c
                else "-"
            )
        lines.append(f"| {r['agent']} | {len(r['seeds'])} | " + " | ".join(cells) + " |")
    rand = result.get("random_policy") or {}
    if rand:
        cells = [f"{rand[n]['solved']:.3f} / {rand[n]['return']:.3f} / -" if n in rand else "-" for n in SETS]
        lines.append("| random policy (reference) | - | " + " | ".join(cells) + " |")
    lines += ["", "## The paper's claim", ""] + [f"- {c}" for c in result["claim"]]
    if result["runs_finished"] < result["runs_planned"]:
        lines += [
            "",
            "The table is partial: run the same command with --resume to finish the rest.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", default=",".join(AGENTS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--seeds-for",
        default="el_dred=0:1,uniform=0:1,dr=0:1,accel=0:1,rplr=0:1",
        help="fewer seeds for some agents",
    )
    ap.add_argument(
        "--updates",
        type=int,
        default=300,
        help="PPO updates per run (300 x 36 envs x 256 steps, the configs' n_steps = 2.76M env steps)",
    )
    ap.add_argument("--episodes", type=int, default=1, help="zero-shot episodes per level")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--levels-dir", default=str(ROOT / "levels" / "cave"))
    ap.add_argument("--runs-dir", default=str(ROOT / "runs" / "benchmarks"))
    ap.add_argument("--name", default="cave_zero_shot")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--eval-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.eval_child:  # one finished run's zero-shot sets, in a child process of the pool
        import torch

        torch.set_num_threads(1)
        root, levels_dir_, episodes = args.eval_child
        run = run_dir_of(Path(root))
        assert run is not None, f"{root} holds no run"
        zero_shot_all(run, Path(levels_dir_), int(episodes))
        return
    from agents.dred.config import DREDConfig
    from envs.cave.sets import build_sets

    agents = args.agents.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    seeds_for = {a: seeds for a in agents}
    for item in filter(None, args.seeds_for.split(",")):
        name, _, value = item.partition("=")
        if name in seeds_for:
            seeds_for[name] = [int(x) for x in value.split(":") if int(x) in seeds]
    levels_dir = Path(args.levels_dir)
    missing = [n for n in ("train", *SETS) if not (levels_dir / f"{n}.json").is_file()]
    if missing and not args.report_only:
        log(f"making the level sets {missing} in {levels_dir}")
        build_sets(levels_dir, missing)
    base = Path(args.runs_dir) / args.name
    # Seed-major order: every method's first seed finishes before any method's second, so a
    # table cut short by a session's end still compares all methods.
    order = sorted(
        ((a, s) for a in agents for s in seeds_for[a]),
        key=lambda k: (seeds_for[k[0]].index(k[1]), agents.index(k[0])),
    )
    runs = {(a, s): base / f"{a}__{s}" for a, s in order}
    # without the level files (--report-only in a fresh clone) the records are shown as they are
    have_levels = all((levels_dir / f"{n}.json").is_file() for n in ("train", *SETS))
    sets_digest = file_digest(*(levels_dir / f"{n}.json" for n in ("train", *SETS))) if have_levels else None

    def fingerprint(a: str) -> dict[str, Any]:
        # what a record's numbers depend on: the level files, the agent's config, the budget
        return {
            "levels": sets_digest,
            "config": file_digest(ROOT / "configs" / a / "cave.yaml"),
            "updates": args.updates,
            "episodes": args.episodes,
        }

    ledger = Ledger(Path(args.out) / f"{args.name}.json")
    results: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for a, s in runs:
        key = f"{a}__{s}"
        got = ledger.get(key, fingerprint(a)) if have_levels else ledger.runs.get(key, {}).get("result")
        if got is not None:
            results[(a, s)] = got

    n_steps = {
        (yaml.safe_load((ROOT / "configs" / a / "cave.yaml").read_text()).get("agent_config") or {}).get(
            "n_steps", DREDConfig.n_steps
        )
        for a in agents
    }
    if len(n_steps) != 1:
        sys.exit(
            f"the agents' configs roll out different numbers of steps per update {sorted(n_steps)}: not comparable"
        )
    rand = random_policy(levels_dir) if have_levels else dict(ledger.doc.get("random_policy") or {})

    def write() -> None:
        table = summarise(results, agents)
        result = {
            "name": args.name,
            "date": now(),
            "machine": machine(),
            "updates": args.updates,
            "envs": ENVS,
            "n_steps": next(iter(n_steps)),
            "student_env_steps": args.updates * ENVS * next(iter(n_steps)),
            "random_policy": rand,
            "seeds": {a: seeds_for[a] for a in agents},
            "runs_planned": len(runs),
            "runs_finished": len(results),
            "table": table,
            "claim": claim(table, rand),
        }
        ledger.write(result, markdown(result))

    def record(a: str, s: int) -> None:
        run = run_dir_of(runs[(a, s)])
        if run is None or not finished(runs[(a, s)], "iteration", args.updates):
            return
        results[(a, s)] = zero_shot_all(run, levels_dir, args.episodes)  # cached per set by the eval child
        ledger.put(f"{a}__{s}", fingerprint(a), results[(a, s)])
        write()

    if not args.report_only:
        jobs, label_of = [], {}
        for (a, s), root in runs.items():
            if (a, s) in results:
                continue
            cmds = []
            if not finished(root, "iteration", args.updates):
                ov = [
                    f"seed={s}",
                    f"runs_dir={root}",
                    f"env.levels={levels_dir / 'train.json'}",
                    f"eval.levels={levels_dir / 'test.json'}",
                    "eval.every=0",
                    f"agent_config.updates={args.updates}",
                    "ray.num_workers=0",  # one core per run: the rollout runs in the trial's process
                    f"ray.envs_per_worker={ENVS}",
                ]
                cmds.append(train_argv(root, ROOT / "configs" / a / "cave.yaml", ov, args.resume))
            cmds.append([sys.executable, __file__, "--eval-child", str(root), str(levels_dir), str(args.episodes)])
            label_of[f"{a} seed {s}"] = (a, s)
            jobs.append((f"{a} seed {s}", cmds, root, root / "benchmark.log"))
        pool(jobs, args.parallel, on_done=lambda label, ok: record(*label_of[label]) if ok else None)
    # finished runs not in the ledger yet (another driver's, or --report-only after a stop):
    # evaluated here and recorded
    if have_levels:
        for (a, s), root in runs.items():
            if (a, s) not in results and not locked_by(root):
                record(a, s)
    write()
    print(ledger.path.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
