"""`shiftrl render ENV_ID --policy focus_fire|random|stop|RUN_DIR`: one SMAC-like episode as
a GIF, played by a scripted policy or by any multi-agent run's greedy policy (the run's
loop loads it through the agent registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import envs
from trainers.commands import read_run
from trainers.config import ConfigError


def render_gif(
    env_id: str, policy: str, seed: int, out: str, fps: float = 8.0, env_kwargs: dict[str, Any] | None = None
) -> dict[str, Any]:
    from envs.smaclike import SMACLikeEnv
    from envs.smaclike.render import record_episode
    from envs.smaclike.scripted import POLICIES, scripted_actions
    from trainers.agents import agent_spec

    env = envs.make(env_id, **(env_kwargs or {}))
    if not isinstance(env, SMACLikeEnv):
        raise ConfigError(f"render: {env_id!r} is not a SMAC-like env (GIFs are for SMAClike-*-v0 ids)")
    if policy in POLICIES:
        rng = np.random.default_rng(seed)
        return record_episode(env.core, lambda core: scripted_actions(policy, core, rng), out, seed=seed, fps=fps)
    if not Path(policy).is_dir():
        raise ConfigError(f"render: --policy {policy!r} is neither one of {list(POLICIES)} nor a run directory")
    cfg = read_run(Path(policy))
    loop = agent_spec(cfg.agent).loop_module()
    if not hasattr(loop, "load_policy"):
        raise ConfigError(f"render: agent {cfg.agent!r} ({agent_spec(cfg.agent).loop} loop) has no playable policy")
    trained = envs.make(cfg.env.id, **cfg.env.kwargs)
    if not isinstance(trained, SMACLikeEnv) or (trained.core.obs_dim, trained.core.n_actions) != (
        env.core.obs_dim,
        env.core.n_actions,
    ):
        raise ConfigError(
            f"render: the policy in {policy} was trained on {cfg.env.id}, whose observations and actions do not "
            f"match {env_id}'s (obs {env.core.obs_dim}, actions {env.core.n_actions})"
        )
    pol = loop.load_policy(Path(policy), cfg)
    hidden = [pol.initial_hidden(1)]
    rng = np.random.default_rng(seed)

    def act(core: Any) -> np.ndarray:
        out = pol.act(core.obs(), core.avail_actions(), hidden[0], True, rng, state=core.state())
        hidden[0] = out.hidden
        return np.asarray(out.actions, np.int64)

    return record_episode(env.core, act, out, seed=seed, fps=fps)
