"""TRAMA's losses as pure functions of tensors: the VQ-VAE's four terms with the class-
and time-indexed coverage targets, and the class predictor's cross-entropy."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def coverage_codes(
    classes: torch.Tensor, n_steps: int, horizon: int, codes: int, n_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The codes a trajectory of each class should cover at each step (TRAMA eq. 4; the
    release's timestep-dependent coverage).

    Class k owns the block of n = codes / n_classes codes starting at n k; with dn = n / T
    step t targets codes n k + [floor(dn t), floor(dn (t + 1))) when dn >= 1, else the single
    code n k + floor(dn t), so the block is swept in time order over T steps.

    Args:
        classes: (E,) class of each trajectory, or (E, n_steps) a class per step.
        n_steps: steps to cover (the batch's T).
        horizon: T of the schedule (the episode limit or the batch's longest episode).
        codes, n_classes: codebook size and classes.

    Returns:
        (index (E, n_steps, m) long, valid (E, n_steps, m) bool): up to m target codes per
        step; steps beyond ``horizon`` keep the block's last code.
    """
    n = codes // n_classes
    dn = n / horizon
    t = torch.arange(n_steps, dtype=torch.float64)
    lo = torch.floor(dn * t).long().clamp(max=n - 1)
    hi = torch.floor(dn * (t + 1)).long().clamp(max=n)
    hi = torch.maximum(hi, lo + 1)  # dn < 1: the single code floor(dn t)
    m = max(1, math.ceil(dn) + 1)
    offsets = lo[:, None] + torch.arange(m)[None]  # (T, m)
    valid = offsets < hi[:, None]
    cls = classes.long()
    cls = cls[:, None].expand(-1, n_steps) if cls.ndim == 1 else cls
    index = cls[..., None] * n + offsets.clamp(max=n - 1)[None]
    return index, valid[None].expand_as(index)


def vq_losses(
    states: torch.Tensor,
    z_e: torch.Tensor,
    e: torch.Tensor,
    recon: torch.Tensor,
    codebook: torch.Tensor,
    cover_index: torch.Tensor,
    cover_valid: torch.Tensor,
    weight: torch.Tensor,
    coefs: tuple[float, float, float],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """TRAMA's VQ-VAE loss: recon + vq_coef ||e - sg(z_e)||^2 + commit_coef ||sg(e) - z_e||^2
    + coverage_coef mean_j ||sg(z_e) - e_j||^2 over the step's coverage codes j.

    Args:
        states: (E, T, S) global states; z_e, e: (E, T, L) encoder outputs and their nearest
            codes; recon: (E, T, S) reconstruction.
        codebook: (codes, L) the codebook (coverage moves it only).
        cover_index, cover_valid: :func:`coverage_codes`' output.
        weight: (E, T) 1 on filled steps (padding contributes nothing; the release keeps
            padded zero states in every term).
        coefs: (vq_coef, commit_coef, coverage_coef).

    Returns:
        (loss, terms recon, vq, commit, coverage), each a mean over filled steps.
    """
    w = weight.to(states.dtype)
    n = w.sum().clamp_min(1.0)

    def mean(x: torch.Tensor) -> torch.Tensor:
        return (x * w).sum() / n

    recon_l = mean(((recon - states) ** 2).mean(-1))
    vq_l = mean(((e - z_e.detach()) ** 2).sum(-1))
    commit_l = mean(((e.detach() - z_e) ** 2).sum(-1))
    targets = codebook[cover_index]  # (E, T, m, L)
    d = ((z_e.detach()[..., None, :] - targets) ** 2).sum(-1)  # (E, T, m)
    valid = cover_valid.to(d.dtype)
    cover_l = mean((d * valid).sum(-1) / valid.sum(-1).clamp_min(1.0))
    vq_coef, commit_coef, coverage_coef = coefs
    loss = recon_l + vq_coef * vq_l + commit_coef * commit_l + coverage_coef * cover_l
    return loss, {"vq_recon": recon_l, "vq_vq": vq_l, "vq_commit": commit_l, "vq_coverage": cover_l}


def predictor_loss(
    logits: torch.Tensor, labels: torch.Tensor, filled: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy of every agent's class logits against its trajectory's class.

    Args:
        logits: (E, T, N, k) the predictor's logits at each filled step.
        labels: (E,) class of each trajectory, -1 = not labelled yet (left out).
        filled: (E, T) bool.

    Returns:
        (mean CE over filled steps x agents of labelled trajectories, terms predictor_ce
        and predictor_acc); zero loss when nothing is labelled.
    """
    E, T, N = logits.shape[:3]
    use = filled & (labels >= 0)[:, None]
    if not use.any():
        zero = logits.sum() * 0.0
        return zero, {}
    target = labels.clamp_min(0)[:, None, None].expand(E, T, N)
    sel = use[..., None].expand(E, T, N)
    ce = F.cross_entropy(logits[sel], target[sel])
    with torch.no_grad():
        acc = (logits[sel].argmax(-1) == target[sel]).float().mean()
    return ce, {"predictor_ce": ce.detach(), "predictor_acc": acc}
