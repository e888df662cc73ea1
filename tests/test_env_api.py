"""Registry-driven: every registered env (built-in or registered by a plugin) gets the
Gymnasium/PettingZoo API checks, same-seed determinism and pickling."""

from __future__ import annotations

import pytest

import envs


@pytest.mark.parametrize("env_id", sorted(envs.registered()))
def test_registered_env_passes_api_checks(env_id):
    envs.check(env_id)


def test_user_registration_is_checked_and_reaches_make(tmp_path, monkeypatch):
    (tmp_path / "my_shift_envs.py").write_text(
        "import envs\n"
        "envs.register('MyPut-v0', 'envs.robust.american_put:AmericanPutOption', kwargs={'horizon': 5},\n"
        "              shifts=[envs.ShiftParam('p_up', 0.5, 0.0, 1.0)], description='user env')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    envs.load_plugins(["my_shift_envs"])
    assert "MyPut-v0" in envs.registered()
    env = envs.make("MyPut-v0")
    assert env.core.horizon == 5
    envs.check("MyPut-v0")
    import gymnasium

    assert gymnasium.make("MyPut-v0").unwrapped.core.horizon == 5


def test_unknown_env_id_suggests_close_matches():
    with pytest.raises(envs.EnvError, match=r"unknown env id 'RobustLinearMDP-v1'.*did you mean 'RobustLinearMDP-v0'"):
        envs.make("RobustLinearMDP-v1")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"id": "bad id", "entry_point": "a:b"}, "must look like 'Name-v0'"),
        ({"id": "Fine-v0", "entry_point": "no_colon"}, "must look like 'package.module:ClassName'"),
        ({"id": "RobustLinearMDP-v0", "entry_point": "x.y:Z"}, "already registered"),
        ({"id": "Fine-v0", "entry_point": "a:b", "level_check": "m:f"}, "needs a level_type"),
        ({"id": "Fine-v0", "entry_point": "a:b", "level_type": "x", "level_check": "nocolon"}, "level_check"),
    ],
)
def test_bad_registrations_are_rejected(kwargs, message):
    with pytest.raises(envs.EnvError, match=message):
        envs.register(**kwargs)


def test_unimportable_entry_point_names_the_module():
    envs.register("Broken-v0", "no_such_module_xyz:Env", override=True)
    with pytest.raises(envs.EnvError, match="cannot import module 'no_such_module_xyz'"):
        envs.make("Broken-v0")
    envs.registry._REGISTRY.pop("Broken-v0")
