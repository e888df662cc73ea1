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


def td_loss(
    q_taken: torch.Tensor,
    target_next: torch.Tensor,
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    filled: torch.Tensor,
    gamma: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PyMARL's QLearner loss: the mean squared TD error of Q_tot over filled steps.

    Args:
        q_taken: (E, T) Q_tot of the actions taken (carries the gradient).
        target_next: (E, T) Q_tot' of the next step (treated as a constant).
        rewards, terminated: see :func:`td_targets`.
        filled: (E, T) bool, step t holds data (episode batches are padded).
        gamma: discount.

    Returns:
        (loss, named terms: td_error_abs, q_taken_mean, target_mean), means over filled
        steps; q_taken_mean and target_mean are of Q_tot (PyMARL divides them by N too).
    """
    weight = filled.to(q_taken.dtype)
    n = weight.sum().clamp_min(1.0)
    y = td_targets(rewards, terminated, target_next.detach(), gamma)
    err = (q_taken - y) * weight
    loss = (err**2).sum() / n
    with torch.no_grad():
        terms = {
            "td_error_abs": err.abs().sum() / n,
            "q_taken_mean": (q_taken * weight).sum() / n,
            "target_mean": (y * weight).sum() / n,
        }
    return loss, terms
