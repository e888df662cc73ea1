"""SC2's rules (the default rules mode) computed by hand, SMAC's observation layouts against
SMAC's size formulas, the reward variants, and the start geometries.

Hand-placed battles use target dummies (speed 0, no weapon) so that nothing but the rule
under test moves or deals damage. Clock: an agent step is 8 ticks of 1/22.4 s."""

from __future__ import annotations

import numpy as np
import pytest

from envs.smaclike import Scenario, SMACCore, Team, get_scenario
from envs.smaclike.core import N_FIXED_ACTIONS
from envs.smaclike.units import UNIT_TYPES, UnitType, register_unit_type

ATTACK0 = N_FIXED_ACTIONS  # attack enemy 0
TICK = 1.0 / 22.4


class _ConstantRng:
    """Stands in for a numpy Generator: every cooldown jitter draw is ``u`` (1/3 = none)."""

    def __init__(self, u: float) -> None:
        self.u = u

    def random(self, shape):
        return np.full(shape, self.u)


def _dummy(name, short, hp=100.0, shield=0.0, armor=0.0, radius=0.25, attrs=()):
    unit = UnitType(name, short, "protoss", hp, shield, armor, 0, 0, 1.0, 0.0, 1.0, 9, radius, frozenset(attrs))
    return register_unit_type(unit, override=True)


_dummy("dummy_plain", "Q")
_dummy("dummy_big", "W", radius=0.5)
_dummy("dummy_shielded", "X", shield=50.0, armor=1.0, radius=0.5, attrs=("light",))


def _battle(allies, enemies, xy, rules="sc2", hp=None, core_kw=None, **kw):
    sc = Scenario("hand", teams=(Team("hand", tuple(allies), tuple(enemies)),), episode_limit=400, **kw)
    core = SMACCore(sc, 1, rules=rules, **(core_kw or {}))
    core.reset(seeds=[0])
    core._rngs[0] = _ConstantRng(1 / 3)
    core.place(0, np.array(xy, float), hp=hp)
    return core


def _act(core, *actions):
    return core.step(np.array([list(actions)]))


# -- clock and reach -------------------------------------------------------------------------
def test_an_agent_step_is_eight_game_loops_at_faster_speed():
    core = _battle(["marine"], ["dummy_plain"], [(10, 16), (20, 20)])
    _act(core, 4)  # east
    assert core.pos[0, 0, 0] == pytest.approx(10 + 3.15 * 8 / 22.4)  # 1.125, SMAX: 1.575
    smax = _battle(["marine"], ["dummy_plain"], [(10, 16), (20, 20)], rules="smax")
    _act(smax, 4)
    assert smax.pos[0, 0, 0] == pytest.approx(10 + 3.15 * 0.5)


def test_time_to_kill_with_edge_to_edge_range():
    # marine (radius 0.375, range 5) on a dummy (radius 0.5): reach = 5 + 0.375 + 0.5 = 5.875
    # centre to centre. 6 damage per shot, 17 shots for 100 hp; cooldown 0.61 s = 13.66
    # loops, so (no jitter) a shot every 15 ticks: the 17th at tick 240, in agent step 31.
    core = _battle(["marine"], ["dummy_big"], [(10, 16), (15.87, 16)])
    assert core.avail[0, 0, ATTACK0]
    steps = 0
    while not core.done[0]:
        _act(core, ATTACK0)
        steps += 1
    assert steps == 31 and core.won[0]
    assert core.pos[0, 0, 0] == 10  # never moved: in reach from the start
    # SMAX's rules measure range 5 centre to centre: out of range, no attack possible
    smax = _battle(["marine"], ["dummy_big"], [(10, 16), (15.87, 16)], rules="smax")
    assert not smax.avail[0, 0, ATTACK0]


def test_attack_order_beyond_reach_walks_in_then_fires():
    # zealot (radius 0.5, melee 0.1, 3.15 / s) ordered onto a dummy (radius 0.5) 5 away:
    # SMAC's mask allows it (distance <= 6); the gap to close is 5 - 1.1 = 3.9 at
    # 0.140625 per tick = 27.7 ticks: the first hit (2 x 8) lands at tick 27, in step 4.
    core = _battle(["zealot"], ["dummy_big"], [(10, 16), (15, 16)])
    assert core.avail[0, 0, ATTACK0]
    for step in range(1, 5):
        _act(core, ATTACK0)
        if step < 4:
            assert core.hp[0, 1] == 100.0
    assert core.hp[0, 1] == 100.0 - 16.0
    assert core.pos[0, 0, 0] == pytest.approx(10 + 28 * 3.15 * TICK)
    # SMAX's rules: zealot range 2 centre to centre, no attack order from 5 away
    smax = _battle(["zealot"], ["dummy_big"], [(10, 16), (15, 16)], rules="smax")
    assert not smax.avail[0, 0, ATTACK0]


# -- damage ----------------------------------------------------------------------------------
def test_armor_reduces_hit_points_damage_only():
    # stalker (13, +5 vs armored) on a light, armored-1 dummy with 50 shield: shots 1-3 take
    # 13 shield each (armor does not touch shields); shot 4 takes the last 11 shield and
    # 2 - 1 = 1 hp; shot 5 takes 13 - 1 = 12 hp.
    core = _battle(["stalker"], ["dummy_shielded"], [(10, 16), (15, 16)])
    seen = []
    while len(seen) < 5:
        _act(core, ATTACK0)
        state = (core.shield[0, 1], core.hp[0, 1])
        if not seen or seen[-1] != state:
            seen.append(state)
    assert seen == [(37.0, 100.0), (24.0, 100.0), (11.0, 100.0), (0.0, 99.0), (0.0, 87.0)]
    # SMAX's rules: armor on the whole hit, 12 per shot: 38, 26, 14, 2, then 2 shield + 10 hp
    smax = _battle(["stalker"], ["dummy_shielded"], [(10, 16), (15, 16)], rules="smax")
    seen = []
    while len(seen) < 5:
        _act(smax, ATTACK0)
        state = (smax.shield[0, 1], smax.hp[0, 1])
        if not seen or seen[-1] != state:
            seen.append(state)
    assert seen == [(38.0, 100.0), (26.0, 100.0), (14.0, 100.0), (2.0, 100.0), (0.0, 90.0)]


def test_colossus_line_splash_hits_and_misses():
    # colossus at (10, 16) fires east at a dummy at (16, 16): the beam is 2.8 across x 0.3
    # along, centred on the target; a body (radius 0.25) touching it takes a full hit (20)
    xy = [
        (10, 16),  # ally colossus
        (15.9, 17.3),  # ally marine inside the beam: no friendly fire
        (16, 16),  # enemy 0, the target
        (16, 16.75),  # across 0.75: hit
        (16, 18.0),  # across 2.0 > 1.4 + 0.25: miss
        (16.3, 15.0),  # along 0.3 - 0.15 < 0.25, across 1.0: hit
        (17.0, 16.0),  # along 1.0 - 0.15 > 0.25: miss
    ]
    enemies = ["dummy_plain"] * 5
    core = _battle(["colossus", "marine"], enemies, xy)
    _act(core, ATTACK0, 1)
    np.testing.assert_array_equal(core.hp[0, 2:], [80.0, 80.0, 100.0, 80.0, 100.0])
    assert core.hp[0, 1] == 45.0
    smax = _battle(["colossus", "marine"], enemies, xy, rules="smax")
    _act(smax, ATTACK0, 1)
    np.testing.assert_array_equal(smax.hp[0, 2:], [80.0, 100.0, 100.0, 100.0, 100.0])


def test_baneling_explodes_on_every_enemy_around_it_and_dies():
    # baneling (radius 0.375, reach 0.25, 3.15 / s) ordered onto a dummy 4 away walks
    # 4 - (0.25 + 0.375 + 0.25) = 3.125 in 23 ticks (to x = 13.234) and explodes at tick 22,
    # in agent step 3: 80 damage to every enemy body within 2.2 (dummy at (14, 17.5): 1.68
    # away; (14, 19): 3.1 away), none to its own side, and it dies
    xy = [(10, 16), (12.5, 18.0), (14, 16), (14, 17.5), (14, 19.0)]
    core = _battle(["baneling", "marine"], ["dummy_plain"] * 3, xy)
    for _ in range(2):
        _act(core, ATTACK0, 1)
        assert core.alive[0, 0] and (core.hp[0, 2:] == 100.0).all()
    _act(core, ATTACK0, 1)
    np.testing.assert_array_equal(core.hp[0, 2:], [20.0, 20.0, 100.0])
    assert not core.alive[0, 0] and core.hp[0, 1] == 45.0


def test_zerg_regenerate_and_shields_wait_ten_seconds():
    core = _battle(["zergling"], ["dummy_plain"], [(10, 16), (20, 20)], hp=np.array([20.0, 100.0]))
    for _ in range(10):
        _act(core, 1)
    assert core.hp[0, 0] == pytest.approx(20.0 + 0.38 * 10 * 8 * TICK)
    smax = _battle(["zergling"], ["dummy_plain"], [(10, 16), (20, 20)], rules="smax", hp=np.array([20.0, 100.0]))
    for _ in range(10):
        _act(smax, 1)
    assert smax.hp[0, 0] == 20.0


def test_a_side_left_with_only_medivacs_has_lost():
    xy = [(10, 16), (10, 18), (20, 16)]
    core = _battle(["marine", "medivac"], ["marine"], xy, hp=np.array([0.0, 150.0, 45.0]))
    _, terminated, _ = _act(core, 0, 1)
    assert terminated[0] and not core.won[0] and core.alive[0, 1]
    smax = _battle(["marine", "medivac"], ["marine"], xy, rules="smax", hp=np.array([0.0, 150.0, 45.0]))
    _, terminated, _ = _act(smax, 0, 1)
    assert not terminated[0]


# -- observation layouts -----------------------------------------------------------------------
def _smac_sizes(sc, mode, obs_last_action=False, state_last_action=True, obs_t=False, state_t=False):
    """SMAC's get_obs_size / get_state_size formulas (smac starcraft2.py ~1260-1340;
    smacv2 adds own position), written out independently of features.Layout."""
    n, m = sc.n_allies, sc.n_enemies_total
    allies = {u for t in sc.teams for u in t.allies} if sc.teams else {p for p, _ in sc.palette}
    enemies = {u for t in sc.teams for u in t.enemies} if sc.teams else {p for p, _ in sc.palette}
    n_types = len({u for t in sc.teams for u in t.allies + t.enemies}) if sc.teams else len(sc.palette)
    bits = (0 if len(allies) == 1 else n_types) if mode == "smac_v1" else n_types
    sh_a = int(any(UNIT_TYPES[u].shield > 0 for u in allies))
    sh_e = int(any(UNIT_TYPES[u].shield > 0 for u in enemies))
    healer = any(UNIT_TYPES[u].is_healer for u in allies)
    n_actions = 6 + (max(n, m) if healer else m)
    enemy = 4 + bits + 1 + sh_e
    ally = 4 + bits + 1 + sh_a + (n_actions if obs_last_action else 0)
    own = bits + 1 + sh_a + (2 if mode == "smac_v2" else 0)
    obs = 4 + m * enemy + (n - 1) * ally + own + obs_t
    state = n * (4 + sh_a + bits) + m * (3 + sh_e + bits) + (n * n_actions if state_last_action else 0) + state_t
    return obs, state


@pytest.mark.parametrize(
    "name, expected",
    [("3m", (30, 48)), ("2s3z", (80, 120)), ("MMM", (160, 290)), ("protoss_5_vs_5", (92, 130)),
     ("terran_5_vs_5", (82, 120)), ("zerg_5_vs_5", (82, 120))],
)  # fmt: skip
def test_sizes_match_smac_on_its_reference_maps(name, expected):
    core = SMACCore(name, 1)
    assert (core.obs_dim, core.state_dim) == expected
    assert core.obs().shape == (1, core.N, expected[0]) and core.state().shape == (1, expected[1])


@pytest.mark.parametrize("name", ["8m", "5m_vs_6m", "3s5z_vs_3s6z", "6h_vs_8z", "MMM2", "bane_vs_bane", "surComb4"])
@pytest.mark.parametrize("mode", ["smac_v1", "smac_v2"])
@pytest.mark.parametrize("flags", [(False, True, False, False), (True, False, True, True)])
def test_sizes_follow_smac_formulas_for_every_mode_and_option(name, mode, flags):
    ola, sla, ot, st = flags
    core = SMACCore(
        name,
        2,
        obs_mode=mode,
        obs_last_action=ola,
        state_last_action=sla,
        obs_timestep_number=ot,
        state_timestep_number=st,
    )
    assert (core.obs_dim, core.state_dim) == _smac_sizes(get_scenario(name), mode, ola, sla, ot, st)
    assert len(core.layout.obs_feature_names()) == core.obs_dim
    assert len(core.layout.state_feature_names()) == core.state_dim
    assert core.obs().shape[-1] == core.obs_dim and core.state().shape[-1] == core.state_dim


def test_smac_v1_observation_entries_on_a_placed_3m():
    core = SMACCore("3m", 1)
    core.reset(seeds=0)
    xy = [(10, 16), (11, 16), (10, 20), (15, 16), (13, 19), (25, 16)]
    core.place(0, np.array(xy, float), hp=np.array([45, 45, 45, 22.5, 45, 45.0]))
    o = core.obs()[0, 0]
    # move N/S/E/W; then enemies [attackable, dist/9, dx/9, dy/9, health]
    np.testing.assert_allclose(o[:4], [1, 1, 1, 1])
    np.testing.assert_allclose(o[4:9], [1, 5 / 9, 5 / 9, 0, 0.5])  # 5 away: inside SMAC's 6
    d = np.hypot(3, 3)
    np.testing.assert_allclose(o[9:14], [1, d / 9, 3 / 9, 3 / 9, 1], rtol=1e-6)
    np.testing.assert_allclose(o[14:19], 0)  # 15 away: out of sight 9
    # allies [visible, dist/9, dx/9, dy/9, health], own [health]
    np.testing.assert_allclose(o[19:24], [1, 1 / 9, 1 / 9, 0, 1], rtol=1e-6)
    np.testing.assert_allclose(o[24:29], [1, 4 / 9, 0, 4 / 9, 1], rtol=1e-6)
    assert o[29] == 1 and len(o) == 30
    s = core.state()[0]
    # ally [health, cooldown, (x - 16) / 32, (y - 16) / 16 (SIMPLE band 8..24)], enemy [health, rel x, rel y]
    np.testing.assert_allclose(s[:4], [1, 0, (10 - 16) / 32, 0])
    np.testing.assert_allclose(s[12:15], [0.5, (15 - 16) / 32, 0])
    np.testing.assert_allclose(s[21:], 0)  # no last actions before the first step


def test_attack_masks_per_mode_and_rules():
    # zealot 4 from a dummy: SMAC v1 orders up to 6 (walks in); SMACv2 max(0.1, 2) = 2; SMAX
    # range 2 centre to centre
    xy = [(10, 16), (14, 16)]
    v1 = SMACCore(Scenario("m", teams=(Team("m", ("zealot",), ("dummy_big",)),)), 1, obs_mode="smac_v1")
    v2 = SMACCore(Scenario("m", teams=(Team("m", ("zealot",), ("dummy_big",)),)), 1, obs_mode="smac_v2")
    sx = SMACCore(Scenario("m", teams=(Team("m", ("zealot",), ("dummy_big",)),)), 1, rules="smax")
    for core, allowed in ((v1, True), (v2, False), (sx, False)):
        core.place(0, np.array(xy, float))
        assert core.avail[0, 0, ATTACK0] == allowed
    for core in (v2, sx):
        core.place(0, np.array([(10, 16), (11.9, 16)], float))
        assert core.avail[0, 0, ATTACK0]


# -- rewards -----------------------------------------------------------------------------------
def test_death_only_reward_on_a_hand_built_episode():
    # TRAMA's released env: only deaths and the win pay; max_reward = 10 + 200 + 45
    death_only = {"reward_variant": "death_only", "reward_only_positive": False}
    core = _battle(["marine", "marine"], ["marine"], [(10, 16), (10, 17), (15.5, 16)], core_kw=death_only)
    rewards = []
    while not core.done[0]:
        r, _, _ = _act(core, *[ATTACK0 if core.alive[0, i] else 0 for i in range(2)])
        rewards.append(float(r[0]))
    assert core.won[0]
    lost_ally = not core.alive[0, :2].all()
    expected_last = (10 + 200 - (5 if lost_ally else 0)) * 20 / 255
    assert rewards[-1] == pytest.approx(expected_last)
    assert rewards[:-1] == [0.0] * (len(rewards) - 1)  # damage alone pays nothing
    # SMAC's reward pays the damage as it is dealt
    smac = _battle(["marine", "marine"], ["marine"], [(10, 16), (10, 17), (15.5, 16)])
    r, _, _ = _act(smac, ATTACK0, ATTACK0)
    assert r[0] == pytest.approx(12 * 20 / 255)  # two marines' first shots land at tick 0


def test_reward_only_positive_clips_and_the_named_bug_pays_for_regeneration():
    # an enemy whose shields regenerate while nothing is dealt: SMACv2 pays 0, SMAC v1's abs() pays
    sc = Scenario("regen", teams=(Team("r", ("marine",), ("dummy_shielded",)),))
    for bug, positive in ((False, False), (True, True)):
        core = SMACCore(sc, 1, shield_regen_reward_bug=bug)
        core.reset(seeds=0)
        core.place(0, np.array([(10, 16), (20, 16)], float), shield=np.array([0.0, 10.0]))
        core.since_hit[0, 1] = 10 / TICK  # last hit 10 s ago: regenerating from now on
        r, _, _ = core.step(np.array([[1]]))
        assert (r[0] > 0) == positive
        assert core.shield[0, 1] > 10.0


def test_max_reward_per_episode_or_frozen_at_the_first_like_smacv2():
    per_episode = SMACCore("protoss_5_vs_5", 1)
    frozen = SMACCore("protoss_5_vs_5", 1, max_reward="first")
    seen_e, seen_f = set(), set()
    for seed in range(30):
        per_episode.reset(seeds=[seed])
        frozen.reset(seeds=[seed])
        seen_e.add(float(per_episode.max_reward[0]))
        seen_f.add(float(frozen.max_reward[0]))
    assert len(seen_e) > 3 and len(seen_f) == 1


def test_sparse_reward_pays_only_the_outcome():
    sparse = {"reward_sparse": True, "reward_scale": False}
    core = _battle(["marine", "marine"], ["marine"], [(10, 16), (10, 17), (15.5, 16)], core_kw=sparse)
    rewards = []
    while not core.done[0]:
        r, _, _ = _act(core, *[ATTACK0 if core.alive[0, i] else 0 for i in range(2)])
        rewards.append(float(r[0]))
    assert rewards == [0.0] * (len(rewards) - 1) + [1.0]


# -- maps and start geometry -------------------------------------------------------------------
def test_smacv2_surrounded_and_reflect_geometry():
    core = SMACCore("protoss_5_vs_5", 64)
    core.reset(seeds=0)
    for b in range(64):
        allies, enemies = core.pos[b, :5], core.pos[b, 5:]
        if core.start_name(b) == "surrounded":
            # one group at the centre: a grid of pitch <= 2.05 (colossus size + 0.05), 3 wide,
            # nudged apart at spawn when an enemy group lands on it (an inner point is 2 away)
            assert np.abs(allies - 16).max() <= 2.05 + 0.5
            # enemy groups on the diagonals between centre +- 2 and the map corners (+ their grid)
            off = np.abs(enemies - 16)
            assert (np.abs(off[:, 0] - off[:, 1]) <= 2 * 2.05 + 1e-9).all()
        else:
            assert (allies[:, 0] < 15.5).all()  # left half (x < 16 - 1, plus the spread)
            np.testing.assert_allclose(enemies[:, 0], 32 - allies[:, 0], atol=1.5)


def test_trama_geometry_is_compressed_and_shuffles_units():
    core = SMACCore("reSurComb3", 64)
    core.reset(seeds=0)
    orders = set()
    for b in range(64):
        enemies = core.pos[b, 5:]
        if core.start_name(b) == "surrounded":
            assert (np.abs(enemies - 16).max(1) <= 8 + 2.05 + 1e-9).all()  # outer points 16 +- 8, + grid
        else:
            assert (core.pos[b, :5, 0] >= 7.5).all()
        orders.add(tuple(core.type[b, :5].tolist()))
        np.testing.assert_array_equal(core.type[b, :5], core.type[b, 5:])  # enemies copy the list
    assert len(orders) > 6  # shuffled slot order


def test_exception_types_never_make_a_whole_team():
    core = SMACCore("terran_5_vs_5", 256)
    core.reset(seeds=0)
    medivac = core.scenario.unit_types.index(UNIT_TYPES["medivac"])
    assert not (core.type[:, :5] == medivac).all(1).any()
    assert "5v" not in core.task_names


def test_ten_versus_eleven_draws_extra_enemies():
    core = SMACCore("zerg_10_vs_11", 8)
    core.reset(seeds=0)
    assert core.N == 10 and core.M == 11
    allies, enemies = np.sort(core.type[:, :10], 1), np.sort(core.type[:, 10:20], 1)
    np.testing.assert_array_equal(allies, enemies)  # the first ten mirror the allies


@pytest.mark.parametrize("name", ["10m_vs_11m", "27m_vs_30m", "3s5z_vs_3s6z", "6h_vs_8z", "bane_vs_bane"])
def test_smaclite_maps_start_in_their_groups(name):
    core = SMACCore(name, 1)
    core.reset(seeds=0)
    _x0, y0, _x1, y1 = core.bounds
    assert (core.pos[0, :, 1] >= y0).all() and (core.pos[0, :, 1] <= y1).all()
    if name == "bane_vs_bane":
        assert (core.pos[0, : core.N, 1] < 16).all() and (core.pos[0, core.N :, 1] > 16).all()
    else:
        assert (core.pos[0, : core.N, 0] < 16).all() and (core.pos[0, core.N :, 0] > 16).all()
    d = np.abs(core.z[0][:, None] - core.z[0][None, :]) + np.eye(core.U) * 9
    assert d.min() > 0.5  # SMAClite's grid: nobody starts on top of anybody
