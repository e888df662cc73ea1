"""PettingZoo ParallelEnv facade over one :class:`SMACCore` battle (B = 1).

Agents are ``agent_0 .. agent_{N-1}`` (ally slot i). Observations are dicts with
"observation" (float32, SMAC's layout of the obs mode: smac_v1 on classic maps, smac_v2 on
SMACv2 and TRAMA sets) and "action_mask" (int8); ``state()`` is the global
state for centralised training. Every agent receives the team reward. An agent that dies
gets ``terminated=True`` in that step and then leaves ``env.agents`` (PettingZoo contract);
when the battle ends every remaining agent is terminated (win/loss) or truncated (episode
limit). ``info`` holds battle_won, dead_allies, dead_enemies, task, task_id, start,
episode_step and episode_return (the team's return so far): the task is never in an
observation or the state. ``reset(options={"task": ..., "start": ...})`` plays a chosen
task and start mode (per-task evaluation of a multi-task policy).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from envs.smaclike.core import SMACCore
from envs.smaclike.scenarios import Scenario


class SMACLikeEnv(ParallelEnv):
    """One battle of a scenario; see the module docstring for the contract.

    Args:
        scenario: a Scenario or a registered scenario name ("3m", "surComb3", ...).
        render_mode: None, "rgb_array" or "human" (a matplotlib window).
        invalid_action: "stop" (default, what a PettingZoo user expects: any action of the
            action space is accepted; one the mask forbids becomes stop, or no-op for a dead
            agent, and is counted in ``info["invalid_actions"]`` so masking bugs stay
            visible) or "raise" (SMAC-strict: an error naming the agent and the allowed
            actions). The batched core used by ShiftRL's runtime keeps "raise".
        **core_kwargs: passed to :class:`SMACCore` (rules, obs_mode, reward options, ...).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "smaclike_v0",
        "render_modes": ["rgb_array", "human"],
        "is_parallelizable": True,
        "render_fps": 8,
    }

    def __init__(
        self,
        scenario: str | Scenario = "3m",
        render_mode: str | None = None,
        invalid_action: str = "stop",
        **core_kwargs: Any,
    ) -> None:
        if render_mode not in (None, "rgb_array", "human"):
            raise ValueError(f"render_mode must be None, 'rgb_array' or 'human', got {render_mode!r}")
        self._window: Any = None
        self.core = SMACCore(scenario, 1, invalid_action=invalid_action, **core_kwargs)
        self.scenario = self.core.scenario
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(self.core.N)]
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        obs_space = gymnasium.spaces.Dict(
            {
                "observation": gymnasium.spaces.Box(-1.0, 1.0, (self.core.obs_dim,), np.float32),
                "action_mask": gymnasium.spaces.Box(0, 1, (self.core.n_actions,), np.int8),
            }
        )
        act_space: gymnasium.spaces.Discrete = gymnasium.spaces.Discrete(self.core.n_actions)
        self.observation_spaces = {a: obs_space for a in self.possible_agents}
        self.action_spaces = {a: act_space for a in self.possible_agents}
        # SMAC's cooldown normaliser (max_cooldown) is below some units' cooldown + jitter
        # (hydralisk 13.2 + 2 game loops / 10): the state's cooldown entries reach about 1.5
        self.state_space = gymnasium.spaces.Box(-1.0, 2.0, (self.core.state_dim,), np.float32)
        self._return = 0.0

    @classmethod
    def batched(cls, n: int, scenario: str | Scenario = "3m", render_mode: str | None = None, **core_kwargs: Any):
        """``n`` battles as one :class:`envs.smaclike.batch.SMACBatch` (the batched core used
        directly; what rollout actors step)."""
        from envs.smaclike.batch import SMACBatch

        return SMACBatch(SMACCore(scenario, n, **core_kwargs))

    def observation_space(self, agent: str) -> gymnasium.spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.spaces.Space:
        return self.action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        opts = options or {}  # other keys are ignored (PettingZoo's API test passes a dummy one)
        self.core.reset(seeds=[seed], task=opts.get("task"), start=opts.get("start"))
        self.agents = list(self.possible_agents)
        self._return = 0.0
        return self._obs(self.agents), self._infos(self.agents)

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"no action for live agents {missing}; every agent in env.agents must act")
        act = np.zeros((1, self.core.N), np.int64)
        for a in self.agents:
            act[0, self._index[a]] = int(actions[a])
        reward, terminated, truncated = self.core.step(act)
        self._return += float(reward[0])
        live = self.agents
        alive = self.core.alive[0]
        term, trunc = bool(terminated[0]), bool(truncated[0])
        obs = self._obs(live)
        rew = {a: float(reward[0]) for a in live}
        terms = {a: term or not alive[self._index[a]] for a in live}
        truncs = {a: trunc for a in live}
        infos = self._infos(live)
        self.agents = [] if (term or trunc) else [a for a in live if alive[self._index[a]]]
        return obs, rew, terms, truncs, infos

    def state(self) -> np.ndarray:
        return self.core.state()[0]

    def render(self) -> np.ndarray | None:
        """ "rgb_array": the frame; "human": shown in a matplotlib window (returns None)."""
        if self.render_mode is None:
            return None
        from envs.smaclike.render import HumanWindow, render_frame

        frame = render_frame(self.core, 0)
        if self.render_mode == "rgb_array":
            return frame
        if self._window is None:
            self._window = HumanWindow(f"SMAClike {self.scenario.name}")
        self._window.show(frame)
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    def _obs(self, agents: list[str]) -> dict[str, Any]:
        o = self.core.obs()[0]
        m = self.core.avail[0].astype(np.int8)
        return {a: {"observation": o[self._index[a]], "action_mask": m[self._index[a]]} for a in agents}

    def _infos(self, agents: list[str]) -> dict[str, Any]:
        c = self.core
        info: dict[str, Any] = {k: v[0].item() for k, v in c.info().items() if k != "start_id"}
        info.update(
            {
                "task": c.task_name(0),
                "start": c.start_name(0),
                "episode_return": self._return,  # team return so far (every agent gets the team reward)
            }
        )
        return {a: dict(info) for a in agents}
