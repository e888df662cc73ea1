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
random), the datasets' references) on the nominal dynamics the data came from (the paper's
and D4RL's number), the same pooled over the shift grid, and the return at each shift; and
the paper's claim (PRDC above TD3+BC on medium and medium-replay) checked on the nominal
score. The datasets' sizes and references are kept in the JSON, so --report-only works
where the datasets are not. Each finished run
is recorded in that JSON's ledger (benchmarks/common.py) with its dataset's fingerprint:
``--resume`` in a new clone rebuilds the datasets and retrains only the runs the ledger lacks
(a rebuilt dataset that differs from the recorded one retrains them all, said so).
results/offline_prdc_2026-11-27.* are the first, partial table, made before the ledger on
datasets that no longer exist.
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

from common import Ledger, file_digest, finished, log, machine, now, pool, run_dir_of, train_argv  # noqa: E402


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


def run_record(root: Path) -> dict[str, Any] | None:
    """What the table keeps of one finished offline run (its last evaluation)."""
    run = run_dir_of(root)
    res = json.loads((run / "results.json").read_text()) if run and (run / "results.json").is_file() else None
    if not res or not res.get("eval"):
        return None
    return {
        "normalized_score": res["eval"]["normalized_score"],
        "gradient_steps": res["history"][-1]["gradient_steps"],
        "shift_returns": {k: p["return"]["mean"] for k, p in res["eval"]["points"].items()},
        "dataset_return": res["dataset"]["mean_episode_return"],
    }


def _std(x: list[float]) -> float:
    """The sample standard deviation over seeds (0 for one seed, shown as no spread)."""
    return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0


def _pm(mean: float, std: float, seeds: int) -> str:
    return f"{mean:.1f} +- {std:.1f}" if seeds > 1 else f"{mean:.1f}"


def _normalise(ret: float, data: dict[str, Any]) -> float:
    """D4RL's 100 x (R - random) / (best - random) with the dataset's reference returns."""
    return 100.0 * (ret - data["ref_min_score"]) / (data["ref_max_score"] - data["ref_min_score"])


def nominal_score(rec: dict[str, Any], data: dict[str, Any]) -> float:
    """A run's normalised score on the nominal dynamics the data came from (the paper's and
    D4RL's number), from its return at the grid's nominal point. A run's own
    ``normalized_score`` is not used: runs before 2026-12-07 pooled it over the friction grid."""
    return _normalise(rec["shift_returns"][data["nominal"]], data)


def pooled_score(rec: dict[str, Any], data: dict[str, Any]) -> float:
    """The normalised return pooled over the shift grid (every point has the same episodes)."""
    return _normalise(float(np.mean(list(rec["shift_returns"].values()))), data)


def summarise(
    records: dict[tuple[str, str, str, int], dict[str, Any]], data: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Rows per env, quality and agent; ``data`` is per "env/quality" (``dataset_info``)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for (env, quality, agent, _), rec in records.items():
        groups.setdefault((env, quality, agent), []).append(rec)
    rows = []
    for (env, quality, agent), recs in sorted(groups.items()):
        d = data[f"{env}/{quality}"]
        scores = [nominal_score(r, d) for r in recs]
        pooled = [pooled_score(r, d) for r in recs]
        per_shift = {
            label: [r["shift_returns"][label] for r in recs if label in r["shift_returns"]]
            for label in recs[0]["shift_returns"]
        }
        rows.append(
            {
                "env": env,
                "quality": quality,
                "agent": agent,
                "seeds": len(recs),
                "gradient_steps": recs[0]["gradient_steps"],
                "score_mean": float(np.mean(scores)),
                "score_std": _std(scores),
                "pooled_score_mean": float(np.mean(pooled)),
                "pooled_score_std": _std(pooled),
                "shift_returns": {k: (float(np.mean(v)), _std(v)) for k, v in per_shift.items()},
                "dataset_return": recs[0]["dataset_return"],
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
        f"per robot; {result['gradient_steps']} gradient steps per offline run. Datasets (medium: "
        f"{result['transitions']} transitions of the medium snapshot; medium-replay: the behaviour run's replay up "
        "to that snapshot, so its size is where the snapshot fell): "
        + "; ".join(
            f"{k} {d['transitions']} transitions in {d['episodes']} episodes"
            for k, d in sorted(result["datasets"].items())
        )
        + ". The normalised score is 100 x (R - random) / (best TD3 snapshot - random) on the nominal dynamics "
        "the data came from (D4RL's convention, the paper's number; "
        + ", ".join(sorted({f"{d['nominal']}" for d in result["datasets"].values()}))
        + "); 'pooled' is the same over the whole friction grid. These are not D4RL's datasets or reference scores."
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
        "| env | quality | agent | seeds | gradient steps | normalised score | pooled over the grid | dataset return |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["table"]:
        lines.append(
            f"| {r['env']} | {r['quality']} | {r['agent']} | {r['seeds']} | {r['gradient_steps']} "
            f"| {_pm(r['score_mean'], r['score_std'], r['seeds'])} "
            f"| {_pm(r['pooled_score_mean'], r['pooled_score_std'], r['seeds'])} "
            f"| {r['dataset_return']:.1f} |"
        )
    lines += [
        "",
        "Return under shifted dynamics (mean +- sample std over seeds, no spread for one seed; the policy saw "
        "nominal data only):",
        "",
    ]
    labels = sorted({k for r in result["table"] for k in r["shift_returns"]})
    if labels:
        lines += ["| env | quality | agent | " + " | ".join(labels) + " |", "|---" * (3 + len(labels)) + "|"]
        for r in result["table"]:
            cells = [_pm(*r["shift_returns"][k], r["seeds"]) if k in r["shift_returns"] else "-" for k in labels]
            lines.append(f"| {r['env']} | {r['quality']} | {r['agent']} | " + " | ".join(cells) + " |")
    lines += ["", "Paper's claim (PRDC above TD3+BC on medium and medium-replay, normalised score):", ""]
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
    from trainers.evaluation import nominal_point

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
    planned = [
        (e, q, a, s)
        for s in seeds
        for e in envs_
        for q in qualities
        for a in agents
        if s in seeds_for[a] and (ROOT / "configs" / a / f"{e}-{q}.yaml").is_file()  # e.g. RLlib: hopper medium
    ]
    # The order runs start in: the first seed of our agents on every dataset (one full row of the
    # claim), then RLlib's rows (CQL alone is ~50 min of one core), then the other seeds.
    planned.sort(key=lambda k: (k[3] != seeds[0], k[2].startswith("rllib_"), seeds.index(k[3])))
    runs = {(e, q, a, s): base / f"{e}__{q}__{a}__{s}" for e, q, a, s in planned}
    from envs.datasets import data_sha256

    def cfg_of(e: str, q: str, a: str) -> Path:
        return ROOT / "configs" / a / f"{e}-{q}.yaml"

    def fingerprint(e: str, q: str, a: str) -> dict[str, Any] | None:
        """What a record's numbers depend on; None while the dataset is not on this machine."""
        data = dataset_path(data_dir, e, q)
        if not data.is_dir():
            return None
        return {
            "dataset": data_sha256(data)[:16],  # the transitions, not where they were written
            "config": file_digest(cfg_of(e, q, a)),
            "gradient_steps": budget.get(a, args.gradient_steps),
            "eval_episodes": args.eval_episodes,
            "nn_eps": nn_eps.get(e) if a == "prdc" else None,
        }

    ledger = Ledger(Path(args.out) / f"{args.name}.json")
    records: dict[tuple[str, str, str, int], dict[str, Any]] = {}

    def lookup(key: tuple[str, str, str, int]) -> None:
        e, q, a, s = key
        name, fp = f"{e}__{q}__{a}__{s}", fingerprint(e, q, a)
        got = ledger.get(name, fp) if fp is not None else ledger.runs.get(name, {}).get("result")
        if got is None and fp is not None and (rec := run_record(runs[key])) is not None:
            if rec["gradient_steps"] >= fp["gradient_steps"]:
                ledger.put(name, fp, rec)
                got = rec
        if got is not None:
            records[key] = got

    known = ledger.doc.get("datasets") or {}

    def dataset_info(e: str, q: str) -> dict[str, Any] | None:
        """Size, reference returns and nominal eval point of a dataset: from its metadata while
        it is on this machine, else as the results JSON last recorded them (--report-only)."""
        meta = dataset_path(data_dir, e, q) / "data" / "metadata.json"
        if not meta.is_file():
            return known.get(f"{e}/{q}")
        m = json.loads(meta.read_text())
        cfg = next(cfg_of(e, q, a) for a in agents if cfg_of(e, q, a).is_file())
        return {
            "transitions": m["total_steps"],
            "episodes": m["total_episodes"],
            "ref_min_score": m["ref_min_score"],
            "ref_max_score": m["ref_max_score"],
            "nominal": nominal_point(load_config(cfg, [f"agent_config.dataset={meta.parent.parent}"])),
        }

    def write() -> None:
        data = {f"{e}/{q}": dataset_info(e, q) for e, q in {(e, q) for e, q, _, _ in records}}
        missing = sorted(k for k, v in data.items() if v is None)
        if missing:
            sys.exit(f"no metadata for the datasets {missing}: not on this machine and not in {ledger.path}")
        table = summarise(records, data)  # type: ignore[arg-type]
        result = {
            "runs_planned": len(runs),
            "runs_finished": len(records),
            "name": args.name,
            "date": now(),
            "machine": machine(),
            "behaviour_steps": args.behaviour_steps or "the td3 configs'",
            "transitions": args.transitions,
            "gradient_steps": args.gradient_steps,
            "seeds": seeds,
            "nn_eps": nn_eps,
            "budget": budget,
            "datasets": {**known, **data},
            "table": table,
            "claim": claim(table),
        }
        ledger.write(result, markdown(result))

    if not args.report_only:
        jobs = []
        for e, root in behaviour.items():
            cfg_path = ROOT / "configs" / "td3" / f"{e}.yaml"
            steps = args.behaviour_steps or load_config(cfg_path).agent_config.env_steps
            # a behaviour run is only needed while one of its datasets is missing
            if all(dataset_path(data_dir, e, q).exists() for q in qualities) or finished(root, "env_steps", steps):
                continue
            ov = [f"runs_dir={root}", f"agent_config.env_steps={steps}", "ray.num_workers=0"]
            jobs.append((f"behaviour {e}", [train_argv(root, cfg_path, ov, args.resume)], root, root / "benchmark.log"))
        pool(jobs, args.parallel)
        from trainers.commands.collect import collect_quality

        for e in envs_:
            for q in qualities:
                out = dataset_path(data_dir, e, q)
                if not out.exists():
                    log(f"dataset {out}")
                    collect_quality(str(run_dir_of(behaviour[e])), q, str(out), args.transitions, seed=0, num_workers=0)
    for key in runs:
        lookup(key)
    if not args.report_only:
        jobs, label_of = [], {}
        for (e, q, a, s), root in runs.items():
            if (e, q, a, s) in records:
                continue
            steps = budget.get(a, args.gradient_steps)
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
            label = f"{e} {q} {a} seed {s}"
            label_of[label] = (e, q, a, s)
            jobs.append((label, [train_argv(root, cfg_of(e, q, a), ov, args.resume)], root, root / "benchmark.log"))

        def done(label: str, ok: bool) -> None:
            if ok:
                lookup(label_of[label])
                write()

        pool(jobs, args.parallel, on_done=done)
    write()
    print(ledger.path.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
