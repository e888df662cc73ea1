"""Options of PRDC and the baselines that share its learner (TD3+BC, BC).

Defaults are PRDC's reference settings (Ran et al. 2023, LAMDA-RL/PRDC), which are
TD3+BC's (Fujimoto & Gu 2021) plus the constraint: ../shared/specs/offline-prdc.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from agents.offline.nearest import KINDS

# PRDC's per-domain presets (reference code; the paper's appendix): (alpha, beta, reward
# scale, reward shift). AntMaze's rewards become 10000 r - 1 on the reward itself (the first
# release applied it to next_state: a bug fixed later, so never reproduced here).
PRESETS: dict[str, tuple[float, float, float, float]] = {
    "halfcheetah": (40.0, 2.0, 1.0, 0.0),
    "hopper": (2.5, 2.0, 1.0, 0.0),
    "walker2d": (2.5, 2.0, 1.0, 0.0),
    "antmaze": (7.5, 7.5, 10000.0, -1.0),
    "default": (2.5, 2.0, 1.0, 0.0),  # d3rlpy's PRDC defaults, for any other env
}


def preset_for(env_id: str) -> str:
    """The preset an env id selects under ``preset: auto`` (by name, case-insensitive)."""
    low = env_id.lower().replace("_", "")
    for name in ("halfcheetah", "hopper", "walker2d", "antmaze"):
        if name in low:
            return name
    return "default"


@dataclass(frozen=True)
class PRDCConfig:
    """TD3-family offline learner: twin critic, deterministic actor, one of three actor
    regularisers (``constraint``), state normalisation from the dataset.

    Attributes:
        dataset: Minari dataset directory (``shiftrl collect``); its env must be the
            config's ``env.id``.
        constraint: the actor's regulariser: "nearest" (PRDC: MSE to the action of the
            dataset sample nearest to [beta * s, pi(s)]), "dataset_action" (TD3+BC: MSE to
            the batch's own action) or "none_bc" (BC: the MSE to the batch's action alone,
            no critic). Fixed by the agent name (prdc, td3bc, bc); "none" is plain TD3
            (the online behaviour learner, agent td3).
        gradient_steps: training budget in gradient steps (the TensorBoard x-axis).
        batch_size: transitions per gradient step (256).
        gamma: discount (0.99).
        tau: Polyak rate of both targets, applied on actor-update steps (0.005).
        actor_lr: Adam learning rate of the actor (3e-4).
        critic_lr: Adam learning rate of the critic (3e-4).
        hidden: hidden widths of actor and critics ([256, 256]).
        policy_noise: target-policy smoothing noise std, in half action ranges (0.2).
        noise_clip: clip of that noise, in half action ranges (0.5).
        policy_freq: critic steps per actor step (2).
        preset: "auto" picks PRDC's per-domain (alpha, beta, reward transform) from the env
            id (halfcheetah 40/2, hopper and walker2d 2.5/2, antmaze 7.5/7.5 with
            r' = 10000 r - 1; others d3rlpy's 2.5/2) for the nearest-neighbour constraint,
            and TD3+BC's one alpha 2.5 on every domain for the others (Fujimoto & Gu 2021,
            section 5: "alpha = 2.5" for all D4RL tasks); or name a preset explicitly.
        alpha: lambda = alpha / mean|Q1(s, pi(s))| weights the Q term (None = preset).
        beta: weight of the normalised state in the nearest-neighbour key (None = preset).
        normalize_states: standardise states by the dataset's mean and std + 1e-3.
        action_units: the units of actions in the actor's MSE and in the nearest-neighbour
            key: "half_range" (default) measures (a - centre) / half-range, so alpha and
            beta weigh the same on any Box as on the [-1, 1] robots the papers tuned them
            on (there both are identical); "raw" is the reference codes' literal MSE on raw
            actions (PRDC's, d3rlpy's, CORL's), e.g. 4x stronger against the Q term on
            Pendulum's [-2, 2] torques.
        nn_index: nearest-neighbour search, built once: "auto" (default: cKDTree up to 15
            key dimensions, else "gemm", scikit-learn's rule), "kdtree" (scipy cKDTree),
            "gemm" (exact float32 GEMM brute force with a float64 re-check: its cost does
            not grow as the actor's keys leave the data) or "brute" (float64 brute force,
            the reference). The exact kinds return the same neighbours.
        nn_eps: 0 = exact search; > 0 approximate (each neighbour within (1 + eps) of the
            nearest distance; cKDTree, so nn_index "auto" or "kdtree").
        checkpoint_every: gradient steps between checkpoints (the last is always saved).
    """

    dataset: str = ""
    constraint: Literal["nearest", "dataset_action", "none_bc", "none"] = "nearest"
    gradient_steps: int = 100_000
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    hidden: tuple[int, ...] = (256, 256)
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_freq: int = 2
    preset: str = "auto"
    alpha: float | None = None
    beta: float | None = None
    normalize_states: bool = True
    action_units: Literal["half_range", "raw"] = "half_range"
    nn_index: Literal["auto", "kdtree", "gemm", "brute"] = "auto"
    nn_eps: float = 0.0
    checkpoint_every: int = 5000

    # A stored config written before an option existed resumes with the behaviour it ran
    # with (trainers.config.load_config(stored=True)): raw-action MSE before action_units.
    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {"action_units": "raw"}

    def __post_init__(self) -> None:
        if self.constraint not in ("nearest", "dataset_action", "none_bc", "none"):
            raise ValueError(
                f"constraint must be 'nearest', 'dataset_action', 'none_bc' or 'none', got {self.constraint!r}"
            )
        if self.preset != "auto" and self.preset not in PRESETS:
            raise ValueError(f"preset must be 'auto' or one of {sorted(PRESETS)}, got {self.preset!r}")
        if self.action_units not in ("half_range", "raw"):
            raise ValueError(f"action_units must be 'half_range' or 'raw', got {self.action_units!r}")
        if self.nn_index not in KINDS:
            raise ValueError(f"nn_index must be one of {list(KINDS)}, got {self.nn_index!r}")
        if self.nn_eps < 0 or (self.nn_eps and self.nn_index not in ("auto", "kdtree")):
            raise ValueError(
                f"nn_eps must be >= 0 and is for nn_index 'auto' or 'kdtree' only (approximate search is "
                f"cKDTree's), got nn_eps={self.nn_eps} with nn_index={self.nn_index!r}"
            )
        for name in ("gradient_steps", "batch_size", "policy_freq", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.tau <= 1 or not 0 <= self.gamma <= 1:
            raise ValueError(f"tau must be in (0, 1] and gamma in [0, 1], got tau={self.tau}, gamma={self.gamma}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty list of positive widths, got {list(self.hidden)}")

    def resolved(self, env_id: str) -> tuple[float, float, float, float]:
        """(alpha, beta, reward scale, reward shift) for ``env_id``: the preset, with
        ``alpha`` / ``beta`` overriding it when set. Under "auto", TD3+BC (and the other
        constraints) take the "default" preset: TD3+BC's alpha 2.5 on every domain, never
        PRDC's per-domain values (HalfCheetah's alpha 40 is PRDC's, not TD3+BC's)."""
        if self.preset != "auto":
            name = self.preset
        else:
            name = preset_for(env_id) if self.constraint == "nearest" else "default"
        a, b, scale, shift = PRESETS[name]
        return (a if self.alpha is None else self.alpha), (b if self.beta is None else self.beta), scale, shift


@dataclass(frozen=True)
class TD3Config(PRDCConfig):
    """Online TD3 (Fujimoto et al. 2018; the TD3 reference's defaults), the suite's
    behaviour-policy learner for offline datasets: PRDC's networks and critic update with
    the plain TD3 actor loss, trained on the rollout runtime from a replay of transitions.

    Attributes:
        replay: "transitions" (the off-policy loop's single-transition replay).
        env_steps: training budget in env steps.
        buffer_size: replay capacity in transitions (TD3: 1M).
        warmup_steps: uniformly random actions, and no updates, for this many env steps
            (TD3's start_timesteps: 25k on MuJoCo; smaller for small envs).
        updates_per_step: gradient steps per env step collected (TD3: 1).
        expl_noise: Gaussian exploration noise std, in half action ranges (TD3: 0.1).
        episodes_per_request: episodes each runner returns per request (smaller = fresher
            weights in the runners).
        checkpoint_buffer: keep the replay buffer in the checkpoint (resume, and the
            medium-replay datasets `shiftrl collect` cuts from it).
        keep_snapshots: save the learner at every evaluation
            (checkpoints/snapshot_<env steps>.pt), the medium and expert candidates.
    """

    constraint: Literal["nearest", "dataset_action", "none_bc", "none"] = "none"
    normalize_states: bool = False
    replay: Literal["transitions"] = "transitions"
    env_steps: int = 1_000_000
    buffer_size: int = 1_000_000
    warmup_steps: int = 25_000
    updates_per_step: float = 1.0
    expl_noise: float = 0.1
    episodes_per_request: int = 1
    checkpoint_every: int = 10_000
    checkpoint_buffer: bool = True
    keep_snapshots: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.constraint != "none":
            raise ValueError(f"td3: constraint must be 'none' (plain TD3), got {self.constraint!r}")
        if self.normalize_states:
            raise ValueError("td3: normalize_states needs a fixed dataset; online TD3 learns on raw states")
        for name in ("env_steps", "buffer_size", "episodes_per_request"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_steps < 0 or self.updates_per_step <= 0 or self.expl_noise < 0:
            raise ValueError("warmup_steps must be >= 0, updates_per_step > 0 and expl_noise >= 0")
