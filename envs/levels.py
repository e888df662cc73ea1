"""Tasks and levels as data: versioned level-set files for envs that accept levels.

An env that declares a ``level_type`` (:class:`envs.registry.EnvSpec`) accepts
``reset(options={"level": LEVEL})`` where LEVEL is a JSON-able dict of parameters; for the
robust families (level type ``"shift"``) a level is the env's dict of shift parameters. A
level set is one JSON file, so an evaluation set can be reviewed in a diff, shared and pinned
by its hash instead of living in code::

    {"format": "shiftrl-levels", "version": 1, "env_id": "ShiftedCartPole-v0",
     "level_type": "shift", "description": "...",
     "levels": [{"name": "gravity=0.5", "params": {"gravity": 0.5}}, ...],
     "sha256": "<sha256 of the canonical JSON of the levels list>"}

It is written atomically (a temporary sibling file, fsync, ``os.replace``) and validated on
load: a missing, truncated, modified or newer file raises :class:`LevelError` naming the file
and what was expected. :func:`check_level_set` then rejects a set made for another env or
another kind of level before any episode runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import numbers
import os
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.registry import EnvError, EnvSpec

FORMAT = "shiftrl-levels"
VERSION = 1
_KEYS = ("format", "version", "env_id", "level_type", "description", "levels", "sha256")


class LevelError(ValueError):
    """A level set that is missing, truncated, modified, malformed or made for another env."""


@dataclass(frozen=True)
class LevelSet:
    """An ordered, named collection of levels for one env.

    The levels are normalised through JSON on construction (tuples become lists, the caller's
    dicts are copied), so what you hold is exactly what :func:`save_level_set` writes and
    :func:`load_level_set` returns: ``load_level_set(save_level_set(s, p)) == s``.

    Attributes:
        env_id: id of the env the levels are for, e.g. ``ShiftedCartPole-v0``.
        level_type: the kind of level, matched against ``EnvSpec.level_type``.
        levels: one JSON-able dict of parameters per level, passed as
            ``reset(options={"level": params})``.
        names: one unique name per level, used as the evaluation tag; empty gives
            ``level_0000``, ``level_0001``, ...
        description: one line saying what the set is for.
    """

    env_id: str
    level_type: str
    levels: tuple[dict[str, Any], ...]
    names: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        for attr in ("env_id", "level_type"):
            if not isinstance(getattr(self, attr), str) or not getattr(self, attr):
                raise LevelError(f"LevelSet: {attr} must be a non-empty string, got {getattr(self, attr)!r}")
        if not isinstance(self.description, str):
            raise LevelError(f"LevelSet for {self.env_id!r}: description must be a string")
        try:
            levels, names = _normalised(self.levels, self.names)
        except LevelError as exc:
            raise LevelError(f"LevelSet for {self.env_id!r}: {exc}") from None
        # Frozen: the normalised copies replace the caller's containers once, here.
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "names", names)

    def __len__(self) -> int:
        return len(self.levels)


def _normalised(levels: Any, names: Any) -> tuple[tuple[dict[str, Any], ...], tuple[str, ...]]:
    """Validated JSON-normalised copies of ``levels`` and ``names`` (bare messages)."""
    if isinstance(levels, Mapping | str | bytes) or not isinstance(levels, Sequence):
        raise LevelError(f"levels must be a sequence of parameter dicts, got {type(levels).__name__}")
    if not levels:
        raise LevelError("a level set needs at least one level")
    names = tuple(names) if names else tuple(f"level_{i:04d}" for i in range(len(levels)))
    if len(names) != len(levels):
        raise LevelError(f"{len(names)} names for {len(levels)} levels (one name per level)")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise LevelError(f"level {i}: name must be a non-empty string, got {name!r}")
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        raise LevelError(f"duplicate level names {duplicates} (names must be unique)")
    out = []
    for name, params in zip(names, levels):
        if not isinstance(params, Mapping):
            raise LevelError(
                f"level {name!r}: params must be a mapping of parameter names to values, got {type(params).__name__}"
            )
        bad_keys = [k for k in params if not isinstance(k, str)]
        if bad_keys:
            raise LevelError(f"level {name!r}: parameter names must be strings, got {bad_keys}")
        try:
            out.append(json.loads(json.dumps(dict(params), allow_nan=False)))
        except (TypeError, ValueError) as exc:
            raise LevelError(
                f"level {name!r}: params must be JSON-able (finite numbers, strings, lists, dicts): {exc}"
            ) from exc
    return tuple(out), names


def _levels_sha256(entries: list[dict[str, Any]]) -> str:
    # Canonical form: sorted keys, no whitespace, UTF-8; floats round-trip exactly through repr.
    text = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _entries(level_set: LevelSet) -> list[dict[str, Any]]:
    return [{"name": n, "params": p} for n, p in zip(level_set.names, level_set.levels)]


def save_level_set(level_set: LevelSet, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Writes ``level_set`` to one JSON file atomically and returns its path.

    A reader never sees a half-written file: the text goes to a temporary file in the same
    directory (same filesystem, so the rename is atomic), is fsynced, then replaces ``path``.

    Args:
        level_set: the levels to write.
        path: destination file (parent directories are created).
        overwrite: replace an existing file; otherwise an existing file is an error, so a
            pinned evaluation set is not silently changed.

    Returns:
        ``path`` as a Path.

    Raises:
        LevelError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise LevelError(
            f"level set {path} already exists (overwrite=True, or --overwrite on the command line, replaces it)"
        )
    entries = _entries(level_set)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "env_id": level_set.env_id,
        "level_type": level_set.level_type,
        "description": level_set.description,
        "levels": entries,
        "sha256": _levels_sha256(entries),
    }
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def load_level_set(path: str | os.PathLike) -> LevelSet:
    """Reads and validates a level-set file (see the module docstring for the format).

    Args:
        path: a file written by :func:`save_level_set` (or by hand, with a correct sha256).

    Returns:
        The level set, equal to the one that was saved.

    Raises:
        LevelError: the file is missing, not JSON (truncated?), of another format or a newer
            version, lacks keys, has malformed or duplicate levels, or its levels do not
            match the recorded sha256 (modified or truncated). The message names the file.
    """
    path = Path(path)
    where = f"level set {path}"
    if not path.is_file():
        raise LevelError(f"{where}: no such file (expected a {FORMAT!r} JSON file written by save_level_set)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LevelError(f"{where}: not valid JSON - truncated or not a level-set file ({exc})") from exc
    if not isinstance(doc, dict):
        raise LevelError(f"{where}: expected a JSON object with keys {list(_KEYS)}, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise LevelError(f"{where}: format {doc.get('format')!r}, expected {FORMAT!r}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise LevelError(f"{where}: version {version!r}, expected an integer 1..{VERSION}")
    if version > VERSION:
        raise LevelError(f"{where}: version {version} is newer than this ShiftRL reads (v{VERSION}); upgrade ShiftRL")
    missing = [k for k in _KEYS if k not in doc]
    if missing:
        raise LevelError(f"{where}: missing keys {missing} (expected {list(_KEYS)})")
    unknown = sorted(set(doc) - set(_KEYS))
    if unknown:
        raise LevelError(f"{where}: unknown keys {unknown} (expected {list(_KEYS)})")
    for key in ("env_id", "level_type", "description", "sha256"):
        if not isinstance(doc[key], str):
            raise LevelError(f"{where}: {key} must be a string, got {doc[key]!r}")
    entries = doc["levels"]
    if not isinstance(entries, list):
        raise LevelError(f"{where}: levels must be a list of {{'name': ..., 'params': {{...}}}}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != {"name", "params"}:
            raise LevelError(f"{where}: levels[{i}] must be an object with exactly the keys 'name' and 'params'")
    try:
        level_set = LevelSet(
            env_id=doc["env_id"],
            level_type=doc["level_type"],
            levels=tuple(e["params"] for e in entries),
            names=tuple(e["name"] for e in entries),
            description=doc["description"],
        )
    except LevelError as exc:
        raise LevelError(f"{where}: {exc}") from None
    if _levels_sha256(entries) != doc["sha256"]:
        raise LevelError(
            f"{where}: the levels do not match the recorded sha256 - the file was modified or truncated "
            "(rewrite it with save_level_set)"
        )
    return level_set


def check_level_set(level_set: LevelSet, spec: EnvSpec, env_kwargs: Mapping[str, Any] | None = None) -> None:
    """Raises LevelError unless ``level_set`` can drive the env ``spec`` describes, built
    with ``env_kwargs`` on top of its registered kwargs.

    Run before an evaluation so a wrong file fails at configuration time, not after
    training. For ``"shift"`` levels every parameter is also checked against
    ``spec.shifts`` (name and range); an env with a ``level_check`` has every level checked
    by it (Cave Escape: the level parses and fits the env's grid size).

    Args:
        level_set: a loaded or built level set.
        spec: the env it is meant for.
        env_kwargs: the run's constructor kwargs (``env.kwargs``).

    Raises:
        LevelError: the env declares no level type, the set is for another env id, the
            level types differ, a shift level names an unknown parameter or an
            out-of-range value, or the env's level check rejects a level. The message names
            both sides.
    """
    if spec.level_type is None:
        raise LevelError(
            f"env {spec.id!r} declares no level type (it does not accept reset(options={{'level': ...}})); "
            f"the level set for {level_set.env_id!r} (level type {level_set.level_type!r}) cannot drive it"
        )
    if level_set.env_id != spec.id:
        raise LevelError(f"the level set is for env {level_set.env_id!r}, not {spec.id!r}")
    if level_set.level_type != spec.level_type:
        raise LevelError(
            f"the level set has level type {level_set.level_type!r} but env {spec.id!r} accepts "
            f"{spec.level_type!r} levels"
        )
    if spec.level_type == "shift":
        for name, params in zip(level_set.names, level_set.levels):
            for key, value in params.items():
                _check_shift_value(spec, key, value, f"level {name!r}", allow_none=True)
    if spec.level_check is not None:
        from envs.registry import load_entry_point

        try:
            check = load_entry_point(spec.level_check)
        except EnvError as exc:  # the hook's module or name is missing
            raise LevelError(
                f"env {spec.id!r}: its level_check {spec.level_check!r} cannot be loaded ({exc})"
            ) from None
        kwargs = {**dict(spec.kwargs), **dict(env_kwargs or {})}
        for name, params in zip(level_set.names, level_set.levels):
            try:
                check(params, kwargs)
            except (TypeError, ValueError) as exc:  # TypeError: e.g. env kwargs of the wrong type
                raise LevelError(f"level {name!r}: {exc}") from None


def _check_shift_value(spec: EnvSpec, key: str, value: Any, where: str, allow_none: bool) -> None:
    """Raises LevelError unless ``key=value`` is a shift ``spec`` accepts."""
    param = next((s for s in spec.shifts if s.name == key), None)
    if param is None:
        allowed = [s.name for s in spec.shifts] or "none"
        raise LevelError(f"{where}: env {spec.id!r} has no shift parameter {key!r} (allowed: {allowed})")
    if value is None and allow_none and param.nominal is None:
        return  # the nominal kernel is not a member of the family (the linear MDP's q=None)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise LevelError(f"{where}: shift {key}={value!r} is not a number")
    if not param.low <= float(value) <= param.high:
        raise LevelError(f"{where}: shift {key}={value} outside [{param.low}, {param.high}] for env {spec.id!r}")


def shift_levels(spec: EnvSpec, grid: Mapping[str, Sequence[float]]) -> LevelSet:
    """The cartesian product of shift values as a level set, one level per grid point.

    A robustness sweep then becomes an ordinary level set: saved, reviewed and evaluated
    the same way as a hand-written one. Names read ``"gravity=0.5,length=2.0"`` (parameters
    in the order given, values as exact floats), so they are stable tags for logging.

    Args:
        spec: an env with level type ``"shift"``.
        grid: shift parameter -> values; every parameter must be one of ``spec.shifts``
            and every value inside its range.

    Returns:
        A LevelSet with ``prod(len(values))`` levels in ``itertools.product`` order.

    Raises:
        LevelError: the env takes no shift levels, the grid is empty, or a name or value
            is not accepted by ``spec.shifts``.
    """
    if spec.level_type != "shift":
        raise LevelError(f"env {spec.id!r} has level type {spec.level_type!r}, not 'shift'; it takes no shift levels")
    if not grid:
        raise LevelError(f"shift grid for {spec.id!r} is empty (give at least one parameter and value)")
    axes: list[list[tuple[str, float]]] = []
    for key, values in grid.items():
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise LevelError(f"shift grid for {spec.id!r}: {key} needs a non-empty list of values, got {values!r}")
        for v in values:
            _check_shift_value(spec, key, v, f"shift grid for {spec.id!r}", allow_none=False)
        axes.append([(key, float(v)) for v in values])
    points = [dict(point) for point in itertools.product(*axes)]
    names = tuple(",".join(f"{k}={v!r}" for k, v in p.items()) for p in points)
    description = "shift grid: " + "; ".join(f"{k} in {[float(v) for v in vs]}" for k, vs in grid.items())
    return LevelSet(spec.id, "shift", tuple(points), names, description)
