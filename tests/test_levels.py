"""Level sets as data: file round trip and every malformed-file error, levels in reset
options against the equivalent shift options, shift grids, and checks against env specs."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import envs
from envs.levels import FORMAT, VERSION, LevelError, LevelSet, check_level_set, shift_levels

LEVELS = LevelSet(
    env_id="RobustLinearMDP-v0",
    level_type="shift",
    levels=({"q": 0.0}, {"q": 0.3}, {"q": None}),
    names=("q=0", "q=0.3", "nominal"),
    description="three kernels of the linear MDP",
)


def _sha(entries):
    # Independent of envs.levels: the documented canonical form of the levels list.
    text = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _rewrite(path, edit, reseal=False):
    doc = json.loads(path.read_text())
    edit(doc)
    if reseal and "levels" in doc and "sha256" in doc:
        doc["sha256"] = _sha(doc["levels"])
    path.write_text(json.dumps(doc))


# -- files ------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    path = envs.save_level_set(LEVELS, tmp_path / "sets" / "q.json")
    assert envs.load_level_set(path) == LEVELS
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["version"]) == (FORMAT, VERSION)
    assert doc["levels"][1] == {"name": "q=0.3", "params": {"q": 0.3}}
    assert doc["sha256"] == _sha(doc["levels"])
    assert [p.name for p in path.parent.iterdir()] == ["q.json"]  # no temporary file left behind


def test_default_names_and_normalised_copies():
    params = {"q": 0.5, "extra": (1, 2)}
    ls = LevelSet("RobustLinearMDP-v0", "shift", [params, {"q": 1.0}])
    assert ls.names == ("level_0000", "level_0001")
    assert ls.levels[0] == {"q": 0.5, "extra": [1, 2]}  # what a file round trip would give
    params["q"] = 0.9
    assert ls.levels[0]["q"] == 0.5  # the caller's dict is not aliased
    assert len(ls) == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"levels": ({"q": 0.1},), "names": ("a", "b")}, "2 names for 1 levels"),
        ({"levels": ({"q": 0.1}, {"q": 0.2}), "names": ("a", "a")}, r"duplicate level names \['a'\]"),
        ({"levels": ([0.1],)}, "params must be a mapping"),
        ({"levels": ({"q": float("nan")},)}, "JSON-able"),
        ({"levels": ({"q": object()},)}, "JSON-able"),
        ({"levels": ()}, "at least one level"),
    ],
)
def test_bad_level_sets_are_rejected_on_construction(kwargs, message):
    with pytest.raises(LevelError, match=message):
        LevelSet("RobustLinearMDP-v0", "shift", **kwargs)


def test_save_refuses_to_clobber_unless_overwrite(tmp_path):
    path = envs.save_level_set(LEVELS, tmp_path / "q.json")
    other = LevelSet("RobustLinearMDP-v0", "shift", ({"q": 1.0},))
    with pytest.raises(LevelError, match="already exists"):
        envs.save_level_set(other, path)
    assert envs.load_level_set(path) == LEVELS
    envs.save_level_set(other, path, overwrite=True)
    assert envs.load_level_set(path) == other
    assert [p.name for p in tmp_path.iterdir()] == ["q.json"]


def test_missing_file(tmp_path):
    with pytest.raises(LevelError, match=r"nope\.json: no such file"):
        envs.load_level_set(tmp_path / "nope.json")


def test_truncated_file(tmp_path):
    path = envs.save_level_set(LEVELS, tmp_path / "q.json")
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(LevelError, match=r"q\.json: not valid JSON - truncated"):
        envs.load_level_set(path)


def test_edited_param_breaks_the_sha256(tmp_path):
    path = envs.save_level_set(LEVELS, tmp_path / "q.json")
    _rewrite(path, lambda d: d["levels"][1]["params"].update(q=0.31))
    with pytest.raises(LevelError, match=r"q\.json: .*sha256 - the file was modified or truncated"):
        envs.load_level_set(path)


def test_dropped_level_breaks_the_sha256(tmp_path):
    # A list cut short but still valid JSON: only the hash can notice.
    path = envs.save_level_set(LEVELS, tmp_path / "q.json")
    _rewrite(path, lambda d: d["levels"].pop())
    with pytest.raises(LevelError, match="modified or truncated"):
        envs.load_level_set(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format="shiftrl-episodes"), "format 'shiftrl-episodes', expected 'shiftrl-levels'"),
        (lambda d: d.update(version=VERSION + 1), f"version {VERSION + 1} is newer .* \\(v{VERSION}\\)"),
        (lambda d: d.update(version="1"), "version '1', expected an integer"),
        (lambda d: d.pop("levels"), r"missing keys \['levels'\]"),
        (lambda d: d.pop("sha256"), r"missing keys \['sha256'\]"),
        (lambda d: d.update(extra=1), r"unknown keys \['extra'\]"),
        (lambda d: d["levels"][2].update(name="q=0"), r"duplicate level names \['q=0'\]"),
        (lambda d: d["levels"][0].update(params=[0.0]), "level 'q=0': params must be a mapping"),
        (lambda d: d["levels"][0].pop("params"), r"levels\[0\] must be an object with exactly the keys"),
    ],
)
def test_malformed_files_name_the_file_and_the_expectation(tmp_path, edit, message):
    path = envs.save_level_set(LEVELS, tmp_path / "q.json")
    _rewrite(path, edit, reseal=True)  # resealed: the structural check itself must catch it
    with pytest.raises(LevelError, match=rf"level set {tmp_path}.*q\.json: .*{message}"):
        envs.load_level_set(path)


def test_not_an_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(LevelError, match="expected a JSON object"):
        envs.load_level_set(path)


# -- levels in reset options -------------------------------------------------------------------
def _trajectory(env, seed, options, actions, episodes):
    """Observations, rewards and flags of ``episodes`` episodes under a fixed action sequence."""
    trace = []
    obs, info = env.reset(seed=seed, options=options)
    trace.append((np.asarray(obs).tolist(), info["shift"]))
    i = 0
    for _ in range(episodes):
        done = False
        while not done:
            obs, reward, term, trunc, info = env.step(actions[i % len(actions)])
            trace.append((np.asarray(obs).tolist(), reward, term, trunc, info["shift"]))
            done, i = term or trunc, i + 1
        obs, info = env.reset()  # later episodes keep the level's shift
        trace.append((np.asarray(obs).tolist(), info["shift"]))
    return trace


@pytest.mark.parametrize(
    "env_id, shift, episodes",
    [
        ("RobustLinearMDP-v0", {"q": 0.3}, 200),
        ("RobustLinearMDP-v0", {"q": None}, 50),
        ("ShiftedCartPole-v0", {"gravity": 2.0, "length": 0.5}, 5),
        ("ShiftedPendulum-v0", {"m": 1.5}, 1),
        ("AmericanPutOption-v0", {"p_up": 0.3}, 20),
    ],
)
def test_reset_with_a_level_equals_reset_with_the_same_shift(env_id, shift, episodes):
    n_actions = envs.make(env_id).action_space.n
    actions = np.random.default_rng(0).integers(n_actions, size=97).tolist()
    by_level = _trajectory(envs.make(env_id), 3, {"level": shift}, actions, episodes)
    by_shift = _trajectory(envs.make(env_id), 3, shift, actions, episodes)
    assert by_level == by_shift
    assert by_level[0][1] == {**by_level[0][1], **shift}  # info reports the level's shift


def test_a_level_changes_the_dynamics():
    # Guards the equality test above against a level that is silently ignored by both paths.
    actions = [0, 1, 1, 0, 1]
    nominal = _trajectory(envs.make("ShiftedCartPole-v0"), 3, None, actions, 3)
    shifted = _trajectory(envs.make("ShiftedCartPole-v0"), 3, {"level": {"gravity": 3.0}}, actions, 3)
    assert nominal[0] != shifted[0]  # info differs
    assert [t[0] for t in nominal[1:4]] != [t[0] for t in shifted[1:4]]  # and so do the observations


@pytest.mark.parametrize(
    "env_id, level, message",
    [
        ("RobustLinearMDP-v0", {"bogus": 0.3}, "unknown shift parameter 'bogus'"),
        ("RobustLinearMDP-v0", {"q": 1.5}, r"shift q=1.5 outside \[0.0, 1.0\]"),
        ("ShiftedCartPole-v0", {"gravity": 2.0, "bogus": 0.3}, "unknown shift 'bogus'"),
        ("ShiftedCartPole-v0", {"length": 9.0}, r"shift length=9.0 outside the scale range"),
        ("ShiftedCartPole-v0", {"length": "long"}, "shift length='long' is not a number"),
        ("ShiftedCartPole-v0", [("gravity", 2.0)], r"options\['level'\] must be a dict"),
    ],
)
def test_a_bad_level_raises_naming_the_shift(env_id, level, message):
    env = envs.make(env_id)
    env.reset(seed=0)
    before = env.reset(seed=0)[1]["shift"]
    with pytest.raises(envs.EnvError, match=message):
        env.reset(seed=0, options={"level": level})
    assert env.reset(seed=0)[1]["shift"] == before  # a rejected level changes nothing


def test_a_shift_given_twice_is_an_error():
    env = envs.make("RobustLinearMDP-v0")
    with pytest.raises(envs.EnvError, match=r"\['q'\] given both in options\['level'\] and directly"):
        env.reset(seed=0, options={"level": {"q": 0.3}, "q": 0.3})
    env.reset(seed=0, options={"level": {}, "q": 0.3})  # disjoint entries combine
    assert env.core.shift == {"q": 0.3}


# -- shift grids and specs ---------------------------------------------------------------------
def test_shift_levels_builds_the_product_grid():
    spec = envs.spec("ShiftedCartPole-v0")
    ls = shift_levels(spec, {"gravity": [0.5, 1.0], "length": [1.0, 2.0, 3]})
    assert (ls.env_id, ls.level_type) == ("ShiftedCartPole-v0", "shift")
    assert ls.levels == tuple({"gravity": g, "length": L} for g in (0.5, 1.0) for L in (1.0, 2.0, 3.0))
    assert ls.names[:2] == ("gravity=0.5,length=1.0", "gravity=0.5,length=2.0")
    assert ls.names[-1] == "gravity=1.0,length=3.0"
    check_level_set(ls, spec)
    assert shift_levels(envs.spec("RobustLinearMDP-v0"), {"q": [0.3]}).names == ("q=0.3",)


@pytest.mark.parametrize(
    "env_id, grid, message",
    [
        ("ShiftedCartPole-v0", {"gravty": [1.0]}, r"no shift parameter 'gravty' \(allowed: \['gravity'"),
        ("ShiftedCartPole-v0", {"gravity": [1.0, 6.0]}, r"gravity=6.0 outside \[0.2, 5.0\]"),
        ("ShiftedCartPole-v0", {"gravity": []}, "non-empty list"),
        ("ShiftedCartPole-v0", {"gravity": [1.0, 1.0]}, "duplicate level names"),
        ("ShiftedCartPole-v0", {}, "empty"),
        ("RobustLinearMDP-v0", {"q": [None]}, "q=None is not a number"),
        ("SMAClike-3m-v0", {"q": [0.3]}, "'SMAClike-3m-v0' has level type None"),
    ],
)
def test_shift_levels_validates_against_the_spec(env_id, grid, message):
    with pytest.raises(LevelError, match=message):
        shift_levels(envs.spec(env_id), grid)


def test_robust_envs_declare_shift_levels_and_others_none():
    specs = envs.registered()
    assert {i for i, s in specs.items() if s.level_type == "shift"} == {
        "RobustLinearMDP-v0",
        "AmericanPutOption-v0",
        "ShiftedCartPole-v0",
        "ShiftedPendulum-v0",
        "ShiftedPendulumContinuous-v0",
        "ShiftedHopper-v0",
        "ShiftedHalfCheetah-v0",
        "ShiftedWalker2d-v0",
    }
    assert specs["SMAClike-3m-v0"].level_type is None


def test_check_level_set_rejects_another_env_and_an_env_without_levels():
    check_level_set(LEVELS, envs.spec("RobustLinearMDP-v0"))
    with pytest.raises(LevelError, match="for env 'RobustLinearMDP-v0', not 'ShiftedCartPole-v0'"):
        check_level_set(LEVELS, envs.spec("ShiftedCartPole-v0"))
    with pytest.raises(LevelError, match=r"'SMAClike-3m-v0' declares no level type.*'RobustLinearMDP-v0'"):
        check_level_set(LEVELS, envs.spec("SMAClike-3m-v0"))
    mazes = LevelSet("RobustLinearMDP-v0", "maze", ({"walls": [[0, 1]]},))
    with pytest.raises(LevelError, match="level type 'maze' but env 'RobustLinearMDP-v0' accepts 'shift'"):
        check_level_set(mazes, envs.spec("RobustLinearMDP-v0"))


@pytest.mark.parametrize(
    "level, message",
    [({"qq": 0.3}, "level 'bad': env 'RobustLinearMDP-v0' has no shift parameter 'qq'"), ({"q": 2.0}, "q=2.0 outside")],
)
def test_check_level_set_validates_shift_levels(level, message):
    ls = LevelSet("RobustLinearMDP-v0", "shift", ({"q": 0.3}, level), ("ok", "bad"))
    with pytest.raises(LevelError, match=message):
        check_level_set(ls, envs.spec("RobustLinearMDP-v0"))


def test_a_saved_grid_drives_the_env_level_by_level(tmp_path):
    spec = envs.spec("RobustLinearMDP-v0")
    path = envs.save_level_set(shift_levels(spec, {"q": [0.0, 0.5, 1.0]}), tmp_path / "grid.json")
    ls = envs.load_level_set(path)
    check_level_set(ls, spec)
    env = envs.make(spec.id)
    for name, level in zip(ls.names, ls.levels):
        _, info = env.reset(seed=0, options={"level": level})
        assert info["shift"] == level, name
