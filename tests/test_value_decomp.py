"""VDN and QMIX (agents/value_decomp): the mixers' defining properties, TD targets against
hand computations and an independent per-episode unroll, the exploration schedule reaching
the actors, exact continuation after a checkpoint, and the QMIX paper's two-step game, which
QMIX solves and VDN provably cannot (its additive fit of the second stage undervalues it)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from agents.protocols import EnvSpaces
from agents.value_decomp import QMixer, QPLEXMixer, ValueDecompConfig, VDNMixer, make_learner
from agents.value_decomp.losses import lambda_returns, td_targets

torch.set_num_threads(1)

GAMMA = 0.9


def _spaces(n_agents: int = 2, obs: int = 2, state: int = 3, n_actions: int = 3) -> EnvSpaces:
    return EnvSpaces("Test-v0", n_agents, (obs,), (state,), n_actions, has_mask=True)


def _small(**kw) -> ValueDecompConfig:
    base = dict(rnn_hidden=8, mixing_embed_dim=4, hypernet_embed=8)
    return ValueDecompConfig(**(base | kw))


# -- config and factory ------------------------------------------------------------------------
def test_config_rejects_bad_values_naming_the_field():
    with pytest.raises(ValueError, match="mixer must be one of"):
        ValueDecompConfig(mixer="qtran")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_episodes must be >= 1"):
        ValueDecompConfig(batch_episodes=0)
    with pytest.raises(ValueError, match="epsilon_finish must be in"):
        ValueDecompConfig(epsilon_finish=1.5)
    with pytest.raises(ValueError, match=r"warmup_episodes \(6000\) must be <= buffer_episodes"):
        ValueDecompConfig(warmup_episodes=6000)
    with pytest.raises(ValueError, match="gamma must be in"):
        ValueDecompConfig(gamma=0.0)


def test_continuous_actions_are_refused_naming_the_env():
    spaces = EnvSpaces("Pendulum-v1", 1, (3,), (3,), 0, (1,), (-2.0,), (2.0,))
    with pytest.raises(ValueError, match=r"Pendulum-v1.*discrete actions"):
        make_learner(ValueDecompConfig(), spaces, 0)


# -- (1) mixers --------------------------------------------------------------------------------
def test_vdn_is_the_sum_and_qmix_is_monotone_in_every_agent_q():
    torch.manual_seed(0)
    qs = torch.randn(5, 7, 4)
    states = torch.randn(5, 7, 10)
    torch.testing.assert_close(VDNMixer()(qs, states), qs.sum(-1))
    mixer = QMixer(4, 10, embed_dim=32, hypernet_embed=64)
    for p in mixer.parameters():  # well beyond the initial scale: monotonicity is structural
        torch.nn.init.normal_(p, std=2.0)
    q = (10 * torch.randn(5, 7, 4)).requires_grad_(True)
    out = mixer(q, states)
    assert out.shape == (5, 7)
    (grad,) = torch.autograd.grad(out.sum(), q)
    assert (grad >= 0).all() and (grad > 0).any()
    # and not additive: QMIX's value of one agent's Q depends on the others' and the state
    q2 = q.detach().clone()
    q2[..., 1] += 5.0
    gain_a = mixer(q2, states) - mixer(q.detach(), states)
    q3, q4 = q.detach().clone(), q2.clone()
    q3[..., 0] += 5.0
    q4[..., 0] += 5.0
    gain_b = mixer(q4, states) - mixer(q3, states)
    assert not torch.allclose(gain_a, gain_b)


def _qplex(**kw) -> QPLEXMixer:
    torch.manual_seed(3)
    mixer = QPLEXMixer(3, 11, 4, unit_dim=3, embed_dim=8, hypernet_embed=8, **kw)
    for p in mixer.parameters():  # well beyond the initial scale
        torch.nn.init.normal_(p, std=1.0)
    return mixer


def test_qplex_matches_its_definition_on_a_hand_built_case():
    """Q_tot = sum_i (w_i Q_i + b / N) + sum_i (lambda_i - 1) w_i (Q_i - max Q_i), with w the
    summed Qatten softmaxes, b = V(s) and lambda = sum_k |key_k| sigmoid(agents_k)
    sigmoid(action_k), recomputed here in numpy from the module's own weights."""
    mixer = _qplex()
    N, A, S, U, H = 3, 4, 11, 3, 8
    rng = np.random.default_rng(0)
    s = rng.normal(size=(5, S))
    q_table = rng.normal(size=(5, N, A))
    act = rng.integers(A, size=(5, N))
    q = np.take_along_axis(q_table, act[..., None], -1)[..., 0]
    q_max = q_table.max(-1)
    onehot = np.eye(A)[act]
    W = {k: v.detach().double().numpy() for k, v in mixer.state_dict().items()}
    relu = lambda x: np.maximum(x, 0)  # noqa: E731
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    units = s[:, : N * U].reshape(5, N, U)
    w = np.zeros((5, N))
    for h in range(4):
        sel = relu(s @ W[f"selectors.{h}.0.weight"].T + W[f"selectors.{h}.0.bias"]) @ W[f"selectors.{h}.2.weight"].T
        keys = units @ W[f"keys.{h}.weight"].T
        logits = np.einsum("me,mne->mn", sel, keys) / np.sqrt(H)
        w += np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    b = (relu(s @ W["V.0.weight"].T + W["V.0.bias"]) @ W["V.2.weight"].T + W["V.2.bias"])[:, 0]
    sa = np.concatenate([s, onehot.reshape(5, -1)], -1)
    lam = np.zeros((5, N))
    for k in range(4):
        key = np.abs(s @ W[f"lambda_key.{k}.weight"].T + W[f"lambda_key.{k}.bias"]) + 1e-10
        agents = sig(s @ W[f"lambda_agents.{k}.weight"].T + W[f"lambda_agents.{k}.bias"])
        action = sig(sa @ W[f"lambda_action.{k}.weight"].T + W[f"lambda_action.{k}.bias"])
        lam += key * agents * action
    hand = (w * q + b[:, None] / N).sum(-1) + ((lam - 1) * w * (q - q_max)).sum(-1)
    t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    got = mixer(t(q), t(s), t(onehot), t(q_max)).detach().numpy()
    np.testing.assert_allclose(got, hand, rtol=1e-4, atol=1e-4)


def test_qplex_on_hand_set_weights_gives_hand_numbers():
    """Weights set by hand so every quantity is known: zero selectors give each head a
    uniform softmax (w_i = heads / N = 4 / 2 = 2), V(s) = 3 (b / N = 1.5), every lambda
    kernel gives |0.8| x sigmoid(0) x sigmoid(0) = 0.2 (lambda_i = 4 x 0.2 = 0.8).
    Q = (1, 5), max Q = (2, 5): Q_tot = (2 + 1.5) + (10 + 1.5) + (0.8 - 1) x 2 x (1 - 2) = 15.4."""
    mixer = QPLEXMixer(2, 4, 3, unit_dim=2, embed_dim=4, hypernet_embed=4)
    with torch.no_grad():
        for p in mixer.parameters():
            p.zero_()
        mixer.V[2].bias.fill_(3.0)
        for key in mixer.lambda_key:
            key.bias.fill_(-0.8)  # |.| makes the sign irrelevant
    s = torch.tensor([[0.3, -1.0, 2.0, 0.5]])
    w, b = mixer.attention(s)
    torch.testing.assert_close(w, torch.full((1, 2), 2.0 + 1e-10))
    torch.testing.assert_close(b, torch.tensor([3.0]))
    actions = F.one_hot(torch.tensor([[0, 2]]), 3).float()
    torch.testing.assert_close(mixer.lambdas(s, actions), torch.full((1, 2), 0.8), atol=1e-6, rtol=0)
    out = mixer(torch.tensor([[1.0, 5.0]]), s, actions, torch.tensor([[2.0, 5.0]]))
    torch.testing.assert_close(out, torch.tensor([15.4]), atol=1e-5, rtol=0)
    # greedy actions for both agents: the advantage term vanishes
    torch.testing.assert_close(
        mixer(torch.tensor([[2.0, 5.0]]), s, actions, torch.tensor([[2.0, 5.0]])), torch.tensor([17.0])
    )


def test_qplex_keeps_igm_and_its_advantage_term_trains_lambda_only():
    mixer = _qplex()
    rng = np.random.default_rng(1)
    s = torch.as_tensor(rng.normal(size=(1, 11)), dtype=torch.float32)
    q_table = torch.as_tensor(rng.normal(size=(3, 4)), dtype=torch.float32)
    q_max = q_table.max(-1).values[None]
    joint = torch.cartesian_prod(*[torch.arange(4)] * 3)  # all 64 joint actions
    qs = q_table[torch.arange(3), joint]  # (64, 3)
    totals = mixer(qs, s.expand(64, -1), F.one_hot(joint, 4).float(), q_max.expand(64, -1))
    # the greedy joint action (every agent's own argmax) is the team's argmax
    assert torch.equal(joint[totals.argmax()], q_table.argmax(-1))
    # with the stop-gradient, d Q_tot / d Q_i = w_i(s) > 0 whatever the lambdas
    q = qs[5:6].clone().requires_grad_(True)
    out = mixer(q, s, F.one_hot(joint[5:6], 4).float(), q_max)
    (grad,) = torch.autograd.grad(out.sum(), q)
    w, _ = mixer.attention(s)
    torch.testing.assert_close(grad, w)
    assert mixer.attention_reg(s) > 0


def test_td_lambda_targets_equal_a_hand_recursion():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
    term = torch.tensor([[False, False, True], [False, False, False]])
    filled = torch.tensor([[True, True, True], [True, True, False]])
    nxt = torch.tensor([[10.0, 20.0, 30.0], [4.0, 8.0, 99.0]])
    g, lam = 0.9, 0.7
    # nxt[:, t] = Q_tot'(s_{t+1}); episode 0 terminates at t=2; episode 1 is cut after t=1
    # and bootstraps fully from Q_tot'(s_2) = 8
    g0_2 = 3.0
    g0_1 = 2.0 + g * ((1 - lam) * 20.0 + lam * g0_2)
    g0_0 = 1.0 + g * ((1 - lam) * 10.0 + lam * g0_1)
    g1_1 = -1.0 + g * 8.0
    g1_0 = 0.5 + g * ((1 - lam) * 4.0 + lam * g1_1)
    out = lambda_returns(rewards, term, nxt, filled, g, lam)
    torch.testing.assert_close(out, torch.tensor([[g0_0, g0_1, g0_2], [g1_0, g1_1, 0.0]]))
    one_step = lambda_returns(rewards, term, nxt, filled, g, 0.0)
    torch.testing.assert_close(one_step[filled], td_targets(rewards, term, nxt, g)[filled])


# -- (2) TD targets ----------------------------------------------------------------------------
def _hand_batch(end: str) -> dict[str, np.ndarray]:
    """Two episodes, N = 2 agents, A = 3 actions: episode 0 has 2 steps and ends by ``end``
    ("terminated" or "truncated"), episode 1 has 3 steps and is cut at its end."""
    E, T, N, A = 2, 3, 2, 3
    rng = np.random.default_rng(0)
    mask = np.zeros((E, T, N, A), bool)
    mask[0, 0] = mask[1] = True
    mask[0, 1] = [[True, False, True], [True, True, False]]
    next_mask = np.array([[[False, True, True], [False, True, True]], [[True, False, False], [True, True, True]]])
    filled = np.array([[True, True, False], [True, True, True]])
    terminated = np.zeros((E, T), bool)
    truncated = np.zeros((E, T), bool)
    (terminated if end == "terminated" else truncated)[0, 1] = True
    truncated[1, 2] = True
    return {
        "obs": rng.normal(size=(E, T, N, 2)).astype(np.float32) * filled[..., None, None],
        "state": rng.normal(size=(E, T, 3)).astype(np.float32) * filled[..., None],
        "mask": mask,
        "actions": np.array([[[0, 1], [2, 0], [0, 0]], [[1, 1], [2, 2], [0, 1]]]),
        "rewards": np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]]),
        "terminated": terminated,
        "truncated": truncated,
        "filled": filled,
        "alive": np.ones((E, T, N), bool),
        "first": np.arange(T)[None].repeat(E, 0) == 0,
        "next_obs": rng.normal(size=(E, N, 2)).astype(np.float32),
        "next_state": rng.normal(size=(E, 3)).astype(np.float32),
        "next_mask": next_mask,
    }


def _constant_q(agent: torch.nn.Module, q: list[float]) -> None:
    """Makes an agent network output ``q`` whatever its input, so targets are hand-computable."""
    with torch.no_grad():
        agent.fc2.weight.zero_()
        agent.fc2.bias.copy_(torch.tensor(q))


@pytest.mark.parametrize("end", ["terminated", "truncated"])
@pytest.mark.parametrize("double_q", [True, False])
def test_td_targets_of_a_hand_built_episode_equal_a_hand_computation(end, double_q):
    learner = make_learner(_small(mixer="vdn", gamma=GAMMA, double_q=double_q), _spaces(), 0)
    _constant_q(learner.agent, [1.0, 3.0, 2.0])  # online: prefers action 1, then 2, then 0
    _constant_q(learner.target_agent, [10.0, 20.0, 30.0])  # target: prefers 2, then 1
    _, y = learner.td_values(_hand_batch(end))
    # episode 0, step 0 -> step 1's masks: agent 0 may take {0, 2}, agent 1 {0, 1}
    # double Q: online picks 2 and 1, target values 30 + 20; plain max: 30 + 20 as well
    assert y[0, 0] == pytest.approx(1.0 + GAMMA * (30 + 20))
    # episode 0, step 1 -> next_mask: both agents may take {1, 2}; online picks 1 (3 > 2),
    # the target values it 20; plain max takes the target's 30
    nxt = (20 + 20) if double_q else (30 + 30)
    expected = 2.0 if end == "terminated" else 2.0 + GAMMA * nxt
    assert y[0, 1] == pytest.approx(expected)
    # episode 1 (3 steps, truncated): all allowed at steps 1 and 2 -> online 1 / target 20
    # (plain max 30 + 30); after step 2 next_mask allows agent 0 only {0} (10) and agent 1 all
    both = 40 if double_q else 60
    assert y[1, 0] == pytest.approx(0.5 + GAMMA * both)
    assert y[1, 1] == pytest.approx(-1.0 + GAMMA * both)
    assert y[1, 2] == pytest.approx(3.0 + GAMMA * (10 + (20 if double_q else 30)))


def _manual_targets(learner, batch: dict[str, np.ndarray], gamma: float) -> np.ndarray:
    """The same targets from a per-episode unroll written independently: each episode's
    observations are [obs_0 .. obs_{L-1}, next_obs], inputs built with numpy."""
    N, A = batch["mask"].shape[2:]
    out = np.full(batch["rewards"].shape, np.nan)
    for e in range(len(batch["rewards"])):
        L = int(batch["filled"][e].sum())
        obs = np.concatenate([batch["obs"][e, :L], batch["next_obs"][e][None]])
        states = np.concatenate([batch["state"][e, :L], batch["next_state"][e][None]])
        masks = np.concatenate([batch["mask"][e, :L], batch["next_mask"][e][None]])
        h_on = torch.zeros(N, learner.cfg.rnn_hidden)
        h_tg = torch.zeros(N, learner.cfg.rnn_hidden)
        q_on, q_tg = [], []
        for t in range(L + 1):
            last = np.zeros((N, A), np.float32) if t == 0 else np.eye(A, dtype=np.float32)[batch["actions"][e, t - 1]]
            x = torch.as_tensor(np.concatenate([obs[t], last, np.eye(N, dtype=np.float32)], -1))
            with torch.no_grad():
                q, h_on = learner.agent(x, h_on)
                q_on.append(q.numpy())
                q, h_tg = learner.target_agent(x, h_tg)
                q_tg.append(q.numpy())
        for t in range(L):
            best = np.where(masks[t + 1], q_on[t + 1], -np.inf).argmax(-1)
            q_next = torch.as_tensor(q_tg[t + 1][np.arange(N), best])
            with torch.no_grad():
                mixed = float(learner.target_mixer(q_next[None], torch.as_tensor(states[t + 1])[None])[0])
            out[e, t] = batch["rewards"][e, t] + gamma * (1 - batch["terminated"][e, t]) * mixed
    return out


def test_td_targets_match_an_independent_unroll_through_next_obs():
    learner = make_learner(_small(mixer="qmix", gamma=GAMMA), _spaces(), 3)
    with torch.no_grad():  # a target network that differs from the online one
        for p in [*learner.target_agent.parameters(), *learner.target_mixer.parameters()]:
            p.add_(0.3 * torch.randn_like(p))
    for end in ("terminated", "truncated"):
        batch = _hand_batch(end)
        _, got = learner.td_values(batch)
        want = _manual_targets(learner, batch, GAMMA)
        np.testing.assert_allclose(got[batch["filled"]], want[batch["filled"]], rtol=1e-5, atol=1e-5)


# -- (3) exploration ---------------------------------------------------------------------------
def test_epsilon_follows_the_schedule_and_reaches_the_actors():
    learner = make_learner(_small(epsilon_anneal_steps=1000, epsilon_finish=0.05), _spaces(), 0)
    policy = learner.policy()
    assert policy.epsilon == 1.0
    for steps, eps in [(0, 1.0), (500, 0.525), (1000, 0.05), (10**6, 0.05)]:
        learner.set_env_steps(steps)
        w = learner.weights()
        assert w["epsilon"].ndim == 0
        policy.load_weights(w)
        assert policy.epsilon == pytest.approx(eps)
    assert learner.state_dict()["env_steps"] == 10**6
    # the schedule shows in behaviour: at epsilon 0.05 almost every action is the greedy one
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(500, 2, 2)).astype(np.float32)
    mask = np.ones((500, 2, 3), bool)
    h = policy.initial_hidden(500)
    greedy = policy.act(obs, mask, h, True, rng).actions
    off = (policy.act(obs, mask, h, False, rng).actions != greedy).mean()
    assert 0.005 < off < 0.06  # epsilon 0.05 x (2 of 3 random actions differ)


def test_greedy_acting_never_picks_a_masked_action_and_ignores_epsilon():
    learner = make_learner(_small(), _spaces(n_actions=5), 0)
    policy = learner.policy()  # epsilon 1: every non-greedy action is random
    rng = np.random.default_rng(0)
    B = 400
    obs = rng.normal(size=(B, 2, 2)).astype(np.float32)
    mask = rng.random((B, 2, 5)) < 0.4
    mask[..., 4] |= ~mask.any(-1)  # at least one allowed action
    h = policy.initial_hidden(B)
    before = rng.bit_generator.state
    out = policy.act(obs, mask, h, True, rng)
    assert rng.bit_generator.state == before  # greedy acting draws nothing
    assert mask[np.arange(B)[:, None], np.arange(2)[None], out.actions].all()
    q, _, _ = policy.q_values(obs, h)
    np.testing.assert_array_equal(out.actions, np.where(mask, q.numpy(), -np.inf).argmax(-1))
    # the new hidden state carries the chosen action's one-hot after the GRU state
    np.testing.assert_array_equal(out.hidden[..., -5:], np.eye(5)[out.actions])
    explore = policy.act(obs, mask, h, False, np.random.default_rng(5)).actions
    assert mask[np.arange(B)[:, None], np.arange(2)[None], explore].all()
    assert (explore != out.actions).mean() > 0.2
    # same rng seed, same actions; the policy pickles (rollout actors receive it so)
    again = pickle.loads(pickle.dumps(policy)).act(obs, mask, h, False, np.random.default_rng(5)).actions
    np.testing.assert_array_equal(explore, again)


# -- checkpoint: continue exactly (the registry's off-policy contract) --------------------------
@pytest.mark.parametrize("mixer", ["vdn", "qmix"])
def test_smaclike_episodes_train_and_a_restored_learner_continues_exactly(mixer, tmp_path):
    from trainers import checkpoint
    from trainers.sampling import EnvRunner, env_spaces

    spaces = env_spaces("SMAClike-3m-v0")
    cfg = ValueDecompConfig(mixer=mixer, target_update_interval=2)
    learner = make_learner(cfg, spaces, 0)
    runner = EnvRunner("SMAClike-3m-v0", {}, 4, 0, 0, learner.policy())
    batch, records = runner.episodes(8)
    assert len(records) >= 8 and batch["h0"].shape[2] == cfg.rnn_hidden + spaces.n_actions
    terms = learner.update(batch)
    assert set(terms) == {"loss", "td_error_abs", "q_taken_mean", "target_mean", "grad_norm", "epsilon"}
    assert all(np.isfinite(v) for v in terms.values()), terms
    learner.set_env_steps(int(batch["filled"].sum()))
    checkpoint.save(tmp_path / "state.pt", learner.state_dict(), {"updates": 1})
    restored = make_learner(cfg, spaces, 123)  # another seed: everything must come from the file
    restored.load_state_dict(checkpoint.load(tmp_path / "state.pt")[0])
    assert restored.epsilon == learner.epsilon < 1.0
    batch2, _ = runner.episodes(8, weights=learner.weights())
    for _ in range(2):  # across a target update (interval 2)
        assert learner.update(batch2) == restored.update(batch2)
    a, b = learner.state_dict(), restored.state_dict()
    for part in ("agent", "mixer", "target_agent", "target_mixer"):
        for k in a[part]:
            torch.testing.assert_close(a[part][k], b[part][k], rtol=0, atol=0)
    greedy = [
        p.act(batch2["obs"][:, 0], batch2["mask"][:, 0], batch2["h0"], True, np.random.default_rng(0)).actions
        for p in (learner.policy(), restored.policy())
    ]
    np.testing.assert_array_equal(*greedy)


# -- (4) learning: the QMIX paper's two-step game ------------------------------------------------
# Rashid et al. 2018, sec. 6.1: from state 0 agent 0's action picks state 2A (0) or 2B (1);
# in 2A every joint action pays 7, in 2B the payoffs are [[0, 1], [1, 8]]. With uniform
# exploration VDN's additive fit of 2B peaks at 6.5 < 7, so its greedy play earns 7; QMIX
# can represent 2B exactly (it is monotone) and earns 8. Random play earns 4.75 on average.
PAYOFF_2B = np.array([[0.0, 1.0], [1.0, 8.0]])


def _two_step_obs(s: np.ndarray) -> np.ndarray:
    """(B,) states 0, 1 (2A), 2 (2B), 3 (after the end) -> each agent's one-hot of the state."""
    return np.repeat(np.eye(4, dtype=np.float32)[s][:, None, :3], 2, axis=1)


def _two_step_batch(actions: np.ndarray) -> dict[str, np.ndarray]:
    """Episodes of the two-step game with joint actions (n, 2 steps, 2 agents), as an
    episode batch (EnvRunner.episodes' keys)."""
    n = len(actions)
    s1 = np.where(actions[:, 0, 0] == 0, 1, 2)
    obs = np.stack([_two_step_obs(np.zeros(n, np.int64)), _two_step_obs(s1)], 1)
    end = _two_step_obs(np.full(n, 3))
    r1 = np.where(s1 == 1, 7.0, PAYOFF_2B[actions[:, 1, 0], actions[:, 1, 1]])
    return {
        "obs": obs,
        "state": obs[:, :, 0],
        "mask": np.ones((n, 2, 2, 2), bool),
        "actions": actions,
        "rewards": np.stack([np.zeros(n), r1], 1),
        "terminated": np.array([[False, True]] * n),
        "truncated": np.zeros((n, 2), bool),
        "filled": np.ones((n, 2), bool),
        "next_obs": end,
        "next_state": end[:, 0],
        "next_mask": np.ones((n, 2, 2), bool),
    }


def _two_step_play(policy, n: int, greedy: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` episodes played by ``policy`` (its recurrent state carried between the steps)."""
    mask = np.ones((n, 2, 2), bool)
    obs = _two_step_obs(np.zeros(n, np.int64))
    first = policy.act(obs, mask, policy.initial_hidden(n), greedy, rng, state=obs[:, 0])
    obs = _two_step_obs(np.where(first.actions[:, 0] == 0, 1, 2))
    second = policy.act(obs, mask, first.hidden, greedy, rng, state=obs[:, 0])
    return _two_step_batch(np.stack([first.actions, second.actions], 1))


@pytest.mark.slow
@pytest.mark.parametrize("mixer", ["qmix", "vdn"])
def test_two_step_game_qmix_finds_the_team_optimum_vdn_cannot(mixer):
    cfg = ValueDecompConfig(
        mixer=mixer,
        rnn_hidden=32,
        mixing_embed_dim=8,
        hypernet_embed=16,
        target_update_interval=20,
        epsilon_finish=1.0,  # uniform exploration throughout, as for the paper's table 2
        lr=5e-3,  # 10x PyMARL's: the game is tiny and the test must be quick
    )
    learner = make_learner(cfg, EnvSpaces("TwoStep", 2, (3,), (3,), 2), 0)
    rng = np.random.default_rng(0)
    policy = learner.policy()
    for _ in range(500):
        learner.update(_two_step_play(policy, 32, False, rng))
    # Q_tot learned in state 2B for each second-stage joint action (agent 0 chose B first)
    joint = np.array([[[1, 0], [i, j]] for i in (0, 1) for j in (0, 1)])
    q_2b = learner.td_values(_two_step_batch(joint))[0][:, 1].reshape(2, 2)
    policy.load_weights(learner.weights())
    greedy_return = _two_step_play(policy, 1, True, rng)["rewards"].sum()
    if mixer == "qmix":  # monotone mixing represents the payoffs: greedy play finds the 8
        np.testing.assert_allclose(q_2b, PAYOFF_2B, atol=1.0)
        assert greedy_return == 8.0
    else:  # VDN's least-squares additive fit of 2B, whose best (6.5) loses to 2A's sure 7
        np.testing.assert_allclose(q_2b, [[-1.5, 2.5], [2.5, 6.5]], atol=1.0)
        assert greedy_return == 7.0
