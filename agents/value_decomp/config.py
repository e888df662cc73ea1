"""Value-decomposition options. Defaults follow PyMARL's QMIX on SMAC (Rashid et al. 2018;
oxwhirl/pymarl ``default.yaml`` and ``qmix.yaml``), which TRAMA's released configs keep; the
QPLEX fields follow QPLEX's ``dmaq_qatten`` settings as TRAMA released them
(aailab-kaist/TRAMA ``config/algs/trama_gc_qplex.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MIXERS = ("vdn", "qmix", "qplex")


@dataclass(frozen=True)
class ValueDecompConfig:
    """Recurrent Q-learning with a shared agent network and a mixer (VDN, QMIX or QPLEX).

    Attributes:
        mixer: "vdn" (Q_tot = sum of the agents' Qs, Sunehag et al. 2018), "qmix" (a
            monotonic mixing network conditioned on the global state, Rashid et al. 2018) or
            "qplex" (duplex dueling with Qatten weights, Wang et al. 2021; TRAMA's backbone).
        env_steps: training budget in env steps (one env step = every agent acts once).
        batch_episodes: episodes per update, sampled from the replay buffer (PyMARL: 32).
        buffer_episodes: replay-buffer capacity in episodes, oldest dropped first (PyMARL: 5000).
        lr: RMSprop learning rate (PyMARL: 5e-4).
        optim_alpha: RMSprop smoothing constant (PyMARL: 0.99).
        optim_eps: RMSprop epsilon (PyMARL: 1e-5).
        gamma: discount.
        grad_clip: gradient-norm clip over agent and mixer parameters (PyMARL: 10).
        target_update_interval: updates between hard copies into the target networks.
            PyMARL counts episodes collected, 200; with its one update per collected episode
            that is 200 updates too, which is what we count.
        double_q: targets pick the next action with the online network and evaluate it with
            the target network (van Hasselt et al. 2016; PyMARL's QMIX: on).
        epsilon_start: exploration rate at env step 0.
        epsilon_finish: exploration rate after the anneal.
        epsilon_anneal_steps: env steps over which epsilon falls linearly (PyMARL: 50k).
        rnn_hidden: width of the agent's layers and GRU (PyMARL: 64).
        obs_last_action: feed each agent its own previous action (one-hot) as input.
        obs_agent_id: feed each agent a one-hot of its index (one network, distinct agents).
        mixing_embed_dim: width of QMIX's mixing layer (PyMARL: 32).
        hypernet_embed: hidden width of QMIX's two-layer weight hypernetworks (PyMARL: 64).
        td_lambda: lambda of TD(lambda) targets over the episode (pymarl2's
            build_td_lambda_targets); 0 = PyMARL's one-step TD, the default.
        qplex_heads: QPLEX's Qatten heads weighting each agent's Q (n_head: 4).
        qplex_kernels: QPLEX's kernels of the advantage weights lambda_i(s, a) (num_kernel: 4).
        qplex_adv_layers: layers of each lambda kernel's extractors, 1 or 2
            (adv_hypernet_layers: 1).
        qplex_adv_embed: hidden width of 2-layer lambda extractors (adv_hypernet_embed: 64).
        qplex_attend_reg: weight of the squared attention logits added to the loss
            (attend_reg_coef: 0.001).
        qplex_state_bias: QPLEX's state-dependent bias V(s) (state_bias: True).
        qplex_weighted_head: scale each Qatten head by |w_h(s)| (weighted_head: False).
        qplex_stop_gradient: the advantage term trains lambda only, not the agents' Qs
            (is_stop_gradient: True).
        episodes_per_request: episodes each rollout request collects between updates.
        updates_per_episode: updates per collected episode once warm; PyMARL's runner does
            one update of a batch_episodes batch per collected episode (1.0). Fractions
            accumulate across requests.
        checkpoint_every: updates between checkpoints (the last one is always saved).
        warmup_episodes: no updates before the buffer holds this many episodes.
        checkpoint_buffer: also checkpoint the replay buffer (an npz beside the learner's
            state); off by default: a resumed run refills the buffer (``warmup_episodes``)
            before learning resumes.
    """

    mixer: Literal["vdn", "qmix", "qplex"] = "qmix"
    env_steps: int = 2_000_000
    batch_episodes: int = 32
    buffer_episodes: int = 5000
    lr: float = 5e-4
    optim_alpha: float = 0.99
    optim_eps: float = 1e-5
    gamma: float = 0.99
    grad_clip: float = 10.0
    target_update_interval: int = 200
    double_q: bool = True
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_steps: int = 50_000
    rnn_hidden: int = 64
    obs_last_action: bool = True
    obs_agent_id: bool = True
    mixing_embed_dim: int = 32
    hypernet_embed: int = 64
    td_lambda: float = 0.0
    qplex_heads: int = 4
    qplex_kernels: int = 4
    qplex_adv_layers: int = 1
    qplex_adv_embed: int = 64
    qplex_attend_reg: float = 0.001
    qplex_state_bias: bool = True
    qplex_weighted_head: bool = False
    qplex_stop_gradient: bool = True
    episodes_per_request: int = 8
    updates_per_episode: float = 1.0
    checkpoint_every: int = 200
    warmup_episodes: int = 32
    checkpoint_buffer: bool = False

    def __post_init__(self) -> None:
        if self.mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {list(MIXERS)}, got {self.mixer!r}")
        for name in (
            "env_steps",
            "batch_episodes",
            "buffer_episodes",
            "target_update_interval",
            "rnn_hidden",
            "mixing_embed_dim",
            "hypernet_embed",
            "episodes_per_request",
            "qplex_heads",
            "qplex_kernels",
            "qplex_adv_embed",
            "checkpoint_every",
            "warmup_episodes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.qplex_adv_layers not in (1, 2):
            raise ValueError(f"qplex_adv_layers must be 1 or 2, got {self.qplex_adv_layers}")
        if not 0 <= self.td_lambda <= 1:
            raise ValueError(f"td_lambda must be in [0, 1], got {self.td_lambda}")
        if self.updates_per_episode <= 0:
            raise ValueError(f"updates_per_episode must be > 0, got {self.updates_per_episode}")
        if self.qplex_attend_reg < 0:
            raise ValueError(f"qplex_attend_reg must be >= 0, got {self.qplex_attend_reg}")
        if self.epsilon_anneal_steps < 0:
            raise ValueError(f"epsilon_anneal_steps must be >= 0, got {self.epsilon_anneal_steps}")
        for name in ("lr", "optim_eps", "grad_clip"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.optim_alpha < 1:
            raise ValueError(f"optim_alpha must be in [0, 1), got {self.optim_alpha}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        for name in ("epsilon_start", "epsilon_finish"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.batch_episodes > self.buffer_episodes:
            raise ValueError(
                f"batch_episodes ({self.batch_episodes}) must be <= buffer_episodes ({self.buffer_episodes})"
            )
        if self.warmup_episodes > self.buffer_episodes:
            raise ValueError(
                f"warmup_episodes ({self.warmup_episodes}) must be <= buffer_episodes ({self.buffer_episodes})"
            )

    def epsilon(self, env_steps: int) -> float:
        """The exploration rate after ``env_steps`` env steps: linear from epsilon_start to
        epsilon_finish over epsilon_anneal_steps, then flat (PyMARL's DecayThenFlatSchedule)."""
        if self.epsilon_anneal_steps == 0:
            return self.epsilon_finish
        frac = min(max(env_steps, 0) / self.epsilon_anneal_steps, 1.0)
        return self.epsilon_start + frac * (self.epsilon_finish - self.epsilon_start)
