"""The rollout runtime: segment semantics, seed determinism, Ray actors equal to the
in-process runner, a killed runner replaced, asynchronous streaming, levels at reset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import envs
from agents.ppo import PPOConfig, make_learner
from envs.levels import shift_levels
from trainers.sampling import EnvRunner, ResetDistribution, RunnerGroup, env_spaces

ROOT = Path(__file__).resolve().parents[1]


def _policy(env_id, seed=0, **kw):
    return make_learner(PPOConfig(**kw), env_spaces(env_id), seed).policy()


def _equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_segments_mark_episode_boundaries_and_truncation_finals():
    env_id = "SMAClike-3m-v0"
    runner = EnvRunner(env_id, {"scenario": "3m"}, 6, 0, 0, _policy(env_id))
    batch, episodes = runner.sample(120)  # 3m battles end within 60 steps: several episodes per env
    done = batch["terminated"] | batch["truncated"]
    assert batch["first"][:, 0].all()
    np.testing.assert_array_equal(batch["first"][:, 1:], done[:, :-1])  # a new episode after every end
    assert len(episodes) == int(done.sum()) and len(episodes) >= 6
    assert not (batch["terminated"] & batch["truncated"]).any()
    # dead agents only take no-op, and the mask allows nothing else
    dead = ~batch["alive"]
    assert (batch["actions"][dead] == 0).all() and not batch["mask"][dead][:, 1:].any()
    # the recorded returns are the sums of the team rewards between boundaries
    r0 = batch["rewards"][0]
    ends = np.flatnonzero(done[0])
    if len(ends):
        first = next(e for e in episodes if e["env"] == 0)
        assert first["return"] == pytest.approx(r0[: ends[0] + 1].sum())


def test_truncated_steps_carry_the_final_observation_for_bootstrapping():
    env_id = "ShiftedPendulum-v0"
    runner = EnvRunner(env_id, {"max_episode_steps": 7}, 3, 0, 0, _policy(env_id))
    batch, episodes = runner.sample(30)
    trunc = batch["truncated"]
    assert trunc.sum() == 3 * 4 and all(e["length"] == 7 and not e["terminated"] for e in episodes)
    assert np.abs(batch["final_obs"][~trunc]).sum() == 0
    fin = batch["final_obs"][trunc]
    assert (np.abs(fin).sum(axis=(-1, -2)) > 0).all()
    # the step after a truncation starts a new episode: its observation is not the final one
    b, t = np.nonzero(trunc[:, :-1])
    assert not np.allclose(batch["obs"][b, t + 1], batch["final_obs"][b, t])


def test_same_seed_same_batch_other_seed_other_batch():
    env_id = "ShiftedCartPole-v0"
    a = EnvRunner(env_id, {}, 4, 7, 0, _policy(env_id)).sample(50)[0]
    b = EnvRunner(env_id, {}, 4, 7, 0, _policy(env_id)).sample(50)[0]
    c = EnvRunner(env_id, {}, 4, 8, 0, _policy(env_id)).sample(50)[0]
    _equal(a, b)
    assert not np.array_equal(a["obs"], c["obs"])


def test_level_distribution_chooses_each_reset_and_is_recorded():
    """Levels as data: ShiftedCartPole's shift parameters as levels; a one-hot distribution
    puts every episode on that level, and the level really changes the dynamics."""
    env_id = "ShiftedCartPole-v0"
    ls = shift_levels(envs.spec(env_id), {"length": [0.5, 4.0]})
    options = tuple({"level": dict(p)} for p in ls.levels)
    lengths = {}
    for k in (0, 1):
        runner = EnvRunner(env_id, {}, 8, 0, 0, _policy(env_id))
        dist = ResetDistribution(options, np.eye(2)[k])
        batch, eps = runner.sample(200, distribution=dist)
        assert (batch["task"] == k).all() and all(e["task"] == k for e in eps)
        lengths[k] = np.mean([e["length"] for e in eps])
    assert lengths[0] != lengths[1]
    runner = EnvRunner(env_id, {}, 8, 0, 0, _policy(env_id))
    batch, _ = runner.sample(200, distribution=ResetDistribution(options, None))
    assert set(np.unique(batch["task"])) == {0, 1}


def test_evaluation_depends_only_on_its_seed():
    env_id = "SMAClike-3m-v0"
    pol = _policy(env_id)
    r1 = EnvRunner(env_id, {}, 2, 0, 0, pol).evaluate(None, None, 10, 5, batch=4)
    r2 = EnvRunner(env_id, {}, 8, 9, 1, pol).evaluate(None, None, 10, 5, batch=32)
    _equal(r1, r2)
    assert (r1["length"] > 0).all()


def test_whole_episodes_are_padded_with_filled_masks():
    env_id = "SMAClike-3m-v0"
    runner = EnvRunner(env_id, {}, 3, 0, 0, _policy(env_id))
    runner.episodes(2)
    batch, recs = runner.episodes(4)  # episodes in flight at the end of a call continue in the next
    assert batch["obs"].shape[0] == len(recs) >= 4
    lengths = batch["filled"].sum(1)
    np.testing.assert_array_equal(lengths, [r["length"] for r in recs])
    ends = batch["terminated"] | batch["truncated"]
    np.testing.assert_array_equal(ends.sum(1), np.ones(len(recs)))  # exactly one end per episode
    np.testing.assert_allclose(batch["rewards"].sum(1), [r["return"] for r in recs])


# -- Ray tier -----------------------------------------------------------------------------------
@pytest.mark.ray
def test_ray_runners_equal_the_in_process_runner_and_are_deterministic(ray_local):
    env_id = "SMAClike-3m-v0"
    pol = _policy(env_id)
    weights = make_learner(PPOConfig(), env_spaces(env_id), 1).weights()  # weights travel by reference

    def sample(num_workers):
        g = RunnerGroup(env_id, {}, pol, 3, num_workers, 4)
        try:
            g.set_weights(weights)
            g.sample(20)
            return g.sample(20)[0]
        finally:
            g.close()

    local, remote = sample(0), sample(1)
    _equal(local, remote)
    a, b = sample(2), sample(2)
    _equal(a, b)
    assert a["obs"].shape[0] == 8
    _equal({k: v[:4] for k, v in a.items()}, local)  # runner 0 of two is the same stream as a lone runner


@pytest.mark.ray
def test_an_impossible_actor_request_fails_fast(ray_local):
    from trainers.runtime import ResourceError

    with pytest.raises(ResourceError, match=r"3 rollout actors .* could not start within 5 s: the cluster has 2 CPUs"):
        RunnerGroup("SMAClike-3m-v0", {}, _policy("SMAClike-3m-v0"), 0, 3, 1, schedule_timeout=5)


@pytest.mark.ray
def test_killed_runner_is_replaced_and_the_run_goes_on(ray_local):
    env_id = "SMAClike-3m-v0"
    group = RunnerGroup(env_id, {}, _policy(env_id), 0, 2, 4)
    try:
        group.sample(10)
        victim = group.pids()[0]
        os.kill(victim, signal.SIGKILL)
        batch, _ = group.sample(10)
        assert batch["obs"].shape[0] == 8 and group.replacements == 1
        assert victim not in group.pids()
    finally:
        group.close()


@pytest.mark.ray
def test_async_stream_yields_episodes_from_every_runner(ray_local):
    env_id = "SMAClike-3m-v0"
    group = RunnerGroup(env_id, {}, _policy(env_id), 0, 2, 2)
    try:
        got = []
        for batch, recs in group.stream(2):
            got.append((batch, recs))
            group.set_weights(make_learner(PPOConfig(), env_spaces(env_id), len(got)).weights())
            if len(got) == 4:
                break
        assert all(b["filled"].sum() == sum(r["length"] for r in rs) for b, rs in got)
    finally:
        group.close()


PLUGIN_ENV = """
import envs
envs.register("PluginPut-v0", "envs.robust.american_put:AmericanPutOption", kwargs={"horizon": 4},
              shifts=[envs.ShiftParam("p_up", 0.5, 0.0, 1.0)], description="a plugin env")
"""


def test_plugin_envs_get_the_api_tests_and_resolve_in_a_ray_worker(tmp_path):
    """An env registered only through SHIFTRL_PLUGINS is collected by the registry-driven
    API tests and builds inside a Ray worker that never imported the module itself."""
    (tmp_path / "plugin_envs.py").write_text(PLUGIN_ENV)
    env = {**os.environ, "SHIFTRL_PLUGINS": "plugin_envs", "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/test_env_api.py", "-k", "PluginPut", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    script = (
        "from trainers.runtime import init_ray\n"
        "from trainers.sampling import RunnerGroup\n"
        "from trainers.policies import RandomPolicy\n"
        "init_ray(num_cpus=2)\n"
        "import numpy as np\n"
        "from agents.ppo import PPOConfig, make_learner\n"
        "from trainers.sampling import env_spaces\n"
        "pol = make_learner(PPOConfig(), env_spaces('PluginPut-v0'), 0).policy()\n"
        "g = RunnerGroup('PluginPut-v0', {}, pol, 0, 1, 2)\n"
        "b, eps = g.sample(8)\n"
        "print('OK', b['obs'].shape, g.node_ids()[0] != 'local')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0 and "OK (2, 8, 1, 1) True" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]


def test_evaluation_at_a_task_plays_that_task_and_records_it():
    """Per-task evaluation of a multi-task set: reset options choose the task, and the
    recorded task index is that task's for every episode."""
    env_id = "SMAClike-surComb3-v0"
    tasks = envs.spec(env_id).tasks
    runner = EnvRunner(env_id, {}, 2, 0, 0, _policy(env_id))
    for i, task in enumerate(tasks):
        res = runner.evaluate(None, {"task": task}, 3, 0)
        assert (res["task"] == i).all(), (task, res["task"])
    batch, _ = runner.sample(30)  # training draws tasks itself and records them
    assert set(np.unique(batch["task"])) <= set(range(len(tasks))) and (batch["task"] >= 0).all()
