"""The PPO learner every curriculum method shares (DRED, EL-DRED, U, PLR, RPLR, DR, ACCEL)
and its acting copy. Single-agent envs with discrete actions (Cave Escape, the shifted
classic-control envs with discrete actions).

Besides the Learner protocol it offers the curriculum loop's two hooks:
``step_scores(batch)`` (per-step level-scoring terms from the pre-update critic) and
``make_curriculum(...)`` (agents/dred/curriculum.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical

from agents.dred.config import DREDConfig
from agents.dred.networks import ConvLSTMActorCritic
from agents.ppo.learner import NEG, NetOptState, sample_discrete
from agents.ppo.losses import gae, ppo_loss
from agents.protocols import Batch, EnvSpaces, PolicyOutput


class DREDPolicy:
    """Acting copy: hidden (B, 1, 2, H) holds the LSTM's (h, c)."""

    def __init__(self, net: ConvLSTMActorCritic) -> None:
        self.net = net

    def initial_hidden(self, n_envs: int) -> np.ndarray:
        return np.zeros((n_envs, 1, 2, self.net.hidden), np.float32)

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
        B = obs.shape[0]
        with torch.no_grad():
            x = torch.as_tensor(obs, dtype=torch.float32).reshape(B, -1)
            hc = torch.as_tensor(hidden, dtype=torch.float32)
            h, c = self.net.core(self.net.features(x), hc[:, 0, 0], hc[:, 0, 1])
            logits, value = self.net.heads(h)
            a, logp = sample_discrete(logits, torch.as_tensor(mask, dtype=torch.bool).reshape(B, -1), greedy, rng)
        new_h = torch.stack([h, c], 1)[:, None].numpy()
        return PolicyOutput(
            a.reshape(B, 1).numpy(), new_h, {"logp": logp.numpy()[:, None], "value": value.numpy()[:, None]}
        )


class DREDLearner(NetOptState):
    """PPO with DRED's settings (agents/dred/config.py) on segment batches of one agent."""

    net: ConvLSTMActorCritic

    def __init__(self, cfg: DREDConfig, spaces: EnvSpaces, seed: int) -> None:
        if spaces.n_agents != 1 or not spaces.discrete:
            raise ValueError(
                f"agent {cfg.method!r} needs a single-agent env with discrete actions; {spaces.env_id} has "
                f"{spaces.n_agents} agent(s) and {'discrete' if spaces.discrete else 'continuous'} actions"
            )
        self.cfg, self.spaces, self.seed = cfg, spaces, seed
        torch.manual_seed(seed)
        self.net = self._make_net()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.rng = np.random.default_rng([seed, 23])
        self.updates = 0
        self._cached: tuple[Batch, int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._cached = None  # new weights: a cached unroll is stale

    def _make_net(self) -> ConvLSTMActorCritic:
        c = self.cfg
        return ConvLSTMActorCritic(self.spaces.obs_dim, self.spaces.n_actions, c.encoder, c.hidden, c.head_hidden)

    # -- Learner protocol -------------------------------------------------------------------------
    def policy(self) -> DREDPolicy:
        net = self._make_net()
        net.load_state_dict(self.net.state_dict())
        return DREDPolicy(net)

    # -- the curriculum's hooks -------------------------------------------------------------------
    def make_curriculum(self, **kwargs: Any) -> Any:
        from agents.dred.curriculum import Curriculum

        return Curriculum(self.cfg, seed=self.seed, **kwargs)

    @torch.no_grad()
    def step_scores(self, batch: Batch) -> dict[str, np.ndarray]:
        """(B, T) per-step level-scoring terms from the current critic: ``value_l1`` =
        |GAE advantage| (= |GAE return - value|, DRED/PLR) and ``positive_value_loss`` =
        max(advantage, 0) (robust PLR, ACCEL)."""
        adv, _, _ = self._pre_update(batch)
        return {"value_l1": adv.abs().numpy(), "positive_value_loss": adv.clamp_min(0).numpy()}

    def _pre_update(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(advantages, returns, values) of ``batch`` under the current weights. The curriculum
        loop scores a training rollout (step_scores) right before updating on it: the second
        call reuses the first's unroll instead of repeating it (the weights have not moved)."""
        if self._cached is not None and self._cached[0] is batch and self._cached[1] == self.updates:
            return self._cached[2]
        with torch.no_grad():
            out = self._advantages(self._tensors(batch))
        self._cached = (batch, self.updates, out)
        return out

    # -- learning ---------------------------------------------------------------------------------
    @staticmethod
    def _tensors(batch: Batch) -> dict[str, torch.Tensor]:
        keys = (
            "obs",
            "actions",
            "rewards",
            "terminated",
            "truncated",
            "first",
            "final_obs",
            "next_obs",
            "h0",
            "extra/logp",
            "mask",
        )
        tb = {k: torch.as_tensor(batch[k]) for k in keys}
        for k in ("obs", "final_obs", "next_obs", "h0", "rewards", "extra/logp"):
            tb[k] = tb[k].float()
        return tb

    def _unroll(self, tb: dict[str, torch.Tensor], envs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Logits (E, T, A), values (E, T) and bootstrap values (E, T) of envs ``envs``,
        resetting the LSTM where an episode starts (the features of every step go through
        the conv at once; only the LSTM steps one at a time). A truncated step bootstraps
        from the value of its final observation given the state after that step; the
        segment's end from ``next_obs``."""
        obs = tb["obs"][envs][:, :, 0]
        E, T = obs.shape[:2]
        feat = self.net.features(obs.reshape(E * T, -1)).reshape(E, T, -1)
        h0 = tb["h0"][envs][:, 0]
        h, c = h0[:, 0], h0[:, 1]
        keep = (~tb["first"][envs]).float()[..., None]
        trunc = tb["truncated"][envs]
        te, tt = torch.nonzero(trunc, as_tuple=True)
        hs, fin_h, fin_c = [], [], []
        for t in range(T):
            h, c = self.net.core(feat[:, t], h * keep[:, t], c * keep[:, t])
            hs.append(h)
            if trunc[:, t].any():  # the state after a truncated step, for its bootstrap value
                fin_h.append(h[trunc[:, t]])
                fin_c.append(c[trunc[:, t]])
        H = torch.stack(hs, 1)
        logits, values = self.net.heads(H)
        hn, _ = self.net.core(self.net.features(tb["next_obs"][envs][:, 0]), h, c)
        _, v_nxt = self.net.heads(hn)
        next_values = torch.cat([values[:, 1:], v_nxt[:, None]], 1)
        if len(te):  # torch.nonzero is row-major: (e, t) sorted by e then t; the loop gathered by t then e
            order = torch.argsort(tt * E + te)
            fin = self.net.features(tb["final_obs"][envs][te[order], tt[order], 0])
            hf, _ = self.net.core(fin, torch.cat(fin_h), torch.cat(fin_c))
            _, v_fin = self.net.heads(hf)
            next_values = next_values.index_put((te[order], tt[order]), v_fin)
        return logits, values, next_values

    def _advantages(self, tb: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B = tb["obs"].shape[0]
        _, values, next_values = self._unroll(tb, torch.arange(B))
        done = tb["terminated"] | tb["truncated"]
        adv, returns = gae(
            tb["rewards"][..., None],
            values[..., None],
            next_values[..., None],
            tb["terminated"],
            done,
            self.cfg.gamma,
            self.cfg.gae_lambda,
        )
        return adv[..., 0], returns[..., 0], values

    def update(self, batch: Batch) -> dict[str, float]:
        """GAE with the pre-update critic, then ``num_epochs`` x ``num_minibatches`` clipped
        PPO steps over whole env sequences (the LSTM replayed from ``h0``)."""
        cfg = self.cfg
        tb = self._tensors(batch)
        B, T = tb["obs"].shape[:2]
        adv, returns, old_values = self._pre_update(batch)
        self._cached = None
        weight = torch.ones(B, T)
        adv_n = (adv - adv.mean()) / (adv.std() + 1e-8)  # dcd normalises advantages per batch
        actions = tb["actions"][:, :, 0].long()
        mask = tb["mask"][:, :, 0]
        old_logp = tb["extra/logp"][:, :, 0]
        terms: dict[str, list[float]] = {}
        for _ in range(cfg.num_epochs):
            order = torch.as_tensor(self.rng.permutation(B))
            for mb in order.chunk(cfg.num_minibatches):
                logits, v, _ = self._unroll(tb, mb)
                dist = Categorical(logits=logits.masked_fill(~mask[mb], NEG))
                loss, named = ppo_loss(
                    dist.log_prob(actions[mb]),
                    old_logp[mb],
                    dist.entropy(),
                    v,
                    old_values[mb],
                    adv_n[mb],
                    returns[mb],
                    weight[mb],
                    cfg.clip,
                    cfg.value_clip,
                    cfg.vf_coef,
                    cfg.ent_coef,
                )
                self.opt.zero_grad()
                loss.backward()
                named["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
                self.opt.step()
                for k, val in named.items():
                    terms.setdefault(k, []).append(float(val))
        self.updates += 1
        out = {k: float(np.mean(v)) for k, v in terms.items()}
        var = float(returns.var())
        out["explained_variance"] = float("nan") if var == 0 else 1.0 - float((returns - old_values).var()) / var
        return out


def make_learner(cfg: DREDConfig, spaces: EnvSpaces, seed: int) -> DREDLearner:
    """The registry's factory."""
    return DREDLearner(cfg, spaces, seed)
