"""SMAC's MultiAgentEnv API (envs/smaclike/smac_api.py), driven the way PyMARL's runners drive it."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from envs.smaclike import SCENARIOS, Scenario, mirror
from envs.smaclike.smac_api import (
    StarCraft2Env,
    StarCraftCapabilityEnvWrapper,
    install_smac_alias,
    scenario_from_capability_config,
)

ROOT = Path(__file__).resolve().parents[1]

PALETTES = {
    "10gen_protoss": (["stalker", "zealot", "colossus"], [0.45, 0.45, 0.1], []),
    "10gen_terran": (["marine", "marauder", "medivac"], [0.45, 0.45, 0.1], ["medivac"]),
    "10gen_zerg": (["zergling", "hydralisk", "baneling"], [0.45, 0.45, 0.1], ["baneling"]),
}


def capability_config(map_name: str, n_units: int = 5, n_enemies: int = 5) -> dict:
    """SMACv2's official config (smacv2 examples/configs/sc2_gen_*.yaml)."""
    unit_types, weights, exceptions = PALETTES[map_name]
    team = {"dist_type": "weighted_teams", "unit_types": unit_types, "weights": weights, "observe": True}
    if exceptions:
        team["exception_unit_types"] = exceptions
    return {
        "n_units": n_units,
        "n_enemies": n_enemies,
        "team_gen": team,
        "start_positions": {"dist_type": "surrounded_and_reflect", "p": 0.5, "map_x": 32, "map_y": 32},
    }


def run_episode(env, rng: np.random.Generator) -> tuple[float, dict, int]:
    """One episode as pymarl's EpisodeRunner.run calls the env; checks the contract on the way."""
    env.reset()
    n, n_actions = env.n_agents, env.get_total_actions()
    terminated, ret, t, info = False, 0.0, 0, {}
    while not terminated:
        state, avail, obs = env.get_state(), env.get_avail_actions(), env.get_obs()
        assert state.shape == (env.get_state_size(),) and state.dtype == np.float32
        assert len(obs) == n and all(o.shape == (env.get_obs_size(),) for o in obs)
        assert isinstance(avail, list) and len(avail) == n
        assert all(isinstance(row, list) and len(row) == n_actions and set(row) <= {0, 1} for row in avail)
        dead = env.death_tracker_ally.astype(bool)
        for i in range(n):
            if dead[i]:
                assert avail[i] == [1] + [0] * (n_actions - 1)
                assert not obs[i].any()
            else:
                assert avail[i][0] == 0 and avail[i][1] == 1
        assert avail[0] == env.get_avail_agent_actions(0)
        np.testing.assert_array_equal(obs[0], env.get_obs_agent(0))
        a = np.array(avail, float)
        actions = (rng.random(a.shape) * a).argmax(1)
        reward, terminated, info = env.step(actions)
        assert isinstance(reward, float) and isinstance(terminated, bool)
        assert {"battle_won", "dead_allies", "dead_enemies"} <= set(info)
        ret += reward
        t += 1
    assert t <= env.episode_limit
    return ret, info, t


def check_env_info(env) -> None:
    info = env.get_env_info()
    assert info["n_agents"] == env.n_agents and info["episode_limit"] == env.episode_limit
    assert info["state_shape"] == env.get_state().size and info["obs_shape"] == env.get_obs()[0].size
    assert info["n_actions"] == len(env.get_avail_actions()[0])
    # pymarl2 / QPLEX slice the state's ally blocks with unit_dim
    assert info["unit_dim"] == len(info["agent_features"]) == 4 + env.shield_bits_ally + env.unit_type_bits
    assert len(env.get_state_feature_names()) == env.get_state_size()
    assert len(env.get_obs_feature_names()) == env.get_obs_size()
    n_en, en_feats = env.get_obs_enemy_feats_size()
    n_al, al_feats = env.get_obs_ally_feats_size()
    sizes = env.get_obs_move_feats_size() + n_en * en_feats + n_al * al_feats + env.get_obs_own_feats_size()
    assert sizes == env.get_obs_size()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_pymarl_episode_loop(name):
    env = StarCraft2Env(map_name=name, seed=7)
    rng = np.random.default_rng(0)
    for _ in range(2):
        run_episode(env, rng)
    check_env_info(env)
    stats = env.get_stats()
    assert stats["battles_game"] == 2
    assert set(stats) == {"battles_won", "battles_game", "battles_draw", "win_rate", "timeouts", "restarts"}
    assert stats["win_rate"] == stats["battles_won"] / 2
    env.close()


@pytest.mark.parametrize("map_name", ["10gen_protoss", "10gen_terran", "10gen_zerg"])
def test_capability_wrapper_episode_loop(map_name):
    env = StarCraftCapabilityEnvWrapper(
        map_name=map_name,
        capability_config=capability_config(map_name),
        use_unit_ranges=True,
        obs_own_pos=True,
        min_attack_range=2,
        seed=3,
    )
    assert env.episode_limit == 200 and env.n_agents == 5 and env.n_enemies == 5
    rng = np.random.default_rng(1)
    for _ in range(2):
        run_episode(env, rng)
    check_env_info(env)
    assert env.get_stats()["battles_game"] == 2
    assert env.get_capabilities().shape == (5 * len(env.scenario.unit_types),)


def test_capability_more_enemies_than_allies():
    env = StarCraftCapabilityEnvWrapper(
        map_name="10gen_protoss", capability_config=capability_config("10gen_protoss", 5, 6), seed=0
    )
    assert (env.n_agents, env.n_enemies) == (5, 6)
    run_episode(env, np.random.default_rng(2))


def test_capability_config_to_scenario():
    sc = scenario_from_capability_config("10gen_protoss", capability_config("10gen_protoss"))
    assert sc.palette == (("stalker", 0.45), ("zealot", 0.45), ("colossus", 0.1))
    assert sc.n_units == 5 and sc.episode_limit == 200
    # SMACv2 plays surrounded when u > p: p is the reflect probability
    cfg = capability_config("10gen_protoss")
    cfg["start_positions"]["p"] = 0.25
    assert dict(scenario_from_capability_config("10gen_protoss", cfg).starts) == {"surrounded": 0.75, "reflect": 0.25}


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c["team_gen"].update(dist_type="all_teams"), r"team_gen'\]\['dist_type'\]"),
        (lambda c: c["start_positions"].update(dist_type="corners"), r"start_positions'\]\['dist_type'\]"),
        (lambda c: c["team_gen"].pop("weights"), "'weights'"),
        (lambda c: c["team_gen"].update(weights=[0.5, 0.5]), "'unit_types'.*'weights'"),
        (lambda c: c["team_gen"].update(unit_types=["marine", "zealot", "colossus"]), "'marine'"),
        (lambda c: c["team_gen"].update(observe=False), "observe"),
        (lambda c: c.pop("n_enemies"), "'n_enemies'"),
        (lambda c: c.update(n_units=0), "'n_units'"),
        (lambda c: c.update(attack={"dist_type": "per_agent_uniform"}), "'attack'"),
        (lambda c: c.update(team_size=3), "'team_size'"),
        (lambda c: c["start_positions"].pop("map_x"), "'map_x'"),
    ],
)
def test_capability_config_errors_name_the_key(edit, match):
    cfg = capability_config("10gen_protoss")
    edit(cfg)
    with pytest.raises(ValueError, match=match):
        StarCraftCapabilityEnvWrapper(map_name="10gen_protoss", capability_config=cfg)


def test_capability_wrapper_needs_its_keywords():
    with pytest.raises(TypeError, match="capability_config"):
        StarCraftCapabilityEnvWrapper(map_name="10gen_protoss")
    with pytest.raises(ValueError, match="10gen_"):
        StarCraftCapabilityEnvWrapper(map_name="3m", capability_config=capability_config("10gen_protoss"))


def test_timeout_sets_episode_limit_only_when_continuing():
    """SMAC puts info["episode_limit"] = True on a timeout only with continuing_episode."""
    short = Scenario("timeout3m", teams=(mirror("3m"),), episode_limit=3)
    for continuing in (False, True):
        env = StarCraft2Env(short, continuing_episode=continuing, seed=0)
        env.reset()
        terminated, t = False, 0
        while not terminated:
            _, terminated, info = env.step([1] * env.n_agents)  # everyone stops
            t += 1
            assert ("episode_limit" in info) == (continuing and terminated)
        assert t == 3 and not info["battle_won"]
        if continuing:
            assert info["episode_limit"] is True
        assert env.get_stats() == {
            "battles_won": 0,
            "battles_game": 1,
            "battles_draw": 1,
            "win_rate": 0.0,
            "timeouts": 1,
            "restarts": 0,
        }
        with pytest.raises(RuntimeError, match="reset"):
            env.step([1] * env.n_agents)


def test_obs_instead_of_state():
    env = StarCraft2Env("2s3z", obs_instead_of_state=True, seed=1)
    obs, state = env.reset()
    assert env.get_state_size() == env.n_agents * env.get_obs_size() == state.size
    np.testing.assert_array_equal(state, np.concatenate(obs))
    assert env.get_env_info()["state_shape"] == state.size
    assert len(env.get_state_feature_names()) == state.size


def test_reset_returns_obs_and_state_and_seeding_is_deterministic():
    def rollout(seed: int) -> list:
        env = StarCraft2Env("3s5z", seed=seed)
        rng = np.random.default_rng(5)
        out = []
        for _ in range(2):
            obs, state = env.reset()
            out.append((np.stack(obs).copy(), state.copy()))
            terminated = False
            while not terminated:
                a = np.array(env.get_avail_actions(), float)
                reward, terminated, _ = env.step((rng.random(a.shape) * a).argmax(1))
                out.append(reward)
        return out

    def flat(run: list) -> np.ndarray:
        return np.concatenate([np.concatenate([x[0].ravel(), x[1]]) if isinstance(x, tuple) else [x] for x in run])

    a, b, c = rollout(11), rollout(11), rollout(12)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, tuple):
            np.testing.assert_array_equal(x[0], y[0])
            np.testing.assert_array_equal(x[1], y[1])
        else:
            assert x == y
    assert flat(a).shape != flat(c).shape or not np.array_equal(flat(a), flat(c))
    env = StarCraft2Env("3m", seed=4)
    assert env.seed() == 4 and env.seed(9) == 9 and env.seed() == 9


def test_action_containers_and_invalid_actions():
    torch = pytest.importorskip("torch")
    env = StarCraft2Env("3m", seed=0)
    env.reset()
    env.step([1, 1, 1])
    env.step(np.array([1, 1, 1]))
    env.step(torch.tensor([1, 1, 1]))  # pymarl passes actions[0], a CPU tensor
    with pytest.raises(ValueError, match=r"Agent 1 cannot perform action 0; available actions: \[1, "):
        env.step([1, 0, 1])
    with pytest.raises(ValueError, match="one action per agent"):
        env.step([1, 1])


def test_heuristic_ai_plays_and_writes_back_actions():
    env = StarCraft2Env("MMM", heuristic_ai=True, seed=2)
    env.reset()
    terminated = False
    while not terminated:
        actions = np.zeros(env.n_agents, np.int64)  # ignored, then overwritten as SMAC does
        avail = np.array(env.get_avail_actions())
        _, terminated, info = env.step(actions)
        assert avail[np.arange(env.n_agents), actions].all()
    assert info["dead_enemies"] > 0


def test_unknown_keyword_and_unsupported_options():
    with pytest.raises(TypeError, match="'obs_everything'"):
        StarCraft2Env("3m", obs_everything=True)
    for key, value in [
        ("obs_pathing_grid", True),
        ("obs_terrain_height", True),
        ("conic_fov", True),
        ("obs_all_health", False),
        ("move_amount", 3),
        ("prob_obs_enemy", 0.5),
        ("fully_observable", True),
        ("action_mask", False),
    ]:
        with pytest.raises(ValueError, match=f"{key}=.*not supported"):
            StarCraft2Env("3m", **{key: value})
    with pytest.raises(ValueError, match="unknown smaclike scenario"):
        StarCraft2Env("3mm")
    with pytest.raises(ValueError, match="use_unit_ranges"):
        StarCraft2Env("3m", use_unit_ranges=True, obs_mode="smac_v1")
    # meaningless here, accepted (PyMARL's sc2.yaml passes them)
    env = StarCraft2Env("3m", difficulty="A", game_version="4.10", window_size_x=1, heuristic_rest=True)
    assert env.difficulty == "A"


def test_save_replay_and_render(tmp_path):
    env = StarCraft2Env("3m", replay_dir=str(tmp_path), replay_prefix="demo", seed=0)
    env.reset()
    for _ in range(3):
        env.step([1, 1, 1])
    frame = env.render(mode="rgb_array")
    assert frame.ndim == 3 and frame.dtype == np.uint8
    path = env.save_replay()
    assert path.parent == tmp_path and path.name.startswith("demo_") and path.suffix == ".gif"
    from PIL import Image

    with Image.open(path) as gif:
        assert gif.n_frames >= 4  # reset + 3 steps (+ held last frame)


def test_alias_refuses_a_real_smac(monkeypatch):
    monkeypatch.setitem(sys.modules, "smac", types.ModuleType("smac"))
    with pytest.raises(RuntimeError, match="real 'smac' package"):
        install_smac_alias()


def test_alias_shim_in_subprocess():
    code = (
        "from envs.smaclike.smac_api import install_smac_alias, StarCraft2Env as Ours\n"
        "install_smac_alias(); install_smac_alias()\n"
        "from smac.env import StarCraft2Env, MultiAgentEnv\n"
        "from smacv2.env import StarCraft2Env as V2\n"
        "from smacv2.env.starcraft2.wrapper import StarCraftCapabilityEnvWrapper\n"
        "import smac.env.starcraft2.starcraft2 as m\n"
        "assert StarCraft2Env is Ours is V2 is m.StarCraft2Env and issubclass(Ours, MultiAgentEnv)\n"
        "env = StarCraft2Env(map_name='3m', seed=0); obs, state = env.reset()\n"
        "print(env.get_env_info()['n_agents'], StarCraftCapabilityEnvWrapper.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["3", "StarCraftCapabilityEnvWrapper"]
