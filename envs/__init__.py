"""ShiftRL environments: Gymnasium and PettingZoo envs whose dynamics, tasks or levels shift.

Public surface: :func:`register` (one call for a user's env), :func:`make`, :func:`spec`,
:func:`registered`, :func:`check` (the API checks every registered env gets) and the
episode runner in :mod:`envs.episodes`.
"""

from envs.registry import EnvError, EnvSpec, ShiftParam, load_plugins, make, register, registered, spec

__all__ = ["EnvError", "EnvSpec", "ShiftParam", "check", "load_plugins", "make", "register", "registered", "spec"]


def check(env_id: str, seed: int = 0) -> None:
    """Runs the API, determinism and pickling checks on a registered env (raises on failure)."""
    from envs.checks import check_env_spec

    check_env_spec(spec(env_id), seed=seed)
