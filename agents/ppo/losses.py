"""PPO's pieces as pure functions of tensors (no optimiser, no module state)."""

from __future__ import annotations

import torch


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    done: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over segments of self-resetting envs.

    Args:
        rewards: (B, T, N) per-agent rewards (the team reward broadcast).
        values: (B, T, N) V(s_t).
        next_values: (B, T, N) V(s_{t+1}) of the *same* episode: the next step's value, the
            value of the final observation where the episode was truncated (bootstrap on
            time limits), anything where it terminated (masked here).
        terminated: (B, T) the episode ended in a terminal state at t (no bootstrap).
        done: (B, T) the episode ended at t (terminated or truncated): no advantage flows
            back across it.

    Returns:
        (advantages, returns), each (B, T, N); returns = advantages + values.
    """
    notterm = (~terminated).float()[..., None]
    cont = (~done).float()[..., None]
    delta = rewards + gamma * next_values * notterm - values
    adv = torch.zeros_like(values)
    last = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        last = delta[:, t] + gamma * lam * cont[:, t] * last
        adv[:, t] = last
    return adv, adv + values


def ppo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    entropy: torch.Tensor,
    values: torch.Tensor,
    old_values: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    weight: torch.Tensor,
    clip: float,
    value_clip: bool,
    vf_coef: float,
    ent_coef: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped surrogate (Schulman et al. 2017, eq. 7), the (clipped) value loss and the
    entropy bonus, averaged over entries with ``weight`` 1 (living agents, filled steps).

    Returns:
        (total loss, named terms: policy, value, entropy, approx_kl, clip_fraction).
    """
    n = weight.sum().clamp_min(1.0)

    def mean(x: torch.Tensor) -> torch.Tensor:
        return (x * weight).sum() / n

    log_ratio = logp - old_logp
    ratio = log_ratio.exp()
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    policy = -mean(surrogate)
    v_err = (values - returns) ** 2
    if value_clip:
        clipped = old_values + (values - old_values).clamp(-clip, clip)
        v_err = torch.max(v_err, (clipped - returns) ** 2)
    value = 0.5 * mean(v_err)
    ent = mean(entropy)
    total = policy + vf_coef * value - ent_coef * ent
    with torch.no_grad():
        approx_kl = mean((ratio - 1) - log_ratio)  # Schulman's low-variance KL estimator
        clip_fraction = mean(((ratio - 1).abs() > clip).float())
    return total, {
        "policy": policy.detach(),
        "value": value.detach(),
        "entropy": ent.detach(),
        "approx_kl": approx_kl,
        "clip_fraction": clip_fraction,
    }
