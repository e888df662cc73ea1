"""Value decomposition's learner (RMSprop, targets, the episode update) and its acting copy
(epsilon-greedy over masked Qs, what rollout actors hold). PyMARL's QLearner and BasicMAC."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from agents.protocols import Batch, EnvSpaces, PolicyOutput
from agents.value_decomp.config import ValueDecompConfig
from agents.value_decomp.losses import lambda_returns, td_loss, td_targets
from agents.value_decomp.mixers import QPLEXMixer, make_mixer
from agents.value_decomp.networks import RNNAgent

_AGENT = "agent."  # prefix of the agent network's entries in weights()
_KEYS = ("obs", "state", "mask", "actions", "rewards", "terminated", "filled", "next_obs", "next_state", "next_mask")


class _Inputs:
    """Builds the agent network's input: obs (+ own last action one-hot) (+ agent one-hot)."""

    def __init__(self, spaces: EnvSpaces, cfg: ValueDecompConfig) -> None:
        self.N, self.A, self.obs_dim = spaces.n_agents, spaces.n_actions, spaces.obs_dim
        self.last_action, self.agent_id = cfg.obs_last_action, cfg.obs_agent_id
        self.size = self.obs_dim + (self.A if self.last_action else 0) + (self.N if self.agent_id else 0)

    def __call__(self, obs: torch.Tensor, last_action: torch.Tensor) -> torch.Tensor:
        """obs (..., N, obs_dim), last_action (..., N, A) one-hot (zeros before the first
        step) -> (..., N, size)."""
        parts = [obs]
        if self.last_action:
            parts.append(last_action)
        if self.agent_id:
            parts.append(torch.eye(self.N, dtype=obs.dtype).expand(*obs.shape[:-2], self.N, self.N))
        return torch.cat(parts, -1)


class ValueDecompPolicy:
    """The acting copy: picklable, CPU. Epsilon-greedy over masked Qs with the epsilon the
    learner last published (0 when ``greedy``).

    The recurrent state is (B, N, core + A): the agent network's recurrent state (``core``
    wide: the GRU's hidden state here) followed by the one-hot of the agent's last action
    (zeros at an episode start), which the next step's input needs.
    """

    def __init__(self, agent: Any, spaces: EnvSpaces, cfg: ValueDecompConfig, epsilon: float) -> None:
        self.agent, self.spaces, self.cfg = agent, spaces, cfg
        self.inputs = _Inputs(spaces, cfg)
        self.H, self.A = self.core_width(), spaces.n_actions
        self.epsilon = epsilon

    def core_width(self) -> int:
        """Width of the agent network's recurrent state."""
        return int(self.agent.hidden_size)

    def initial_hidden(self, n_envs: int) -> np.ndarray:
        return np.zeros((n_envs, self.spaces.n_agents, self.H + self.A), np.float32)

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.agent.load_state_dict({k[len(_AGENT) :]: v for k, v in weights.items() if k.startswith(_AGENT)})
        self.epsilon = float(weights["epsilon"])

    def _step(
        self, x: torch.Tensor, h: torch.Tensor, greedy: bool, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, np.ndarray]]:
        """One step of the agent network on inputs x (M, in) and recurrent state h (M, core):
        (Q (M, A), new state, extras to record in the batch)."""
        q, h_new = self.agent(x, h)
        return q, h_new, {}

    def q_values(
        self, obs: np.ndarray, hidden: np.ndarray, greedy: bool = True, rng: np.random.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, np.ndarray]]:
        """(Q (B, N, A), new core state (B, N, core), extras) of one step."""
        B, N = obs.shape[:2]
        with torch.no_grad():
            h = torch.as_tensor(hidden, dtype=torch.float32)
            o = torch.as_tensor(obs, dtype=torch.float32).reshape(B, N, -1)
            x = self.inputs(o, h[..., self.H :])
            q, h_new, extras = self._step(
                x.reshape(B * N, -1), h[..., : self.H].reshape(B * N, self.H), greedy, rng or np.random.default_rng(0)
            )
        extras = {k: v.reshape(B, N, *v.shape[1:]) for k, v in extras.items()}
        return q.reshape(B, N, -1), h_new.reshape(B, N, self.H), extras

    def act(
        self,
        obs: np.ndarray,
        mask: np.ndarray,
        hidden: np.ndarray,
        greedy: bool,
        rng: np.random.Generator,
        state: np.ndarray | None = None,
    ) -> PolicyOutput:
        q, h_new, extras = self.q_values(obs, hidden, greedy, rng)
        m = np.asarray(mask, bool)
        actions = q.masked_fill(~torch.as_tensor(m), -torch.inf).argmax(-1).numpy()
        if not greedy:
            # PyMARL's EpsilonGreedyActionSelector: with probability epsilon a uniform allowed
            # action (argmax of uniform draws over the allowed ones), from ``rng`` only
            explore = rng.random(actions.shape) < self.epsilon
            uniform = np.where(m, rng.random(m.shape), -1.0).argmax(-1)
            actions = np.where(explore, uniform, actions)
        one_hot = np.eye(self.A, dtype=np.float32)[actions]
        return PolicyOutput(actions.astype(np.int64), np.concatenate([h_new.numpy(), one_hot], -1), extras)


class ValueDecompLearner:
    """Owns the agent network, the mixer, their targets and RMSprop; ``update`` on episode
    batches drawn from a replay buffer by the off-policy loop, which also reports the env
    steps so far through :meth:`set_env_steps` (the exploration schedule).

    Extension points (TRAMA uses them; one level of subclassing at most): ``_make_agent``
    (the agent network), ``_agent_qs`` (its unroll over a batch, with auxiliary outputs),
    ``_aux_loss`` (terms added to the TD loss) and ``policy_class``.
    """

    policy_class: type[ValueDecompPolicy] = ValueDecompPolicy

    def __init__(self, cfg: ValueDecompConfig, spaces: EnvSpaces, seed: int) -> None:
        if not spaces.discrete:
            raise ValueError(
                f"{spaces.env_id}: {cfg.mixer} (value decomposition) needs discrete actions; this env's are continuous"
            )
        self.cfg, self.spaces = cfg, spaces
        torch.manual_seed(seed)
        self.inputs = _Inputs(spaces, cfg)
        self.agent = self._make_agent()
        self.mixer = make_mixer(cfg, spaces)
        self.target_agent = copy.deepcopy(self.agent).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False)
        self.params = [*self.agent.parameters(), *self.mixer.parameters()]
        self.opt = torch.optim.RMSprop(self.params, lr=cfg.lr, alpha=cfg.optim_alpha, eps=cfg.optim_eps)
        self.updates = 0
        self.env_steps = 0

    def _make_agent(self) -> torch.nn.Module:
        return RNNAgent(self.inputs.size, self.cfg.rnn_hidden, self.spaces.n_actions)

    # -- Learner protocol ---------------------------------------------------------------------
    def policy(self) -> ValueDecompPolicy:
        agent = self._make_agent()
        agent.load_state_dict(self.agent.state_dict())
        return self.policy_class(agent, self.spaces, self.cfg, self.epsilon)

    def weights(self) -> dict[str, Any]:
        """The agent network (``agent.*``) and the current epsilon (a 0-d tensor), so actors
        follow the exploration schedule."""
        w: dict[str, Any] = {_AGENT + k: v.detach().clone() for k, v in self.agent.state_dict().items()}
        w["epsilon"] = torch.tensor(self.epsilon)
        return w

    def state_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent.state_dict(),
            "mixer": self.mixer.state_dict(),
            "target_agent": self.target_agent.state_dict(),
            "target_mixer": self.target_mixer.state_dict(),
            "opt": self.opt.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "updates": self.updates,
            "env_steps": self.env_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        self.mixer.load_state_dict(state["mixer"])
        self.target_agent.load_state_dict(state["target_agent"])
        self.target_mixer.load_state_dict(state["target_mixer"])
        self.opt.load_state_dict(state["opt"])
        torch.set_rng_state(state["torch_rng"])
        self.updates = int(state["updates"])
        self.env_steps = int(state["env_steps"])

    # -- exploration ----------------------------------------------------------------------------
    def set_env_steps(self, n: int) -> None:
        """Env steps collected so far; the loop calls it before :meth:`weights`."""
        self.env_steps = int(n)

    @property
    def epsilon(self) -> float:
        return self.cfg.epsilon(self.env_steps)

    # -- learning -------------------------------------------------------------------------------
    @staticmethod
    def _unroll(agent: RNNAgent, x: torch.Tensor) -> torch.Tensor:
        """Q (E, T1, N, A) of inputs x (E, T1, N, in), the GRU started from zeros (every
        episode of the batch starts at its step 0)."""
        E, N = x.shape[0], x.shape[2]
        h = torch.zeros(E * N, agent.hidden_size)
        qs = []
        # unbind, not x[:, t]: when x carries a gradient (TRAMA's class input), each
        # indexing's backward would write a full-size zero tensor (quadratic in T)
        for x_t in x.unbind(1):
            q, h = agent(x_t.reshape(E * N, -1), h)
            qs.append(q.reshape(E, N, -1))
        return torch.stack(qs, 1)

    def _agent_qs(
        self, agent: Any, x: torch.Tensor, tb: dict[str, torch.Tensor], online: bool
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(Q (E, T + 1, N, A), auxiliary outputs) of the online (``online``) or target
        agent network on the batch's inputs x (E, T + 1, N, in)."""
        return self._unroll(agent, x), {}

    def _aux_loss(self, aux: dict[str, torch.Tensor], tb: dict[str, torch.Tensor]) -> tuple[torch.Tensor | None, dict]:
        """Terms added to the TD loss (none for VDN/QMIX/QPLEX)."""
        return None, {}

    def _td_inputs(
        self, batch: Batch
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(batch tensors, Q_tot of the taken actions (E, T), target Q_tot' of each step's
        successor (E, T), auxiliary outputs of the online unroll).

        The successor of step t is step t + 1 within the episode and ``next_obs`` /
        ``next_state`` / ``next_mask`` after its last filled step, so the agents' inputs
        are laid out as (E, T + 1, ...) with each episode's ``next_*`` written at index
        length; the recurrence runs through it as PyMARL's does through its extra step.
        """
        missing = [k for k in _KEYS if k not in batch]
        if missing:
            raise KeyError(f"{self.cfg.mixer} update needs an episode batch; missing keys {missing}")
        tb = {k: torch.as_tensor(v) for k, v in batch.items() if v.dtype != object}
        E, T, N = tb["obs"].shape[:3]
        A = self.spaces.n_actions
        lengths = tb["filled"].sum(1)
        rows = torch.arange(E)

        def with_next(x: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
            full = torch.cat([x, torch.zeros_like(x[:, :1])], 1)
            full[rows, lengths] = nxt.to(x.dtype)
            return full

        obs = with_next(tb["obs"].float().reshape(E, T, N, -1), tb["next_obs"].float().reshape(E, N, -1))
        state = with_next(tb["state"].float().reshape(E, T, -1), tb["next_state"].float().reshape(E, -1))
        mask = with_next(tb["mask"].bool(), tb["next_mask"].bool())
        tb.update(obs1=obs, state1=state, mask1=mask, lengths=lengths)
        actions = tb["actions"].long()
        last_action = torch.zeros(E, T + 1, N, A)
        last_action[:, 1:] = F.one_hot(actions, A).float()
        x = self.inputs(obs, last_action)

        q, aux = self._agent_qs(self.agent, x, tb, online=True)
        q_taken = q[:, :T].gather(-1, actions[..., None]).squeeze(-1)
        q_free = q.detach().masked_fill(~mask, -torch.inf)
        # padding (and agents with no allowed action) contribute 0, never -inf
        greedy_q = torch.where(mask.any(-1), q_free.max(-1).values, 0.0)
        greedy_a = q_free.argmax(-1)
        with torch.no_grad():
            q_target, _ = self._agent_qs(self.target_agent, x, tb, online=False)
            q_target = q_target[:, 1:]
            allowed = mask[:, 1:]
            target_max = torch.where(allowed.any(-1), q_target.masked_fill(~allowed, -torch.inf).max(-1).values, 0.0)
            if self.cfg.double_q:  # pick with the online network, evaluate with the target
                pick = greedy_a[:, 1:]
                q_next = torch.where(allowed.any(-1), q_target.gather(-1, pick[..., None]).squeeze(-1), 0.0)
            else:
                pick = q_target.masked_fill(~allowed, -torch.inf).argmax(-1)
                q_next = target_max
            target_next = self.target_mixer(q_next, state[:, 1:], F.one_hot(pick, A).float(), target_max)
        q_tot = self.mixer(q_taken, state[:, :T], F.one_hot(actions, A).float(), greedy_q[:, :T])
        return tb, q_tot, target_next, aux

    def _targets(self, tb: dict[str, torch.Tensor], target_next: torch.Tensor) -> torch.Tensor:
        rewards, term, filled = tb["rewards"].float(), tb["terminated"].bool(), tb["filled"].bool()
        if self.cfg.td_lambda > 0:
            return lambda_returns(rewards, term, target_next, filled, self.cfg.gamma, self.cfg.td_lambda)
        return td_targets(rewards, term, target_next, self.cfg.gamma)

    def td_values(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """(Q_tot of the taken actions, TD targets y), each (E, T), of an episode batch under
        the current networks: for diagnostics and tests (padded steps hold meaningless
        values)."""
        with torch.no_grad():
            tb, q_taken, target_next, _ = self._td_inputs(batch)
            y = self._targets(tb, target_next)
        return q_taken.numpy(), y.numpy()

    def update(self, batch: Batch) -> dict[str, float]:
        """One RMSprop step on the TD loss of an episode batch (EnvRunner.episodes' keys),
        plus QPLEX's attention regulariser and any auxiliary terms; the targets are copied
        from the online networks every target_update_interval updates."""
        cfg = self.cfg
        tb, q_taken, target_next, aux = self._td_inputs(batch)
        filled = tb["filled"].bool()
        loss, terms = td_loss(q_taken, self._targets(tb, target_next), filled)
        if isinstance(self.mixer, QPLEXMixer) and cfg.qplex_attend_reg > 0:
            reg = cfg.qplex_attend_reg * self.mixer.attention_reg(tb["state1"][:, :-1], filled)
            loss = loss + reg
            terms["attention_reg"] = reg.detach()
        extra, aux_terms = self._aux_loss(aux, tb)
        if extra is not None:
            loss = loss + extra
        terms.update(aux_terms)
        self.opt.zero_grad()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.opt.step()
        self.updates += 1
        if self.updates % cfg.target_update_interval == 0:
            self.target_agent.load_state_dict(self.agent.state_dict())
            self.target_mixer.load_state_dict(self.mixer.state_dict())
        out = {"loss": float(loss.detach()), **{k: float(v) for k, v in terms.items()}}
        out.update(grad_norm=float(grad_norm), epsilon=self.epsilon)
        return out


def make_learner(cfg: ValueDecompConfig, spaces: EnvSpaces, seed: int) -> ValueDecompLearner:
    """The registry's factory (agent names "vdn", "qmix" and "qplex" share it)."""
    return ValueDecompLearner(cfg, spaces, seed)
