"""The agent network every agent shares (PyMARL's RNNAgent); nn.Modules only."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class RNNAgent(nn.Module):
    """x -> linear -> ReLU -> GRU cell -> linear to one Q per action; one step at a time.

    ``forward(x, h)`` takes x (M, n_in) and h (M, hidden) and returns (Q (M, n_actions), h').
    PyTorch's default initialisation, as in PyMARL.
    """

    def __init__(self, n_in: int, hidden: int, n_actions: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.rnn = nn.GRUCell(hidden, hidden)
        self.fc2 = nn.Linear(hidden, n_actions)
        self.hidden_size = hidden

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.rnn(F.relu(self.fc1(x)), h)
        return self.fc2(h), h
