"""Actor and critic: MLP -> GRU (or MLP only) -> head; nn.Modules only."""

from __future__ import annotations

import torch
from torch import nn


def _init(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)  # orthogonal init: cleanrl/MAPPO
    nn.init.zeros_(layer.bias)
    return layer


class RecurrentHead(nn.Module):
    """x -> ReLU MLP -> GRU cell (optional) -> linear head; one step at a time.

    ``forward(x, h)`` takes x (M, in) and h (M, hidden) and returns (out (M, n_out), h').
    Without recurrence h passes through unchanged (and is empty).
    """

    def __init__(self, n_in: int, hidden: int, n_out: int, recurrent: bool, out_gain: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _init(nn.Linear(n_in, hidden), 2**0.5), nn.ReLU(), _init(nn.Linear(hidden, hidden), 2**0.5), nn.ReLU()
        )
        self.rnn = nn.GRUCell(hidden, hidden) if recurrent else None
        self.head = _init(nn.Linear(hidden, n_out), out_gain)
        self.hidden_size = hidden if recurrent else 0

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.body(x)
        if self.rnn is not None:
            h = self.rnn(z, h)
            z = h
        return self.head(z), h


class ActorCritic(nn.Module):
    """The shared policy (logits or Gaussian means) and the value function."""

    def __init__(
        self, actor_in: int, critic_in: int, n_out: int, hidden: int, recurrent: bool, continuous: bool
    ) -> None:
        super().__init__()
        self.actor = RecurrentHead(actor_in, hidden, n_out, recurrent, 0.01)
        self.critic = RecurrentHead(critic_in, hidden, 1, recurrent, 1.0)
        self.log_std = nn.Parameter(torch.zeros(n_out)) if continuous else None
