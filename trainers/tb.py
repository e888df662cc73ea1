"""TensorBoard logging under one tag scheme for every agent.

Tags (see README, "TensorBoard tags"):
  charts/episodic_return, charts/SPS       online agents, x-axis = env steps
  losses/<term>                            every named loss term, x-axis = env steps
                                           (gradient steps for offline agents)
  eval/<set>/<metric>                      evaluation sets (tasks, levels)
  robust/return, robust/return_std         robust runs: one writer per method in
                                           <run>/tb/<method>/, x-axis = round(1000 * shift)
  charts/fit_seconds                       offline closed-form fits, x-axis = dataset size
  charts/win_rate, charts/episode_length   online agents (win rate: multi-agent battles)
  eval/greedy/<metric>, eval/<point>/<m>   greedy evaluation, pooled and per shift/task/level
  config (text) and hparams                the resolved config of every run
Runs of different agents therefore overlay in one TensorBoard chart per tag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tensorboardX import SummaryWriter

SHIFT_STEP_SCALE = 1000


def shift_step(value: float) -> int:
    """x-axis position of a shift value on robust/* charts."""
    return round(SHIFT_STEP_SCALE * float(value))


class TBLogger:
    """One SummaryWriter per sub-run (method) inside ``<run>/tb/``."""

    def __init__(self, run_dir: str | Path) -> None:
        self.root = Path(run_dir) / "tb"
        self._writers: dict[str, SummaryWriter] = {}

    def writer(self, name: str = "main") -> SummaryWriter:
        if name not in self._writers:
            self._writers[name] = SummaryWriter(logdir=str(self.root / name), flush_secs=5)
        return self._writers[name]

    def scalars(self, name: str, values: dict[str, float], step: int) -> None:
        w = self.writer(name)
        for tag, v in values.items():
            w.add_scalar(tag, float(v), step)

    def text(self, name: str, tag: str, text: str) -> None:
        self.writer(name).add_text(tag, text.replace("\n", "  \n"), 0)

    def hparams(self, name: str, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        flat = {k: (v if isinstance(v, int | float | str | bool) else str(v)) for k, v in hparams.items()}
        self.writer(name).add_hparams(flat, metrics, name="hparams")

    def config(self, cfg: dict[str, Any], name: str = "main") -> None:
        """The resolved config as text (YAML) and as hparams (dotted keys), so TensorBoard's
        HParams tab can filter runs by any setting."""
        import yaml

        self.text(name, "config", yaml.safe_dump(cfg, sort_keys=False))
        flat: dict[str, Any] = {}

        def walk(prefix: str, node: Any) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
            else:
                flat[prefix] = node

        walk("", cfg)
        self.hparams(name, flat, {})
        # On disk now, not at the next timed flush: a run killed in its first seconds and
        # then resumed must still show its config (a resume does not write it twice).
        self.writer(name).flush()

    def close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()
