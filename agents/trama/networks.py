"""TRAMA's networks (nn.Modules only): the class-aware agent (Q network, class predictor and
class representation g), the state VQ-VAE and the label classifier."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from agents.value_decomp.networks import RNNAgent


class TRAMAAgent(nn.Module):
    """Every agent's shared networks (TRAMA sec. 4.3; the release's lagma_gc/gp agents).

    - ``predictor``: the agent-wise trajectory-class predictor, fc -> GRU -> k logits, on
      the agent's own input (obs, last action, agent id);
    - ``g``: the class representation, one-hot(class) -> 32 -> 32 (ReLU between);
    - ``q``: PyMARL's RNN agent on the input concatenated with g.

    The recurrent state of one agent is the Q network's GRU state followed by the
    predictor's (``hidden_size`` = both).
    """

    def __init__(self, n_in: int, hidden: int, n_actions: int, n_classes: int, embed: int, predictor_hidden: int):
        super().__init__()
        self.n_classes, self.q_hidden = n_classes, hidden
        self.predictor = RNNAgent(n_in, predictor_hidden, n_classes)
        self.g = nn.Sequential(nn.Linear(n_classes, embed), nn.ReLU(), nn.Linear(embed, embed))
        self.q = RNNAgent(n_in + embed, hidden, n_actions)
        self.hidden_size = hidden + predictor_hidden

    def class_input(self, x: torch.Tensor, classes: torch.Tensor, detach: bool) -> torch.Tensor:
        """x (..., n_in) with g(one-hot(classes)) appended; ``detach`` stops g's gradient
        (the release detaches the whole concatenation)."""
        g = self.g(F.one_hot(classes, self.n_classes).to(x.dtype))
        return torch.cat([x, g.detach() if detach else g], -1)


class StateVQVAE(nn.Module):
    """VQ-VAE over one global state (TRAMA sec. 4.1; the release's vqvae): encoder state ->
    64 -> 64 -> latent (ReLU), a codebook of ``codes`` vectors, decoder latent -> 64 -> 64
    -> state. ``forward`` returns (z_e, code index, e = codebook[index], reconstruction of
    the straight-through z_q = z_e + sg(e - z_e))."""

    def __init__(self, state_dim: int, hidden: int, latent: int, codes: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(state_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, latent)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, state_dim)
        )
        # the usual VQ-VAE initialisation (uniform in +-1/codes); the release's is not published
        self.codebook = nn.Parameter(torch.empty(codes, latent).uniform_(-1.0 / codes, 1.0 / codes))

    def quantise(self, z_e: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared L2) of each latent (..., latent)."""
        flat = z_e.reshape(-1, z_e.shape[-1])
        d = (flat**2).sum(-1, keepdim=True) - 2 * flat @ self.codebook.T + (self.codebook**2).sum(-1)
        return d.argmin(-1).reshape(z_e.shape[:-1])

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        z_e = self.encoder(states)
        idx = self.quantise(z_e.detach())
        e = self.codebook[idx]
        z_q = z_e + (e - z_e).detach()
        return z_e, idx, e, self.decoder(z_q)


class LabelClassifier(nn.Module):
    """Trajectory embedding -> 64 -> 32 -> class logits (the release's classifier)."""

    def __init__(self, n_in: int, n_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
