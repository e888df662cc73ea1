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
from trainers.policies import RandomPolicy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_parse(path):
    load_config(path)


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
    return datasets.save(datasets.Dataset(ep, {"env_id": "RobustLinearMDP-v0"}), tmp_path / "ds"), ep


def test_dataset_round_trip(tmp_path):
    path, ep = _dataset(tmp_path)
    ds = datasets.load(path)
    np.testing.assert_array_equal(ds.episodes.observations, ep.observations)
    np.testing.assert_array_equal(ds.episodes.actions, ep.actions)
    np.testing.assert_array_equal(ds.episodes.rewards, ep.rewards)
    assert ds.metadata["n_steps"] == int(ep.lengths.sum())


def test_continuous_dataset_round_trip_with_variable_lengths(tmp_path):
    env = envs.make("ShiftedPendulum-v0", max_episode_steps=7)
    ep = run_episodes(env, RandomPolicy(5), 3, 0)
    ep2 = run_episodes(envs.make("ShiftedCartPole-v0"), RandomPolicy(2), 4, 0)
    for i, e in enumerate((ep, ep2)):
        path = datasets.save(datasets.Dataset(e), tmp_path / f"d{i}")
        back = datasets.load(path).episodes
        np.testing.assert_array_equal(back.lengths, e.lengths)
        for k in range(e.n):
            L = e.lengths[k]
            np.testing.assert_array_equal(back.observations[k, : L + 1], e.observations[k, : L + 1])


def test_truncated_dataset_is_detected(tmp_path):
    path, _ = _dataset(tmp_path)
    npz = path / "episodes.npz"
    npz.write_bytes(npz.read_bytes()[:-100])
    with pytest.raises(datasets.DatasetError, match=r"episodes.npz: sha256 does not match.*truncated"):
        datasets.load(path)
    meta = json.loads((path / "metadata.json").read_text())
    meta.pop("sha256")
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(datasets.DatasetError, match="cannot be read as an npz archive"):
        datasets.load(path)


def test_malformed_datasets_name_the_problem(tmp_path):
    path, _ = _dataset(tmp_path)
    (path / "metadata.json").unlink()
    with pytest.raises(datasets.DatasetError, match=r"missing metadata\.json"):
        datasets.load(path)
    with pytest.raises(datasets.DatasetError, match="not a directory"):
        datasets.load(tmp_path / "absent")
    path2, _ = _dataset(tmp_path / "x")
    flat = dict(np.load(path2 / "episodes.npz"))
    flat["rewards"] = flat["rewards"][:-1]
    np.savez(path2 / "episodes.npz", **flat)
    meta = json.loads((path2 / "metadata.json").read_text())
    meta.pop("sha256")
    (path2 / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(datasets.DatasetError, match=r"rewards has \d+ rows, expected sum\(episode_lengths\)"):
        datasets.load(path2)


def test_dataset_save_refuses_to_clobber(tmp_path):
    path, ep = _dataset(tmp_path)
    with pytest.raises(datasets.DatasetError, match="already exists"):
        datasets.save(datasets.Dataset(ep), path)
    datasets.save(datasets.Dataset(ep), path, overwrite=True)
    assert not list(tmp_path.glob(".ds.*"))  # no temporary directories left behind
