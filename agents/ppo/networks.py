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


class ValueNorm(nn.Module):
    """Running mean and std of value targets (MAPPO's ValueNorm: debiased exponential moving
    averages, beta = 0.99999). The critic predicts normalised values; buffers travel with
    the weights, so acting copies denormalise exactly as the learner does."""

    mean: torch.Tensor
    mean_sq: torch.Tensor
    debias: torch.Tensor

    def __init__(self, beta: float = 0.99999, eps: float = 1e-5) -> None:
        super().__init__()
        self.beta, self.eps = beta, eps
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("mean_sq", torch.zeros(()))
        self.register_buffer("debias", torch.zeros(()))

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.debias.clamp_min(self.eps)
        mean, mean_sq = self.mean / d, self.mean_sq / d
        return mean, (mean_sq - mean**2).clamp_min(1e-2).sqrt()

    @torch.no_grad()
    def update(self, x: torch.Tensor, weight: torch.Tensor) -> None:
        n = weight.sum().clamp_min(1.0)
        m, sq = (x * weight).sum() / n, (x**2 * weight).sum() / n
        self.mean.mul_(self.beta).add_(m * (1 - self.beta))
        self.mean_sq.mul_(self.beta).add_(sq * (1 - self.beta))
        self.debias.mul_(self.beta).add_(1 - self.beta)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.stats()
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.stats()
        return x * std + mean


class ActorCritic(nn.Module):
    """The shared policy (logits or Gaussian means) and the value function."""

    def __init__(
        self,
        actor_in: int,
        critic_in: int,
        n_out: int,
        hidden: int,
        recurrent: bool,
        continuous: bool,
        value_norm: bool = False,
    ) -> None:
        super().__init__()
        self.actor = RecurrentHead(actor_in, hidden, n_out, recurrent, 0.01)
        self.critic = RecurrentHead(critic_in, hidden, 1, recurrent, 1.0)
        self.log_std = nn.Parameter(torch.zeros(n_out)) if continuous else None
        self.value_norm = ValueNorm() if value_norm else None

    def value(self, raw: torch.Tensor) -> torch.Tensor:
        """The critic's output in return units."""
        return raw if self.value_norm is None else self.value_norm.denormalize(raw)
