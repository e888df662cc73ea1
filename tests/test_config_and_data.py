"""Bad configs, env ids and datasets fail before Ray starts, with messages naming the problem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import envs
from envs import datasets
from envs.episodes import run_episodes
from trainers.config import ConfigError, load_config, parse_config
from trainers.policies import RandomPolicy, UniformBoxPolicy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_parse(path, tmp_path):
    import yaml

    data = yaml.safe_load(path.read_text())
    overrides = []
    dataset = (data.get("agent_config") or {}).get("dataset")
    if dataset and dataset.startswith("datasets/") and not (ROOT / dataset).exists():
        # MuJoCo datasets are built by the user (`shiftrl collect`, README); parse the rest
        overrides.append(f"agent_config.dataset={ROOT / 'tests/fixtures/pendulum/medium-v0'}")
    # level sets are made by the user (`shiftrl make-levels`, README): stand-ins of the same env
    stand_in = {"CaveEscape-v0": ROOT / "tests/fixtures/cave_tiny7.json"}
    env_id = (data.get("env") or {}).get("id")
    for key in ("env", "eval"):
        levels = (data.get(key) or {}).get("levels")
        if levels and not (ROOT / levels).exists():
            if env_id not in stand_in:
                from envs.levels import save_level_set, shift_levels

                spec = envs.spec(env_id)
                stand_in[env_id] = save_level_set(
                    shift_levels(spec, {spec.shifts[0].name: [spec.shifts[0].low]}), tmp_path / "levels.json"
                )
            overrides.append(f"{key}.levels={stand_in[env_id]}")
            if env_id == "CaveEscape-v0":
                overrides.append("env.kwargs={size: 7}")  # the stand-in's grid (levels are checked against it)
    load_config(path, overrides)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"replicatons": 3}, r"config: unknown key\(s\) \['replicatons'\]; allowed: .*'agent_config'"),
        ({"replications": 3}, r"config: \['replications'\] belong under agent_config for agent 'r2pvi'"),
        ({"agent_config": {"replications": "many"}}, "agent_config.replications: expected an integer, got 'many'"),
        ({"agent_config": {"replications": 0}}, "agent_config: replications: must be >= 1"),
        ({"env": {"id": "RobustLinearMDP-v9"}}, "env.id: unknown env id 'RobustLinearMDP-v9'; did you mean"),
        ({"env": {"idd": "x"}}, r"env: unknown key\(s\) \['idd'\]"),
        (
            {"eval": {"shifts": {"gravity": [1.0]}}},
            "eval.shifts: env 'RobustLinearMDP-v0' has no shift parameter 'gravity'",
        ),
        ({"eval": {"shifts": {"q": [0.5, 2.0]}}}, r"eval.shifts.q: values \[2.0\] outside \[0.0, 1.0\]"),
        ({"agent": "dqn"}, r"agent: unknown agent 'dqn'.*registered: \[.*'r2pvi'"),
        ({"agent": "ppo2"}, r"agent: unknown agent 'ppo2'; did you mean 'ppo'"),
        ({"agent_config": {"beta": -1}}, "agent_config: beta must be >= 0"),
        ({"agent_config": {"ridge": 0}}, "agent_config: ridge must be > 0"),
        ({"agent_config": {"methods": [{"algo": "r2pvi_tv"}]}}, "r2pvi_tv needs lam > 0"),
        ({"agent_config": {"methods": [{"algo": "pevi", "lamda": 1}]}}, r"agent_config.methods\[0\]: unknown key"),
        ({"agent_config": {"penalty": "mine"}}, "agent_config.penalty: 'mine' is not allowed"),
        ({"agent_config": {"data": {"behaviour": "greedy"}}}, "data.behaviour: 'greedy' is not a behaviour policy"),
        ({"agent_config": {"data": {"dataset": "/no/such/dir"}}}, "agent_config.data.dataset: /no/such/dir is not a"),
        ({"ray": {"num_workers": -1}}, "ray.num_workers: must be >= 0"),
        # a key the chosen agent would ignore is an error naming it
        ({"ray": {"envs_per_worker": 4}}, r"ray.envs_per_worker: agent 'r2pvi' \(closed_form loop\) does not use it"),
        ({"eval": {"every": 1000}}, r"eval.every: agent 'r2pvi' \(closed_form loop\) does not use it"),
        (
            {"agent": "ppo", "env": {"id": "ShiftedCartPole-v0"}, "eval": {"exact": True}},
            r"eval.exact: agent 'ppo' \(on_policy loop\) does not use it",
        ),
        (
            {"agent": "rllib_ppo", "env": {"id": "SMAClike-3m-v0"}, "eval": {"every": 5}},
            r"eval.every: agent 'rllib_ppo' \(rllib loop\) does not use it",
        ),
        # names that share a learner are defined by their defaults
        (
            {"agent": "mappo", "env": {"id": "SMAClike-3m-v0"}, "agent_config": {"critic_input": "obs"}},
            r"agent_config.critic_input: agent 'mappo' is defined by critic_input='state'",
        ),
        ({"agent": "mappo", "env": {"id": "ShiftedCartPole-v0"}}, "env.id: agent 'mappo' runs pettingzoo envs"),
        (
            {"agent": "ppo", "env": {"id": "ShiftedCartPole-v0"}, "eval": {"tasks": ["3s2z"]}},
            r"eval.tasks: \['3s2z'\] are not tasks of 'ShiftedCartPole-v0'",
        ),
        (
            {"eval": {"levels": "/no/such/levels.json"}, "agent": "ppo", "env": {"id": "ShiftedCartPole-v0"}},
            "eval.levels: .*levels.json",
        ),
    ],
)
def test_bad_config_messages(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_overrides_and_missing_file(tmp_path):
    cfg = load_config(ROOT / "configs/r2pvi/linear_mdp.yaml", ["agent_config.replications=3", "agent_config.beta=0.5"])
    assert cfg.agent_config.replications == 3 and cfg.agent_config.beta == 0.5
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["agent_config.replications"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_cli_reports_config_errors_without_starting_ray(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("agent: r2pvi\nenv: {id: NoSuchEnv-v0}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "trainers", "train", str(cfg)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "env.id: unknown env id 'NoSuchEnv-v0'" in proc.stderr
    assert "Ray" not in proc.stdout


def _dataset(tmp_path):
    env = envs.make("RobustLinearMDP-v0")
    ep = run_episodes(env, RandomPolicy(16), 20, 0)
    return datasets.save(datasets.Dataset.from_episodes(ep, {"env_id": "RobustLinearMDP-v0"}), tmp_path / "ds"), ep


def test_dataset_round_trip(tmp_path):
    path, ep = _dataset(tmp_path)
    ds = datasets.load(path)
    np.testing.assert_array_equal(ds.episodes.observations, ep.observations)
    np.testing.assert_array_equal(ds.episodes.actions, ep.actions)
    np.testing.assert_array_equal(ds.episodes.rewards, ep.rewards)
    assert ds.metadata["n_steps"] == int(ep.lengths.sum()) and ds.metadata["env_id"] == "RobustLinearMDP-v0"


def test_continuous_dataset_round_trip_with_variable_lengths(tmp_path):
    env = envs.make("ShiftedPendulum-v0", max_episode_steps=7)
    ep = run_episodes(env, RandomPolicy(5), 3, 0)
    ep2 = run_episodes(envs.make("ShiftedCartPole-v0"), RandomPolicy(2), 4, 0)
    for i, e in enumerate((ep, ep2)):
        path = datasets.save(datasets.Dataset.from_episodes(e), tmp_path / f"d{i}")
        back = datasets.load(path).episodes
        np.testing.assert_array_equal(back.lengths, e.lengths)
        for k in range(e.n):
            L = e.lengths[k]
            np.testing.assert_array_equal(back.observations[k, : L + 1], e.observations[k, : L + 1])


def test_datasets_are_minari_datasets(tmp_path, monkeypatch):
    """Minari itself reads what we write, offline: T + 1 observations per episode, the
    reference returns for normalised scores, and the (shifted, kwargs-carrying) env."""
    import minari

    env = envs.make("ShiftedPendulum-v0", max_episode_steps=9, m=1.5)
    ep = run_episodes(env, RandomPolicy(5), 4, 0)
    meta = {"env_id": "ShiftedPendulum-v0", "env_kwargs": {"max_episode_steps": 9, "m": 1.5}}
    path = tmp_path / "shiftrl" / "pendulum" / "random-v0"
    datasets.save(datasets.Dataset.from_episodes(ep, {**meta, "ref_min_score": -10.0, "ref_max_score": 0.0}), path)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    md = minari.load_dataset("shiftrl/pendulum/random-v0")
    assert md.total_episodes == 4 and md.total_steps == int(ep.lengths.sum())
    for k, e in enumerate(md.iterate_episodes()):
        L = ep.lengths[k]
        np.testing.assert_array_equal(e.observations, ep.observations[k, : L + 1])
        np.testing.assert_array_equal(e.actions, ep.actions[k, :L])
        np.testing.assert_array_equal(e.rewards, ep.rewards[k, :L])
    np.testing.assert_allclose(minari.get_normalized_score(md, np.array([-5.0])), [0.5])
    rec = md.recover_environment().unwrapped
    assert type(rec).__name__ == "ShiftedPendulum" and rec.shift["m"] == 1.5 and rec.max_episode_steps == 9


def test_continuous_actions_and_episode_ends_round_trip(tmp_path):
    """Box actions (float32 vectors) and the terminations/truncations come back exactly."""
    env = envs.make("ShiftedPendulumContinuous-v0", max_episode_steps=6)
    ep = run_episodes(env, UniformBoxPolicy(env.action_space.low, env.action_space.high), 4, 0)
    ds = datasets.load(datasets.save(datasets.Dataset.from_episodes(ep), tmp_path / "d"))
    assert ds.episodes.actions.dtype == np.float32 and ds.episodes.actions.shape[-1] == 1
    np.testing.assert_array_equal(ds.episodes.actions, ep.actions)
    np.testing.assert_array_equal(ds.episodes.observations, ep.observations)
    np.testing.assert_array_equal(ds.episodes.terminations, ep.terminations)
    np.testing.assert_array_equal(ds.episodes.truncations, ep.truncations)
    assert ep.truncations.sum() == 4 and not ep.terminations.any()  # each episode ends by the time limit


def test_transitions_never_cross_episode_boundaries(tmp_path):
    ep = run_episodes(envs.make("ShiftedPendulum-v0", max_episode_steps=5), RandomPolicy(5), 3, 0)
    ds = datasets.load(datasets.save(datasets.Dataset.from_episodes(ep), tmp_path / "d"))
    tr = ds.transitions()
    assert len(tr["observations"]) == 15
    for k in range(3):
        np.testing.assert_array_equal(tr["observations"][5 * k : 5 * k + 5], ep.observations[k, :5])
        np.testing.assert_array_equal(tr["next_observations"][5 * k : 5 * k + 5], ep.observations[k, 1:6])
    assert tr["timeouts"].sum() == 3 and not tr["terminals"].any()
    np.testing.assert_allclose(ds.episode_returns(), ep.returns())


def test_truncated_dataset_is_detected(tmp_path):
    path, _ = _dataset(tmp_path)
    h5 = path / "data" / "main_data.hdf5"
    h5.write_bytes(h5.read_bytes()[:-100])
    with pytest.raises(datasets.DatasetError, match=r"main_data.hdf5: sha256 does not match.*truncated"):
        datasets.load(path)
    meta = json.loads((path / "data" / "metadata.json").read_text())
    meta["shiftrl"].pop("sha256")
    (path / "data" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(datasets.DatasetError, match=r"(cannot be read as HDF5|cannot be read, truncated)"):
        datasets.load(path)


def _tamper(path, fn):
    """Edits the HDF5 file in place and drops the checksum (a hand-made or foreign file)."""
    import h5py

    with h5py.File(path / "data" / "main_data.hdf5", "r+") as f:
        fn(f)
    meta = json.loads((path / "data" / "metadata.json").read_text())
    meta["shiftrl"].pop("sha256")
    (path / "data" / "metadata.json").write_text(json.dumps(meta))


def test_malformed_datasets_name_the_problem(tmp_path):
    path, _ = _dataset(tmp_path)
    (path / "data" / "metadata.json").unlink()
    with pytest.raises(datasets.DatasetError, match=r"missing data/metadata\.json"):
        datasets.load(path)
    with pytest.raises(datasets.DatasetError, match="not a directory"):
        datasets.load(tmp_path / "absent")

    def drop_last_obs(f):
        obs = f["episode_1/observations"][()]
        del f["episode_1/observations"]
        f["episode_1/observations"] = obs[:-1]

    p = _dataset(tmp_path / "a")[0]
    _tamper(p, drop_last_obs)
    with pytest.raises(datasets.DatasetError, match=r"episode_1 has 3 observations for 3 actions, expected T \+ 1"):
        datasets.load(p)

    def short_rewards(f):
        r = f["episode_2/rewards"][()]
        del f["episode_2/rewards"]
        f["episode_2/rewards"] = r[:-1]

    p = _dataset(tmp_path / "b")[0]
    _tamper(p, short_rewards)
    with pytest.raises(datasets.DatasetError, match=r"episode_2/rewards has 2 steps, expected 3"):
        datasets.load(p)

    def nan_reward(f):
        f["episode_3/rewards"][1] = np.nan

    p = _dataset(tmp_path / "c")[0]
    _tamper(p, nan_reward)
    with pytest.raises(datasets.DatasetError, match=r"rewards row \d+ is NaN or infinite"):
        datasets.load(p)

    def drop_episode(f):
        del f["episode_4"]

    p = _dataset(tmp_path / "d")[0]
    _tamper(p, drop_episode)
    with pytest.raises(datasets.DatasetError, match=r"19 episode groups, metadata.json says 20"):
        datasets.load(p)

    def nan_observation(f):
        f["episode_0/observations"][2, 0] = np.inf

    def nan_action(f):
        f["episode_5/actions"][0] = np.nan

    def missing_key(f):
        del f["episode_6/terminations"]

    def wrong_total(f):
        f["episode_7"].attrs["total_steps"] = 99

    def wider_obs(f):
        obs = f["episode_8/observations"][()]
        del f["episode_8/observations"]
        f["episode_8/observations"] = np.stack([obs, obs], 1)  # (T + 1,) -> (T + 1, 2)

    def bad_name(f):
        f.move("episode_9", "episode_nine")

    for sub, fn, msg in (
        ("e", nan_observation, r"observations row \d+ is NaN or infinite"),
        ("f", nan_action, r"actions row \d+ is NaN or infinite"),
    ):  # float observations and actions: a continuous-action env
        env = envs.make("ShiftedPendulumContinuous-v0", max_episode_steps=4)
        ep = run_episodes(env, UniformBoxPolicy(env.action_space.low, env.action_space.high), 10, 0)
        p = datasets.save(
            datasets.Dataset.from_episodes(ep, {"env_id": "ShiftedPendulumContinuous-v0"}), tmp_path / sub
        )
        _tamper(p, fn)
        with pytest.raises(datasets.DatasetError, match=msg):
            datasets.load(p)

    cases = [
        ("g", missing_key, r"episode_6 lacks .*terminations"),
        ("h", wrong_total, r"episode_7 stores 3 steps, its total_steps attribute says 99"),
        ("i", wider_obs, r"observation shapes differ between episodes"),
        ("j", bad_name, r"unexpected group names"),
    ]
    for sub, fn, msg in cases:
        p = _dataset(tmp_path / sub)[0]
        _tamper(p, fn)
        with pytest.raises(datasets.DatasetError, match=msg):
            datasets.load(p)

    p = _dataset(tmp_path / "k")[0]
    (p / "data" / "metadata.json").write_text("{not json")
    with pytest.raises(datasets.DatasetError, match=r"metadata.json: not valid JSON"):
        datasets.load(p)
    p = _dataset(tmp_path / "l")[0]
    (p / "data" / "main_data.hdf5").unlink()
    with pytest.raises(datasets.DatasetError, match=r"missing data/main_data\.hdf5"):
        datasets.load(p)


def test_legacy_npz_datasets_convert_once(tmp_path):
    ep = run_episodes(envs.make("RobustLinearMDP-v0"), RandomPolicy(16), 5, 0)
    ds = datasets.Dataset.from_episodes(ep, {"env_id": "RobustLinearMDP-v0"})
    old = tmp_path / "old"
    old.mkdir()
    np.savez(
        old / "episodes.npz",
        observations=ds.observations,
        actions=ds.actions,
        rewards=ds.rewards,
        terminations=ds.terminations,
        truncations=ds.truncations,
        episode_lengths=ds.lengths,
    )
    (old / "metadata.json").write_text(
        json.dumps({"format": "shiftrl-episodes", "version": 1, "env_id": "RobustLinearMDP-v0"})
    )
    with pytest.raises(
        datasets.DatasetError, match=r"old episodes\.npz format; convert it once with `shiftrl convert-dataset"
    ):
        datasets.load(old)
    proc = subprocess.run(
        [sys.executable, "-m", "trainers", "convert-dataset", str(old), str(tmp_path / "new")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    back = datasets.load(tmp_path / "new")
    np.testing.assert_array_equal(back.episodes.observations, ep.observations)
    assert back.metadata["env_id"] == "RobustLinearMDP-v0"


def test_dataset_save_refuses_to_clobber(tmp_path):
    path, ep = _dataset(tmp_path)
    with pytest.raises(datasets.DatasetError, match="already exists"):
        datasets.save(datasets.Dataset.from_episodes(ep), path)
    datasets.save(datasets.Dataset.from_episodes(ep), path, overwrite=True)
    assert not list(tmp_path.glob(".ds.*"))  # no temporary directories left behind
