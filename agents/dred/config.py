"""DRED's and the UED baselines' options (../shared/specs/cave-dred.md).

One learner serves seven agent names; each name fixes ``method`` (trainers/agents.py), and
the defaults of the other fields are DRED's Cave Escape settings (its released
train_scripts/grid_configs/minigrid/cave_escape configs, dcd's defaults where those are
silent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

Method = Literal["uniform", "plr", "rplr", "dr", "accel", "dred", "el_dred"]
METHODS: tuple[str, ...] = ("uniform", "plr", "rplr", "dr", "accel", "dred", "el_dred")


@dataclass(frozen=True)
class DREDConfig:
    """Recurrent PPO on a level curriculum.

    Attributes:
        method: the curriculum (set by the agent name): uniform (U, the dataset levels
            uniformly), plr (prioritised level replay over the dataset), rplr (robust PLR:
            random levels, gradients only on replayed ones), dr (domain randomisation:
            fresh random levels every cycle), accel (ACCEL: empty rooms, then edits of
            replayed levels), dred (the dataset plus VAE-generated levels), el_dred (the
            dataset plus random edits of dataset levels).
        updates: training budget in PPO updates (one update per cycle; methods are compared
            at equal numbers of gradient updates, DRED's protocol).
        n_steps: steps per env per rollout (DRED: 256).
        num_epochs: PPO epochs per update (DRED: 5).
        num_minibatches: minibatches per epoch, split over envs (DRED: 1).
        lr: Adam learning rate (DRED: 1e-4).
        adam_eps: Adam epsilon (DRED: 1e-5).
        gamma: discount (DRED: 0.995).
        gae_lambda: GAE lambda (DRED: 0.95).
        clip: PPO ratio clip, also the value clip (DRED: 0.2).
        value_clip: clipped value loss (DRED: on).
        vf_coef: value-loss weight (DRED: 0.5).
        ent_coef: entropy bonus (DRED: 0.0).
        max_grad_norm: gradient-norm clip (DRED: 0.5).
        encoder: "conv5x5" (DRED's 3x3 conv with 16 filters on the 5x5x3 MiniGrid view plus
            the direction one-hot: Cave Escape) or "mlp" (a vector observation: the
            shifted-dynamics envs).
        hidden: LSTM width (DRED: 256).
        head_hidden: width of the actor's and critic's hidden layer (DRED: 32).
        buffer_size: level buffer capacity (DRED: 4000); dataset levels are never evicted.
        score: level score: "value_l1" (mean |GAE advantage|, DRED and PLR) or
            "positive_value_loss" (mean max(advantage, 0), robust PLR and ACCEL); default
            by method.
        temperature: rank-prioritisation temperature of the primary score (DRED/PLR 0.1,
            RPLR/ACCEL 0.3); default by method.
        secondary_temperature: temperature of DRED's grounded score over the whole buffer
            (DRED: 1.0).
        staleness_coef: weight of staleness sampling (DRED: 0.3).
        rank_ties: how equal scores rank (agents/dred/sampler.py: rank_weights): "mean"
            (tied entries share their ranks' mean weight; default) or "index" (by buffer
            position, earlier first; as this suite did before, and dcd orders ties by
            position too). Ties are common under DRED's grounded score (0 for every
            unsolved level) and robust PLR's and ACCEL's positive value loss (0 wherever
            no advantage is positive); value_l1 practically never ties.
        replay_prob: robust PLR's and ACCEL's chance that a cycle replays buffer levels
            (with a gradient update) instead of only scoring new ones (RPLR 0.5, ACCEL 0.8,
            ACCEL paper); default by method.
        n_generated: levels generated per cycle (DRED: 12 training levels, 6 pairs x 6
            interpolation points = 36).
        n_edits: edits per generated level (EL-DRED and ACCEL: 5).
        vae_latent: latent size of the level VAE (the paper's graph VAE used 1024; this
            MLP VAE on one-hot grids, the spec's allowed substitute, needs far fewer).
        vae_hidden: hidden width of the VAE's encoder and decoder.
        vae_epochs: VAE training epochs on the training levels. DRED trains its graph VAE
            for 200; this MLP substitute is far from converged there - on the 512 Cave
            Escape training levels it reconstructed the goal and start cells of 9-10% of
            the levels and 68% of the cells (an input-blind per-cell guess: 50%), so its
            interpolations were near per-cell noise, 27% of them solvable within 3 steps
            (training levels: none) - while 1000 epochs reconstruct 94% of cells and every
            goal and start (measured here, 95 s). Default 1000; the run prints the VAE's
            accuracies and warns when they are no better than a guess.
        vae_batch: VAE batch size (DRED: 64).
        vae_lr: VAE Adam learning rate (DRED: 3.976e-4).
        vae_beta: KL weight (DRED: 0.0448).
        vae_start_mask: where a decoded level's start may be: "reachable" (a navigable cell
            from which the goal can be reached, the default) or "navigable" (any navigable
            cell but the goal; more of the generated levels are then unsolvable).
        solved_return: an episode counts as solving its level when its return exceeds
            this (DRED's grounding: a level enters the buffer only once solved). 0 is
            DRED's rule on Cave Escape, where only the goal pays; a dense-reward env needs
            its success level, e.g. 475 on CartPole (Gymnasium's reward threshold), or
            every episode would count as solved.
        checkpoint_every: updates between checkpoints (the last one is always saved).
    """

    # options a run's stored config.yaml lacks when it predates them: the value it ran with
    # (trainers.config.load_config(stored=True)); rank_ties came on 2026-12-03, ties by position
    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {"rank_ties": "index"}

    method: Method = "dred"
    updates: int = 300
    n_steps: int = 256
    num_epochs: int = 5
    num_minibatches: int = 1
    lr: float = 1e-4
    adam_eps: float = 1e-5
    gamma: float = 0.995
    gae_lambda: float = 0.95
    clip: float = 0.2
    value_clip: bool = True
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    encoder: Literal["conv5x5", "mlp"] = "conv5x5"
    hidden: int = 256
    head_hidden: int = 32
    buffer_size: int = 4000
    score: Literal["default", "value_l1", "positive_value_loss"] = "default"
    temperature: float | None = None
    secondary_temperature: float = 1.0
    staleness_coef: float = 0.3
    rank_ties: Literal["mean", "index"] = "mean"
    replay_prob: float | None = None
    n_generated: int = 36
    n_edits: int = 5
    vae_latent: int = 64
    vae_hidden: int = 256
    vae_epochs: int = 1000  # DRED: 200 (see the docstring)
    vae_batch: int = 64
    vae_lr: float = 3.976e-4
    vae_beta: float = 0.0448
    vae_start_mask: Literal["reachable", "navigable"] = "reachable"
    solved_return: float = 0.0
    checkpoint_every: int = 10

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        for name in (
            "updates",
            "n_steps",
            "num_epochs",
            "num_minibatches",
            "hidden",
            "head_hidden",
            "buffer_size",
            "n_generated",
            "vae_latent",
            "vae_hidden",
            "vae_epochs",
            "vae_batch",
            "checkpoint_every",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_edits < 0:
            raise ValueError(f"n_edits must be >= 0, got {self.n_edits}")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"gamma must be in (0, 1] and gae_lambda in [0, 1], got {self.gamma}, {self.gae_lambda}")
        if self.lr <= 0 or self.clip <= 0 or self.vae_lr <= 0:
            raise ValueError(f"lr, clip and vae_lr must be > 0, got {self.lr}, {self.clip}, {self.vae_lr}")
        if self.rank_ties not in ("mean", "index"):
            raise ValueError(f"rank_ties must be 'mean' or 'index', got {self.rank_ties!r}")
        if self.vae_start_mask not in ("reachable", "navigable"):
            raise ValueError(f"vae_start_mask must be 'reachable' or 'navigable', got {self.vae_start_mask!r}")
        if self.encoder not in ("conv5x5", "mlp"):
            raise ValueError(f"encoder must be 'conv5x5' or 'mlp', got {self.encoder!r}")
        if self.score not in ("default", "value_l1", "positive_value_loss"):
            raise ValueError(f"score must be 'default', 'value_l1' or 'positive_value_loss', got {self.score!r}")
        if self.temperature is not None and self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.secondary_temperature <= 0:
            raise ValueError(f"secondary_temperature must be > 0, got {self.secondary_temperature}")
        if not 0 <= self.staleness_coef <= 1:
            raise ValueError(f"staleness_coef must be in [0, 1], got {self.staleness_coef}")
        if self.replay_prob is not None and not 0 < self.replay_prob <= 1:
            raise ValueError(f"replay_prob must be in (0, 1], got {self.replay_prob}")

    # -- which options a method reads -----------------------------------------------------------
    def ignored(self) -> list[str]:
        """Options set away from their defaults that this method never reads (e.g. vae_* on
        plr): a typo'd intent a run should point out, not silently drop."""
        from dataclasses import fields

        buffer = ("buffer_size", "score", "temperature", "staleness_coef", "rank_ties", "solved_return")
        used_by = {
            "uniform": (),
            "dr": (),
            "plr": buffer,
            "rplr": (*buffer, "replay_prob", "n_generated"),
            "accel": (*buffer, "replay_prob", "n_generated", "n_edits"),
            "el_dred": (*buffer, "secondary_temperature", "n_generated", "n_edits"),
            "dred": (
                *buffer,
                "secondary_temperature",
                "n_generated",
                *(f.name for f in fields(self) if f.name.startswith("vae_")),
            ),
        }
        used, curriculum = used_by[self.method], set().union(*used_by.values())  # the options some method reads
        default = DREDConfig(method=self.method)
        return [
            f.name
            for f in fields(self)
            if f.name in curriculum and f.name not in used and getattr(self, f.name) != getattr(default, f.name)
        ]

    # -- method defaults (the spec's baselines) -------------------------------------------------
    @property
    def level_score(self) -> str:
        if self.score != "default":
            return self.score
        return "positive_value_loss" if self.method in ("rplr", "accel") else "value_l1"

    @property
    def rank_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.3 if self.method in ("rplr", "accel") else 0.1

    @property
    def replay_probability(self) -> float:
        if self.replay_prob is not None:
            return self.replay_prob
        return {"rplr": 0.5, "accel": 0.8}.get(self.method, 1.0)
