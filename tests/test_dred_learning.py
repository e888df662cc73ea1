"""Learning on Cave Escape through the runtime (the curriculum loop, rollout actors, the
conv-LSTM PPO): the CI-sized check of the DRED issue."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests/fixtures/cave_tiny7.json"


def random_solved_rate(episodes: int, seed: int) -> float:
    """Uniformly random actions on the tiny levels, ``episodes`` per level."""
    from envs.cave.env import CaveBatch
    from envs.levels import load_level_set

    levels = load_level_set(TINY).levels
    env = CaveBatch(len(levels) * episodes, size=7)
    rng = np.random.default_rng(seed)
    env.reset(list(range(env.n_envs)), [0] * env.n_envs, [{"level": p} for p in levels] * episodes)
    solved = np.zeros(env.n_envs, bool)
    running = np.ones(env.n_envs, bool)
    while running.any():
        r, te, tr = env.step(rng.integers(0, 7, env.n_envs))
        solved |= running & (r > 0)
        running &= ~(te | tr)
    return float(solved.mean())


def test_ppo_solves_most_tiny_training_levels(tmp_path):
    """U (uniform level sampling) with DRED's PPO on 12 tiny 7x7 levels (rooms, caves,
    corridors: 4 each), with a smaller LSTM (64), a larger learning rate (1e-3), 4
    minibatches and an entropy bonus of 0.01 so that it learns in a CI budget: after 80
    updates of 16 envs x 64 steps the sampled policy must solve at least 80% of 4 episodes
    per level; uniformly random actions solve about 11% (asserted below 25%). Measured:
    0.98 and 0.85 on seeds 0 and 1, about 150 s each with four processes on the 2 cores.
    Tiny mazes are left out: their single long corridor is an exploration problem that took
    more than 120 updates (0 of 4 tiny mazes solved at 120 updates without the entropy bonus)."""
    from trainers.config import load_config
    from trainers.run import execute_run, prepare_runs

    rand = random_solved_rate(8, 0)
    assert rand < 0.25, rand
    cfg = load_config(
        ROOT / "configs/uniform/cave.yaml",
        [
            f"env.levels={TINY}",
            f"eval.levels={TINY}",
            "env.kwargs={size: 7}",
            "ray.num_workers=0",
            "ray.envs_per_worker=16",
            "eval.every=0",
            "eval.episodes=4",
            "eval.sample=true",
            "agent_config.updates=80",
            "agent_config.n_steps=64",
            "agent_config.lr=0.001",
            "agent_config.num_minibatches=4",
            "agent_config.ent_coef=0.01",
            "agent_config.hidden=64",
            f"runs_dir={tmp_path}",
        ],
    )
    (run,) = prepare_runs(cfg, 1)
    res = execute_run(run, 0)
    solved = res["eval"]["overall"]["win_rate"]["mean"]
    print(f"random actions solve {rand:.2f}; PPO solves {solved:.2f}")
    assert solved >= 0.8, (solved, rand)
