"""`shiftrl compare RUN_OR_EVAL_JSON ... --out DIR`: overlays any runs and evaluations -
return vs shift, return and win rate vs env steps, per-task (or per-level) bars - as one
markdown file, PNG figures and TensorBoard scalars under the common tags."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainers.commands import read_json, read_results
from trainers.config import ConfigError
from trainers.evaluation import MAX_POINT_TAGS
from trainers.io import atomic_write_text


@dataclass
class _Collected:
    shift: list[tuple[str, str, list, list, list]] = field(default_factory=list)  # name, param, xs, means, stds
    # name, steps, returns, win rates, x-axis ("env steps", or "gradient steps" for offline runs)
    curves: list[tuple[str, list, list, list, str]] = field(default_factory=list)
    points: list[tuple[str, str, dict[str, tuple[float, float, float]]]] = field(default_factory=list)


def _add_eval(c: _Collected, name: str, ev: dict[str, Any]) -> None:
    """An eval_points result: a shift series when the set is shifts, bars otherwise."""
    pts = ev["points"]
    if ev["set"] == "shifts":
        opts = [p["options"] for p in pts.values()]
        (param,) = opts[0].keys()
        xs = [o[param] for o in opts]
        c.shift.append(
            (name, param, xs, [p["return"]["mean"] for p in pts.values()], [p["return"]["std"] for p in pts.values()])
        )
    else:
        c.points.append(
            (
                name,
                ev["set"],
                {k: (p["return"]["mean"], p["return"]["std"], p["win_rate"]["mean"]) for k, p in pts.items()},
            )
        )


def _collect(targets: list[str]) -> _Collected:
    c = _Collected()
    for t in map(Path, targets):
        res = read_results(t) if t.is_dir() else read_json(t)
        kind = res.get("kind")
        name = t.name if t.is_dir() else t.stem
        if kind == "shift_grid":
            for label, m in res["methods"].items():
                c.shift.append((f"{name}/{label}", res["shift_name"], res["shifts"], m["mean"], m["std"]))
        elif kind == "learning_curve":
            h = res["history"]
            axis = "gradient steps" if res.get("x_axis") == "gradient_steps" else "env steps"
            c.curves.append(
                (
                    name,
                    [r.get("env_steps", r.get("gradient_steps")) for r in h],  # offline runs: gradient steps
                    [r["episodic_return"] for r in h],
                    [r.get("win_rate") for r in h],
                    axis,
                )
            )
            if res.get("eval"):
                _add_eval(c, name, res["eval"])
        elif kind == "eval_points":
            _add_eval(c, name, res)
        else:
            raise ConfigError(
                f"{t}: results kind {kind!r} is not comparable; expected a run directory or `shiftrl evaluate` JSON"
            )
    return c


def compare(targets: list[str], out_dir: str = "comparison") -> str:
    """Writes comparison.md, PNG figures and tb/ scalars into ``out_dir``; returns the markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trainers.tb import TBLogger, shift_step

    c = _collect(targets)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tb = TBLogger(out)
    sections = []
    if c.shift:
        params = {p for _, p, _, _, _ in c.shift}
        if len(params) > 1:
            raise ConfigError(f"runs were evaluated over different shift parameters {sorted(params)}")
        (param,) = params
        grid = sorted({v for _, _, xs, _, _ in c.shift for v in xs if v is not None}) or [None]
        header = ["run/method"] + [f"{param}={v:g}" if v is not None else "nominal" for v in grid]
        rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, _, xs, means, stds in c.shift:
            cells = {x: f"{m:.3f} ± {s:.3f}" for x, m, s in zip(xs, means, stds)}
            rows.append("| " + " | ".join([name] + [cells.get(v, "-") for v in grid]) + " |")
            x = np.array([0.0 if v is None else v for v in xs])
            ax.errorbar(x, means, yerr=stds, marker="o", capsize=3, label=name)
            for xv, m, s in zip(x, means, stds):
                tb.scalars(name.replace("/", "__"), {"robust/return": m, "robust/return_std": s}, shift_step(xv))
        ax.set_xlabel(param)
        ax.set_ylabel("average return (± std)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "comparison.png", dpi=120)
        plt.close(fig)
        sections.append("\n".join(rows))
    if c.curves:
        axes_used = sorted({axis for *_, axis in c.curves})
        # online runs: the return of the last 100 training episodes; offline: the last greedy evaluation
        head = "| run | env steps | return (last 100 episodes) | win rate |"
        if axes_used != ["env steps"]:
            head = "| run | steps | return (last 100 episodes; offline: last evaluation) | win rate |"
        rows = [head, "|---|---|---|---|"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for name, steps, rets, wins, axis in c.curves:
            w = wins[-1] if wins and wins[-1] is not None else float("nan")
            last = f"{steps[-1] if steps else 0}" + ("" if axes_used == ["env steps"] else f" {axis}")
            rows.append(f"| {name} | {last} | {rets[-1] if rets else float('nan'):.3f} | {w:.2f} |")
            axes[0].plot(steps, rets, label=name)
            if any(x is not None for x in wins):
                axes[1].plot(steps, [np.nan if x is None else x for x in wins], label=name)
            for s, r, x in zip(steps, rets, wins):
                tags = {"charts/episodic_return": r} | ({} if x is None else {"charts/win_rate": x})
                tb.scalars(name, tags, s)
        for ax, label in zip(axes, ("episodic return", "win rate")):
            ax.set_xlabel(" / ".join(axes_used))
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "curves.png", dpi=120)
        plt.close(fig)
        sections.append("\n".join(rows))
    labels = list(dict.fromkeys(k for _, _, pts in c.points for k in pts))
    if c.points and len(labels) > MAX_POINT_TAGS:
        # a level set of thousands of levels: one pooled row per run (per-level results stay in the JSON)
        prow = [
            "| run | points | mean return over points | win (solved) rate | interquartile mean of returns |",
            "|---|---|---|---|---|",
        ]
        for name, _, pts in c.points:
            point_rets = np.array([v[0] for v in pts.values()], float)
            point_wins = np.array([v[2] for v in pts.values()], float)
            lo, hi = np.percentile(point_rets, [25, 75])
            mid = point_rets[(point_rets >= lo) & (point_rets <= hi)]
            mean_ret, mean_win = float(point_rets.mean()), float(point_wins.mean())
            prow.append(f"| {name} | {len(point_rets)} | {mean_ret:.3f} | {mean_win:.3f} | {float(mid.mean()):.3f} |")
            tb.scalars(name, {"eval/greedy/return": mean_ret, "eval/greedy/win_rate": mean_win}, 0)
        sections.append("\n".join(prow))
    elif c.points:
        prow = ["| run | " + " | ".join(labels) + " |", "|" + "---|" * (len(labels) + 1)]
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels)), 4))
        width = 0.8 / len(c.points)
        for i, (name, _, pts) in enumerate(c.points):
            pcells = [f"{pts[k][0]:.3f} ± {pts[k][1]:.3f} (win {pts[k][2]:.2f})" if k in pts else "-" for k in labels]
            prow.append(f"| {name} | " + " | ".join(pcells) + " |")
            bar_x = np.arange(len(labels)) + i * width
            ax.bar(bar_x, [pts[k][0] if k in pts else 0 for k in labels], width, label=name)
            tb.scalars(name, {f"eval/{k}/return": pts[k][0] for k in pts}, 0)
        ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=30, fontsize=7)
        ax.set_ylabel("greedy return")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "per_point.png", dpi=120)
        plt.close(fig)
        sections.append("\n".join(prow))
    tb.close()
    text = "\n\n".join(sections)
    atomic_write_text(out / "comparison.md", text + "\n")
    return text


def summarize(run_dirs: list[str]) -> str:
    """The closing table of `shiftrl train` (the comparison of the runs just made)."""
    return compare(run_dirs, out_dir=str(Path(run_dirs[0]) / "comparison"))
