"""Configuration of R2PVI and its baselines (paper defaults; reference-code quirks as options)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

ALGOS = ("pevi", "r2pvi_tv", "r2pvi_kl", "r2pvi_chi2", "drpvi")
Algo = Literal["pevi", "r2pvi_tv", "r2pvi_kl", "r2pvi_chi2", "drpvi"]


@dataclass(frozen=True)
class MethodConfig:
    """One method of the comparison.

    Attributes:
        algo: pevi | r2pvi_tv | r2pvi_kl | r2pvi_chi2 | drpvi.
        lam: regularisation strength lambda of R2PVI (required for r2pvi_*; smaller is more robust).
        rho: TV radius of DRPVI's uncertainty set (required for drpvi).
        label: name in results, plots and TensorBoard; defaults to algo plus its parameter.
    """

    algo: Algo
    lam: float | None = None
    rho: float | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {list(ALGOS)}, got {self.algo!r}")
        if self.algo.startswith("r2pvi"):
            if self.lam is None or self.lam <= 0:
                raise ValueError(f"{self.algo} needs lam > 0, got {self.lam!r}")
            if self.rho is not None:
                raise ValueError(f"{self.algo} takes lam, not rho")
        elif self.algo == "drpvi":
            if self.rho is None or self.rho < 0:
                raise ValueError(f"drpvi needs rho >= 0, got {self.rho!r}")
            if self.lam is not None:
                raise ValueError("drpvi takes rho, not lam")
        elif self.lam is not None or self.rho is not None:
            raise ValueError("pevi takes neither lam nor rho")
        if not self.label:
            suffix = (
                f"_lam{self.lam:g}" if self.lam is not None else (f"_rho{self.rho:g}" if self.rho is not None else "")
            )
            object.__setattr__(self, "label", self.algo + suffix)


def _default_methods() -> tuple[MethodConfig, ...]:
    # Paper figure 1(a): PEVI vs R2PVI-TV/KL/chi2 at lambda = 0.1.
    return (
        MethodConfig("pevi"),
        MethodConfig("r2pvi_tv", lam=0.1),
        MethodConfig("r2pvi_kl", lam=0.1),
        MethodConfig("r2pvi_chi2", lam=0.1),
    )


_BEHAVIOUR_RE = re.compile(r"^(random|constant:-?\d+)$")


@dataclass(frozen=True)
class DataConfig:
    """Offline data: collected through Ray rollouts of a behaviour policy, or loaded.

    Attributes:
        behaviour: "random" (uniform over actions) or "constant:<action>" (e.g. the
            option's "always hold" = constant:0).
        episodes: trajectories per replication (K in the paper).
        dataset: path of a dataset written by ``shiftrl collect``; replaces collection
            (then ``replications`` must be 1).
        shift: shift the data is collected under; empty = the env's nominal kernel.
        chunk: episodes per rollout task (fixed, so results do not depend on worker count).
    """

    behaviour: str = "random"
    episodes: int = 100
    dataset: str | None = None
    shift: dict[str, float] = field(default_factory=dict)
    chunk: int = 50

    def __post_init__(self) -> None:
        if not _BEHAVIOUR_RE.match(self.behaviour):
            raise ValueError(
                f"data.behaviour: {self.behaviour!r} is not a behaviour policy; expected 'random' or "
                "'constant:<action>'"
            )
        if self.episodes < 1:
            raise ValueError(f"data.episodes: must be >= 1, got {self.episodes}")
        if self.chunk < 1:
            raise ValueError(f"data.chunk: must be >= 1, got {self.chunk}")


@dataclass(frozen=True)
class R2PVIConfig:
    """Fitting options shared by every method of a comparison.

    Attributes:
        replications: independent datasets + fits (paper figure 1: 20).
        data: the offline data of each replication.
        methods: the methods to fit on each dataset.
        beta: pessimism coefficient of the penalty Gamma_h (paper experiments: 1 for the
            linear MDP, 0.1 for the American option).
        ridge: ridge gamma in Lambda_h = sum phi phi^T + gamma I (0.1 linear MDP, 1 option).
        penalty: "paper" Gamma = beta sum_i phi_i sqrt((Lambda^-1)_ii) (Algorithm 1) or
            "reference" beta sqrt(sum_i phi_i^2 (Lambda^-1)_ii) as coded in the reference
            repository. PEVI always uses beta ||phi||_{Lambda^-1}.
        clip_q_at_zero: clip Q_h to [0, cap] (paper) or only cap it (reference code).
        q_cap_scale: Q_h <= q_cap_scale * (H - h); 1 is the paper's [0, H - h + 1] for
            rewards in [0, 1] (h counted from 0 here).
        chi2_mode: "sup" (the dual needs the supremum, paper Prop. 4.3) or "reference_min"
            (the reference code minimises; solved exactly here, not by Nelder-Mead).
        drpvi_min_v: keep DRPVI's min_s [V]_alpha term (exact dual) or drop it (reference).
    """

    replications: int = 1
    data: DataConfig = field(default_factory=DataConfig)
    methods: tuple[MethodConfig, ...] = field(default_factory=_default_methods)
    beta: float = 1.0
    ridge: float = 0.1
    penalty: Literal["paper", "reference"] = "paper"
    clip_q_at_zero: bool = True
    q_cap_scale: float = 1.0
    chi2_mode: Literal["sup", "reference_min"] = "sup"
    drpvi_min_v: bool = True

    def __post_init__(self) -> None:
        if self.replications < 1:
            raise ValueError(f"replications: must be >= 1, got {self.replications}")
        if self.data.dataset is not None and self.replications != 1:
            raise ValueError("data.dataset: a fixed dataset allows replications: 1 only")
        if not self.methods:
            raise ValueError("methods must list at least one method")
        labels = [m.label for m in self.methods]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"method labels must be unique, repeated: {dup}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.ridge <= 0:
            raise ValueError(f"ridge must be > 0 (Lambda must be invertible), got {self.ridge}")
        if self.penalty not in ("paper", "reference"):
            raise ValueError(f"penalty must be 'paper' or 'reference', got {self.penalty!r}")
        if self.chi2_mode not in ("sup", "reference_min"):
            raise ValueError(f"chi2_mode must be 'sup' or 'reference_min', got {self.chi2_mode!r}")
        if self.q_cap_scale <= 0:
            raise ValueError(f"q_cap_scale must be > 0, got {self.q_cap_scale}")
