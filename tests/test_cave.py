"""Cave Escape (envs/cave/): levels as data, the generator's placement rules, MiniGrid's
view and dynamics on hand-made levels, and the batch against the Gymnasium env."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.cave.env import CaveBatch, CaveEscapeEnv
from envs.cave.levels import EMPTY, FAMILIES, LAVA, MOSS, WALL, CaveLevel, CaveLevelError, generate, max_steps

# a 7x7 hand level: start (3, 1) facing right, goal (3, 5), lava at (1, 3), moss at (3, 3)
HAND = {
    "rows": [
        "#######",
        "#..L..#",
        "#.....#",
        "#..M..#",
        "#.....#",
        "#..#..#",
        "#######",
    ],
    "goal": [3, 5],
    "start": [3, 1],
    "dir": 0,
}


@pytest.mark.parametrize("family", FAMILIES)
def test_generated_levels_follow_the_placement_rules(family):
    for seed in range(20):
        lvl = generate(family, seed)
        nav = lvl.navigable()
        dist = lvl.distances()
        assert (dist[nav] >= 0).all(), f"{family} {seed}: a navigable cell cannot reach the goal"
        assert lvl.tiles[lvl.goal] == EMPTY and lvl.solvable()
        floor = nav.copy()
        floor[lvl.goal] = False
        d = dist[floor]
        assert dist[lvl.start] == np.sort(d)[(len(d) - 1) // 2], "start is not at the median distance"
        assert generate(family, seed) == lvl  # deterministic in the seed
    assert generate(family, 0) != generate(family, 1)


def test_moss_lies_nearer_the_goal_and_lava_farther_than_chance():
    moss_gap, lava_gap = [], []
    for seed in range(30):
        lvl = generate("caves", seed)
        dist = lvl.distances()
        floor = lvl.navigable()
        floor[lvl.goal] = False
        moss_gap.append(dist[lvl.tiles == MOSS].mean() - dist[floor].mean())
        walls = np.argwhere((lvl.tiles == WALL) | (lvl.tiles == LAVA))
        walls = walls[(walls > 0).all(1) & (walls < lvl.size - 1).all(1)]
        lava = np.argwhere(lvl.tiles == LAVA)
        far = np.abs(lava - lvl.goal).sum(1).mean() - np.abs(walls - lvl.goal).sum(1).mean()
        lava_gap.append(far)
    assert np.mean(moss_gap) < -1.0 and np.mean(lava_gap) > 0.5, (np.mean(moss_gap), np.mean(lava_gap))


def test_fixed_fractions_and_large_grids():
    lvl = generate("maze", 0, moss=0.05, lava=0.5)
    floor = lvl.navigable().sum() - 1  # moss counts as navigable; the goal is not floor
    assert (lvl.tiles == MOSS).sum() == round(0.05 * floor)
    big = generate("rooms", 0, size=45)
    assert big.size == 45 and big.solvable() and max_steps(45) == 2250 and max_steps(15) == 250


def test_shortest_paths_by_hand_and_lava_walls_make_a_level_unsolvable():
    """BFS distances on the hand level (4-neighbour steps around the lava and the wall), and a
    goal enclosed by lava is unreachable: not solvable, distance -1."""
    lv = CaveLevel.from_params(HAND)
    d = lv.distances()
    assert d[3, 5] == 0 and d[3, 4] == 1 and d[3, 1] == 4  # straight along row 3, over the moss
    assert d[1, 2] == 5 and d[1, 4] == 3  # (1, 3) is lava: (1, 2) goes round by row 2
    assert d[5, 3] == -1 and d[1, 3] == -1  # wall and lava cells are not navigable
    assert lv.solvable()
    rows = list(HAND["rows"])
    rows[2], rows[3], rows[4] = "#...LL#", "#..MLL#", "#...LL#"  # goal column 5 cut off by lava
    rows[3] = rows[3][:5] + "." + rows[3][6:]
    shut = CaveLevel.from_params(dict(HAND, rows=rows))
    assert shut.tiles[3, 5] == EMPTY and not shut.solvable() and shut.distances()[shut.start] == -1


def test_level_json_round_trip_and_errors():
    lvl = CaveLevel.from_params(HAND)
    assert lvl.to_params() == HAND and CaveLevel.from_params(lvl.to_params()) == lvl
    bad = [
        ({**HAND, "rows": [*HAND["rows"][:-1], "##.####"]}, "border must be wall"),
        ({**HAND, "goal": [1, 3]}, r"goal \(1, 3\) is on a 'L' tile"),
        ({**HAND, "start": [0, 0]}, "outside the interior"),
        ({**HAND, "rows": ["#x#"]}, r"characters \['x'\]"),
        ({"rows": HAND["rows"], "goal": [3, 5]}, r"missing \['start'\]"),
        ({**HAND, "dir": 7}, "dir must be 0, 1, 2 or 3"),
        ({**HAND, "dir": True}, "dir must be an integer"),
        ({**HAND, "dir": 1.7}, "dir must be an integer"),
    ]
    for params, msg in bad:
        with pytest.raises(CaveLevelError, match=msg):
            CaveLevel.from_params(params)
    with pytest.raises(CaveLevelError, match="unknown layout family 'mazes'"):
        generate("mazes", 0)


def _codes(obs):
    return obs["image"][:, :, 0].T  # rows: far (top) to near (bottom); columns: left to right


def test_view_is_minigrids_egocentric_encoding():
    env = CaveEscapeEnv(size=7)
    obs, _ = env.reset(seed=0, options={"level": HAND})
    assert obs["direction"] == 0
    # facing right from (3, 1): the view's columns run from the agent's left (row 1) to its
    # right (row 5); rows from 4 cells ahead (col 5) to its own column (col 1)
    codes = _codes(obs)
    # view (i, j) = world (row 3 + (i - 2), col 1 + (4 - j)), read off the map by hand
    tiles = {".": 1, "#": 2, "L": 9, "M": 3}
    for j in range(5):
        for i in range(5):
            r, c = 3 + (i - 2), 1 + (4 - j)
            want = 8 if (r, c) == (3, 5) else tiles[HAND["rows"][r][c]] if 0 <= c < 7 else 2
            if (i, j) == (2, 4):
                want = 1  # the agent's own cell shows empty
            assert codes[j, i] == want, (i, j, r, c)
    assert tuple(obs["image"][2, 2]) == (3, 1, 0)  # moss is MiniGrid's green floor
    # turning left twice faces left: col 1 is the last interior column, so the 3 rows of the
    # view that lie 2-4 cells ahead are the border and beyond it (walls)
    env.step(0)
    obs, *_ = env.step(0)
    assert obs["direction"] == 2 and (_codes(obs)[:3] == 2).all()


def test_dynamics_walls_lava_goal_noops_and_time_limit():
    env = CaveEscapeEnv(size=7)
    env.reset(seed=0, options={"level": HAND})
    for a in (3, 4, 5, 6):  # pickup, drop, toggle, done: nothing happens
        obs, r, te, tr, _ = env.step(a)
    assert tuple(env.core.pos[0]) == (3, 1) and obs["direction"] == 0 and not (te or tr)
    env.step(2)
    env.step(2)  # onto the moss: passable, no reward
    obs, r, te, tr, info = env.step(2)
    obs, r, te, tr, info = env.step(2)  # (3, 5) is the goal after 8 steps
    assert te and info["won"] and r == pytest.approx(1 - 0.9 * 8 / max_steps(7))
    env.reset(seed=0, options={"level": {**HAND, "start": [2, 3], "dir": 3}})
    obs, r, te, tr, info = env.step(2)  # into the lava above
    assert te and r == 0.0 and not info["won"]
    env.reset(seed=0, options={"level": {**HAND, "start": [4, 3], "dir": 1}})
    env.step(2)  # the wall below blocks
    assert tuple(env.core.pos[0]) == (4, 3)
    for _ in range(max_steps(7) - 2):
        *_, te, tr, _ = env.step(0)
    assert not tr
    *_, te, tr, _ = env.step(0)
    assert tr and not te
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(0)


def test_batch_matches_the_gymnasium_env_and_levels_come_from_reset():
    rng = np.random.default_rng(0)
    levels = [generate(f, s).to_params() for s, f in enumerate(("maze", "rooms", "caves", "corridors"))]
    batch = CaveBatch(4)
    batch.reset(range(4), [0] * 4, [{"level": lv} for lv in levels])
    singles = [CaveEscapeEnv() for _ in range(4)]
    for env, lv in zip(singles, levels):
        env.reset(seed=0, options={"level": lv})
    for _ in range(60):
        obs, _, _, alive = batch.observe()
        acts = rng.integers(0, 3, (4, 1))
        for b, env in enumerate(singles):
            if not alive[b, 0]:
                continue
            o = env._obs()
            np.testing.assert_array_equal(obs[b, 0, :75], o["image"].ravel())
            assert obs[b, 0, 75 + o["direction"]] == 1.0
        r, te, tr = batch.step(acts)
        for b, env in enumerate(singles):
            if env.core.done[0]:
                continue
            _, r1, te1, tr1, _ = env.step(int(acts[b, 0]))
            assert (r[b], te[b], tr[b]) == (r1, te1, tr1)
    with pytest.raises(CaveLevelError, match="7x7; this env was built with size=15"):
        batch.reset([0], [0], [{"level": HAND}])


def test_registered_with_level_type_and_rgb_render():
    spec = envs.spec("CaveEscape-v0")
    assert spec.level_type == "cave"
    env = CaveEscapeEnv(render_mode="rgb_array")
    env.reset(seed=3)
    img = env.render()
    assert img is not None and img.shape == (15 * 12, 15 * 12, 3) and img.dtype == np.uint8
    assert (img == (255, 0, 0)).all(-1).any()  # the agent is drawn


def test_level_sets_are_deterministic_disjoint_and_carry_their_edge_cases(tmp_path):
    from envs.cave.sets import build_sets, level_set
    from envs.levels import LevelError, check_level_set, load_level_set

    paths = build_sets(tmp_path, ["train", "test", "edge_moss5", "edge_45x45"], per_family=3, progress=lambda m: None)
    train, test, moss5, big = (load_level_set(p) for p in paths)
    assert train == level_set("train", 3)  # the same files on every machine
    assert len(train.levels) == 12 and train.names[0] == "maze_0000" and train.names[-1] == "corridors_0002"
    assert not {str(lv) for lv in train.levels} & {str(lv) for lv in test.levels}
    for lv in moss5.levels:
        lvl = CaveLevel.from_params(lv)
        assert (lvl.tiles == MOSS).sum() == round(0.05 * (lvl.navigable().sum() - 1))
    assert {CaveLevel.from_params(lv).size for lv in big.levels} == {45}
    check_level_set(train, envs.spec("CaveEscape-v0"))
    check_level_set(big, envs.spec("CaveEscape-v0"), {"size": 45})
    with pytest.raises(LevelError, match="a 45x45 level, but the env is built with size=15"):
        check_level_set(big, envs.spec("CaveEscape-v0"))
    env = CaveEscapeEnv()
    env.reset(seed=0, options={"level": train.levels[5]})
    assert env.level == CaveLevel.from_params(train.levels[5])


# sha256 of each set's first 4 levels per family (generator v1): a change to the generator,
# or to numpy's streams under it, that leaves GENERATOR_VERSION alone changes the "identical
# on every machine" sets - and with them every benchmark record keyed by their digest
PINNED = {
    "train": "f85d5347ebd8c87343557dfd1d5e09d268d51b9d0cdb3635ce1cf5fff61609bc",
    "test": "4f15521c4be3b1a1bdff7c3ffc72e8eed82277f714cf590d438733affab459ea",
    "edge_unseen": "8397d27ddb03ab21ee429524751e4e89caaaca8879be8fa57b37607902233005",
    "edge_moss5": "dbb9b50eb316ef299307a5fdd785544989be3b44fa8e05a57a7014dcadecb6d9",
    "edge_lava50": "47dc9b34f8d930d4bc4f514522ec3cdaa9c6acddba456a9941212c79735e3cdf",
    "edge_45x45": "613aa1b35c9a619cb657090a5b5ddaa2586bcba226dc59a78d3008762fbdf417",
}


def test_level_sets_match_their_pinned_digests():
    from envs.cave.sets import GENERATOR_VERSION, SETS, level_set
    from envs.levels import _levels_sha256

    assert GENERATOR_VERSION == 1, "a new generator version: re-pin PINNED"
    assert set(SETS) == set(PINNED)
    for name, want in PINNED.items():
        ls = level_set(name, per_family=4)
        got = _levels_sha256([{"name": a, "params": p} for a, p in zip(ls.names, ls.levels)])
        assert got == want, f"set {name!r} changed without a GENERATOR_VERSION bump"


def test_make_levels_command_errors_name_the_set(tmp_path):
    from trainers.cli import main

    assert main(["make-levels", "cave", "--out", str(tmp_path), "--set", "trian"]) == 2
    assert main(["make-levels", "cave", "--out", str(tmp_path), "--set", "edge_unseen", "--per-family", "2"]) == 0
    assert (tmp_path / "edge_unseen.json").is_file()


def test_full_grid_encoding_round_trips_through_minigrid():
    from minigrid.core.grid import Grid
    from minigrid.core.world_object import Floor, Goal, Lava, Wall

    from envs.cave.env import decode_grid, encode_grid

    for family in FAMILIES:
        lvl = generate(family, 7)
        arr = encode_grid(lvl)
        grid, _ = Grid.decode(arr)
        np.testing.assert_array_equal(grid.encode(), arr)
        assert decode_grid(arr, lvl.start, lvl.direction) == lvl
        r, c = lvl.goal
        assert isinstance(grid.get(c, r), Goal)  # MiniGrid indexes (x = column, y = row)
        kinds = {Wall: WALL, Lava: LAVA}
        for (rr, cc), code in np.ndenumerate(lvl.tiles):
            obj = grid.get(cc, rr)
            if code == MOSS:
                assert isinstance(obj, Floor) and obj.color == "green" and obj.can_overlap()
            elif code == EMPTY:
                assert obj is None or (rr, cc) == lvl.goal
            else:
                assert kinds[type(obj)] == code
    bad = encode_grid(generate("maze", 0))
    bad[3, 3] = (6, 2, 0)  # a blue ball
    with pytest.raises(CaveLevelError, match="MiniGrid object 6 colour 2"):
        decode_grid(bad, (1, 1))


def test_observations_rewards_and_ends_equal_minigrids_own_env():
    """Our env against minigrid's MiniGridEnv holding the same level (its grid decoded from
    our encoding, view 5, see-through walls): same images, directions, rewards and ends
    under the same random actions, all 7 actions included."""
    from minigrid.core.grid import Grid
    from minigrid.core.mission import MissionSpace
    from minigrid.minigrid_env import MiniGridEnv

    from envs.cave.env import encode_grid

    class Reference(MiniGridEnv):
        def __init__(self, level):
            self.level = level
            super().__init__(
                mission_space=MissionSpace(mission_func=lambda: "escape"),
                grid_size=level.size,
                max_steps=max_steps(level.size),
                agent_view_size=5,
                see_through_walls=True,
            )

        def _gen_grid(self, width, height):
            self.grid, _ = Grid.decode(encode_grid(self.level))
            self.agent_pos = (self.level.start[1], self.level.start[0])
            self.agent_dir = self.level.direction

    rng = np.random.default_rng(0)
    ends = {"goal": 0, "lava": 0, "time": 0}
    for seed in range(40):
        lvl = generate(FAMILIES[seed % 4], seed, size=7 + 2 * (seed % 3))
        ref, ours = Reference(lvl), CaveEscapeEnv(size=lvl.size)
        o_ref, _ = ref.reset(seed=0)
        o_ours, _ = ours.reset(seed=0, options={"level": lvl.to_params()})
        for _ in range(max_steps(lvl.size)):
            np.testing.assert_array_equal(o_ours["image"], o_ref["image"])
            assert o_ours["direction"] == o_ref["direction"]
            a = int(rng.integers(7)) if rng.random() < 0.2 else int(rng.integers(3))
            o_ref, r_ref, te_ref, tr_ref, _ = ref.step(a)
            o_ours, r, te, tr, _ = ours.step(a)
            assert r == pytest.approx(r_ref) and te == te_ref and tr == (tr_ref and not te_ref)
            if te or tr:
                ends["goal" if r > 0 else "lava" if te else "time"] += 1
                break
    assert min(ends.values()) > 0, ends  # every kind of ending was compared
