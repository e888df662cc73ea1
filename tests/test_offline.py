"""Offline RL: nearest-neighbour search, PRDC / TD3+BC / BC loss terms by hand, the index
built once per learner, the offline loop (resume, evaluation over shifts), behaviour
datasets cut from a TD3 run, and learning on the committed Pendulum fixtures
(tests/fixtures/make_offline_fixtures.py)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.offline.nearest import BruteForceIndex, GemmIndex, KDTreeIndex, make_index
from agents.prdc.config import PRDCConfig, TD3Config, preset_for
from agents.prdc.learner import PRDCLearner, TD3Learner
from envs import datasets
from trainers.config import ConfigError, dump_config, load_config
from trainers.sampling import env_spaces

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "pendulum"
ENV = "ShiftedPendulumContinuous-v0"


def _transitions(n=300, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    return {
        "observations": obs,
        "actions": rng.uniform(-2, 2, size=(n, 1)).astype(np.float32),
        "rewards": rng.normal(size=n),
        "next_observations": rng.normal(size=(n, 3)).astype(np.float32),
        "terminals": rng.random(n) < 0.1,
        "timeouts": np.zeros(n, bool),
    }


# -- nearest neighbours --------------------------------------------------------------------------
def test_kdtree_equals_brute_force_and_approximate_stays_within_its_bound():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(5000, 6))
    q = rng.normal(size=(256, 6)) * 1.5
    d_b, i_b = BruteForceIndex(pts, chunk=999).query(q)  # several chunks
    d_k, i_k = KDTreeIndex(pts).query(q)
    np.testing.assert_array_equal(i_k, i_b)
    np.testing.assert_allclose(d_k, d_b, rtol=1e-12)
    exact = np.sqrt(((pts[None] - q[:, None]) ** 2).sum(-1)).min(1)  # the definition
    np.testing.assert_allclose(d_b, exact, rtol=1e-12)
    d_a, i_a = KDTreeIndex(pts, eps=1.0).query(q)
    np.testing.assert_allclose(np.sqrt(((pts[i_a] - q) ** 2).sum(1)), d_a, rtol=1e-12)  # reported = true distance
    assert (d_a <= 2.0 * exact + 1e-12).all() and (d_a >= exact - 1e-12).all()
    with pytest.raises(ValueError, match="eps applies to kind 'kdtree' only"):
        make_index("brute", pts, eps=0.5)
    with pytest.raises(ValueError, match="eps applies to kind 'kdtree' only"):
        make_index("gemm", pts, eps=0.5)
    with pytest.raises(ValueError, match="kind must be one of"):
        make_index("faiss", pts)


@pytest.mark.parametrize("n, dims, block, sub", [(5000, 6, 1024, 128), (1999, 23, 256, 64), (3, 2, 128, 128)])
def test_gemm_index_equals_float64_brute_force(n, dims, block, sub):
    """Rows and distances equal the float64 search for keys on, near and far from the data,
    several blocks and a last run padded (n not a multiple of sub)."""
    rng = np.random.default_rng(n)
    pts = rng.normal(size=(n, dims)) * rng.uniform(0.1, 5.0, dims) + 100.0  # offset: centring matters
    keys = np.concatenate([pts[rng.integers(0, n, 64)], pts[rng.integers(0, n, 64)] + rng.normal(0, 0.05, (64, dims))])
    keys = np.concatenate([keys, 100.0 + rng.normal(0, 20.0, (64, dims))])  # far from the data
    d_g, i_g = GemmIndex(pts, block=block, sub=sub).query(keys)
    d_b, i_b = BruteForceIndex(pts).query(keys)
    np.testing.assert_array_equal(i_g, i_b)
    np.testing.assert_allclose(d_g, d_b, rtol=1e-12, atol=1e-12)


def test_gemm_index_is_exact_where_float32_cannot_tell_the_points_apart():
    """A cluster whose points differ by 1e-7 of the data's radius: float32 scores tie across
    many runs, and only the float64 re-check finds the true nearest (a float32-only search
    fails this test: its rows differ from the float64 search's)."""
    rng = np.random.default_rng(3)
    cluster = 1.0 + rng.normal(0, 1e-6, (3000, 8))
    outliers = rng.normal(0, 1000.0, (40, 8))  # make R^2 large, so float32's resolution is coarse
    pts = rng.permutation(np.concatenate([cluster, outliers]))
    keys = 1.0 + rng.normal(0, 1e-6, (100, 8))
    d2 = ((pts[None] - keys[:, None]) ** 2).sum(-1)  # the definition, in float64 without cancellation
    index = GemmIndex(pts, block=512, sub=32)
    d_g, i_g = index.query(keys)
    np.testing.assert_array_equal(i_g, d2.argmin(1))
    np.testing.assert_allclose(d_g, np.sqrt(d2.min(1)), rtol=1e-12)
    f32 = np.asarray(keys, np.float32)[:, None, :] - np.asarray(pts, np.float32)[None]
    assert (np.einsum("bnd,bnd->bn", f32, f32).argmin(1) != d2.argmin(1)).any()  # float32 alone is wrong here
    # (so is float64's expanded ||q||^2 - 2 q.x + ||x||^2 here for one key in 100: BruteForceIndex
    # is the reference only away from such 1e-13 near-ties)
    with pytest.raises(ValueError, match="NaN or inf"):
        index.query(np.full((2, 8), np.nan))


def test_auto_index_follows_sklearns_dimension_rule():
    rng = np.random.default_rng(0)
    assert isinstance(make_index("auto", rng.normal(size=(50, 15))), KDTreeIndex)  # Hopper's keys: 11 + 3
    assert isinstance(make_index("auto", rng.normal(size=(50, 16))), GemmIndex)  # HalfCheetah's: 17 + 6
    approx = make_index("auto", rng.normal(size=(50, 23)), eps=2.0)  # approximate search is the tree's
    assert isinstance(approx, KDTreeIndex) and approx.eps == 2.0
    assert isinstance(make_index("brute", rng.normal(size=(50, 23))), BruteForceIndex)


def test_presets_follow_prdc_per_domain_settings():
    c = PRDCConfig(dataset="x")
    assert preset_for("ShiftedHalfCheetah-v0") == "halfcheetah" and c.resolved("ShiftedHalfCheetah-v0")[:2] == (
        40.0,
        2.0,
    )
    assert c.resolved("ShiftedHopper-v0")[:2] == (2.5, 2.0) and c.resolved("ShiftedWalker2d-v0")[:2] == (2.5, 2.0)
    assert c.resolved("antmaze-umaze-v2") == (7.5, 7.5, 10000.0, -1.0)
    assert PRDCConfig(dataset="x", alpha=1.0).resolved("ShiftedHopper-v0")[:2] == (1.0, 2.0)
    # TD3+BC keeps its own alpha 2.5 on every domain, HalfCheetah included (40 is PRDC's)
    td3bc = PRDCConfig(dataset="x", constraint="dataset_action")
    assert td3bc.resolved("ShiftedHalfCheetah-v0")[0] == 2.5 and td3bc.resolved("antmaze-umaze-v2")[2:] == (1.0, 0.0)
    assert PRDCConfig(dataset="x", constraint="dataset_action", preset="halfcheetah").resolved("x")[0] == 40.0
    with pytest.raises(ValueError, match="preset must be 'auto' or one of"):
        PRDCConfig(dataset="x", preset="ant")


# -- loss terms by hand ----------------------------------------------------------------------
def _learner(constraint, **kw):
    cfg = PRDCConfig(dataset="x", constraint=constraint, hidden=(16, 16), policy_freq=2, **kw)
    learner = PRDCLearner(cfg, env_spaces(ENV), 0)
    tr = _transitions()
    learner.attach_dataset(tr)
    return learner, tr


@pytest.mark.parametrize("units", ["half_range", "raw"])
@pytest.mark.parametrize("constraint", ["nearest", "dataset_action", "none"])
def test_critic_and_actor_losses_equal_hand_computation(constraint, units):
    """Pendulum's torques are in [-2, 2]: "half_range" measures the actor's MSE and the key's
    action part in halves of that range (a / 2), "raw" in torque."""
    learner, tr = _learner(constraint, action_units=units)
    u = 2.0 if units == "half_range" else 1.0
    alpha, beta, _, _ = learner.cfg.resolved(ENV)
    idx = np.arange(8)
    batch = {k: v[idx] for k, v in tr.items()}
    mean, std = tr["observations"].mean(0), tr["observations"].std(0) + 1e-3  # dataset statistics
    s = torch.as_tensor((batch["observations"] - mean) / std, dtype=torch.float32)
    s2 = torch.as_tensor((batch["next_observations"] - mean) / std, dtype=torch.float32)
    a = torch.as_tensor(batch["actions"])
    for step in (1, 2):  # step 2 updates the actor (policy_freq 2)
        critic, critic_t, actor, actor_t = (
            copy.deepcopy(x) for x in (learner.critic, learner.critic_target, learner.actor, learner.actor_target)
        )
        gen = torch.Generator()
        gen.set_state(learner.gen.get_state())
        eps = (torch.randn(a.shape, generator=gen) * 0.2 * 2.0).clamp(-0.5 * 2.0, 0.5 * 2.0)  # half range 2
        a2 = (actor_t(s2) + eps).clamp(-2.0, 2.0)
        with torch.no_grad():
            y = torch.as_tensor(batch["rewards"], dtype=torch.float32) + 0.99 * (
                1 - torch.as_tensor(batch["terminals"], dtype=torch.float32)
            ) * torch.min(*critic_t(s2, a2))
            q1, q2 = critic(s, a)
            want_critic = float(F.mse_loss(q1, y) + F.mse_loss(q2, y))
        got = learner.update(batch)
        assert got["critic_loss"] == pytest.approx(want_critic, rel=1e-5)
        if step == 2:
            # the actor step sees the critic after this step's critic update
            with torch.no_grad():
                pi = actor(s)
                q = learner.critic.first(s, pi)
                if constraint == "none":
                    want = float(-q.mean())
                else:
                    lam = alpha / q.abs().mean()
                    if constraint == "nearest":
                        keys = np.concatenate([beta * (tr["observations"] - mean) / std, tr["actions"] / u], 1)
                        qk = np.concatenate([beta * s.numpy(), pi.numpy() / u], 1)
                        d2 = ((keys[None].astype(np.float64) - qk[:, None]) ** 2).sum(-1)
                        target = torch.as_tensor(tr["actions"][d2.argmin(1)])
                        assert got["nn_distance"] == pytest.approx(float(np.sqrt(d2.min(1)).mean()), rel=1e-5)
                    else:
                        target = a
                    want = float(-lam * q.mean() + F.mse_loss(pi, target) / u**2)
                    assert got["lambda"] == pytest.approx(float(lam), rel=1e-5)
            assert got["actor_loss"] == pytest.approx(want, rel=1e-5)
            if constraint != "none":
                # the gradient: lambda is a constant (detached), the constraint target too
                pi = actor(s)
                q = learner.critic.first(s, pi)
                loss = -(alpha / q.abs().mean().detach()) * q.mean() + F.mse_loss(pi, target) / u**2
                loss.backward()
                for (name, mine), theirs in zip(actor.named_parameters(), learner.actor.parameters()):
                    torch.testing.assert_close(theirs.grad, mine.grad, rtol=1e-4, atol=1e-7, msg=name)
        else:
            assert "actor_loss" not in got  # delayed policy update


def test_reward_transform_enters_the_critic_target_and_targets_move_by_polyak_on_actor_steps():
    """AntMaze's preset (r' = 10000 r - 1) on the reward itself, in y; Q1 is the actor's
    critic; after an actor step every target parameter is (1 - tau) old + tau new, and the
    targets do not move on critic-only steps (TD3's delayed updates)."""
    learner, tr = _learner("dataset_action", preset="antmaze")
    assert learner.r_scale == 10000.0 and learner.r_shift == -1.0
    batch = {k: v[:8] for k, v in tr.items()}
    s, s2 = learner.norm(batch["observations"]), learner.norm(batch["next_observations"])
    a = torch.as_tensor(batch["actions"])
    gen = torch.Generator()
    gen.set_state(learner.gen.get_state())
    eps = (torch.randn(a.shape, generator=gen) * 0.2 * 2.0).clamp(-1.0, 1.0)
    with torch.no_grad():
        a2 = (learner.actor_target(s2) + eps).clamp(-2.0, 2.0)
        r = 10000.0 * torch.as_tensor(batch["rewards"], dtype=torch.float32) - 1.0
        y = r + 0.99 * (1 - torch.as_tensor(batch["terminals"], dtype=torch.float32)) * torch.min(
            *learner.critic_target(s2, a2)
        )
        q1, q2 = learner.critic(s, a)
        torch.testing.assert_close(learner.critic.first(s, a), q1)  # the actor's Q is Q1
    before = {n: copy.deepcopy(m.state_dict()) for n, m in (("actor", learner.actor), ("critic", learner.critic))}
    targets = {
        n: copy.deepcopy(m.state_dict())
        for n, m in (("actor", learner.actor_target), ("critic", learner.critic_target))
    }
    got = learner.update(batch)  # step 1: critic only
    assert got["target_mean"] == pytest.approx(float(y.mean()), rel=1e-5)
    assert got["critic_loss"] == pytest.approx(float(F.mse_loss(q1, y) + F.mse_loss(q2, y)), rel=1e-5)
    for n, m in (("actor", learner.actor_target), ("critic", learner.critic_target)):
        for k, v in m.state_dict().items():
            torch.testing.assert_close(v, targets[n][k], rtol=0, atol=0)
    torch.testing.assert_close(learner.actor.state_dict(), before["actor"], rtol=0, atol=0)  # no actor step yet
    learner.update(batch)  # step 2: critic, actor, then Polyak
    tau = learner.cfg.tau
    for n, net, tgt in (
        ("actor", learner.actor, learner.actor_target),
        ("critic", learner.critic, learner.critic_target),
    ):
        new = net.state_dict()
        for k, v in tgt.state_dict().items():
            torch.testing.assert_close(v, (1 - tau) * targets[n][k] + tau * new[k])


def test_the_loop_builds_the_index_once_per_run(tmp_path, monkeypatch):
    """The offline loop builds PRDC's index once when it attaches the dataset, not per step or
    per evaluation (make_index counted)."""
    import agents.prdc.learner as prdc_learner
    from trainers.run import execute_run

    calls = []
    real = prdc_learner.make_index
    monkeypatch.setattr(prdc_learner, "make_index", lambda *a, **k: calls.append(1) or real(*a, **k))
    run = tmp_path / "run"
    run.mkdir()
    cfg = load_config(
        ROOT / "configs" / "prdc" / "pendulum-medium.yaml",
        ["agent_config.gradient_steps=40", "eval.every=20", "eval.episodes=1", "eval.shifts={}"],
    )
    (run / "config.yaml").write_text(dump_config(cfg))
    execute_run(run, num_workers=0)
    assert len(calls) == 1


@pytest.mark.parametrize("units", ["half_range", "raw"])
def test_bc_is_mse_to_dataset_actions_without_a_critic(units):
    learner, tr = _learner("none_bc", action_units=units)
    batch = {k: v[:16] for k, v in tr.items()}
    s = learner.norm(batch["observations"])
    with torch.no_grad():
        want = float(F.mse_loss(learner.actor(s), torch.as_tensor(batch["actions"])))
    want /= 4.0 if units == "half_range" else 1.0  # Pendulum's half range is 2
    critic_before = copy.deepcopy(learner.critic.state_dict())
    got = learner.update(batch)
    assert set(got) == {"actor_loss", "constraint"} and got["actor_loss"] == pytest.approx(want, rel=1e-6)
    for k, v in learner.critic.state_dict().items():
        torch.testing.assert_close(v, critic_before[k], rtol=0, atol=0)


def test_the_index_is_built_once_and_belongs_to_its_learner():
    a, tr = _learner("nearest")
    b, _ = _learner("nearest", beta=7.5)
    index = a.index
    for i in range(6):
        a.update({k: v[i * 8 : i * 8 + 8] for k, v in tr.items()})
    assert a.index is index  # updates reuse the index attach_dataset built
    assert b.index is not a.index and not np.array_equal(a.index.points, b.index.points)
    fresh = PRDCLearner(PRDCConfig(dataset="x"), env_spaces(ENV), 0)
    with pytest.raises(RuntimeError, match="attach_dataset"):
        fresh.update({k: v[:8] for k, v in tr.items()})


def test_td3_acts_uniformly_during_warmup_then_with_bounded_noise():
    learner = TD3Learner(TD3Config(warmup_steps=100, hidden=(8,)), env_spaces(ENV), 0)
    pol = learner.policy()
    obs = np.zeros((500, 1, 3), np.float32)
    h = pol.initial_hidden(500)
    warm = pol.act(obs, np.ones((500, 1, 1), bool), h, False, np.random.default_rng(0)).actions
    assert warm.std() > 1.0 and np.abs(warm).max() <= 2.0  # uniform on [-2, 2]: std 1.15
    learner.set_env_steps(100)
    pol.load_weights(learner.weights())
    greedy = pol.act(obs, np.ones((500, 1, 1), bool), h, True, np.random.default_rng(0)).actions
    noisy = pol.act(obs, np.ones((500, 1, 1), bool), h, False, np.random.default_rng(0)).actions
    assert np.ptp(greedy) == 0 and 0.15 < (noisy - greedy).std() < 0.25  # 0.1 x half range 2
    assert np.abs(noisy).max() <= 2.0


def test_transition_replay_cuts_episodes_into_rows_and_keeps_the_newest():
    from trainers.loops.off_policy import TransitionReplay

    def episode(start, T, terminated):
        obs = (start + np.arange(T, dtype=np.float32))[None, :, None, None]  # (1, T, N=1, 1)
        return {
            "obs": obs,
            "next_obs": np.array([[[start + T]]], np.float32),
            "actions": obs.copy(),
            "rewards": np.ones((1, T)),
            "terminated": np.eye(1, T, T - 1, dtype=bool) & terminated,
            "truncated": np.eye(1, T, T - 1, dtype=bool) & (not terminated),
            "filled": np.ones((1, T), bool),
        }

    r = TransitionReplay(5, np.random.default_rng(0))
    r.add(episode(0, 3, True))
    assert len(r) == 3
    np.testing.assert_array_equal(r.data["next_observations"][:3, 0], [1, 2, 3])  # s' of the last step: next_obs
    np.testing.assert_array_equal(r.data["terminals"][:3], [False, False, True])
    r.add(episode(10, 8, False))  # more than the capacity at once
    assert len(r) == 5 and r.added == 11
    np.testing.assert_array_equal(np.sort(r.data["observations"][:, 0]), [13, 14, 15, 16, 17])
    batch = r.sample(64)
    np.testing.assert_array_equal(batch["next_observations"][:, 0], batch["observations"][:, 0] + 1)


# -- the offline loop ------------------------------------------------------------------------
def _run(tmp_path, name, overrides, agent="prdc"):
    from trainers.run import execute_run

    d = tmp_path / name
    d.mkdir(parents=True)
    cfg = load_config(ROOT / "configs" / agent / "pendulum-medium.yaml", overrides)
    (d / "config.yaml").write_text(dump_config(cfg))
    return d, execute_run(d, num_workers=0)


def test_offline_run_resumes_exactly_and_evaluates_over_the_shift_grid(tmp_path):
    from tests.tbread import tb_tags

    base = [f"agent_config.dataset={FIX / 'medium-replay-v0'}", "agent_config.checkpoint_every=20", "eval.episodes=2"]
    straight, res = _run(tmp_path, "straight", [*base, "agent_config.gradient_steps=60", "eval.every=30"])
    assert [e["gradient_steps"] for e in res["evals"]] == [30, 60]
    assert set(res["evals"][-1]["points"]) == {"m=0.5", "m=1", "m=2"}
    assert res["evals"][-1]["normalized_score"] is not None and res["x_axis"] == "gradient_steps"
    # the score is D4RL's: on the nominal dynamics the data came from (m=1), not pooled over the grid
    last, lo, hi = res["evals"][-1], res["dataset"]["ref_min_score"], res["dataset"]["ref_max_score"]
    assert last["normalized_score_at"] == "m=1"
    assert last["normalized_score"] == pytest.approx(100 * (last["points"]["m=1"]["return"]["mean"] - lo) / (hi - lo))
    assert last["normalized_score_pooled"] == pytest.approx(100 * (last["overall"]["return"]["mean"] - lo) / (hi - lo))
    half, _ = _run(tmp_path, "half", [*base, "agent_config.gradient_steps=40", "eval.every=30"])
    cfg = (half / "config.yaml").read_text().replace("gradient_steps: 40", "gradient_steps: 60")
    (half / "config.yaml").write_text(cfg)
    from trainers.run import execute_run

    resumed = execute_run(half, num_workers=0)
    assert "resuming half from 40 gradient steps" in (half / "progress.log").read_text()
    assert resumed["evals"][-1]["overall"] == res["evals"][-1]["overall"]  # same weights, same returns
    tags = tb_tags(straight)
    assert {"losses/critic_loss", "losses/actor_loss", "losses/nn_distance", "eval/greedy/return"} <= set(tags)
    assert {"eval/m_0.5/return", "eval/greedy/normalized_score", "eval/m_1/normalized_score", "charts/SPS"} <= set(tags)
    assert [s for s, _ in tags["eval/greedy/return"]] == [30, 60]  # x-axis: gradient steps
    # resuming on other data is refused: the dataset path now holds the medium fixture
    other = tmp_path / "other"
    shutil.copytree(FIX / "medium-v0", other)
    cfg = (half / "config.yaml").read_text().replace("gradient_steps: 60", "gradient_steps: 80")
    (half / "config.yaml").write_text(cfg.replace(str(FIX / "medium-replay-v0"), str(other)))
    with pytest.raises(datasets.DatasetError, match=r"its transitions differ from those half was trained on"):
        execute_run(half, num_workers=0)


def test_the_score_is_taken_at_the_nominal_point_of_the_grid():
    """D4RL's normalised score is of the data's own dynamics: the grid's point at the env's
    nominal shift, the plain greedy point without a grid, none when the grid skips it."""
    from trainers.evaluation import nominal_point

    cfg = ROOT / "configs" / "prdc" / "pendulum-medium.yaml"
    assert nominal_point(load_config(cfg)) == "m=1"  # Pendulum's mass grid 0.5, 1, 2
    assert nominal_point(load_config(cfg, ["eval.shifts={m: [0.5, 1.0000000001, 2]}"])) == "m=1"
    assert nominal_point(load_config(cfg, ["eval.shifts={}"])) == "greedy"
    assert nominal_point(load_config(cfg, ["eval.shifts={m: [0.5, 2]}"])) is None
    assert nominal_point(load_config(cfg, ["eval.shifts={l: [1, 2]}"])) == "l=1"
    assert nominal_point(load_config(cfg, ["env.kwargs={m: 1.5}"])) is None  # the data's mass is not 1 here


def test_offline_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match=r"agent_config\.dataset: required"):
        load_config(None, ["agent=prdc", f"env.id={ENV}"])
    with pytest.raises(ConfigError, match="is not a dataset directory"):
        load_config(None, ["agent=td3bc", f"env.id={ENV}", "agent_config.dataset=/no/such"])
    with pytest.raises(ConfigError, match=r"agent_config.nn_eps|nn_eps must be >= 0"):
        load_config(None, ["agent=prdc", f"env.id={ENV}", "agent_config.nn_index=brute", "agent_config.nn_eps=0.5"])
    with pytest.raises(ConfigError, match="constraint"):
        load_config(None, ["agent=prdc", f"env.id={ENV}", "agent_config.constraint=dataset_action"])
    with pytest.raises(ConfigError, match="action_units"):
        load_config(
            None,
            [
                "agent=prdc",
                f"env.id={ENV}",
                f"agent_config.dataset={FIX / 'medium-v0'}",
                "agent_config.action_units=unit",
            ],
        )
    import envs
    from envs.episodes import run_episodes
    from trainers.policies import RandomPolicy

    other = tmp_path / "cart"
    ep = run_episodes(envs.make("ShiftedCartPole-v0"), RandomPolicy(2), 2, 0)
    datasets.save(datasets.Dataset.from_episodes(ep, {"env_id": "ShiftedCartPole-v0"}), other)
    from trainers.loops.offline import load_dataset

    cfg = load_config(None, ["agent=prdc", f"env.id={ENV}", f"agent_config.dataset={other}"])
    with pytest.raises(datasets.DatasetError, match=r"collected on 'ShiftedCartPole-v0', config env\.id is"):
        load_dataset(cfg)
    # without an env id in its metadata, a dataset of other shapes is caught before training
    anon = tmp_path / "anon"
    datasets.save(datasets.Dataset.from_episodes(ep), anon)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(
        dump_config(load_config(None, ["agent=prdc", f"env.id={ENV}", f"agent_config.dataset={anon}"]))
    )
    from trainers.run import execute_run

    with pytest.raises(datasets.DatasetError, match=r"observations have shape \(4,\) per step, the env .* has \(3,\)"):
        execute_run(run, num_workers=0)


def test_a_stored_config_from_before_action_units_resumes_with_raw_actions(tmp_path):
    """Runs written before the option existed trained on raw-action MSE: resuming one must
    not switch units halfway; a new config gets the default."""
    import yaml

    cfg = load_config(None, ["agent=prdc", f"env.id={ENV}", f"agent_config.dataset={FIX / 'medium-v0'}"])
    assert cfg.agent_config.action_units == "half_range"
    old = yaml.safe_load(dump_config(cfg))
    del old["agent_config"]["action_units"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    assert load_config(tmp_path / "config.yaml", stored=True).agent_config.action_units == "raw"
    assert load_config(tmp_path / "config.yaml").agent_config.action_units == "half_range"


# -- behaviour datasets from a TD3 run -------------------------------------------------------
def test_medium_is_the_snapshot_closest_to_a_third_of_the_way_up_to_the_best():
    """pick_medium by hand: random -100, best 200 (at step 5), so the target is 0; the closest
    return before the best wins (-10 at step 2), not the first above the target and not a
    later snapshot after the best (step 6 returns exactly 0 but comes after the best)."""
    from trainers.commands.collect import pick_medium

    snaps = [
        (1, -80.0, Path("a")),
        (2, -10.0, Path("b")),
        (3, 40.0, Path("c")),
        (5, 200.0, Path("d")),
        (6, 0.0, Path("e")),
    ]
    assert pick_medium(snaps, -100.0, 1 / 3)[0] == 2
    assert pick_medium(snaps, -100.0, 1.0)[0] == 5  # the whole way: the best itself


def test_td3_run_snapshots_and_quality_datasets(tmp_path):
    from trainers.commands.collect import collect_quality, snapshots
    from trainers.run import execute_run

    run = tmp_path / "td3"
    run.mkdir()
    cfg = load_config(
        ROOT / "configs" / "td3" / "pendulum.yaml",
        ["agent_config.env_steps=1000", "agent_config.warmup_steps=400", "eval.every=400", "eval.episodes=2"],
    )
    (run / "config.yaml").write_text(dump_config(cfg))
    execute_run(run, num_workers=0)
    snaps = snapshots(run)
    assert [s for s, _, _ in snaps] == [400, 800, 1000]
    out = {}
    for q in ("random", "medium", "medium-replay", "expert", "medium-expert"):
        out[q] = datasets.load(collect_quality(str(run), q, str(tmp_path / q), 600, num_workers=0))
    for q, ds in out.items():
        assert ds.metadata["quality"] == q and ds.metadata["env_id"] == ENV
        assert ds.metadata["ref_max_score"] == max(r for _, r, _ in snaps)
        if q != "medium-replay":
            assert 600 <= ds.n_steps <= 800  # whole 200-step episodes, at least the request (per half)
    # medium-replay is the replay buffer's first episodes up to the medium snapshot
    medium_steps = int(out["medium-replay"].metadata["behaviour"].split("(")[1].split()[0])
    assert out["medium-replay"].n_steps == medium_steps
    replay = np.load(run / "checkpoints" / "replay.npz")
    np.testing.assert_array_equal(out["medium-replay"].actions, replay["actions"][:medium_steps])
    shutil.rmtree(run)


@pytest.mark.slow
def test_behaviour_run_and_its_datasets_are_reproducible_under_a_seed(tmp_path):
    """Two TD3 behaviour runs of one config and seed, in different directories, give
    byte-identical medium and medium-replay data files: what lets a benchmark in a new clone
    rebuild its datasets and keep the runs its ledger recorded on them (benchmarks/common.py
    keys them by ``data_sha256``). A third run with another seed differs, so the check can fail."""
    from trainers.commands.collect import collect_quality
    from trainers.run import execute_run

    digests = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run = tmp_path / name / "td3"
        run.mkdir(parents=True)
        cfg = load_config(
            ROOT / "configs" / "td3" / "pendulum.yaml",
            [
                f"seed={seed}",
                "agent_config.env_steps=1200",
                "agent_config.warmup_steps=400",
                "eval.every=400",
                "eval.episodes=2",
            ],
        )
        (run / "config.yaml").write_text(dump_config(cfg))
        execute_run(run, num_workers=0)
        digests[name] = [
            datasets.data_sha256(collect_quality(str(run), q, str(tmp_path / name / q), 600, num_workers=0))
            for q in ("medium", "medium-replay")
        ]
    assert digests["a"] == digests["b"]
    assert digests["a"][0] != digests["c"][0] and digests["a"][1] != digests["c"][1]


# -- learning (slow) -------------------------------------------------------------------------
def _score(ret, ds):
    return (ret - ds.metadata["ref_min_score"]) / (ds.metadata["ref_max_score"] - ds.metadata["ref_min_score"])


@pytest.mark.slow
def test_prdc_reaches_80_percent_of_the_behaviour_return_on_medium_pendulum_data(tmp_path):
    """configs/prdc/pendulum-medium.yaml (5000 gradient steps): PRDC's greedy return reaches
    >= 80% of the behaviour data's, both normalised by the fixture's references (random
    policy 0, best TD3 snapshot 1) because Pendulum's returns are negative. The random
    policy scores 0 by definition; the data scores about 0.23."""
    med = datasets.load(FIX / "medium-v0")
    _, prdc = _run(tmp_path, "prdc_medium", ["eval.every=0", "eval.shifts={}"])
    behaviour = _score(med.episode_returns().mean(), med)
    got = _score(prdc["eval"]["overall"]["return"]["mean"], med)
    assert behaviour > 0.1 and got >= 0.8 * behaviour, (got, behaviour)


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["td3bc", "bc"])
def test_the_baselines_reach_80_percent_of_the_behaviour_return_on_medium_pendulum_data(agent, tmp_path):
    """The baselines learn on their own, not only as PRDC's yardstick: configs/{td3bc,bc}/
    pendulum-medium.yaml (5000 gradient steps, seed 0) reach >= 80% of the data's normalised
    return (the data: about 0.23; the random policy: 0). Measured with actions in half ranges
    (action_units' default): TD3+BC 0.53, BC 0.47 (PRDC 0.33); with raw actions, before
    that option, TD3+BC 0.47 (seed 1: 0.23), BC 0.43 (seed 1: 0.23); about 25 s each."""
    med = datasets.load(FIX / "medium-v0")
    _, res = _run(tmp_path, agent, ["eval.every=0", "eval.shifts={}"], agent)
    got = _score(res["eval"]["overall"]["return"]["mean"], med)
    behaviour = _score(med.episode_returns().mean(), med)
    assert behaviour > 0.1 and got >= 0.8 * behaviour, (agent, got, behaviour)


@pytest.mark.slow
def test_prdc_beats_bc_on_medium_replay_pendulum_data(tmp_path):
    """configs/{prdc,bc}/pendulum-medium-replay.yaml (10000 gradient steps, seed 0 both):
    PRDC's greedy return over 100 episodes >= BC's on the same data (the issue's criterion).

    The data (TD3's first 5k steps) is worse than uniform random actions, and so is BC.
    Measured with actions in half ranges (action_units' default), PRDC against BC: seed 0
    -1208 vs -1301, seed 1 -1100 vs -1315, seed 2 -1108 vs -1398. With raw actions (the
    reference codes' MSE, 4x stronger on Pendulum's [-2, 2] torques) PRDC was BC's equal:
    -1302 vs -1300 at seed 0. The random policy's mean return is the fixture's ref_min_score
    (-1224; std 289 per episode, 29 for a 100-episode mean): PRDC should beat it too, and
    does on seeds 1 and 2 but not on seed 0, which this test runs; that part is reported as
    an expected failure."""
    from trainers.run import execute_run

    rets = {}
    for agent in ("prdc", "bc"):
        d = tmp_path / agent
        d.mkdir()
        cfg = load_config(
            ROOT / "configs" / agent / "pendulum-medium-replay.yaml",
            ["eval.every=0", "eval.shifts={}", "eval.episodes=100"],
        )
        (d / "config.yaml").write_text(dump_config(cfg))
        rets[agent] = execute_run(d, num_workers=0)["eval"]["overall"]["return"]
    rets = {k: v["mean"] for k, v in rets.items()}
    ref = datasets.load(FIX / "medium-replay-v0").metadata["ref_min_score"]
    assert rets["prdc"] >= rets["bc"], (rets, ref)
    if rets["prdc"] <= ref + 2 * 29:  # two standard errors of the random policy's 100-episode mean
        pytest.xfail(f"PRDC {rets['prdc']:.0f} does not beat the random policy's {ref:.0f} on medium-replay")
