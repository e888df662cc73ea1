"""PPO options. Defaults follow MAPPO's SMAC settings (Yu et al. 2022, appendix; the
on-policy repository's defaults) where they suit a 2-core CPU; cleanrl's PPO otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PPOConfig:
    """Recurrent PPO with parameter sharing across agents.

    Attributes:
        env_steps: training budget in env steps (one env step = every agent acts once).
        n_steps: steps per env per iteration (segment length T; one update per iteration).
        num_epochs: passes over each iteration's data (MAPPO SMAC: 5).
        num_minibatches: minibatches per epoch, split over environments (MAPPO SMAC: 1).
        lr: Adam learning rate (MAPPO SMAC: 5e-4).
        adam_eps: Adam epsilon (MAPPO: 1e-5).
        gamma: discount.
        gae_lambda: GAE lambda.
        clip: PPO ratio clip.
        value_clip: clip value updates to +-clip around the old values (MAPPO: on).
        vf_coef: value-loss weight (MAPPO: 1).
        ent_coef: entropy bonus (MAPPO: 0.01).
        max_grad_norm: gradient-norm clip (MAPPO: 10).
        hidden: width of the MLP and the recurrent layer (MAPPO: 64).
        recurrent: "gru" (MAPPO's recurrent policy) or "none" (an MLP policy).
        critic_input: "obs" (IPPO: each agent's value from its observation) or "state"
            (MAPPO: from the global state plus the agent's id).
        agent_id: add a one-hot agent id to the actor's input (teams only).
        normalize_advantages: standardise advantages over the batch.
        value_norm: the critic predicts returns normalised by running statistics (MAPPO's
            ValueNorm, on in its SMAC runs; Yu et al. 2022 find it matters there).
        checkpoint_every: iterations between checkpoints (the last one is always saved).
    """

    env_steps: int = 200_000
    n_steps: int = 128
    num_epochs: int = 5
    num_minibatches: int = 1
    lr: float = 5e-4
    adam_eps: float = 1e-5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    value_clip: bool = True
    vf_coef: float = 1.0
    ent_coef: float = 0.01
    max_grad_norm: float = 10.0
    hidden: int = 64
    recurrent: Literal["gru", "none"] = "gru"
    critic_input: Literal["obs", "state"] = "obs"
    agent_id: bool = True
    normalize_advantages: bool = True
    value_norm: bool = True
    checkpoint_every: int = 10

    def __post_init__(self) -> None:
        for name in ("env_steps", "n_steps", "num_epochs", "num_minibatches", "hidden", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"gamma must be in (0, 1] and gae_lambda in [0, 1], got {self.gamma}, {self.gae_lambda}")
        if self.lr <= 0 or self.clip <= 0:
            raise ValueError(f"lr and clip must be > 0, got {self.lr}, {self.clip}")
        if self.recurrent not in ("gru", "none"):
            raise ValueError(f"recurrent must be 'gru' or 'none', got {self.recurrent!r}")
        if self.critic_input not in ("obs", "state"):
            raise ValueError(f"critic_input must be 'obs' or 'state', got {self.critic_input!r}")
