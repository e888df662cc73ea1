"""PRDC, TD3+BC and BC: one TD3-family offline learner, three actor regularisers.

Per gradient step (Fujimoto & Gu 2021, TD3+BC; Ran et al. 2023, PRDC, Algorithm 1):

- critic: y = r + gamma (1 - terminal) min(Q1', Q2')(s', clip(pi'(s') + clip(N(0, 0.2 h),
  +-0.5 h), low, high)) with h the half action range; loss MSE(Q1, y) + MSE(Q2, y);
- every ``policy_freq`` steps, the actor: lambda = alpha / mean|Q1(s, pi(s))| (detached) and
  loss = -lambda mean Q1(s, pi(s)) + MSE(pi(s), a_target), where a_target is
    - PRDC (``nearest``): the action of the dataset point nearest to the key
      [beta * s_norm, pi(s)] (pi detached) among all points [beta * s_norm, a] - PRDC's
      dataset constraint, not scaled;
    - TD3+BC (``dataset_action``): the batch's own action a;
  then Polyak averaging of both targets with tau;
- BC (``none_bc``): the actor minimises MSE(pi(s), a) alone, every step, no critic.

States are standardised by the dataset's mean and std + 1e-3 (TD3+BC / PRDC), so the
acting policy carries the same statistics. The nearest-neighbour index is built once in
``attach_dataset`` and stored on this learner only (agents/offline/nearest.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agents.offline.nearest import make_index
from agents.offline.networks import Actor, TwinCritic
from agents.prdc.config import PRDCConfig, TD3Config
from agents.protocols import Batch, EnvSpaces, PolicyOutput


class DeterministicPolicy:
    """The actor with the dataset's state statistics; greedy and exploring act alike
    (offline agents are evaluated greedily; exploration noise belongs to online TD3)."""

    def __init__(self, actor: Actor, mean: np.ndarray, std: np.ndarray, explore_std: float = 0.0) -> None:
        self.actor, self.mean, self.std, self.explore_std = actor, mean, std, explore_std
        self.uniform = False  # TD3's warm-up: uniform random actions
        torch.set_num_threads(1)

    def initial_hidden(self, n_envs: int) -> np.ndarray:
        return np.zeros((n_envs, 1, 0), np.float32)

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.actor.load_state_dict(weights["actor"])
        self.mean, self.std = np.asarray(weights["obs_mean"]), np.asarray(weights["obs_std"])
        self.uniform = bool(weights.get("uniform", False))

    def act(
        self,
        obs: np.ndarray,
        mask: np.ndarray,
        hidden: np.ndarray,
        greedy: bool,
        rng: np.random.Generator,
        state: np.ndarray | None = None,
    ) -> PolicyOutput:
        B, N = obs.shape[:2]
        half, centre = self.actor.half_range.numpy(), self.actor.centre.numpy()
        if not greedy and self.uniform:
            a = rng.uniform(centre - half, centre + half, size=(B * N, len(half)))
            return PolicyOutput(a.reshape(B, N, -1).astype(np.float32), hidden)
        x = (obs.reshape(B * N, -1) - self.mean) / self.std
        with torch.no_grad():
            a = self.actor(torch.as_tensor(x, dtype=torch.float32)).numpy()
        if not greedy and self.explore_std > 0:
            a = np.clip(a + rng.normal(0.0, self.explore_std, a.shape) * half, centre - half, centre + half)
        return PolicyOutput(a.reshape(B, N, -1).astype(np.float32), hidden)


class PRDCLearner:
    """See the module docstring. ``attach_dataset`` must come before ``update``."""

    def __init__(self, cfg: PRDCConfig, spaces: EnvSpaces, seed: int) -> None:
        if spaces.discrete or spaces.n_agents != 1:
            raise ValueError(
                f"{spaces.env_id}: PRDC, TD3+BC and BC need one agent with continuous (Box) actions "
                f"(got {spaces.n_agents} agent(s), {'discrete' if spaces.discrete else 'continuous'} actions)"
            )
        self.cfg, self.spaces = cfg, spaces
        self.alpha, self.beta, self.r_scale, self.r_shift = cfg.resolved(spaces.env_id)
        self.gen = torch.Generator().manual_seed(int(seed))
        torch.manual_seed(seed)  # network initialisation
        obs_dim, act_dim = spaces.obs_dim, int(np.prod(spaces.action_shape))
        low = torch.as_tensor(spaces.action_low, dtype=torch.float32)
        high = torch.as_tensor(spaces.action_high, dtype=torch.float32)
        self.actor = Actor(obs_dim, act_dim, cfg.hidden, low, high)
        self.actor_target = Actor(obs_dim, act_dim, cfg.hidden, low, high)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.uses_critic = cfg.constraint != "none_bc"
        self.critic = TwinCritic(obs_dim, act_dim, cfg.hidden)
        self.critic_target = TwinCritic(obs_dim, act_dim, cfg.hidden)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.low, self.high = low, high
        self.half = (high - low) / 2
        # actions in the actor's MSE and the nearest-neighbour key: (a - centre) / unit
        # (config.action_units; identical to raw actions on a [-1, 1] Box)
        half_range = cfg.action_units == "half_range"
        self.centre = (high + low) / 2 if half_range else torch.zeros_like(high)
        self.unit = self.half if half_range else torch.ones_like(high)
        self.obs_mean = np.zeros(obs_dim, np.float32)
        self.obs_std = np.ones(obs_dim, np.float32)
        self.index: Any = None
        self.index_actions: torch.Tensor | None = None
        self.steps = 0
        self.last_actor: dict[str, float] = {}
        self.attached = cfg.constraint == "none"  # online TD3 needs no dataset

    # -- dataset ------------------------------------------------------------------------------
    def attach_dataset(self, transitions: dict[str, np.ndarray]) -> None:
        """State statistics and (PRDC) the nearest-neighbour index over every sample."""
        self.attached = True
        obs = transitions["observations"].reshape(len(transitions["observations"]), -1).astype(np.float64)
        if self.cfg.normalize_states:
            self.obs_mean = obs.mean(0).astype(np.float32)
            self.obs_std = (obs.std(0) + 1e-3).astype(np.float32)  # TD3+BC / PRDC: std + 1e-3
        if self.cfg.constraint == "nearest":
            acts = transitions["actions"].reshape(len(obs), -1).astype(np.float64)
            units = (acts - self.centre.double().numpy()) / self.unit.double().numpy()
            keys = np.concatenate([self.beta * (obs - self.obs_mean) / self.obs_std, units], 1)
            self.index = make_index(self.cfg.nn_index, keys, self.cfg.nn_eps)
            self.index_actions = torch.as_tensor(acts, dtype=torch.float32)

    def norm(self, obs: np.ndarray) -> torch.Tensor:
        x = (obs.reshape(len(obs), -1) - self.obs_mean) / self.obs_std
        return torch.as_tensor(x, dtype=torch.float32)

    def nearest_actions(self, s_norm: torch.Tensor, pi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a_nn, distance) for keys [beta * s_norm, pi] (PRDC's constraint target)."""
        if self.index is None or self.index_actions is None:
            raise RuntimeError("PRDC: attach_dataset() must be called before update() (the index is built there)")
        key = torch.cat([self.beta * s_norm, (pi.detach() - self.centre) / self.unit], 1).double().numpy()
        dist, rows = self.index.query(key)
        return self.index_actions[torch.as_tensor(rows)], torch.as_tensor(dist, dtype=torch.float32)

    def action_mse(self, pi: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The actor's MSE to its target actions, in ``action_units``."""
        return F.mse_loss(pi / self.unit, target / self.unit)

    # -- Learner protocol ---------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        c = self.cfg
        if not self.attached:
            raise RuntimeError(
                f"{c.constraint}: attach_dataset() must be called before update() (state statistics and the "
                "nearest-neighbour index come from the whole dataset)"
            )
        s = self.norm(batch["observations"])
        a = torch.as_tensor(batch["actions"].reshape(len(s), -1), dtype=torch.float32)
        self.steps += 1
        out: dict[str, float] = {}
        if self.uses_critic:
            s2 = self.norm(batch["next_observations"])
            r = torch.as_tensor(self.r_scale * batch["rewards"] + self.r_shift, dtype=torch.float32)
            not_done = 1.0 - torch.as_tensor(batch["terminals"], dtype=torch.float32)
            with torch.no_grad():
                eps = torch.randn(a.shape, generator=self.gen) * c.policy_noise * self.half
                eps = torch.maximum(torch.minimum(eps, c.noise_clip * self.half), -c.noise_clip * self.half)
                a2 = torch.maximum(torch.minimum(self.actor_target(s2) + eps, self.high), self.low)
                q1t, q2t = self.critic_target(s2, a2)
                y = r + c.gamma * not_done * torch.min(q1t, q2t)
            q1, q2 = self.critic(s, a)
            critic_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
            self.critic_opt.zero_grad()
            critic_loss.backward()
            self.critic_opt.step()
            out |= {
                "critic_loss": float(critic_loss.detach()),
                "q_mean": float(q1.detach().mean()),
                "target_mean": float(y.mean()),
            }
        if not self.uses_critic or self.steps % c.policy_freq == 0:
            pi = self.actor(s)
            if self.uses_critic:
                q = self.critic.first(s, pi)
                lmbda = self.alpha / q.abs().mean().detach()
                if c.constraint == "none":  # plain TD3 (the online behaviour learner)
                    actor_loss = -q.mean()
                else:
                    if c.constraint == "nearest":
                        target, dist = self.nearest_actions(s, pi)
                        self.last_actor["nn_distance"] = float(dist.mean())
                    else:
                        target = a
                    constraint = self.action_mse(pi, target)
                    actor_loss = -lmbda * q.mean() + constraint
                    self.last_actor |= {"lambda": float(lmbda), "constraint": float(constraint.detach())}
            else:
                actor_loss = self.action_mse(pi, a)
                self.last_actor["constraint"] = float(actor_loss.detach())
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            self.last_actor["actor_loss"] = float(actor_loss.detach())
            if self.uses_critic:
                with torch.no_grad():
                    for net, tgt in ((self.actor, self.actor_target), (self.critic, self.critic_target)):
                        for p, tp in zip(net.parameters(), tgt.parameters()):
                            tp.mul_(1 - c.tau).add_(c.tau * p)
        return out | self.last_actor

    def policy(self) -> DeterministicPolicy:
        actor = Actor(self.spaces.obs_dim, int(np.prod(self.spaces.action_shape)), self.cfg.hidden, self.low, self.high)
        actor.load_state_dict(self.actor.state_dict())
        return DeterministicPolicy(actor, self.obs_mean.copy(), self.obs_std.copy())

    def weights(self) -> dict[str, Any]:
        return {
            "actor": {k: v.detach().clone() for k, v in self.actor.state_dict().items()},
            "obs_mean": torch.as_tensor(self.obs_mean),
            "obs_std": torch.as_tensor(self.obs_std),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "obs_mean": torch.as_tensor(self.obs_mean),
            "obs_std": torch.as_tensor(self.obs_std),
            "gen": self.gen.get_state(),
            "steps": self.steps,
            "last_actor": dict(self.last_actor),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("actor", "actor_target", "critic", "critic_target", "actor_opt", "critic_opt"):
            getattr(self, name).load_state_dict(state[name])
        self.obs_mean = state["obs_mean"].numpy().astype(np.float32)
        self.obs_std = state["obs_std"].numpy().astype(np.float32)
        self.gen.set_state(state["gen"])
        self.steps = int(state["steps"])
        self.last_actor = dict(state["last_actor"])


class TD3Learner(PRDCLearner):
    """Online TD3: the same networks and update with the plain TD3 actor loss; acts
    uniformly at random until ``warmup_steps`` env steps, then with Gaussian noise."""

    def __init__(self, cfg: TD3Config, spaces: EnvSpaces, seed: int) -> None:
        super().__init__(cfg, spaces, seed)
        self.td3 = cfg
        self.env_steps = 0

    def set_env_steps(self, n: int) -> None:
        self.env_steps = int(n)

    def policy(self) -> DeterministicPolicy:
        p = super().policy()
        p.explore_std = self.td3.expl_noise
        p.uniform = self.env_steps < self.td3.warmup_steps
        return p

    def weights(self) -> dict[str, Any]:
        return super().weights() | {"uniform": self.env_steps < self.td3.warmup_steps}

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"env_steps": self.env_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.env_steps = int(state["env_steps"])


def make_td3(cfg: TD3Config, spaces: EnvSpaces, seed: int) -> TD3Learner:
    """The registry's factory (agent td3)."""
    return TD3Learner(cfg, spaces, seed)


def make_learner(cfg: PRDCConfig, spaces: EnvSpaces, seed: int) -> PRDCLearner:
    """The registry's factory (agent names prdc, td3bc, bc)."""
    return PRDCLearner(cfg, spaces, seed)
