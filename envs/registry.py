"""One registry for every ShiftRL environment, built-in or the user's.

An environment is registered by a *string* entry point ("package.module:Class"), never by
an object: the string travels to Ray workers inside an :class:`EnvSpec` and is imported
there, so a registration made in the driver works in every worker process (Ray workers do
not see ``gymnasium.register`` calls made in the driver, ../shared/specs/ray-runtime.md).

Gymnasium environments are also registered with ``gymnasium.register`` so that
``gymnasium.make("Id-v0")`` works for users who never touch ShiftRL's API.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium

Kind = Literal["gymnasium", "pettingzoo"]
_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*-v\d+$")
PLUGIN_ENV_VAR = "SHIFTRL_PLUGINS"


class EnvError(ValueError):
    """A bad environment id, entry point or parameter; the message says what was expected."""


@dataclass(frozen=True)
class ShiftParam:
    """A parameter that moves the dynamics away from the nominal ones.

    Attributes:
        name: keyword accepted by the env constructor and by ``reset(options=...)``.
        nominal: the value the data is collected under; None when the nominal kernel is
            not a member of the shifted family (the linear MDP's q).
        low: smallest meaningful value (inclusive).
        high: largest meaningful value (inclusive).
        doc: one line saying what the parameter changes.
    """

    name: str
    nominal: float | None
    low: float
    high: float
    doc: str = ""


@dataclass(frozen=True)
class EnvSpec:
    """Everything needed to build an environment in any process.

    Attributes:
        id: versioned id, e.g. ``RobustLinearMDP-v0``.
        entry_point: ``"module:Attr"``; imported lazily where the env is built.
        kind: ``"gymnasium"`` (single agent) or ``"pettingzoo"`` (ParallelEnv).
        kwargs: default constructor keyword arguments.
        shifts: the shift parameters the env understands (robust envs).
        tasks: names of tasks or levels (multi-task / procedural envs).
        description: one line shown by ``shiftrl envs``.
        max_episode_steps: episode limit, if the env has a fixed one.
        level_type: the kind of level dict the env accepts in ``reset(options={"level": ...})``
            (``"shift"``: a dict of shift parameters); None = no levels. Level-set files
            (:mod:`envs.levels`) record the same string, so a set made for one kind of env is
            rejected before an evaluation starts rather than failing inside it.
        level_check: optional ``"module:function"`` called as ``function(params, env_kwargs)``
            for every level of a set before it drives the env (configuration time, not
            after training); it raises ValueError saying what is wrong with the level for
            an env built with ``env_kwargs`` (the registered kwargs with the run's on top),
            e.g. Cave Escape's grid size.
    """

    id: str
    entry_point: str
    kind: Kind = "gymnasium"
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    shifts: tuple[ShiftParam, ...] = ()
    tasks: tuple[str, ...] = ()
    description: str = ""
    max_episode_steps: int | None = None
    level_type: str | None = None
    level_check: str | None = None

    def shift(self, name: str) -> ShiftParam:
        for s in self.shifts:
            if s.name == name:
                return s
        allowed = ", ".join(s.name for s in self.shifts) or "none"
        raise EnvError(f"env {self.id!r} has no shift parameter {name!r} (allowed: {allowed})")

    def make(self, **overrides: Any) -> Any:
        """Builds the environment, ``overrides`` on top of the registered kwargs."""
        cls = load_entry_point(self.entry_point)
        kwargs = {**dict(self.kwargs), **overrides}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise EnvError(f"env {self.id!r}: bad constructor arguments {sorted(kwargs)}: {exc}") from exc


_REGISTRY: dict[str, EnvSpec] = {}
_PLUGINS_LOADED: set[str] = set()


def load_entry_point(entry_point: str) -> Any:
    """Imports ``"module:Attr"`` and returns the attribute, with a clear error if it fails."""
    module_name, sep, attr = entry_point.partition(":")
    if not sep or not module_name or not attr:
        raise EnvError(f"entry point {entry_point!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EnvError(
            f"entry point {entry_point!r}: cannot import module {module_name!r} ({exc}); on a Ray "
            "cluster ship it with --working-dir or install it on every node"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise EnvError(f"entry point {entry_point!r}: module {module_name!r} has no {attr!r}") from exc


def register(
    id: str,
    entry_point: str,
    *,
    kind: Kind = "gymnasium",
    kwargs: Mapping[str, Any] | None = None,
    shifts: tuple[ShiftParam, ...] | list[ShiftParam] = (),
    tasks: tuple[str, ...] | list[str] = (),
    description: str = "",
    max_episode_steps: int | None = None,
    level_type: str | None = None,
    level_check: str | None = None,
    override: bool = False,
) -> EnvSpec:
    """Registers an environment for every ShiftRL command and every Ray worker.

    The entry point is a string so it can be imported inside worker processes; it is not
    imported here (registration stays cheap). Registered envs are picked up by the
    registry-driven API tests (``tests/test_env_api.py``) and by ``shiftrl envs --check``.

    Args:
        id: versioned id matching ``Name-vN``.
        entry_point: ``"package.module:Class"`` of a gymnasium.Env or a PettingZoo
            ParallelEnv (or a factory returning one).
        kind: ``"gymnasium"`` or ``"pettingzoo"``.
        kwargs: default constructor kwargs.
        shifts: shift parameters for robust evaluation.
        tasks: task or level names for multi-task evaluation.
        description: one line for ``shiftrl envs``.
        max_episode_steps: episode limit, if fixed.
        level_type: the kind of level dict accepted in ``reset(options={"level": ...})``;
            None when the env has no levels.
        level_check: ``"module:function"`` validating one level for given env kwargs
            (see :class:`EnvSpec`); needs ``level_type``.
        override: allow replacing an existing id (otherwise a duplicate is an error).

    Returns:
        The stored spec.
    """
    if not _ID_RE.match(id):
        raise EnvError(f"env id {id!r} must look like 'Name-v0' (letters, digits, '_', '-', '.')")
    if kind not in ("gymnasium", "pettingzoo"):
        raise EnvError(f"env {id!r}: kind must be 'gymnasium' or 'pettingzoo', got {kind!r}")
    if ":" not in entry_point:
        raise EnvError(f"env {id!r}: entry point {entry_point!r} must look like 'package.module:ClassName'")
    if id in _REGISTRY and not override:
        if _REGISTRY[id].entry_point == entry_point:
            return _REGISTRY[id]  # idempotent re-import of the same module
        raise EnvError(f"env id {id!r} is already registered to {_REGISTRY[id].entry_point!r}")
    if level_type is not None and (not isinstance(level_type, str) or not level_type):
        raise EnvError(f"env {id!r}: level_type must be a non-empty string or None, got {level_type!r}")
    if level_check is not None and (level_type is None or ":" not in str(level_check)):
        raise EnvError(
            f"env {id!r}: level_check must look like 'package.module:function' and needs a level_type, "
            f"got {level_check!r} with level_type {level_type!r}"
        )
    for s in shifts:
        if s.nominal is not None and not (s.low <= s.nominal <= s.high):
            raise EnvError(f"env {id!r}: shift {s.name!r} nominal {s.nominal} outside [{s.low}, {s.high}]")
    spec = EnvSpec(
        id=id,
        entry_point=entry_point,
        kind=kind,
        kwargs=dict(kwargs or {}),
        shifts=tuple(shifts),
        tasks=tuple(tasks),
        description=description,
        max_episode_steps=max_episode_steps,
        level_type=level_type,
        level_check=level_check,
    )
    _REGISTRY[id] = spec
    if kind == "gymnasium":
        gymnasium.register(
            id=id,
            entry_point=entry_point,
            kwargs=dict(kwargs or {}),
            max_episode_steps=None,  # our envs truncate themselves; no hidden TimeLimit
            disable_env_checker=True,
        )
    return spec


@functools.cache
def entry_point_modules(group: str) -> tuple[str, ...]:
    """Modules named by installed packages' entry points in ``group``. Scanning the
    installed distributions takes about 15 ms, and every env lookup loads plugins, so the
    scan runs once per process (packages installed later need a new process)."""
    from importlib.metadata import entry_points

    return tuple(ep.value.partition(":")[0] for ep in entry_points(group=group))


def load_plugins(modules: list[str] | tuple[str, ...] = ()) -> None:
    """Imports user modules that call :func:`register`.

    Sources, in order: the ``SHIFTRL_PLUGINS`` environment variable (comma separated), the
    ``shiftrl.envs`` entry-point group of installed packages, and ``modules`` (a config's
    ``imports`` list). Each module is imported once per process.
    """
    names = [m.strip() for m in os.environ.get(PLUGIN_ENV_VAR, "").split(",") if m.strip()]
    names.extend(entry_point_modules("shiftrl.envs"))
    names.extend(modules)
    for name in names:
        if name in _PLUGINS_LOADED:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise EnvError(f"cannot import plugin module {name!r} that registers environments: {exc}") from exc
        _PLUGINS_LOADED.add(name)


def spec(id: str) -> EnvSpec:
    """Returns the spec of ``id`` or raises an EnvError listing close matches."""
    _ensure_builtins()
    if id not in _REGISTRY:
        close = difflib.get_close_matches(id, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise EnvError(f"unknown env id {id!r}{hint} (`shiftrl envs` lists the registered ones)")
    return _REGISTRY[id]


def make(id: str, **kwargs: Any) -> Any:
    """Builds a registered environment; kwargs override the registered defaults."""
    return spec(id).make(**kwargs)


def registered() -> dict[str, EnvSpec]:
    """All registered specs, built-ins included, by id."""
    _ensure_builtins()
    return dict(sorted(_REGISTRY.items()))


def _ensure_builtins() -> None:
    # The built-in families register themselves on import; importing here keeps
    # `import envs.registry` cheap for workers that only need load_entry_point.
    importlib.import_module("envs.robust")
    importlib.import_module("envs.smaclike")
    importlib.import_module("envs.cave")
    # User envs from SHIFTRL_PLUGINS and installed entry points, in every process that
    # looks an env up (Ray workers included); each module is imported once.
    load_plugins(())
