"""Offline learning benchmark: PRDC vs TD3+BC vs BC on the suite's own D4RL-style datasets,
then the same policies under shifted dynamics.

    python benchmarks/offline_prdc.py --envs hopper,halfcheetah --qualities medium,medium-replay \\
        --agents prdc,td3bc,bc --seeds 0,1,2 --gradient-steps 100000 [--resume] [--report-only]

Three stages, each ``--parallel`` subprocesses at a time with one torch thread, each
resumable (``--resume`` continues unfinished runs from their checkpoints, skips finished
ones, keeps existing datasets):

1. behaviour: online TD3 on the nominal dynamics (configs/td3/<env>.yaml, snapshot every
   evaluation), ``--behaviour-steps`` env steps;
2. datasets: ``shiftrl collect --from-run`` of each quality, ``--transitions`` steps, into
   datasets/shiftrl/<env>/<quality>-v0 (Minari format);
3. offline runs: configs/<agent>/<env>-<quality>.yaml with the budget, seed and dataset
   overridden; the last evaluation covers the config's shift grid (friction for the MuJoCo
   robots, mass for Pendulum).

Writes <out>/<name>.{json,md}: per env, quality and agent, the mean and standard deviation
over seeds of the final normalised score (100 x (R - random) / (best TD3 snapshot -
random), the datasets' references) and of the return at each shift; and the paper's claim
(PRDC above TD3+BC on medium and medium-replay) checked on those numbers.
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
sys.path.insert(0, str(HERE))

from value_decomp_smaclike import run_dir_of  # noqa: E402  (one child for every run)


def _finished(root: Path, key: str, budget: int) -> bool:
    run = run_dir_of(root)
    if run is None or not (run / "results.json").is_file():
        return False
    h = json.loads((run / "results.json").read_text()).get("history") or []
    return bool(h) and h[-1].get(key, 0) >= budget


def _pool(jobs: list[tuple[str, list[str]]], parallel: int) -> None:
    """Runs (label, argv) subprocesses ``parallel`` at a time; logs land in each job's root."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    running: list[tuple[subprocess.Popen, str, Any]] = []
    todo = list(jobs)
    while todo or running:
        while todo and len(running) < parallel:
            label, argv, log_path = todo.pop(0)
            log = open(log_path, "a")
            print(f"{time.strftime('%H:%M:%S')} start {label} (log {log_path})", flush=True)
            running.append((subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env), label, log))
        time.sleep(5)
        for item in list(running):
            proc, label, log = item
            if proc.poll() is not None:
                log.close()
                running.remove(item)
                status = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
                print(f"{time.strftime('%H:%M:%S')} {status}: {label}", flush=True)


def _child_job(root: Path, config: Path, overrides: list[str], resume: bool) -> list[str] | None:
    if run_dir_of(root) is not None and not resume:
        sys.exit(f"{root} holds a run already: pass --resume to continue it (or delete it)")
    root.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        str(HERE / "value_decomp_smaclike.py"),
        "--child",
        str(root),
        str(config),
        json.dumps(overrides),
    ]


def _env_floats(text: str, names: list[str], flag: str) -> dict[str, float]:
    """'halfcheetah=2,hopper=0' -> {name: value}; names must be among ``names``."""
    out = {}
    for item in filter(None, text.split(",")):
        name, sep, value = item.partition("=")
        if not sep or name not in names:
            sys.exit(f"{flag}: expected NAME=VALUE with NAME among {names}, got {item!r}")
        out[name] = float(value)
    return out


def dataset_path(datasets_dir: Path, env: str, quality: str) -> Path:
    return datasets_dir / "shiftrl" / env / f"{quality}-v0"


def summarise(runs: dict[tuple[str, str, str, int], Path]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for (env, quality, agent, _), root in runs.items():
        run = run_dir_of(root)
        res = json.loads((run / "results.json").read_text()) if run and (run / "results.json").is_file() else None
        if res and res.get("eval"):
            groups.setdefault((env, quality, agent), []).append(res)
    rows = []
    for (env, quality, agent), results in sorted(groups.items()):
        scores = [r["eval"]["normalized_score"] for r in results]
        points = results[0]["eval"]["points"]
        per_shift = {
            label: [r["eval"]["points"][label]["return"]["mean"] for r in results if label in r["eval"]["points"]]
            for label in points
        }
        rows.append(
            {
                "env": env,
                "quality": quality,
                "agent": agent,
                "seeds": len(results),
                "gradient_steps": results[0]["history"][-1]["gradient_steps"],
                "score_mean": float(np.mean(scores)),
                "score_std": float(np.std(scores)),
                "shift_returns": {k: (float(np.mean(v)), float(np.std(v))) for k, v in per_shift.items()},
                "dataset_return": results[0]["dataset"]["mean_episode_return"],
            }
        )
    return rows


def claim(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    by = {(r["env"], r["quality"], r["agent"]): r for r in rows}
    for (env, quality, agent), r in sorted(by.items()):
        if agent != "prdc" or quality not in ("medium", "medium-replay") or (env, quality, "td3bc") not in by:
            continue
        t = by[(env, quality, "td3bc")]
        gap = r["score_mean"] - t["score_mean"]
        spread = r["score_std"] + t["score_std"]
        verdict = "above" if gap > 0 else "not above"
        if min(r["seeds"], t["seeds"]) < 2:
            sure = "one side has a single seed, so no spread to judge against"
        else:
            sure = ("more than" if abs(gap) > spread else "less than") + " the two standard deviations summed apart"
        out.append(
            f"{env} {quality}: PRDC {verdict} TD3+BC ({r['score_mean']:.1f} vs {t['score_mean']:.1f}; {sure}, "
            f"PRDC seeds {r['seeds']}, TD3+BC seeds {t['seeds']})"
        )
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# {result['name']}: PRDC, TD3+BC and BC on the suite's D4RL-style datasets",
        "",
        f"Measured {result['date']} on {result['machine']}. Behaviour: online TD3, {result['behaviour_steps']} env steps "
        f"per robot; datasets of about {result['transitions']} transitions; {result['gradient_steps']} gradient steps "
        "per offline run. Scores are 100 x (R - random) / (best TD3 snapshot - random); these are not D4RL's "
        "datasets or reference scores."
        + (
            " PRDC's nearest-neighbour search is approximate (cKDTree eps) on: "
            + ", ".join(f"{k} eps={v:g}" for k, v in result.get("nn_eps", {}).items())
            + "; exact elsewhere."
            if result.get("nn_eps")
            else " PRDC's nearest-neighbour search is exact."
        ),
        "",
        (
            f"**Partial: {result['runs_finished']} of {result['runs_planned']} planned runs finished**; rerun "
            "with --resume to finish the rest."
            if result.get("runs_finished", 0) < result.get("runs_planned", 0)
            else f"All {result.get('runs_planned', 0)} planned runs finished."
        ),
        "",
        "| env | quality | agent | seeds | gradient steps | normalised score | dataset return |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["table"]:
        lines.append(
            f"| {r['env']} | {r['quality']} | {r['agent']} | {r['seeds']} | {r['gradient_steps']} "
            f"| {r['score_mean']:.1f} +- {r['score_std']:.1f} "
            f"| {r['dataset_return']:.1f} |"
        )
    lines += ["", "Return under shifted dynamics (mean +- std over seeds; the policy saw nominal data only):", ""]
    labels = sorted({k for r in result["table"] for k in r["shift_returns"]})
    if labels:
        lines += ["| env | quality | agent | " + " | ".join(labels) + " |", "|---" * (3 + len(labels)) + "|"]
        for r in result["table"]:
            cells = [
                f"{r['shift_returns'][k][0]:.1f} +- {r['shift_returns'][k][1]:.1f}" if k in r["shift_returns"] else "-"
                for k in labels
            ]
            lines.append(f"| {r['env']} | {r['quality']} | {r['agent']} | " + " | ".join(cells) + " |")
    lines += ["", "Paper's claim (PRDC above TD3+BC on medium and medium-replay):", ""]
    lines += [f"- {c}" for c in result["claim"]] or ["- no pair measured yet"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--envs", default="hopper,halfcheetah", help="pendulum, hopper, halfcheetah (configs/td3/<env>.yaml)"
    )
    ap.add_argument("--qualities", default="medium,medium-replay")
    ap.add_argument("--agents", default="prdc,td3bc,bc")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--seeds-for", default="", help="fewer seeds for some agents, e.g. bc=0 or bc=0:1")
    ap.add_argument("--behaviour-steps", type=int, help="TD3 env steps (default: the td3 config's)")
    ap.add_argument("--transitions", type=int, default=200_000)
    ap.add_argument("--gradient-steps", type=int, default=100_000)
    ap.add_argument("--eval-episodes", type=int, default=10)
    ap.add_argument(
        "--budget",
        default="",
        help="gradient steps per agent where they differ from --gradient-steps, e.g. rllib_cql=3000",
    )
    ap.add_argument(
        "--nn-eps",
        default="",
        help="approximate nearest-neighbour search for PRDC per env, e.g. halfcheetah=2 (default: exact everywhere)",
    )
    ap.add_argument("--parallel", type=int, default=2, help="runs at a time (one core each)")
    ap.add_argument("--runs-dir", default=str(ROOT / "runs" / "benchmarks"))
    ap.add_argument("--datasets-dir", default=str(ROOT / "datasets"))
    ap.add_argument("--name", default="offline_prdc")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    from trainers.config import load_config
    from trainers.io import atomic_write_json, atomic_write_text

    envs_ = args.envs.split(",")
    qualities = args.qualities.split(",")
    agents = args.agents.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    nn_eps = _env_floats(args.nn_eps, envs_, "--nn-eps")
    budget = {a: int(v) for a, v in _env_floats(args.budget, agents, "--budget").items()}
    base = Path(args.runs_dir) / args.name
    data_dir = Path(args.datasets_dir)
    behaviour = {e: base / f"behaviour__{e}" for e in envs_}
    seeds_for = {a: seeds for a in agents}
    for item in filter(None, args.seeds_for.split(",")):
        name, sep, value = item.partition("=")
        if not sep or name not in agents:
            sys.exit(f"--seeds-for: expected AGENT=S1:S2 with AGENT among {agents}, got {item!r}")
        seeds_for[name] = [int(x) for x in value.split(":")]
    runs = {
        (e, q, a, s): base / f"{e}__{q}__{a}__{s}"
        for s in seeds
        for e in envs_
        for q in qualities
        for a in agents
        if s in seeds_for[a] and (ROOT / "configs" / a / f"{e}-{q}.yaml").is_file()  # e.g. RLlib: hopper medium
    }
    if not args.report_only:
        jobs = []
        for e, root in behaviour.items():
            cfg_path = ROOT / "configs" / "td3" / f"{e}.yaml"
            steps = args.behaviour_steps or load_config(cfg_path).agent_config.env_steps
            if not _finished(root, "env_steps", steps):
                ov = [f"runs_dir={root}", f"agent_config.env_steps={steps}", "ray.num_workers=0"]
                argv_ = _child_job(root, cfg_path, ov, args.resume)
                jobs.append((f"behaviour {e}", argv_, root / "benchmark.log"))
        _pool(jobs, args.parallel)
        from trainers.commands.collect import collect_quality

        for e in envs_:
            run = run_dir_of(behaviour[e])
            for q in qualities:
                out = dataset_path(data_dir, e, q)
                if not out.exists():
                    print(f"{time.strftime('%H:%M:%S')} dataset {out}", flush=True)
                    collect_quality(str(run), q, str(out), args.transitions, seed=0, num_workers=0)
        jobs = []
        for (e, q, a, s), root in runs.items():
            cfg_path = ROOT / "configs" / a / f"{e}-{q}.yaml"
            steps = budget.get(a, args.gradient_steps)
            if _finished(root, "gradient_steps", steps):
                continue
            ov = [
                f"seed={s}",
                f"runs_dir={root}",
                f"agent_config.dataset={dataset_path(data_dir, e, q)}",
                f"agent_config.gradient_steps={steps}",
                f"eval.every={max(steps // 10, 1)}",
                f"eval.episodes={args.eval_episodes}",
            ]
            if not a.startswith("rllib_"):
                ov.append("ray.num_workers=0")  # RLlib's data pipeline keeps its extra CPU
            if a.startswith("rllib_"):
                ov.append(f"agent_config.updates_per_iteration={min(500, max(steps // 10, 1))}")
            if a == "prdc" and e in nn_eps:
                ov.append(f"agent_config.nn_eps={nn_eps[e]}")
            jobs.append((f"{e} {q} {a} seed {s}", _child_job(root, cfg_path, ov, args.resume), root / "benchmark.log"))
        _pool(jobs, args.parallel)
    table = summarise(runs)
    done = sum(r["seeds"] for r in table)
    result = {
        "runs_planned": len(runs),
        "runs_finished": done,
        "name": args.name,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "behaviour_steps": args.behaviour_steps or "the td3 configs'",
        "transitions": args.transitions,
        "gradient_steps": args.gradient_steps,
        "seeds": seeds,
        "nn_eps": nn_eps,
        "budget": budget,
        "table": table,
        "claim": claim(table),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{args.name}.json", result)
    atomic_write_text(out / f"{args.name}.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
