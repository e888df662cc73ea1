"""What the online loops (on_policy, off_policy) share: the rolling window of training
episodes, one row and one set of charts per log point, greedy evaluation on schedule, and
results.json. Loops own the order of sampling and updates; this owns the bookkeeping, so
every online agent logs the same tags with env steps on the x-axis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainers.config import ExperimentConfig, to_dict
from trainers.io import atomic_write_json
from trainers.tb import TBLogger


class OnlineLog:
    """Bookkeeping of one online run; ``loop`` is the checkpointed loop state (history,
    evaluations and the next evaluation point live in it, so a resumed run continues)."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path, n_agents: int, loop: dict[str, Any], fresh: bool):
        self.cfg, self.run_dir, self.multi = cfg, run_dir, n_agents > 1
        self.loop = loop
        loop.setdefault("history", [])
        loop.setdefault("evals", [])
        loop.setdefault("next_eval", cfg.eval.every)
        self.recent: list[dict[str, Any]] = []
        self.tb = TBLogger(run_dir)
        if fresh:
            self.tb.config(to_dict(cfg))

    def record(self, episodes: list[dict[str, Any]], steps: int, losses: dict[str, float], **extra: Any) -> str:
        """Adds a row (training return, win rate and length over the last 100 episodes),
        writes its charts and losses; returns the progress text."""
        self.recent = (self.recent + episodes)[-100:]
        r = self.recent

        def mean(key: str) -> float:
            return float(np.mean([e[key] for e in r])) if r else float("nan")

        row = {
            "env_steps": steps,
            "episodes": len(episodes),
            "episodic_return": mean("return"),
            "win_rate": mean("won"),
            "episode_length": mean("length"),
            **extra,
        }
        charts = {
            "charts/episodic_return": row["episodic_return"],
            "charts/episode_length": row["episode_length"],
            "charts/SPS": row.get("sps", float("nan")),
        }
        if self.multi:
            charts["charts/win_rate"] = row["win_rate"]
        self.tb.scalars("main", charts, steps)
        self.tb.scalars("main", {f"losses/{k}": v for k, v in losses.items()}, steps)
        self.loop["history"].append(row)
        return f"env steps {steps}, return {row['episodic_return']:.3f}" + (
            f", win rate {row['win_rate']:.2f}" if self.multi else ""
        )

    def scalars(self, tags: dict[str, float], steps: int) -> None:
        """Extra charts of the loop or learner (full tag names) at env step ``steps``; also
        kept in the last history row (results.json)."""
        if tags:
            self.tb.scalars("main", tags, steps)
            if self.loop["history"]:
                self.loop["history"][-1].update(tags)

    def maybe_evaluate(self, group: Any, weights: dict[str, Any], steps: int, last: bool) -> str:
        """Greedy evaluation when ``eval.every`` env steps have passed (and at the end);
        adds eval_* to the last row and returns the progress text."""
        from trainers.evaluation import eval_scalars, evaluate_policy

        if not ((self.cfg.eval.every and steps >= self.loop["next_eval"]) or last):
            return ""
        result = evaluate_policy(group, weights, self.cfg, seed=self.cfg.seed + 10_000)
        tags = eval_scalars(result)
        self.tb.scalars("main", tags, steps)
        row = self.loop["history"][-1]
        row.update({"eval_return": tags["eval/greedy/return"], "eval_win_rate": tags["eval/greedy/win_rate"]})
        self.loop["evals"].append({"env_steps": steps, **result})
        self.loop["next_eval"] = steps + self.cfg.eval.every
        kind = "sampled" if self.cfg.eval.sample else "greedy"
        msg = f" | {kind} return {row['eval_return']:.3f}"
        return msg + (f", {kind} win rate {row['eval_win_rate']:.2f}" if self.multi else "")

    def close(self) -> None:
        self.tb.close()

    def results(self, **extra: Any) -> dict[str, Any]:
        """Writes and returns results.json (``kind: learning_curve``)."""
        h, evals = self.loop["history"], self.loop["evals"]
        results = {
            "kind": "learning_curve",
            "agent": self.cfg.agent,
            "env": self.cfg.env.id,
            "seed": self.cfg.seed,
            "history": h,
            "final": h[-1] if h else {},
            "eval": evals[-1] if evals else None,
            "evals": evals,
            **extra,
        }
        atomic_write_json(self.run_dir / "results.json", results)
        return results
