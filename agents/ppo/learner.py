"""PPO's learner (optimiser, update) and its acting copy (what rollout actors hold)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical, Normal

from agents.ppo.config import PPOConfig
from agents.ppo.losses import gae, ppo_loss
from agents.ppo.networks import ActorCritic
from agents.protocols import Batch, EnvSpaces, PolicyOutput

NEG = -1e9  # logit of a masked-out action


def sample_discrete(
    logits: torch.Tensor, mask: torch.Tensor, greedy: bool, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Actions and their log-probabilities from (B, A) logits with a (B, A) bool mask of
    available actions: the argmax when ``greedy``, else Gumbel-max with numpy draws (the
    rng passed in is the only randomness, so a rollout is reproducible from its seed)."""
    logits = logits.masked_fill(~mask, NEG)
    if greedy:
        a = logits.argmax(-1)
    else:
        a = (logits + torch.as_tensor(rng.gumbel(size=logits.shape), dtype=torch.float32)).argmax(-1)
    return a, torch.log_softmax(logits, -1).gather(-1, a[:, None])[:, 0]


class _Inputs:
    """Builds the actor's and critic's inputs from a batch's arrays (agent ids appended)."""

    def __init__(self, spaces: EnvSpaces, cfg: PPOConfig) -> None:
        self.N = spaces.n_agents
        self.ids = cfg.agent_id and self.N > 1
        self.state_critic = cfg.critic_input == "state"
        self.obs_dim, self.state_dim = spaces.obs_dim, spaces.state_dim
        extra = self.N if (self.ids or self.state_critic) else 0
        self.actor_in = self.obs_dim + (self.N if self.ids else 0)
        self.critic_in = (self.state_dim if self.state_critic else self.obs_dim) + extra

    def _with_ids(self, x: torch.Tensor, on: bool) -> torch.Tensor:
        if not on:
            return x
        eye = torch.eye(self.N, dtype=x.dtype).expand(*x.shape[:-2], self.N, self.N)
        return torch.cat([x, eye], -1)

    def actor(self, obs: torch.Tensor) -> torch.Tensor:
        """obs (..., N, obs_dim) -> (..., N, actor_in)."""
        return self._with_ids(obs, self.ids)

    def critic(self, obs: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """obs (..., N, obs_dim), state (..., state_dim) -> (..., N, critic_in)."""
        if self.state_critic:
            assert state is not None
            x = state.unsqueeze(-2).expand(*state.shape[:-1], self.N, state.shape[-1])
            return self._with_ids(x, True)
        return self._with_ids(obs, self.ids)


class PPOPolicy:
    """The acting copy: picklable, CPU, one thread. Samples (or argmaxes) masked actions and
    returns log-probs and values as extras."""

    def __init__(self, net: ActorCritic, spaces: EnvSpaces, cfg: PPOConfig) -> None:
        self.net, self.spaces, self.cfg = net, spaces, cfg
        self.inputs = _Inputs(spaces, cfg)
        self.H = net.actor.hidden_size

    def initial_hidden(self, n_envs: int) -> np.ndarray:
        return np.zeros((n_envs, self.spaces.n_agents, 2, self.H), np.float32)

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.net.load_state_dict(weights)

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
        with torch.no_grad():
            o = torch.as_tensor(obs, dtype=torch.float32).reshape(B, N, -1)
            s = None if state is None else torch.as_tensor(state, dtype=torch.float32).reshape(B, -1)
            h = torch.as_tensor(hidden)
            out, ha = self.net.actor(self.inputs.actor(o).reshape(B * N, -1), h[:, :, 0].reshape(B * N, -1))
            v, hc = self.net.critic(self.inputs.critic(o, s).reshape(B * N, -1), h[:, :, 1].reshape(B * N, -1))
            new_h = torch.stack([ha, hc], 1).reshape(B, N, 2, -1).numpy() if self.H else hidden
            if self.spaces.discrete:
                m = torch.as_tensor(mask, dtype=torch.bool).reshape(B * N, -1)
                a, logp = sample_discrete(out, m, greedy, rng)
                actions = a.reshape(B, N).numpy()
            else:
                assert self.net.log_std is not None
                std = self.net.log_std.exp()
                if greedy:
                    a = out
                else:
                    a = out + std * torch.as_tensor(rng.standard_normal(out.shape), dtype=torch.float32)
                logp = Normal(out, std).log_prob(a).sum(-1)
                actions = a.reshape(B, N, -1).numpy()
            value = self.net.value(v)
        extras = {"logp": logp.reshape(B, N).numpy(), "value": value.reshape(B, N).numpy()}
        return PolicyOutput(actions, new_h, extras)


class NetOptState:
    """The checkpoint surface of a learner with one network ``net``, one optimiser ``opt``,
    a numpy generator ``rng`` and an ``updates`` counter (PPO's and DRED's learners)."""

    net: torch.nn.Module
    opt: torch.optim.Optimizer
    rng: np.random.Generator
    updates: int

    def weights(self) -> dict[str, Any]:
        return {k: v.detach().clone() for k, v in self.net.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.updates = int(state["updates"])


class PPOLearner(NetOptState):
    """Owns the network, Adam and the minibatch generator; ``update`` on segment batches."""

    net: ActorCritic

    def __init__(self, cfg: PPOConfig, spaces: EnvSpaces, seed: int) -> None:
        self.cfg, self.spaces = cfg, spaces
        torch.manual_seed(seed)
        self.inputs = _Inputs(spaces, cfg)
        n_out = spaces.n_actions if spaces.discrete else int(np.prod(spaces.action_shape))
        self.net = self._make_net(n_out)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.rng = np.random.default_rng([seed, 11])
        self.updates = 0

    # -- Learner protocol ---------------------------------------------------------------------
    def _make_net(self, n_out: int) -> ActorCritic:
        c, sp = self.cfg, self.spaces
        return ActorCritic(
            self.inputs.actor_in,
            self.inputs.critic_in,
            n_out,
            c.hidden,
            c.recurrent == "gru",
            not sp.discrete,
            value_norm=c.value_norm,
        )

    def policy(self) -> PPOPolicy:
        net = self._make_net(self.net.actor.head.out_features)
        net.load_state_dict(self.net.state_dict())
        return PPOPolicy(net, self.spaces, self.cfg)

    # -- learning -----------------------------------------------------------------------------
    def _unroll(
        self, batch: dict[str, torch.Tensor], envs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Runs actor and critic over the segment of envs ``envs``, resetting the hidden
        state where an episode starts. Returns (logits or means (E, T, N, A), values
        (E, T, N), actor hidden after each step, critic hidden after each step (E, T, N, H),
        bootstrap values (E, T, N) of final/next observations)."""
        obs = batch["obs"][envs]
        E, T, N = obs.shape[:3]
        st = batch["state"][envs]
        a_in = self.inputs.actor(obs.reshape(E, T, N, -1))
        c_in = self.inputs.critic(obs.reshape(E, T, N, -1), st.reshape(E, T, -1))
        h0 = batch["h0"][envs]
        ha, hc = h0[:, :, 0].reshape(E * N, -1), h0[:, :, 1].reshape(E * N, -1)
        first = batch["first"][envs]
        outs, vals, has, hcs = [], [], [], []
        if not self.net.actor.hidden_size:  # no recurrence: every step at once
            empty = torch.zeros(E * T * N, 0)
            o, _ = self.net.actor(a_in.reshape(E * T * N, -1), empty)
            v, _ = self.net.critic(c_in.reshape(E * T * N, -1), empty)
            outs, vals = list(o.reshape(E, T, N, -1).unbind(1)), list(v.reshape(E, T, N).unbind(1))
            has = hcs = [torch.zeros(E, N, 0)] * T
        for t in range(T if self.net.actor.hidden_size else 0):
            if self.net.actor.hidden_size:
                keep = (~first[:, t]).float().repeat_interleave(N)[:, None]
                ha, hc = ha * keep, hc * keep
            o, ha = self.net.actor(a_in[:, t].reshape(E * N, -1), ha)
            v, hc = self.net.critic(c_in[:, t].reshape(E * N, -1), hc)
            outs.append(o.reshape(E, N, -1))
            vals.append(v.reshape(E, N))
            has.append(ha.reshape(E, N, -1))
            hcs.append(hc.reshape(E, N, -1))
        out = torch.stack(outs, 1)
        values = torch.stack(vals, 1)
        hc_all = torch.stack(hcs, 1)
        # values of the observation after each truncated step and after the segment's end,
        # from the critic's hidden state after that step
        fin_in = self.inputs.critic(
            batch["final_obs"][envs].reshape(E, T, N, -1), batch["final_state"][envs].reshape(E, T, -1)
        )
        nxt_in = self.inputs.critic(batch["next_obs"][envs].reshape(E, N, -1), batch["next_state"][envs].reshape(E, -1))
        hflat = hc_all.reshape(E * T * N, -1)
        v_fin, _ = self.net.critic(fin_in.reshape(E * T * N, -1), hflat)
        v_nxt, _ = self.net.critic(nxt_in.reshape(E * N, -1), hc_all[:, -1].reshape(E * N, -1))
        v_fin = v_fin.reshape(E, T, N)
        next_values = torch.cat([values[:, 1:], v_nxt.reshape(E, 1, N)], 1)
        next_values = torch.where(batch["truncated"][envs][..., None], v_fin, next_values)
        return out, values, torch.stack(has, 1), hc_all, next_values

    def _dist(self, out: torch.Tensor, mask: torch.Tensor) -> Any:
        if self.spaces.discrete:
            return Categorical(logits=out.masked_fill(~mask, NEG))
        assert self.net.log_std is not None
        return Normal(out, self.net.log_std.exp())

    def update(self, batch: Batch) -> dict[str, float]:
        """GAE with the pre-update critic, then ``num_epochs`` x ``num_minibatches`` clipped
        PPO steps over whole env sequences (recurrent state replayed from ``h0``)."""
        cfg = self.cfg
        tb = {k: torch.as_tensor(v) for k, v in batch.items() if not k.startswith("extra/") or k == "extra/logp"}
        tb["obs"] = tb["obs"].float()
        B, T, N = tb["obs"].shape[:3]
        all_envs = torch.arange(B)
        with torch.no_grad():
            _, raw_values, _, _, raw_next = self._unroll(tb, all_envs)
            values, next_values = self.net.value(raw_values), self.net.value(raw_next)
            rewards = tb["rewards"].float()[..., None].expand(B, T, N)
            done = tb["terminated"] | tb["truncated"]
            adv, returns = gae(rewards, values, next_values, tb["terminated"], done, cfg.gamma, cfg.gae_lambda)
        weight = (tb["alive"] & tb["filled"][..., None]).float()
        targets = returns
        if self.net.value_norm is not None:  # MAPPO: update the statistics, then regress normalised returns
            self.net.value_norm.update(returns, weight)
            targets = self.net.value_norm.normalize(returns)
        if cfg.normalize_advantages:
            n = weight.sum().clamp_min(1.0)
            mu = (adv * weight).sum() / n
            sd = (((adv - mu) ** 2 * weight).sum() / n).sqrt()
            adv = (adv - mu) / (sd + 1e-8)
        old_logp = tb["extra/logp"].float()
        actions = tb["actions"]
        mask = tb["mask"]
        terms: dict[str, list[float]] = {}
        for _ in range(cfg.num_epochs):
            order = torch.as_tensor(self.rng.permutation(B))
            for mb in order.chunk(cfg.num_minibatches):
                out, v, _, _, _ = self._unroll(tb, mb)
                dist = self._dist(out, mask[mb])
                if self.spaces.discrete:
                    logp = dist.log_prob(actions[mb].long())
                    ent = dist.entropy()
                else:
                    logp = dist.log_prob(actions[mb].float()).sum(-1)
                    ent = dist.entropy().sum(-1)
                loss, named = ppo_loss(
                    logp,
                    old_logp[mb],
                    ent,
                    v,
                    raw_values[mb],
                    adv[mb],
                    targets[mb],
                    weight[mb],
                    cfg.clip,
                    cfg.value_clip,
                    cfg.vf_coef,
                    cfg.ent_coef,
                )
                self.opt.zero_grad()
                loss.backward()
                gn = torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
                self.opt.step()
                named["grad_norm"] = gn.detach()
                for k, val in named.items():
                    terms.setdefault(k, []).append(float(val))
        self.updates += 1
        out_terms = {k: float(np.mean(v)) for k, v in terms.items()}
        # explained variance of the pre-update critic (cleanrl's diagnostic)
        w = weight.bool()
        y, p = returns[w], values[w]
        var = float(y.var()) if y.numel() > 1 else 0.0
        out_terms["explained_variance"] = float("nan") if var == 0 else 1.0 - float((y - p).var()) / var
        return out_terms


def make_learner(cfg: PPOConfig, spaces: EnvSpaces, seed: int) -> PPOLearner:
    """The registry's factory."""
    return PPOLearner(cfg, spaces, seed)
