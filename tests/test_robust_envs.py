"""Robust MDP dynamics: exact evaluators against Monte Carlo, batched core against the
Gymnasium facade, shifts through kwargs and reset options."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.episodes import run_episodes
from trainers.policies import ConstantPolicy, RandomPolicy


def test_linear_mdp_features_on_simplex_and_kernel_rows_sum_to_one():
    core = envs.make("RobustLinearMDP-v0").core
    phi = core.features(np.arange(5))
    assert (phi >= 0).all() and np.allclose(phi.sum(-1), 1.0)
    for q in (None, 0.0, 0.3, 1.0):
        P = core.with_shift(q=q)._P
        assert np.allclose(P.sum(-1), 1.0)


def test_linear_mdp_optimal_values_by_hand():
    core = envs.make("RobustLinearMDP-v0").core
    # Best action everywhere is a = (1,1,1,1): phi_4 = 0.5. Nominal: V(x3) = .5, V(x2) = .5 + .5*1 + .4995*.5,
    # V(x1) = .5 * 2 + .4995 * V(x2) (x5 pays 1 per remaining step, x4 pays 0).
    v2 = 0.5 + 0.5 + 0.4995 * 0.5
    assert core.evaluate() == pytest.approx(0.5 * 2 + 0.4995 * v2)
    # q = 1: a = (-1,-1,-1,-1) at x1 avoids the failure mass: 0.9 * V(x2) with V(x2) = 1.25 (no leak at h=0).
    assert core.with_shift(q=1.0).evaluate() == pytest.approx(max(0.9 * v2, 0.5 * v2))


@pytest.mark.parametrize("q", [None, 0.0, 0.5, 1.0])
def test_linear_mdp_monte_carlo_matches_exact_dp(q):
    env = envs.make("RobustLinearMDP-v0")
    policy = ConstantPolicy(15)
    exact = env.core.with_shift(q=q).evaluate(lambda o, h: np.full(len(o), 15))
    ep = run_episodes(env, policy, 200_000, seed=1, options={"q": q})
    assert ep.returns().mean() == pytest.approx(exact, abs=0.01)


@pytest.mark.parametrize("p_up", [0.2, 0.5, 0.9])
def test_american_put_monte_carlo_matches_exact_tree(p_up):
    env = envs.make("AmericanPutOption-v0", s0=98.0)
    core = env.core.with_shift(p_up=p_up)

    class ExerciseBelow:
        def act(self, obs, h, rng):
            return (obs[:, 0] < 95.0).astype(np.int64)

    exact = core.evaluate(lambda o, h: (o[:, 0] < 95.0).astype(np.int64))
    ep = run_episodes(env, ExerciseBelow(), 100_000, seed=2, options={"p_up": p_up})
    assert ep.returns().mean() == pytest.approx(exact, abs=0.05)
    assert core.evaluate() >= exact - 1e-12  # the optimum dominates any stopping rule


def test_batched_core_equals_gymnasium_facade_for_the_same_draws():
    env = envs.make("RobustLinearMDP-v0", q=0.4)
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    _, state = env.core.reset(rng_b, 1)
    env.reset()
    env.np_random = rng_a
    actions = [3, 15, 0]
    for a in actions:
        o1, r1, t1, _, _ = env.step(a)
        o2, r2, t2, state = env.core.step(state, np.array([a]), rng_b)
        assert (o1, r1, t1) == (int(o2[0]), float(r2[0]), bool(t2[0]))


def test_shift_through_reset_options_and_bad_values():
    env = envs.make("AmericanPutOption-v0")
    _, info = env.reset(seed=0, options={"p_up": 0.9})
    assert info["shift"] == {"p_up": 0.9}
    with pytest.raises(envs.EnvError, match=r"shift p_up=1.5 outside \[0.0, 1.0\]"):
        env.reset(options={"p_up": 1.5})
    with pytest.raises(envs.EnvError, match="unknown shift parameter 'gravity'"):
        env.reset(options={"gravity": 1.0})


def test_cartpole_shift_changes_physics_and_recomputes_derived_constants():
    env = envs.make("ShiftedCartPole-v0", masspole=2.0, length=3.0)
    inner = env.inner
    assert inner.masspole == pytest.approx(0.2) and inner.length == pytest.approx(1.5)
    assert inner.total_mass == pytest.approx(1.2) and inner.polemass_length == pytest.approx(0.3)
    nominal = run_episodes(envs.make("ShiftedCartPole-v0"), RandomPolicy(2), 200, seed=0).lengths.mean()
    heavy_gravity = run_episodes(
        envs.make("ShiftedCartPole-v0"), RandomPolicy(2), 200, seed=0, options={"gravity": 4.0}
    ).lengths.mean()
    assert heavy_gravity < nominal  # the pole falls faster under 4x gravity


def test_classic_features_are_simplex():
    for env_id in ("ShiftedCartPole-v0", "ShiftedPendulum-v0"):
        env = envs.make(env_id)
        obs = np.stack([env.observation_space.sample() for _ in range(32)])
        phi = env.linear_structure().features(obs)
        assert (phi >= 0).all() and np.allclose(phi.sum(-1), 1.0)


def test_mujoco_shifts_scale_the_model_and_change_the_dynamics():
    import envs

    env = envs.make("ShiftedHopper-v0")
    m = env.inner.model
    nominal_mass, nominal_fr, nominal_g = m.body_mass.copy(), m.geom_friction[:, 0].copy(), m.opt.gravity.copy()
    env.reset(seed=0, options={"torso_mass": 2.0, "friction": 0.5, "gravity": 1.5})
    torso = m.body("torso").id
    assert m.body_mass[torso] == pytest.approx(2.0 * nominal_mass[torso])
    assert np.delete(m.body_mass, torso) == pytest.approx(np.delete(nominal_mass, torso))
    np.testing.assert_allclose(m.geom_friction[:, 0], 0.5 * nominal_fr)
    np.testing.assert_allclose(m.opt.gravity, 1.5 * nominal_g)
    env.reset(seed=0, options={"level": {"torso_mass": 1.0, "friction": 1.0, "gravity": 1.0}})
    np.testing.assert_allclose(m.body_mass, nominal_mass)

    def rollout(options):
        e = envs.make("ShiftedHopper-v0")
        obs, _ = e.reset(seed=3, options=options)
        rng = np.random.default_rng(0)
        out = [obs]
        for _ in range(30):
            obs, *_ = e.step(rng.uniform(-1, 1, 3))
            out.append(obs)
        return np.array(out)

    np.testing.assert_array_equal(rollout({}), rollout({}))  # deterministic under a seed
    assert np.abs(rollout({"gravity": 0.5}) - rollout({})).max() > 1e-2
    with pytest.raises(envs.EnvError, match=r"shift thigh_mass=5.0 outside the scale range \[0.1, 3.0\]"):
        env.reset(options={"thigh_mass": 5.0})
    with pytest.raises(envs.EnvError, match="unknown shift 'bthigh_mass'"):
        env.reset(options={"bthigh_mass": 1.0})


def test_continuous_pendulum_clips_torque_and_shifts_mass():
    import envs

    a, b = envs.make("ShiftedPendulumContinuous-v0"), envs.make("ShiftedPendulumContinuous-v0", m=2.0)
    oa, _ = a.reset(seed=1)
    ob, _ = b.reset(seed=1)
    np.testing.assert_array_equal(oa, ob)
    ra = a.step(np.array([5.0]))  # clipped to 2
    rb = b.step(np.array([2.0]))
    assert not np.allclose(ra[0], rb[0])  # heavier pendulum, same torque: other motion
    c = envs.make("ShiftedPendulumContinuous-v0")
    c.reset(seed=1)
    np.testing.assert_array_equal(c.step(np.array([2.0]))[0], ra[0])
