"""Mixers: the agents' chosen Qs (..., N) and the global state (..., S) -> Q_tot (...).

Both are monotone in every agent's Q, so each agent's greedy action is the team's greedy
joint action (decentralised execution of a centralised value).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class VDNMixer(nn.Module):
    """Q_tot = sum_i Q_i (Sunehag et al. 2018); no parameters, the state is ignored."""

    def forward(self, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        return qs.sum(-1)


class QMixer(nn.Module):
    """QMIX's mixing network (Rashid et al. 2018, sec. 4.1; PyMARL's QMixer with
    ``hypernet_layers: 2``).

    Q_tot = elu(q W1(s) + b1(s)) w2(s) + V(s), where hypernetworks of the state produce the
    weights; |.| on W1 and w2 makes Q_tot monotone in each Q_i. The weight hypernetworks
    are two-layer (state -> hypernet_embed -> weights), b1 is linear and V(s) is
    state -> embed_dim -> 1 (the state-dependent bias of the output layer).
    """

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_embed: int = 64) -> None:
        super().__init__()
        self.n_agents, self.state_dim, self.embed_dim = n_agents, state_dim, embed_dim
        self.hyper_w_1 = nn.Sequential(
            nn.Linear(state_dim, hypernet_embed), nn.ReLU(), nn.Linear(hypernet_embed, embed_dim * n_agents)
        )
        self.hyper_w_final = nn.Sequential(
            nn.Linear(state_dim, hypernet_embed), nn.ReLU(), nn.Linear(hypernet_embed, embed_dim)
        )
        self.hyper_b_1 = nn.Linear(state_dim, embed_dim)
        self.V = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        lead = qs.shape[:-1]
        q = qs.reshape(-1, 1, self.n_agents)
        s = states.reshape(-1, self.state_dim)
        w1 = self.hyper_w_1(s).abs().view(-1, self.n_agents, self.embed_dim)
        b1 = self.hyper_b_1(s).view(-1, 1, self.embed_dim)
        hidden = F.elu(torch.bmm(q, w1) + b1)
        w_final = self.hyper_w_final(s).abs().view(-1, self.embed_dim, 1)
        v = self.V(s).view(-1, 1, 1)
        return (torch.bmm(hidden, w_final) + v).reshape(lead)


def make_mixer(name: str, n_agents: int, state_dim: int, embed_dim: int, hypernet_embed: int) -> nn.Module:
    """The mixer called ``name`` ("vdn" or "qmix")."""
    if name == "vdn":
        return VDNMixer()
    if name == "qmix":
        return QMixer(n_agents, state_dim, embed_dim, hypernet_embed)
    raise ValueError(f"mixer must be 'vdn' or 'qmix', got {name!r}")
