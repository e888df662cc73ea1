"""The agent registry and the contract every registered agent keeps: save then load gives
identical greedy actions, the loss terms are finite, and a restored learner continues
exactly as the original would (networks, optimiser and RNG state all restored)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainers.agents import AgentError, agent_spec, register_agent, registered_agents
from trainers.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
ENV_FOR_KIND = {"pettingzoo": "SMAClike-3m-v0", "gymnasium": "ShiftedCartPole-v0"}


CONTINUOUS = "ShiftedPendulumContinuous-v0"  # agents with continuous actions only (TD3 family)


def _env_for(spec):
    if spec.learner and "agents.prdc" in spec.learner:
        return CONTINUOUS
    if spec.loop == "curriculum":
        return "CaveEscape-v0"
    return ENV_FOR_KIND["pettingzoo" if "pettingzoo" in spec.env_kinds else "gymnasium"]


def _greedy(policy, batch):
    """Greedy actions of a policy on a batch's first step (its recorded hidden state)."""
    out = policy.act(
        batch["obs"][:, 0], batch["mask"][:, 0], batch["h0"], True, np.random.default_rng(0), state=batch["state"][:, 0]
    )
    return out.actions


def _contract_online(name, tmp_path, episodes=False):
    import torch

    from trainers import checkpoint
    from trainers.sampling import EnvRunner, env_spaces

    spec = agent_spec(name)
    env_id = _env_for(spec)
    cfg = load_config(None, [f"agent={name}", f"env.id={env_id}"]).agent_config
    spaces = env_spaces(env_id)
    learner = spec.make_learner(cfg, spaces, 0)
    runner = EnvRunner(env_id, {}, 4, 0, 0, learner.policy())

    flat = getattr(cfg, "replay", "episodes") == "transitions"

    def data():  # segments for on-policy learners, whole episodes for off-policy ones
        if flat:  # TD3: transition batches from the loop's transition replay
            from trainers.loops.off_policy import TransitionReplay

            replay = TransitionReplay(1000, np.random.default_rng(len(calls)))
            replay.add(runner.episodes(2)[0])
            calls.append(1)
            return replay.sample(64)
        return runner.episodes(4)[0] if episodes else runner.sample(16)[0]

    calls: list[int] = []

    batch = data()
    terms = learner.update(batch)
    assert terms and all(np.isfinite(v) for k, v in terms.items() if k != "explained_variance"), terms
    checkpoint.save(tmp_path / "state.pt", learner.state_dict(), {"iteration": 1})
    restored = spec.make_learner(cfg, spaces, 123)  # another seed: everything must come from the file
    state, loop = checkpoint.load(tmp_path / "state.pt")
    restored.load_state_dict(state)
    assert loop == {"iteration": 1}
    probe = runner.episodes(2)[0] if flat else batch
    np.testing.assert_array_equal(_greedy(learner.policy(), probe), _greedy(restored.policy(), probe))
    # the next update is identical: optimiser moments, minibatch RNG and counters restored
    batch2 = data()
    a, b = learner.update(batch2), restored.update(batch2)
    assert a == b
    for x, y in zip(learner.weights().values(), restored.weights().values()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def _contract_closed_form(name, tmp_path):
    import envs
    from agents.r2pvi import make_linear_batch
    from envs.episodes import run_episodes
    from trainers.io import atomic_save_npz, load_npz
    from trainers.policies import RandomPolicy

    spec = agent_spec(name)
    cfg = load_config(ROOT / "configs/r2pvi/linear_mdp.yaml").agent_config
    env = envs.make("RobustLinearMDP-v0")
    s = env.linear_structure()
    ep = run_episodes(env, RandomPolicy(16), 50, 0)
    batch = make_linear_batch(ep.observations, ep.actions, ep.rewards, ep.lengths, ep.terminations, s)
    learner = spec.make_learner(cfg, s, 0)
    terms = learner.update(batch)
    assert terms and all(np.isfinite(v) for v in terms.values())
    atomic_save_npz(tmp_path / "rep.npz", learner.state_dict())
    restored = spec.make_learner(cfg, s, 0)
    restored.load_state_dict(load_npz(tmp_path / "rep.npz"))
    obs = ep.observations.reshape(-1, *ep.observations.shape[2:])
    for label in learner.methods:
        for h in range(s.horizon):
            a = learner.methods[label].act(s.features(obs), s.stop_values(obs), h)
            b = restored.methods[label].act(s.features(obs), s.stop_values(obs), h)
            np.testing.assert_array_equal(a, b)


def _contract_rllib(name, tmp_path):
    import io

    import torch

    from trainers.loops.rllib import RLlibPolicy, _module_spec, make_rllib_env
    from trainers.sampling import EnvRunner

    cfg = load_config(None, [f"agent={name}", "env.id=SMAClike-3m-v0"])
    env = make_rllib_env({"id": "SMAClike-3m-v0", "kwargs": {}})
    aid = env.possible_agents[0]
    build = _module_spec(cfg.agent_config, env.observation_space[aid], env.action_space[aid]).build
    module = build()
    runner = EnvRunner("SMAClike-3m-v0", {}, 4, 0, 0, RLlibPolicy(module))
    batch, _ = runner.sample(8)
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    buf.seek(0)
    other = build()
    other.load_state_dict(torch.load(buf, weights_only=True))
    np.testing.assert_array_equal(_greedy(RLlibPolicy(module), batch), _greedy(RLlibPolicy(other), batch))
    # RLlib's learner owns update(); its loss terms are checked in TensorBoard (tests/test_rllib_ppo.py)


def _contract_off_policy(name, tmp_path):
    _contract_online(name, tmp_path, episodes=True)


def _contract_offline(name, tmp_path):
    """Offline learners: losses finite, save/load gives identical greedy actions and an
    identical next update (the index is rebuilt from the same dataset by attach_dataset)."""
    import torch

    from envs import datasets
    from trainers import checkpoint
    from trainers.sampling import EnvRunner, env_spaces

    spec = agent_spec(name)
    data = ROOT / "tests" / "fixtures" / "pendulum" / "medium-replay-v0"
    cfg = load_config(None, [f"agent={name}", f"env.id={CONTINUOUS}", f"agent_config.dataset={data}"]).agent_config
    tr = datasets.load(data).transitions()
    spaces = env_spaces(CONTINUOUS)
    learner = spec.make_learner(cfg, spaces, 0)
    learner.attach_dataset(tr)
    rng = np.random.default_rng(0)

    def batch():
        idx = rng.integers(0, len(tr["rewards"]), 64)
        return {k: v[idx] for k, v in tr.items()}

    for _ in range(3):
        terms = learner.update(batch())
    assert terms and all(np.isfinite(v) for v in terms.values()), terms
    checkpoint.save(tmp_path / "state.pt", learner.state_dict(), {"steps": 3})
    restored = spec.make_learner(cfg, spaces, 123)
    restored.attach_dataset(tr)
    restored.load_state_dict(checkpoint.load(tmp_path / "state.pt")[0])
    probe = EnvRunner(CONTINUOUS, {}, 4, 0, 0, learner.policy()).episodes(2)[0]
    np.testing.assert_array_equal(_greedy(learner.policy(), probe), _greedy(restored.policy(), probe))
    b = batch()
    assert learner.update(b) == restored.update(b)
    for x, y in zip(learner.weights()["actor"].values(), restored.weights()["actor"].values()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def _contract_rllib_offline(name, tmp_path):
    """RLlib's offline modules (built without Ray): weights saved with torch.save reload
    (weights_only) into the same greedy policy, whose actions respect the env's bounds."""
    import io

    import torch

    from trainers.loops.rllib_offline import RLlibOfflinePolicy, action_bounds, build_module
    from trainers.sampling import EnvRunner

    data = ROOT / "tests" / "fixtures" / "pendulum" / "medium-replay-v0"
    cfg = load_config(None, [f"agent={name}", f"env.id={CONTINUOUS}", f"agent_config.dataset={data}"])
    low, high = action_bounds(cfg)
    policy = RLlibOfflinePolicy(build_module(cfg), low, high)
    probe = EnvRunner(CONTINUOUS, {}, 4, 0, 0, policy).episodes(2)[0]
    buf = io.BytesIO()
    torch.save({k: torch.as_tensor(v) for k, v in policy.module.get_state().items()}, buf)
    buf.seek(0)
    other = RLlibOfflinePolicy(build_module(cfg), low, high)
    other.load_weights(torch.load(buf, weights_only=True))
    actions = _greedy(policy, probe)
    np.testing.assert_array_equal(actions, _greedy(other, probe))
    assert np.all(actions >= low) and np.all(actions <= high)
    # RLlib's learner owns update(); its losses are checked in tests/test_rllib_offline.py


def _contract_curriculum(name, tmp_path):
    """The online contract on Cave Escape, plus the curriculum's state (buffer, scores,
    generator weights, RNG) surviving a checkpoint read with weights_only."""
    import envs
    from agents.dred.curriculum import Curriculum
    from envs.cave.sets import level_set
    from envs.levels import LevelSet, check_level_set
    from trainers import checkpoint

    _contract_online(name, tmp_path)
    cfg = load_config(None, [f"agent={name}", "env.id=CaveEscape-v0", "agent_config.vae_epochs=2"]).agent_config
    data = [dict(p) for p in level_set("train", per_family=4).levels]
    make = lambda: Curriculum(cfg, 0, envs.spec("CaveEscape-v0"), data, {}, 36)  # noqa: E731
    cur = make()
    plan = cur.plan(0.0)
    new = cur.proposals()
    assert plan is None or len(plan) == 36
    checkpoint.save(tmp_path / "cur.pt", {}, {"curriculum": cur.state_dict()})
    other = make()
    other.load_state_dict(checkpoint.load(tmp_path / "cur.pt")[1]["curriculum"])
    assert other.plan(0.5) == cur.plan(0.5) and other.proposals() == cur.proposals()
    # the replay-only methods propose nothing; the generators a cycle's worth of valid levels
    assert len(new) == (0 if cfg.method in ("uniform", "plr", "dr") else cfg.n_generated), (cfg.method, len(new))
    if new:  # each level passes the env's level check
        ls = LevelSet("CaveEscape-v0", "cave", tuple(new), tuple(f"new_{i}" for i in range(len(new))), "proposals")
        check_level_set(ls, envs.spec("CaveEscape-v0"))


CONTRACTS = {
    "curriculum": _contract_curriculum,
    "offline": _contract_offline,
    "rllib_offline": _contract_rllib_offline,
    "on_policy": _contract_online,
    "off_policy": _contract_off_policy,
    "closed_form": _contract_closed_form,
    "rllib": _contract_rllib,
}


@pytest.mark.parametrize("name", sorted(registered_agents()))
def test_every_registered_agent_keeps_the_contract(name, tmp_path):
    spec = agent_spec(name)
    if spec.loop not in CONTRACTS:
        pytest.fail(f"agent {name!r} runs the {spec.loop} loop, which has no contract test yet: add one here")
    CONTRACTS[spec.loop](name, tmp_path)


def test_shiftrl_agents_lists_every_agent_with_its_fields():
    out = subprocess.run(
        [sys.executable, "-m", "trainers", "agents"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    for name, spec in registered_agents().items():
        assert f"{name}  [{spec.loop};" in out.stdout
    assert "critic_input = 'state'" in out.stdout  # mappo shows the value that defines it
    assert "n_steps = 128: steps per env per iteration" in out.stdout


def test_bad_registrations_are_rejected():
    with pytest.raises(AgentError, match="must be lower-case"):
        register_agent("My-PPO", config="a:b", loop="on_policy", learner="a:c")
    with pytest.raises(AgentError, match="loop must be one of"):
        register_agent("x1", config="a:b", loop="magic", learner="a:c")  # type: ignore[arg-type]
    with pytest.raises(AgentError, match="needs a learner factory"):
        register_agent("x2", config="a:b", loop="on_policy")
    with pytest.raises(AgentError, match="already registered"):
        register_agent("ppo", config="agents.r2pvi.config:R2PVIConfig", loop="closed_form", learner="a:b")


PLUGIN = """
from trainers.agents import register_agent

register_agent(
    "tiny_ppo",
    config="agents.ppo.config:PPOConfig",
    loop="on_policy",
    learner="agents.ppo.learner:make_learner",
    description="a user's agent: PPO without recurrence",
    defaults={"recurrent": "none"},
)
"""


def test_user_agent_registered_by_a_plugin_module_runs_through_every_command(tmp_path, monkeypatch):
    (tmp_path / "my_agents.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = load_config(None, ["agent=tiny_ppo", "env.id=ShiftedCartPole-v0", "imports=[my_agents]"])
    assert cfg.agent_config.recurrent == "none"
    with pytest.raises(ConfigError, match=r"agent_config.recurrent: agent 'tiny_ppo' is defined by recurrent='none'"):
        load_config(
            None,
            ["agent=tiny_ppo", "env.id=ShiftedCartPole-v0", "imports=[my_agents]", "agent_config.recurrent=gru"],
        )
    env = {**__import__("os").environ, "SHIFTRL_PLUGINS": "my_agents", "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "trainers", "agents"], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )
    assert "tiny_ppo  [on_policy; envs: gymnasium, pettingzoo]  a user's agent" in out.stdout, out.stderr
