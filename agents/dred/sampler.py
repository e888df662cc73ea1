"""The level buffer and its sampler: prioritised level replay (Jiang et al. 2021, PLR; robust
PLR, Jiang et al. 2021b) with DRED's data-regularised mixture (Garcin et al. 2024, sec. 4).

Pure numpy; the runtime never sees it (the curriculum in agents/dred/curriculum.py drives
it). Entries are levels as JSON-able dicts. *Dataset* entries (the training levels) are
never evicted; *generated* entries come and go through :meth:`LevelBuffer.admit`.

Sampling distribution (../shared/specs/cave-dred.md):

- rank prioritisation: ``h_i = 1 / rank(S_i) ** (1 / T)`` over the candidates with a score
  (rank 1 = highest score), normalised; unplayed entries weigh 0;
- staleness: ``(c - C_i) / sum_j (c - C_j)`` where ``C_i`` is the cycle entry i was last
  played in and ``c`` the current cycle (PLR, eq. 2);
- PLR and robust PLR: ``P = (1 - rho) P_score + rho P_stale`` over their candidates;
- DRED: ``P = (1 - rho) [(1 - c) P_primary|dataset + c P_secondary|buffer] + rho P_stale|dataset``
  with the primary score value_l1 (temperature 0.1) over dataset levels, the secondary
  grounded score (value_l1, 0 unless the level was solved at least once; temperature 1.0)
  over the whole buffer, and ``c`` rising linearly from 0 to 1 over training.

Unplayed dataset levels weigh 0 in every term, so they reach play through exploration:
:meth:`LevelBuffer.draw` picks an unplayed dataset level uniformly with probability equal
to the unplayed fraction of the dataset (PLR's "sample unseen levels until the buffer is
seen", dcd's ``sample_replay_decision``), otherwise draws from P.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def rank_weights(scores: np.ndarray, temperature: float, ties: str = "mean") -> np.ndarray:
    """PLR's rank prioritisation ``1/rank^(1/T)`` normalised; an empty input gives an
    empty output.

    Ties (``ties``): PLR and DRED define the rank without saying how equal scores rank, and
    they are common under DRED's grounded score, which is 0 for every level not yet solved.
    ``"mean"`` (default) gives tied entries the mean of the weights of the ranks they span -
    what breaking ties at random would give on average, whatever the entries' order.
    ``"index"`` breaks ties by position, earlier entries first (this suite before
    2026-12-03; dcd's ``np.flip(scores.argsort())`` also orders ties by position). With the
    training levels stored family by family, position order weights unsolved levels of the
    first families far above the last ones' at T = 1."""
    if ties not in ("mean", "index"):
        raise ValueError(f"ties must be 'mean' or 'index', got {ties!r}")
    if len(scores) == 0:
        return np.zeros(0)
    s = np.asarray(scores, float)
    order = np.argsort(-s, kind="stable")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    w = ranks ** (-1.0 / temperature)
    if ties == "mean":
        _, group = np.unique(s, return_inverse=True)
        w = (np.bincount(group, weights=w) / np.bincount(group))[group]
    return w / w.sum()


class LevelBuffer:
    """Levels with their scores, solved flags and last-played cycles.

    Args:
        capacity: maximum entries (DRED: 4000); must hold the dataset.
        dataset: the training levels (never evicted; may be empty: robust PLR, ACCEL).
        mode: "dataset" (PLR over the dataset only), "dred" (DRED's mixture over dataset and
            generated levels) or "buffer" (robust PLR / ACCEL over the generated levels).
        temperature: the primary score's rank temperature.
        secondary_temperature: DRED's grounded score's rank temperature.
        staleness_coef: rho, the weight of staleness sampling.
        rank_ties: how equal scores rank (:func:`rank_weights`): "mean" or "index".
    """

    def __init__(
        self,
        capacity: int,
        dataset: list[dict[str, Any]],
        mode: str,
        temperature: float,
        secondary_temperature: float = 1.0,
        staleness_coef: float = 0.3,
        rank_ties: str = "mean",
    ) -> None:
        if mode not in ("dataset", "dred", "buffer"):
            raise ValueError(f"mode must be 'dataset', 'dred' or 'buffer', got {mode!r}")
        if len(dataset) > capacity:
            raise ValueError(f"buffer capacity {capacity} cannot hold the {len(dataset)} dataset levels")
        if mode != "buffer" and not dataset:
            raise ValueError(f"mode {mode!r} samples dataset levels; give at least one")
        self.capacity, self.mode = capacity, mode
        if rank_ties not in ("mean", "index"):
            raise ValueError(f"rank_ties must be 'mean' or 'index', got {rank_ties!r}")
        self.T, self.T2, self.rho, self.ties = temperature, secondary_temperature, staleness_coef, rank_ties
        self.levels: list[dict[str, Any]] = [dict(p) for p in dataset]
        n = len(dataset)
        self.dataset = np.ones(n, bool)
        self.scores = np.full(n, np.nan)
        self.solved = np.zeros(n, bool)
        self.last = np.zeros(n, np.int64)
        self.cycle = 0
        self.admitted = 0
        self.proposed = 0

    def __len__(self) -> int:
        return len(self.levels)

    @property
    def played(self) -> np.ndarray:
        return ~np.isnan(self.scores)

    def grounded(self) -> np.ndarray:
        """DRED's grounded score: the score where the level was solved at least once, else 0."""
        return np.where(self.solved, np.nan_to_num(self.scores), 0.0)

    # -- the distribution ---------------------------------------------------------------------
    def _rank_part(self, idx: np.ndarray, scores: np.ndarray, temperature: float) -> np.ndarray:
        p = np.zeros(len(self))
        if len(idx):
            p[idx] = rank_weights(scores, temperature, self.ties)
        return p

    def _secondary_part(self) -> np.ndarray:
        """DRED's secondary term: rank weights of the grounded scores over every played entry."""
        every = np.flatnonzero(self.played)
        return self._rank_part(every, self.grounded()[every], self.T2)

    def _stale_part(self, idx: np.ndarray) -> np.ndarray:
        p = np.zeros(len(self))
        if len(idx):
            w = (self.cycle - self.last[idx]).astype(float)
            p[idx] = w / w.sum() if w.sum() > 0 else 1.0 / len(idx)
        return p

    def probs(self, progress: float = 0.0) -> np.ndarray:
        """P over the entries; ``progress`` in [0, 1] is the fraction of training done (DRED's
        secondary-strategy schedule c). All zeros while no candidate has been played."""
        played = self.played
        if self.mode == "buffer":
            cand = np.flatnonzero(played)
        else:
            cand = np.flatnonzero(played & self.dataset)
        if len(cand) == 0:
            return np.zeros(len(self))
        primary = self._rank_part(cand, self.scores[cand], self.T)
        stale = self._stale_part(cand)
        if self.mode == "dred":
            c = float(np.clip(progress, 0.0, 1.0))
            primary = (1 - c) * primary + c * self._secondary_part()
        p = (1 - self.rho) * primary + self.rho * stale
        return p / p.sum()

    def draw(self, n: int, rng: np.random.Generator, progress: float = 0.0) -> np.ndarray:
        """``n`` entry indices for the next rollout (see the module docstring)."""
        p = self.probs(progress)
        unplayed = np.flatnonzero(~self.played & self.dataset)
        n_data = int(self.dataset.sum())
        explore = len(unplayed) / n_data if n_data else 0.0
        out = np.empty(n, np.int64)
        for k in range(n):
            if len(unplayed) and (p.sum() == 0 or rng.random() < explore):
                out[k] = unplayed[rng.integers(len(unplayed))]
            elif p.sum() > 0:
                out[k] = rng.choice(len(p), p=p)
            else:
                raise RuntimeError("the level buffer has no playable level (empty buffer: admit levels first)")
        return out

    # -- results ------------------------------------------------------------------------------
    def update(self, idx: np.ndarray, scores: np.ndarray, solved: np.ndarray) -> None:
        """New scores of played entries (the new score replaces the old, DRED/PLR)."""
        idx = np.asarray(idx, np.int64)
        self.scores[idx] = np.asarray(scores, float)
        np.logical_or.at(self.solved, idx, np.asarray(solved, bool))
        self.last[idx] = self.cycle

    def tick(self) -> None:
        """One cycle passed (staleness counts cycles)."""
        self.cycle += 1

    def admit(self, level: dict[str, Any], score: float, solved: bool, grounded_only: bool) -> bool:
        """Offers a scored generated level; returns whether it entered the buffer.

        DRED (``grounded_only``): admitted when its grounded score is > 0 (the agent
        reached the goal in the scoring rollout) and, once the buffer is full, at least the
        score of the lowest-weight generated entry, which it replaces. Robust PLR / ACCEL:
        admitted while there is room, then when its score beats the lowest-scoring generated
        entry, which it replaces. Dataset entries are never replaced.
        """
        self.proposed += 1
        if not np.isfinite(score):
            return False
        if grounded_only and not (solved and score > 0):
            return False
        if len(self) < self.capacity:
            self._append(level, score, solved)
            return True
        gen = np.flatnonzero(~self.dataset)
        if not len(gen):
            return False
        if grounded_only:
            # generated entries weigh only through the secondary (grounded-score) term, so its
            # weights order them as P at c = 1 does - and still do when rho = 1
            victim = gen[np.argmin(self._secondary_part()[gen])]
        else:
            victim = gen[np.argmin(np.nan_to_num(self.scores[gen], nan=-np.inf))]
        old = self.scores[victim]
        if np.isfinite(old) and score < old:
            return False
        self.levels[victim] = dict(level)
        self.scores[victim], self.solved[victim], self.last[victim] = score, solved, self.cycle
        self.admitted += 1
        return True

    def _append(self, level: dict[str, Any], score: float, solved: bool) -> None:
        self.levels.append(dict(level))
        self.dataset = np.append(self.dataset, False)
        self.scores = np.append(self.scores, score)
        self.solved = np.append(self.solved, solved)
        self.last = np.append(self.last, self.cycle)
        self.admitted += 1

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain values only (torch.load(weights_only=True) reads them back)."""
        return {
            "levels": [json.dumps(p, sort_keys=True) for p in self.levels],
            "dataset": self.dataset.tolist(),
            "scores": [float(s) for s in self.scores],
            "solved": self.solved.tolist(),
            "last": self.last.tolist(),
            "cycle": self.cycle,
            "admitted": self.admitted,
            "proposed": self.proposed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.levels = [json.loads(s) for s in state["levels"]]
        self.dataset = np.asarray(state["dataset"], bool)
        self.scores = np.asarray(state["scores"], float)
        self.solved = np.asarray(state["solved"], bool)
        self.last = np.asarray(state["last"], np.int64)
        self.cycle, self.admitted, self.proposed = int(state["cycle"]), int(state["admitted"]), int(state["proposed"])

    def stats(self) -> dict[str, float]:
        """Diagnostics for TensorBoard (``curriculum/...``)."""
        gen = ~self.dataset
        return {
            "buffer_size": float(len(self)),
            "generated_levels": float(gen.sum()),
            "played_fraction": float(self.played.mean()) if len(self) else 0.0,
            "solved_fraction": float(self.solved[self.played].mean()) if self.played.any() else 0.0,
            "mean_score": float(np.nanmean(self.scores)) if self.played.any() else 0.0,
            "admitted_total": float(self.admitted),
            "proposed_total": float(self.proposed),
        }
