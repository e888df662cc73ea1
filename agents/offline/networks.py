"""Networks shared by the TD3-family offline agents (PRDC, TD3+BC, BC) and the online TD3
behaviour learner: a deterministic tanh actor and a twin Q critic, as in TD3+BC's
reference (256-256 ReLU MLPs, ../shared/specs/offline-prdc.md)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """s -> centre + half_range * tanh(MLP(s)): TD3's ``max_action * tanh`` for symmetric
    bounds, and the general Box otherwise."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], low: torch.Tensor, high: torch.Tensor):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, act_dim])
        self.centre: torch.Tensor
        self.half_range: torch.Tensor
        self.register_buffer("centre", (high + low) / 2)
        self.register_buffer("half_range", (high - low) / 2)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.centre + self.half_range * torch.tanh(self.net(obs))


class TwinCritic(nn.Module):
    """(s, a) -> (Q1, Q2), two independent MLPs."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.q1 = mlp([obs_dim + act_dim, *hidden, 1])
        self.q2 = mlp([obs_dim + act_dim, *hidden, 1])

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, act], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def first(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.q1(torch.cat([obs, act], -1)).squeeze(-1)
