"""The TD loss of value decomposition as pure functions of tensors (no networks, no state)."""

from __future__ import annotations

import torch


def td_targets(
    rewards: torch.Tensor, terminated: torch.Tensor, target_next: torch.Tensor, gamma: float
) -> torch.Tensor:
    """y_t = r_t + gamma (1 - terminated_t) Q_tot'(s_{t+1}, a*_{t+1}).

    Args:
        rewards: (E, T) team rewards.
        terminated: (E, T) bool, the episode ended in a terminal state at t. Truncated steps
            (time limits) are not terminal: they bootstrap from the observation after them.
        target_next: (E, T) the target mixer's Q_tot of the step after t.
        gamma: discount.
    """
    return rewards + gamma * (~terminated).to(rewards.dtype) * target_next


def lambda_returns(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    target_next: torch.Tensor,
    filled: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """TD(lambda) targets over each episode (pymarl2's build_td_lambda_targets):

        G_t = r_t + gamma (1 - terminated_t) [(1 - lam) Q_tot'(s_{t+1}) + lam G_{t+1}],

    with G at an episode's last filled step bootstrapping fully from Q_tot' of the state
    after it (zero when it terminated). ``lam = 0`` gives :func:`td_targets`. Shapes as
    there; ``filled`` (E, T) bool marks data (padding after an episode's end).
    """
    E, T = rewards.shape
    alive = (~terminated).to(rewards.dtype)
    last = filled & ~torch.cat([filled[:, 1:], torch.zeros_like(filled[:, :1])], 1)
    out = torch.zeros_like(rewards)
    g_next = torch.zeros(E, dtype=rewards.dtype)
    for t in range(T - 1, -1, -1):
        boot = torch.where(last[:, t], target_next[:, t], (1 - lam) * target_next[:, t] + lam * g_next)
        g = rewards[:, t] + gamma * alive[:, t] * boot
        out[:, t] = torch.where(filled[:, t], g, 0.0)
        g_next = out[:, t]
    return out


def td_loss(
    q_taken: torch.Tensor, y: torch.Tensor, filled: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PyMARL's QLearner loss: the mean squared TD error of Q_tot over filled steps.

    Args:
        q_taken: (E, T) Q_tot of the actions taken (carries the gradient).
        y: (E, T) targets (:func:`td_targets` or :func:`lambda_returns`; treated as constants).
        filled: (E, T) bool, step t holds data (episode batches are padded).

    Returns:
        (loss, named terms: td_error_abs, q_taken_mean, target_mean), means over filled
        steps; q_taken_mean and target_mean are of Q_tot (PyMARL divides them by N too).
    """
    weight = filled.to(q_taken.dtype)
    n = weight.sum().clamp_min(1.0)
    y = y.detach()
    err = (q_taken - y) * weight
    loss = (err**2).sum() / n
    with torch.no_grad():
        terms = {
            "td_error_abs": err.abs().sum() / n,
            "q_taken_mean": (q_taken * weight).sum() / n,
            "target_mean": (y * weight).sum() / n,
        }
    return loss, terms
