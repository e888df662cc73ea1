"""The curricula of DRED and the UED baselines (../shared/specs/cave-dred.md, "Training cycle").

The curriculum loop (trainers/loops/curriculum.py) runs one cycle at a time and asks this
object what to do; it never branches on the method:

1. ``plan(progress)``: the levels of the training rollout, one per env (each env replays its
   level for the whole segment), or None when this cycle does not train (robust PLR and
   ACCEL explore without gradients);
2. after the rollout and the PPO update, ``after_training(batch, step_scores)`` scores the
   played levels (new scores replace old ones);
3. ``proposals()``: newly generated levels to score (VAE interpolations for DRED, random
   edits of dataset levels for EL-DRED, random levels for robust PLR, edits of the replayed
   levels or empty rooms for ACCEL; none for U, PLR, DR);
4. after a scoring rollout without gradient, ``after_scoring(levels, batch, step_scores)``
   offers each proposal to the buffer (the admission rule).

============  =================  ==================  ================================
method        training levels    new levels          admission
============  =================  ==================  ================================
uniform       dataset, uniform   -                   -
plr           dataset, PLR       -                   -
dr            random, fresh      -                   -
rplr          buffer (p 0.5)     random              score beats the lowest
accel         buffer (p 0.8)     edits / empty rooms score beats the lowest
dred          dataset + buffer   VAE interpolation   grounded, >= lowest-weight entry
el_dred       dataset + buffer   5 random edits      grounded, >= lowest-weight entry
============  =================  ==================  ================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from agents.dred.config import DREDConfig
from agents.dred.generators import Codec, LevelVAE, codec_for, train_vae, vae_fidelity, vae_interpolations
from agents.dred.sampler import LevelBuffer
from envs.registry import EnvSpec

DATASET_METHODS = ("uniform", "plr", "dred", "el_dred")


def env_episode_scores(
    batch: dict[str, np.ndarray], step: np.ndarray, solved_return: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per env of a segment batch: (mean over its finished episodes of the mean per-step
    score, solved at least once - an episode return above ``solved_return`` -, finished
    episodes). Episodes cut by the segment's end are not scored (the spec); an env with no
    finished episode scores NaN."""
    first, rewards = batch["first"], batch["rewards"]
    done = batch["terminated"] | batch["truncated"]
    B, T = done.shape
    scores, solved, count = np.full(B, np.nan), np.zeros(B, bool), np.zeros(B, np.int64)
    for b in range(B):
        per_ep: list[float] = []
        s = None
        for t in range(T):
            if first[b, t]:
                s = t
            if done[b, t] and s is not None:
                per_ep.append(float(step[b, s : t + 1].mean()))
                solved[b] |= bool(rewards[b, s : t + 1].sum() > solved_return)
                s = None
        if per_ep:
            scores[b], count[b] = float(np.mean(per_ep)), len(per_ep)
    return scores, solved, count


def per_level(n_levels: int, env_values: np.ndarray, env_solved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Env results folded onto the levels they played (env j played level j % n_levels)."""
    scores, solved = np.full(n_levels, np.nan), np.zeros(n_levels, bool)
    for i in range(n_levels):
        vals = env_values[i::n_levels]
        vals = vals[np.isfinite(vals)]
        if len(vals):
            scores[i] = float(vals.mean())
        solved[i] = bool(env_solved[i::n_levels].any())
    return scores, solved


class Curriculum:
    """One method's level curriculum (see the module docstring).

    Args:
        cfg: the agent's config (``method`` picks the curriculum).
        seed: run seed (the curriculum's generator and VAE derive from it).
        spec: the env's spec (its ``level_type`` picks the level codec).
        dataset: the training levels (``env.levels``); required by U, PLR, DRED, EL-DRED.
        env_kwargs: the env's constructor kwargs (grid size).
        n_envs: envs of a rollout (levels per plan).
    """

    def __init__(
        self,
        cfg: DREDConfig,
        seed: int,
        spec: EnvSpec,
        dataset: list[dict[str, Any]],
        env_kwargs: dict[str, Any],
        n_envs: int,
    ) -> None:
        self.cfg, self.method, self.seed, self.n_envs = cfg, cfg.method, seed, n_envs
        if self.method in DATASET_METHODS and not dataset:
            raise ValueError(f"agent {self.method!r} trains on a dataset of levels: set env.levels to a level-set file")
        if cfg.n_generated > n_envs and self.method in ("dred", "el_dred", "rplr", "accel"):
            raise ValueError(
                f"n_generated={cfg.n_generated} levels cannot be scored by {n_envs} envs in one rollout "
                "(one level per env): lower n_generated or raise ray.num_workers x ray.envs_per_worker"
            )
        self.dataset = [dict(p) for p in dataset]
        self._codec_args = (spec, self.dataset, env_kwargs, cfg.vae_start_mask)
        # U and PLR generate nothing: they need no codec (a plugin's level type works as is);
        # the others fail here, at configuration time, when the level type has none
        self._codec: Codec | None = None if self.method in ("uniform", "plr") else codec_for(*self._codec_args)
        self.rng = np.random.default_rng([seed, 41])
        mode = {"plr": "dataset", "dred": "dred", "el_dred": "dred", "rplr": "buffer", "accel": "buffer"}
        self.buffer = (
            LevelBuffer(
                max(cfg.buffer_size, len(self.dataset)),
                [] if mode[self.method] == "buffer" else self.dataset,
                mode[self.method],
                cfg.rank_temperature,
                cfg.secondary_temperature,
                cfg.staleness_coef,
                cfg.rank_ties,
            )
            if self.method in mode
            else None
        )
        self.vae: LevelVAE | None = None
        self.vae_info: dict[str, float] = {}
        self._planned: np.ndarray | None = None  # buffer indices of the last training rollout
        self._replayed: list[dict[str, Any]] = []
        self.proposed_solvable: list[int] = [0, 0]  # solvable, total

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            self._codec = codec_for(*self._codec_args)
        return self._codec

    # -- the generator ----------------------------------------------------------------------------
    def _ensure_vae(self, progress: Callable[[str], None] | None = None) -> LevelVAE:
        if self.vae is None:
            c = self.cfg
            with torch.random.fork_rng():
                torch.manual_seed(self.seed + 97)
                self.vae = LevelVAE(self.codec, c.vae_latent, c.vae_hidden)
            info = train_vae(
                self.vae, self.dataset, c.vae_epochs, c.vae_batch, c.vae_lr, c.vae_beta, self.seed + 98, progress
            )
            self.vae_info = {f"vae_{k}": v for k, v in info.items()}
            self.vae_info.update({f"vae_acc_{k}": v for k, v in vae_fidelity(self.vae, self.dataset).items()})
            rng = np.random.default_rng([self.seed, 99])
            described = self.codec.describe(self.generated(360, rng))
            self.vae_info.update({f"vae_{k}": v for k, v in described.items() if np.isfinite(v)})
        return self.vae

    def prepare(self, progress: Callable[[str], None]) -> None:
        """Work before the first cycle, with progress lines: training DRED's VAE (unless a
        checkpoint brought it) and how well it learned the training levels - a warning when
        its reconstructions are no better than an input-blind guess (too few epochs)."""
        if self.method == "dred" and self.vae is None:
            progress(
                f"training the level VAE on the {len(self.dataset)} training levels ({self.cfg.vae_epochs} epochs)"
            )
            self._ensure_vae(progress)
            info = self.vae_info
            fid = {k[len("vae_acc_") :]: v for k, v in info.items() if k.startswith("vae_acc_")}
            if self.codec.kind == "cave":
                data = self.codec.describe(self.dataset)
                progress(
                    f"level VAE: reconstructs {fid['layout']:.0%} of training cells (per-cell guess "
                    f"{fid['layout_guess']:.0%}), the goal of {fid['goal']:.0%} and the start of {fid['start']:.0%} "
                    f"of the levels; {info['vae_solvable']:.1%} of its levels solvable, start-goal path median "
                    f"{info.get('vae_path_median', float('nan')):.0f} steps with {info['vae_path_le3']:.0%} within 3 "
                    f"(training levels: {data['path_median']:.0f}, {data['path_le3']:.0%})"
                )
            else:  # the shift codec's mae / mae_guess, or a plugin codec's own measures
                progress("level VAE: " + ", ".join(f"{k} {v:.3f}" for k, v in fid.items()))
            why = self.codec.undertrained(fid)
            if why is not None:
                progress(
                    f"WARNING: the level VAE has not learned the training levels ({why}); its levels are close "
                    "to noise. Raise agent_config.vae_epochs (or vae_lr)"
                )

    def generated(self, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        """``n`` VAE interpolations, 36 at a time as in training."""
        vae = self._ensure_vae()
        levels: list[dict[str, Any]] = []
        while len(levels) < n:
            levels += vae_interpolations(vae, self.dataset, min(36, n - len(levels)), rng)
        return levels

    # -- the cycle --------------------------------------------------------------------------------
    def plan(self, progress: float) -> list[dict[str, Any]] | None:
        """Levels of this cycle's training rollout (one per env), or None: no training."""
        m, n = self.method, self.n_envs
        self._planned, self._replayed = None, []
        if self.buffer is not None:
            self.buffer.tick()
        if m == "uniform":
            return [self.dataset[i] for i in self.rng.integers(len(self.dataset), size=n)]
        if m == "dr":
            return [self.codec.random(self.rng) for _ in range(n)]
        assert self.buffer is not None
        if m in ("rplr", "accel"):
            ready = int(self.buffer.played.sum()) >= n
            if not ready or self.rng.random() >= self.cfg.replay_probability:
                return None
        self._planned = self.buffer.draw(n, self.rng, progress)
        self._replayed = [self.buffer.levels[i] for i in self._planned]
        return list(self._replayed)

    def after_training(self, batch: dict[str, np.ndarray], step_scores: dict[str, np.ndarray]) -> None:
        if self.buffer is None or self._planned is None:
            return
        env_s, env_solved, _ = env_episode_scores(batch, step_scores[self.cfg.level_score], self.cfg.solved_return)
        ok = np.isfinite(env_s)
        # several envs may replay one entry: the last result wins, as in PLR's sequential updates
        self.buffer.update(self._planned[ok], env_s[ok], env_solved[ok])

    def proposals(self) -> list[dict[str, Any]]:
        m, k, rng = self.method, self.cfg.n_generated, self.rng
        if m == "dred":
            new = vae_interpolations(self._ensure_vae(), self.dataset, k, rng)
        elif m == "el_dred":
            new = [
                self.codec.edit(self.dataset[i], self.cfg.n_edits, rng) for i in rng.integers(len(self.dataset), size=k)
            ]
        elif m == "rplr":
            new = [self.codec.random(rng) for _ in range(k)] if self._planned is None else []
        elif m == "accel":
            if self._planned is None:
                new = [self.codec.empty(rng) for _ in range(k)]
            else:
                parents = [self._replayed[i] for i in rng.integers(len(self._replayed), size=k)]
                new = [self.codec.edit(p, self.cfg.n_edits, rng) for p in parents]
        else:
            new = []
        judged = [v for v in (self.codec.solvable(p) for p in new) if v is not None]  # None: not defined
        self.proposed_solvable[0] += sum(judged)
        self.proposed_solvable[1] += len(judged)
        return new

    def after_scoring(
        self, levels: list[dict[str, Any]], batch: dict[str, np.ndarray], step_scores: dict[str, np.ndarray]
    ) -> int:
        """Offers each scored proposal to the buffer; returns how many entered."""
        assert self.buffer is not None
        env_s, env_solved, _ = env_episode_scores(batch, step_scores[self.cfg.level_score], self.cfg.solved_return)
        scores, solved = per_level(len(levels), env_s, env_solved)
        grounded = self.method in ("dred", "el_dred")
        return sum(self.buffer.admit(p, float(s), bool(v), grounded) for p, s, v in zip(levels, scores, solved))

    # -- bookkeeping ------------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        out = dict(self.buffer.stats()) if self.buffer is not None else {}
        out.update(self.vae_info)
        if self.proposed_solvable[1]:
            out["proposed_solvable"] = self.proposed_solvable[0] / self.proposed_solvable[1]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "buffer": self.buffer.state_dict() if self.buffer is not None else None,
            "vae": self.vae.state_dict() if self.vae is not None else None,
            "vae_info": dict(self.vae_info),
            "proposed_solvable": list(self.proposed_solvable),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        if self.buffer is not None and state["buffer"] is not None:
            self.buffer.load_state_dict(state["buffer"])
        if state["vae"] is not None:
            c = self.cfg
            self.vae = LevelVAE(self.codec, c.vae_latent, c.vae_hidden)
            self.vae.load_state_dict(state["vae"])
        self.vae_info = dict(state["vae_info"])
        self.proposed_solvable = [int(x) for x in state["proposed_solvable"]]
