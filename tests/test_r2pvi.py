"""R2PVI, PEVI and DRPVI: contracts, optimality bounds and the paper's reproduction."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from agents.r2pvi import LinearVI, MethodConfig, R2PVIConfig, make_linear_batch
from envs.episodes import run_episodes
from trainers.policies import ConstantPolicy, LinearGreedyPolicy, RandomPolicy

ALL_METHODS = (
    MethodConfig("pevi"),
    MethodConfig("r2pvi_tv", lam=0.1),
    MethodConfig("r2pvi_kl", lam=0.1),
    MethodConfig("r2pvi_chi2", lam=0.1),
    MethodConfig("drpvi", rho=0.1),
)


def _batch(env, policy, n, seed, **opts):
    ep = run_episodes(env, policy, n, seed, opts or None)
    return make_linear_batch(
        ep.observations, ep.actions, ep.rewards, ep.lengths, ep.terminations, env.linear_structure()
    )


def _fit(method, batch, **cfg):
    learner = LinearVI(method, R2PVIConfig(methods=(method,), **cfg))
    learner.fit(batch)
    return learner


def _exact_value(learner, core):
    policy = LinearGreedyPolicy(learner, core)
    return core.evaluate(lambda o, h: policy.act(o, h, None))


@pytest.mark.parametrize("method", ALL_METHODS, ids=lambda m: m.label)
@pytest.mark.parametrize("penalty", ["paper", "reference"])
def test_learned_policies_never_beat_the_exact_optimum_linear_mdp(method, penalty):
    env = envs.make("RobustLinearMDP-v0")
    core = env.core
    for seed in range(5):
        learner = _fit(method, _batch(env, RandomPolicy(16), 100, seed), penalty=penalty)
        for q in np.linspace(0, 1, 6):
            shifted = core.with_shift(q=float(q))
            assert _exact_value(learner, shifted) <= shifted.evaluate() + 1e-12


@pytest.mark.parametrize(
    "method",
    [MethodConfig("pevi"), MethodConfig("r2pvi_tv", lam=3.0), MethodConfig("drpvi", rho=0.1)],
    ids=lambda m: m.label,
)
def test_learned_policies_never_beat_the_exact_optimum_american_put(method):
    env = envs.make("AmericanPutOption-v0", s0=100.0)
    learner = _fit(method, _batch(env, ConstantPolicy(0), 100, 0), beta=0.1, ridge=1.0)
    for p in (0.2, 0.5, 0.9):
        core = env.core.with_shift(p_up=p)
        value = _exact_value(learner, core)
        assert 0.0 <= value <= core.evaluate() + 1e-12


def test_state_dict_round_trip_gives_identical_actions():
    env = envs.make("AmericanPutOption-v0")
    batch = _batch(env, ConstantPolicy(0), 50, 3)
    a = _fit(MethodConfig("r2pvi_tv", lam=1.0), batch, beta=0.1, ridge=1.0)
    b = LinearVI(a.method, a.config)
    b.load_state_dict(a.state_dict())
    obs = np.linspace(70, 120, 200)[:, None]
    s = env.linear_structure()
    for h in range(20):
        np.testing.assert_array_equal(
            a.act(s.features(obs), s.stop_values(obs), h), b.act(s.features(obs), s.stop_values(obs), h)
        )


def test_fit_is_deterministic_and_seed_sensitive():
    env = envs.make("RobustLinearMDP-v0")
    w = [_fit(ALL_METHODS[1], _batch(env, RandomPolicy(16), 100, s)).w for s in (0, 0, 1)]
    np.testing.assert_array_equal(w[0], w[1])
    assert not np.array_equal(w[0], w[2])


def test_terminated_steps_have_zero_next_value_and_are_masked():
    env = envs.make("AmericanPutOption-v0", s0=90.0)  # in the money: random play exercises early
    batch = _batch(env, RandomPolicy(2), 200, 0)
    assert (~batch.valid).any()
    assert batch.next_null[~batch.valid].all()
    assert (batch.phi[~batch.valid] == 0).all()


def test_robust_methods_need_known_rewards():
    env = envs.make("ShiftedCartPole-v0")
    batch = _batch(env, RandomPolicy(2), 5, 0)
    with pytest.raises(ValueError, match="needs known reward parameters theta"):
        _fit(MethodConfig("r2pvi_tv", lam=1.0), batch)
    _fit(MethodConfig("pevi"), batch)  # PEVI regresses rewards; works on any featurised env


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"algo": "r2pvi_tv"}, "needs lam > 0"),
        ({"algo": "drpvi", "rho": -1.0}, "needs rho >= 0"),
        ({"algo": "pevi", "lam": 1.0}, "neither lam nor rho"),
        ({"algo": "sac"}, "algo must be one of"),
    ],
)
def test_method_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MethodConfig(**kwargs)


def _paper_protocol(config, reps, seed=0):
    """Figure 1(a) protocol with exact evaluation: K = 100 random trajectories per replication."""
    env = envs.make("RobustLinearMDP-v0")
    out = {m.label: [] for m in config.methods}
    for rep in range(reps):
        batch = _batch(env, RandomPolicy(16), 100, 10_000 * seed + rep)
        for m in config.methods:
            learner = LinearVI(m, config)
            learner.fit(batch)
            out[m.label].append([_exact_value(learner, env.core.with_shift(q=q)) for q in (0.0, 0.5, 1.0)])
    return {k: np.mean(v, axis=0) for k, v in out.items()}


# Paper figure 1(a), read off the figure (../shared/specs/robust-r2pvi.md), q = 0 / 0.5 / 1.
PAPER = {"pevi": (1.55, 1.16, 0.75), "r2pvi_tv_lam0.1": (1.39, 1.21, 1.00), "r2pvi_kl_lam0.1": (1.40, 1.19, 1.00)}


@pytest.mark.slow
def test_reproduces_figure_1a_within_0_05():
    """PEVI and R2PVI-KL reproduce under the paper's penalty; R2PVI-TV reproduces under the
    reference code's penalty (the code that drew the figure); the paper-penalty TV policy is
    more robust than the figure (1.33 / 1.23 / 1.13). 100 replications (the paper: 20) so the
    check is about the expectation, not one lucky draw; exact evaluation removes MC noise."""
    paper = _paper_protocol(R2PVIConfig(beta=1.0, ridge=0.1), reps=100)
    ref = _paper_protocol(R2PVIConfig(beta=1.0, ridge=0.1, penalty="reference"), reps=100)
    np.testing.assert_allclose(paper["pevi"], PAPER["pevi"], atol=0.05)
    np.testing.assert_allclose(paper["r2pvi_kl_lam0.1"], PAPER["r2pvi_kl_lam0.1"], atol=0.05)
    np.testing.assert_allclose(ref["r2pvi_tv_lam0.1"], PAPER["r2pvi_tv_lam0.1"], atol=0.05)
    # The qualitative claims: PEVI wins at q = 0, loses at q = 1, crossing in between.
    for res in (paper, ref):
        assert res["pevi"][0] > res["r2pvi_tv_lam0.1"][0] and res["pevi"][2] < res["r2pvi_tv_lam0.1"][2]


@pytest.mark.slow
def test_smaller_lambda_gives_a_flatter_curve():
    cfg = R2PVIConfig(
        methods=(MethodConfig("r2pvi_tv", lam=0.1), MethodConfig("r2pvi_tv", lam=1.0)), penalty="reference"
    )
    res = _paper_protocol(cfg, reps=40)
    drop = {k: v[0] - v[2] for k, v in res.items()}
    assert drop["r2pvi_tv_lam0.1"] < drop["r2pvi_tv_lam1"]


@pytest.mark.slow
def test_american_put_figure_1d_pattern():
    """Figure 1(d): PEVI is best at small p_up and worst at large p_up; R2PVI-TV with
    lambda 1/3/5 orders like DRPVI with rho .2/.1/.025 (smaller lambda ~ larger rho)."""
    methods = (
        MethodConfig("pevi"),
        *(MethodConfig("r2pvi_tv", lam=x) for x in (1.0, 3.0, 5.0)),
        *(MethodConfig("drpvi", rho=x) for x in (0.2, 0.1, 0.025)),
    )
    cfg = R2PVIConfig(methods=methods, beta=0.1, ridge=1.0)
    env = envs.make("AmericanPutOption-v0")
    vals = {m.label: [] for m in methods}
    for rep in range(10):
        batch = _batch(env, ConstantPolicy(0), 100, rep)
        for m in methods:
            learner = LinearVI(m, cfg)
            learner.fit(batch)
            vals[m.label].append([_exact_value(learner, env.core.with_shift(p_up=p)) for p in (0.2, 1.0)])
    v = {k: np.mean(x, axis=0) for k, x in vals.items()}
    low, high = 0, 1
    assert v["pevi"][low] > max(v[k][low] for k in v if k != "pevi")
    assert v["pevi"][high] < min(v[k][high] for k in v if k != "pevi")
    assert v["r2pvi_tv_lam1"][low] < v["r2pvi_tv_lam3"][low] < v["r2pvi_tv_lam5"][low]
    assert v["r2pvi_tv_lam1"][high] > v["r2pvi_tv_lam3"][high] > v["r2pvi_tv_lam5"][high]
    assert v["drpvi_rho0.2"][low] < v["drpvi_rho0.1"][low] < v["drpvi_rho0.025"][low]
    assert v["drpvi_rho0.2"][high] > v["drpvi_rho0.1"][high] > v["drpvi_rho0.025"][high]
