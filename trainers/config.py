"""Experiment configs: YAML (safe_load) -> frozen dataclasses, validated before Ray starts.

A config file holds overrides only; defaults live in the dataclasses (and the agents'
config classes). Unknown keys, wrong types, unknown env ids and impossible values raise
:class:`ConfigError` naming the dotted key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

import envs


class ConfigError(ValueError):
    """A config that cannot run; the message names the key and what was expected."""


@dataclass(frozen=True)
class EnvConfig:
    """Which environment, and its constructor kwargs.

    Attributes:
        id: registered env id (``shiftrl envs`` lists them).
        kwargs: constructor kwargs on top of the registered defaults.
        levels: a level-set file (``envs.levels``) to train on: every reset plays one of its
            levels, chosen by the agent's level sampler (uniform when it has none).
    """

    id: str = "RobustLinearMDP-v0"
    kwargs: dict[str, Any] = field(default_factory=dict)
    levels: str | None = None


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation of the agent's greedy policy: over a grid of shifts, per task, or per level.

    Attributes:
        shifts: one shift parameter and its grid, e.g. ``{q: [0, 0.5, 1]}``; empty = the
            env's nominal dynamics.
        tasks: tasks of a multi-task env to evaluate one by one; empty = every task the env
            declares (envs without tasks: one pooled evaluation).
        levels: path of a level-set file (``envs.levels``) to evaluate level by level.
        episodes: test episodes per grid point, task or level (R2PVI paper: 100).
        exact: use the env's exact dynamic-programming evaluator instead of Monte Carlo
            (finite MDPs with linear policies only; no sampling noise).
        every: env steps between evaluations during training (online agents); 0 = only at
            the end of the run.
        sample: evaluate the stochastic policy (actions sampled, seeded per batch of
            episodes) instead of the greedy one - how dcd and DRED evaluate on MiniGrid,
            where a greedy recurrent policy can loop forever (curriculum and on-policy agents;
            the charts keep the tags eval/greedy/*, one tag scheme for every agent).
    """

    shifts: dict[str, list[float]] = field(default_factory=dict)
    tasks: tuple[str, ...] = ()
    levels: str | None = None
    episodes: int = 100
    exact: bool = False
    every: int = 0
    sample: bool = False


@dataclass(frozen=True)
class RayConfig:
    """Where and how wide to run.

    Attributes:
        address: Ray address to attach to; None = RAY_ADDRESS or an embedded local Ray.
        num_workers: rollout actors per run (RLlib agents: EnvRunners); None = derived from
            the cluster's CPUs.
        envs_per_worker: environments each rollout actor steps together (one batched policy
            forward for all of them); None = the agent's loop default.
        include_dashboard: start the dashboard with the embedded Ray (bound to 127.0.0.1).
    """

    address: str | None = None
    num_workers: int | None = None
    envs_per_worker: int | None = None
    include_dashboard: bool = False


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: an agent on an env, evaluated over shifts, tasks or levels.

    Attributes:
        agent: a registered agent name (``shiftrl agents`` lists them with their options).
        env: the environment.
        seed: base seed; everything random derives from it.
        eval: evaluation over shifts, tasks or levels.
        ray: cluster options.
        agent_config: the agent's own options (its config class; ``shiftrl agents``).
        imports: modules to import first (they may register envs and agents), in driver
            and workers.
        runs_dir: where run directories are created.
        name: optional label added to the run directory name.
    """

    agent: str = "r2pvi"
    env: EnvConfig = field(default_factory=EnvConfig)
    seed: int = 0
    eval: EvalConfig = field(default_factory=EvalConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    agent_config: Any = None
    imports: tuple[str, ...] = ()
    runs_dir: str = "runs"
    name: str = ""


# -- generic dataclass parsing -------------------------------------------------------------
def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of {_type_name(tp)}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not allowed; expected one of {list(get_args(tp))}")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, key)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = get_args(tp)[:1] or (Any,)
        items = [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        _, vt = get_args(tp)
        return {str(k): _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Builds dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    where = prefix or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _convert(value, hints[name], key)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from exc


def to_dict(obj: Any) -> Any:
    """Dataclasses -> plain YAML-safe data (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


# -- loading, overrides, semantic validation ----------------------------------------------
def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=1`` -> (["a", "b"], 1); the value is parsed as YAML (numbers, lists, null)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. --set agent_config.beta=0.5")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({exc})") from exc
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is not a mapping")
            node = child
        node[path[-1]] = value
    return data


def load_config(path: str | Path | None, overrides: list[str] | None = None, stored: bool = False) -> ExperimentConfig:
    """Reads a YAML config (or none), applies ``--set`` overrides, parses and validates.

    ``stored``: the file is a run's own config.yaml (fully resolved when the run started):
    an agent option it lacks was added later, and takes the value the run ran with (the
    agent config class's ``LEGACY_DEFAULTS``), not today's default."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p}: not valid YAML ({exc})") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {p}: expected a mapping at the top level")
        data = loaded or {}
    data = apply_overrides(data, overrides or [])
    return parse_config(data, stored)


def parse_config(data: dict[str, Any], stored: bool = False) -> ExperimentConfig:
    """Builds and validates an ExperimentConfig from plain data (YAML after overrides)."""
    from trainers.agents import AgentError, agent_spec, load_plugins

    agent_data = data.get("agent_config")
    top = {f.name for f in dataclasses.fields(ExperimentConfig)}
    base = None
    try:
        base = from_dict(ExperimentConfig, {k: v for k, v in data.items() if k != "agent_config"})
    except ConfigError:
        misplaced = _misplaced(data, top)
        if misplaced:
            raise ConfigError(misplaced) from None
        raise
    try:
        load_plugins(base.imports)  # user modules may register the agent or the env
        spec = agent_spec(base.agent)
        agent_cls = spec.config_class()
    except (AgentError, envs.EnvError) as exc:
        raise ConfigError(f"agent: {exc}") from exc
    agent_data = dict(agent_data or {})
    if stored:
        for key, value in getattr(agent_cls, "LEGACY_DEFAULTS", {}).items():
            agent_data.setdefault(key, value)
    for key, value in spec.defaults.items():
        if key in agent_data and agent_data[key] != value:
            raise ConfigError(
                f"agent_config.{key}: agent {spec.name!r} is defined by {key}={value!r}; got {agent_data[key]!r} "
                "(pick the agent name that means what you want)"
            )
        agent_data[key] = value
    agent_cfg = from_dict(agent_cls, agent_data, "agent_config")
    cfg = dataclasses.replace(base, agent_config=agent_cfg)
    validate(cfg)
    return cfg


def _misplaced(data: dict[str, Any], top: set[str]) -> str | None:
    """A hint for a top-level key that belongs to the agent's config (older layouts put
    ``replications`` and ``data`` at the top)."""
    from trainers.agents import AgentError, agent_spec

    try:
        cls = agent_spec(str(data.get("agent", "r2pvi"))).config_class()
    except (AgentError, envs.EnvError):
        return None
    fields = {f.name for f in dataclasses.fields(cls)}
    keys = sorted(k for k in set(data) - top if k in fields)
    if not keys:
        return None
    return (
        f"config: {keys} belong under agent_config for agent {data.get('agent', 'r2pvi')!r} "
        f"(e.g. agent_config.{keys[0]}); top-level keys are {sorted(top)}"
    )


def _non_default(obj: Any) -> list[str]:
    """Fields of a config dataclass set to something other than their default."""
    out = []
    for f in dataclasses.fields(obj):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc,operator]
        if getattr(obj, f.name) != default:
            out.append(f.name)
    return out


def validate(cfg: ExperimentConfig) -> None:
    """Semantic checks that need the env and agent registries (run before Ray starts).

    Besides ranges and names, a key the chosen agent's loop would ignore is an error: each
    loop declares the ``eval`` and ``ray`` fields it uses (``EVAL_FIELDS``, ``RAY_FIELDS``).
    """
    from trainers.agents import agent_spec

    spec = agent_spec(cfg.agent)
    try:
        envs.load_plugins(cfg.imports)
        env_spec = envs.spec(cfg.env.id)
    except envs.EnvError as exc:
        raise ConfigError(f"env.id: {exc}") from exc
    if env_spec.kind not in spec.env_kinds:
        raise ConfigError(
            f"env.id: agent {cfg.agent!r} runs {' or '.join(spec.env_kinds)} envs; {env_spec.id!r} is a "
            f"{env_spec.kind} env"
        )
    loop = spec.loop_module()
    for section, obj, used in (("eval", cfg.eval, loop.EVAL_FIELDS), ("ray", cfg.ray, loop.RAY_FIELDS)):
        ignored = [name for name in _non_default(obj) if name not in used]
        if ignored:
            raise ConfigError(
                f"{section}.{ignored[0]}: agent {cfg.agent!r} ({spec.loop} loop) does not use it; it uses "
                f"{section} keys {sorted(used)}"
            )
    if cfg.eval.episodes < 1:
        raise ConfigError(f"eval.episodes: must be >= 1, got {cfg.eval.episodes}")
    if cfg.eval.every < 0:
        raise ConfigError(f"eval.every: must be >= 0 env steps, got {cfg.eval.every}")
    if len(cfg.eval.shifts) > 1:
        raise ConfigError(f"eval.shifts: one shift parameter per grid, got {sorted(cfg.eval.shifts)}")
    if sum(map(bool, (cfg.eval.shifts, cfg.eval.tasks, cfg.eval.levels))) > 1:
        raise ConfigError("eval: give one of shifts, tasks or levels (one evaluation set per run)")
    for name, values in cfg.eval.shifts.items():
        try:
            param = env_spec.shift(name)
        except envs.EnvError as exc:
            raise ConfigError(f"eval.shifts: {exc}") from exc
        if not values:
            raise ConfigError(f"eval.shifts.{name}: empty grid")
        bad = [v for v in values if not param.low <= v <= param.high]
        if bad:
            raise ConfigError(f"eval.shifts.{name}: values {bad} outside [{param.low}, {param.high}]")
    unknown_tasks = [t for t in cfg.eval.tasks if t not in env_spec.tasks]
    if unknown_tasks:
        raise ConfigError(
            f"eval.tasks: {unknown_tasks} are not tasks of {env_spec.id!r} (tasks: {list(env_spec.tasks) or 'none'})"
        )
    for key, path in (("eval.levels", cfg.eval.levels), ("env.levels", cfg.env.levels)):
        if path is None:
            continue
        from envs.levels import LevelError, check_level_set, load_level_set

        try:
            check_level_set(load_level_set(path), env_spec, cfg.env.kwargs)
        except LevelError as exc:
            hint = ""
            if not Path(path).exists():
                hint = (
                    " - make Cave Escape's sets with `shiftrl make-levels cave --out levels/cave`, a grid of "
                    "shifts with `shiftrl make-levels shift --env ID --grid NAME=V1,V2 --out FILE`"
                )
            raise ConfigError(f"{key}: {exc}{hint}") from exc
    if cfg.env.levels is not None and "levels" not in getattr(loop, "ENV_FIELDS", ()):
        raise ConfigError(f"env.levels: agent {cfg.agent!r} ({spec.loop} loop) does not train on level sets")
    if cfg.ray.num_workers is not None and cfg.ray.num_workers < 0:
        raise ConfigError(f"ray.num_workers: must be >= 0, got {cfg.ray.num_workers}")
    if cfg.ray.envs_per_worker is not None and cfg.ray.envs_per_worker < 1:
        raise ConfigError(f"ray.envs_per_worker: must be >= 1, got {cfg.ray.envs_per_worker}")
    try:
        loop.validate(cfg, env_spec)
    except (ValueError, envs.EnvError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc


def dump_config(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
