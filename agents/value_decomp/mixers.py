"""Mixers: the agents' chosen Qs (..., N) and the global state (..., S) -> Q_tot (...).

Every mixer is called as ``mixer(qs, states, actions, max_qs)``: ``actions`` (..., N, A) is
the one-hot joint action whose Qs are ``qs`` and ``max_qs`` (..., N) each agent's greedy Q;
VDN and QMIX ignore both, QPLEX's advantage weights need them. Each keeps the IGM property
(each agent's greedy action is the team's greedy joint action): VDN and QMIX by being
monotone in every Q_i, QPLEX by its duplex dueling form.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from agents.protocols import EnvSpaces


class VDNMixer(nn.Module):
    """Q_tot = sum_i Q_i (Sunehag et al. 2018); no parameters, the state is ignored."""

    def forward(
        self,
        qs: torch.Tensor,
        states: torch.Tensor,
        actions: torch.Tensor | None = None,
        max_qs: torch.Tensor | None = None,
    ) -> torch.Tensor:
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

    def forward(
        self,
        qs: torch.Tensor,
        states: torch.Tensor,
        actions: torch.Tensor | None = None,
        max_qs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        lead = qs.shape[:-1]
        q = qs.reshape(-1, 1, self.n_agents)
        s = states.reshape(-1, self.state_dim)
        w1 = self.hyper_w_1(s).abs().view(-1, self.n_agents, self.embed_dim)
        b1 = self.hyper_b_1(s).view(-1, 1, self.embed_dim)
        hidden = F.elu(torch.bmm(q, w1) + b1)
        w_final = self.hyper_w_final(s).abs().view(-1, self.embed_dim, 1)
        v = self.V(s).view(-1, 1, 1)
        return (torch.bmm(hidden, w_final) + v).reshape(lead)


class QPLEXMixer(nn.Module):
    """QPLEX's duplex dueling mixer with Qatten weights (Wang et al. 2021, eqs. 6-11;
    QPLEX's ``dmaq_qatten`` as TRAMA released it).

    Each agent's Q is first transformed, Q_i' = w_i(s) Q_i + b(s) / N, with w_i(s) > 0 the
    Qatten attention of the state over the agents' state features (``heads`` heads,
    summed) and b(s) the state bias V(s). With V_i = w_i max_a Q_i + b / N and the
    advantage A_i = Q_i' - V_i = w_i (Q_i - max Q_i) <= 0,

        Q_tot(s, a) = sum_i V_i + sum_i lambda_i(s, a) A_i,      lambda_i > 0,

    computed as sum_i Q_i' + sum_i (lambda_i - 1) A_i (the code's ``is_minus_one``). The
    weights lambda_i(s, a) = sum_k |key_k(s)| sigmoid(agent_k(s)) sigmoid(action_k(s, a))
    (``kernels`` kernels). Greedy Q_i for every agent gives A = 0 and the largest Q_tot, so
    decentralised greedy play is the team's greedy joint action.

    Args:
        n_agents, state_dim, n_actions: the env's.
        unit_dim: width of each agent's block at the start of the state (Qatten's keys).
        embed_dim: Qatten's key/selector width (mixing_embed_dim: 32).
        hypernet_embed: hidden width of the selector networks (64).
        heads: Qatten heads (n_head: 4).
        kernels: lambda kernels (num_kernel: 4).
        adv_layers: layers of the lambda extractors, 1 or 2 (adv_hypernet_layers: 1).
        adv_embed: hidden width of 2-layer lambda extractors (adv_hypernet_embed: 64).
        state_bias: use V(s) (state_bias: True).
        weighted_head: scale head h by |w_h(s)| (weighted_head: False).
        stop_gradient: A_i enters the advantage term as a constant (is_stop_gradient: True),
            so that term trains lambda only.
    """

    def __init__(
        self,
        n_agents: int,
        state_dim: int,
        n_actions: int,
        unit_dim: int,
        embed_dim: int = 32,
        hypernet_embed: int = 64,
        heads: int = 4,
        kernels: int = 4,
        adv_layers: int = 1,
        adv_embed: int = 64,
        state_bias: bool = True,
        weighted_head: bool = False,
        stop_gradient: bool = True,
    ) -> None:
        super().__init__()
        if unit_dim < 1 or unit_dim * n_agents > state_dim:
            raise ValueError(f"QPLEX needs unit_dim in [1, state_dim / n_agents], got {unit_dim} (state {state_dim})")
        self.n_agents, self.state_dim, self.n_actions, self.unit_dim = n_agents, state_dim, n_actions, unit_dim
        self.embed_dim, self.heads, self.kernels = embed_dim, heads, kernels
        self.state_bias, self.weighted_head, self.stop_gradient = state_bias, weighted_head, stop_gradient
        # Qatten: per head a selector of the state and a key of each agent's state block
        self.selectors = nn.ModuleList(
            nn.Sequential(
                nn.Linear(state_dim, hypernet_embed), nn.ReLU(), nn.Linear(hypernet_embed, embed_dim, bias=False)
            )
            for _ in range(heads)
        )
        self.keys = nn.ModuleList(nn.Linear(unit_dim, embed_dim, bias=False) for _ in range(heads))
        self.head_weights = (
            nn.Sequential(nn.Linear(state_dim, hypernet_embed), nn.ReLU(), nn.Linear(hypernet_embed, heads))
            if weighted_head
            else None
        )
        self.V = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))
        sa_dim = state_dim + n_agents * n_actions

        def extractor(n_in: int, n_out: int) -> nn.Module:
            if adv_layers == 1:
                return nn.Linear(n_in, n_out)
            return nn.Sequential(nn.Linear(n_in, adv_embed), nn.ReLU(), nn.Linear(adv_embed, n_out))

        self.lambda_key = nn.ModuleList(extractor(state_dim, 1) for _ in range(kernels))
        self.lambda_agents = nn.ModuleList(extractor(state_dim, n_agents) for _ in range(kernels))
        self.lambda_action = nn.ModuleList(extractor(sa_dim, n_agents) for _ in range(kernels))

    def _attention_logits(self, s: torch.Tensor) -> torch.Tensor:
        """(heads, M, N) scaled dot products of each head's selector with each agent's key."""
        units = s[:, : self.unit_dim * self.n_agents].reshape(-1, self.n_agents, self.unit_dim)
        logits = [torch.einsum("me,mne->mn", sel(s), key(units)) for sel, key in zip(self.selectors, self.keys)]
        return torch.stack(logits) / self.embed_dim**0.5

    def attention(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(w (M, N) > 0, b (M,)): the Qatten weights and the state bias of flattened states."""
        s = states.reshape(-1, self.state_dim)
        att = torch.softmax(self._attention_logits(s), -1)  # (heads, M, N)
        if self.head_weights is not None:
            att = att * self.head_weights(s).abs().T[..., None]
        w = att.sum(0) + 1e-10
        b = self.V(s).squeeze(-1) if self.state_bias else s.new_zeros(len(s))
        return w, b

    def lambdas(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """lambda_i(s, a) (M, N) > 0 of flattened states and one-hot joint actions."""
        s = states.reshape(-1, self.state_dim)
        sa = torch.cat([s, actions.reshape(len(s), -1).to(s.dtype)], -1)
        out = s.new_zeros(len(s), self.n_agents)
        for key, agents, action in zip(self.lambda_key, self.lambda_agents, self.lambda_action):
            out = out + (key(s).abs() + 1e-10) * torch.sigmoid(agents(s)) * torch.sigmoid(action(sa))
        return out

    def attention_reg(self, states: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Sum over heads of the mean squared (unscaled) attention logit, QPLEX's regulariser
        of the attention magnitudes; ``weight`` (...,) averages over filled steps only."""
        s = states.reshape(-1, self.state_dim)
        sq = (self._attention_logits(s) * self.embed_dim**0.5) ** 2  # (heads, M, N)
        per_step = sq.mean(-1)  # (heads, M)
        if weight is None:
            return per_step.mean(-1).sum()
        w = weight.reshape(-1).to(s.dtype)
        return ((per_step * w).sum(-1) / w.sum().clamp_min(1.0)).sum()

    def forward(
        self,
        qs: torch.Tensor,
        states: torch.Tensor,
        actions: torch.Tensor | None = None,
        max_qs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if actions is None or max_qs is None:
            raise ValueError("QPLEX mixes with the joint action and each agent's greedy Q (actions, max_qs)")
        lead = qs.shape[:-1]
        q, q_max = qs.reshape(-1, self.n_agents), max_qs.reshape(-1, self.n_agents)
        w, b = self.attention(states)
        q_t = w * q + b[:, None] / self.n_agents  # Q_i'
        adv = w * (q - q_max)  # A_i = Q_i' - V_i
        if self.stop_gradient:
            adv = adv.detach()
        lam = self.lambdas(states, actions)
        return (q_t.sum(-1) + ((lam - 1.0) * adv).sum(-1)).reshape(lead)


def make_mixer(cfg: Any, spaces: EnvSpaces) -> nn.Module:
    """The mixer ``cfg.mixer`` names ("vdn", "qmix" or "qplex") for the env's spaces."""
    n, s = spaces.n_agents, spaces.state_dim
    if cfg.mixer == "vdn":
        return VDNMixer()
    if cfg.mixer == "qmix":
        return QMixer(n, s, cfg.mixing_embed_dim, cfg.hypernet_embed)
    if cfg.mixer == "qplex":
        if not spaces.state_agent_dim:
            raise ValueError(
                f"{spaces.env_id}: qplex needs a global state that starts with one feature block per agent "
                "(EnvSpaces.state_agent_dim; the SMAC-like envs declare it); this env does not declare one"
            )
        return QPLEXMixer(
            n,
            s,
            spaces.n_actions,
            spaces.state_agent_dim,
            cfg.mixing_embed_dim,
            cfg.hypernet_embed,
            heads=cfg.qplex_heads,
            kernels=cfg.qplex_kernels,
            adv_layers=cfg.qplex_adv_layers,
            adv_embed=cfg.qplex_adv_embed,
            state_bias=cfg.qplex_state_bias,
            weighted_head=cfg.qplex_weighted_head,
            stop_gradient=cfg.qplex_stop_gradient,
        )
    raise ValueError(f"mixer must be 'vdn', 'qmix' or 'qplex', got {cfg.mixer!r}")
