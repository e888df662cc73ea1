"""ShiftRL environments: Gymnasium and PettingZoo envs whose dynamics, tasks or levels shift.

Public surface: :func:`register` (one call for a user's env), :func:`make`, :func:`spec`,
:func:`registered`, :func:`check` (the API checks every registered env gets), level sets
(:class:`LevelSet`, :func:`save_level_set`, :func:`load_level_set`; helpers in
:mod:`envs.levels`) and the episode runner in :mod:`envs.episodes`.
"""

from envs.levels import LevelError, LevelSet, load_level_set, save_level_set
from envs.registry import EnvError, EnvSpec, ShiftParam, load_plugins, make, register, registered, spec

__all__ = [
    "EnvError",
    "EnvSpec",
    "LevelError",
    "LevelSet",
    "ShiftParam",
    "check",
    "load_level_set",
    "load_plugins",
    "make",
    "register",
    "registered",
    "save_level_set",
    "spec",
]


def check(env_id: str, seed: int = 0) -> None:
    """Runs the API, determinism and pickling checks on a registered env (raises on failure)."""
    from envs.checks import check_env_spec

    check_env_spec(spec(env_id), seed=seed)
