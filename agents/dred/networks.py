"""DRED's actor-critic (dcd's MultigridNetwork shape, ../shared/specs/cave-dred.md): a shared
base - a 3x3 conv with 16 filters on the 5x5x3 MiniGrid view (144 features) and the
direction one-hot through a linear layer to 5 features - into an LSTM of 256, then an actor
head 256 -> 32 -> actions and a critic head 256 -> 32 -> 1. The ``mlp`` encoder replaces
the conv for vector observations (the shifted-dynamics envs)."""

from __future__ import annotations

import torch
from torch import nn

VIEW = 5  # MiniGrid's 5x5 egocentric view (envs/cave/env.py: 75 view codes + 4 direction one-hot)
VIEW_DIM = VIEW * VIEW * 3


def _init(layer: nn.Linear | nn.Conv2d, gain: float) -> nn.Linear | nn.Conv2d:
    nn.init.orthogonal_(layer.weight, gain)  # dcd: orthogonal init, zero bias
    assert layer.bias is not None
    nn.init.zeros_(layer.bias)
    return layer


class ConvLSTMActorCritic(nn.Module):
    """``step(x, h, c)`` -> (logits, value, h', c') for M observations."""

    def __init__(self, obs_dim: int, n_actions: int, encoder: str, hidden: int, head_hidden: int) -> None:
        super().__init__()
        self.encoder = encoder
        if encoder == "conv5x5":
            if obs_dim != VIEW_DIM + 4:
                raise ValueError(
                    f"encoder 'conv5x5' reads a 5x5x3 view plus a direction one-hot ({VIEW_DIM + 4} values); "
                    f"this env observes {obs_dim} (use encoder: mlp for vector observations)"
                )
            self.conv = _init(nn.Conv2d(3, 16, 3), 2**0.5)
            self.direction = _init(nn.Linear(4, 5), 2**0.5)
            n_feat = 16 * (VIEW - 2) ** 2 + 5
        else:
            self.fc = _init(nn.Linear(obs_dim, 64), 2**0.5)
            n_feat = 64
        # LSTMCell stepped in a loop: torch's packed nn.LSTM is fast forward but its CPU
        # backward was 20x slower than the loop here (measured on this 2-core machine)
        self.lstm = nn.LSTMCell(n_feat, hidden)
        self.actor = nn.Sequential(
            _init(nn.Linear(hidden, head_hidden), 2**0.5), nn.ReLU(), _init(nn.Linear(head_hidden, n_actions), 0.01)
        )
        self.critic = nn.Sequential(
            _init(nn.Linear(hidden, head_hidden), 2**0.5), nn.ReLU(), _init(nn.Linear(head_hidden, 1), 1.0)
        )
        self.hidden = hidden

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """(M, obs_dim) -> (M, features); no recurrence, so a whole segment goes at once."""
        if self.encoder == "conv5x5":
            img = obs[:, :VIEW_DIM].reshape(-1, VIEW, VIEW, 3).permute(0, 3, 1, 2)
            a = torch.relu(self.conv(img)).flatten(1)
            d = torch.relu(self.direction(obs[:, VIEW_DIM:]))
            return torch.cat([a, d], -1)
        return torch.relu(self.fc(obs))

    def core(self, feat: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of M sequences: feat (M, F), h and c (M, H) -> (h', c')."""
        return self.lstm(feat, (h, c))

    def heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.actor(h), self.critic(h)[..., 0]
