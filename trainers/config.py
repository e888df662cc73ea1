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
from agents.r2pvi import R2PVIConfig
from trainers.rllib import RLlibPPOConfig


class ConfigError(ValueError):
    """A config that cannot run; the message names the key and what was expected."""


@dataclass(frozen=True)
class EnvConfig:
    """Which environment, and its constructor kwargs.

    Attributes:
        id: registered env id (``shiftrl envs`` lists them).
        kwargs: constructor kwargs on top of the registered defaults.
    """

    id: str = "RobustLinearMDP-v0"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    """Offline data: collected through Ray rollouts of a behaviour policy, or loaded.

    Attributes:
        behaviour: "random" (uniform over actions) or "constant:<action>" (e.g. the
            option's "always hold" = constant:0).
        episodes: trajectories per replication (K in the paper).
        dataset: path of a dataset written by ``shiftrl collect``; replaces collection
            (then ``replications`` must be 1).
        shift: shift the data is collected under; empty = the env's nominal kernel.
        chunk: episodes per rollout task (fixed, so results do not depend on worker count).
    """

    behaviour: str = "random"
    episodes: int = 100
    dataset: str | None = None
    shift: dict[str, float] = field(default_factory=dict)
    chunk: int = 50


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation over a grid of shifts.

    Attributes:
        shifts: one shift parameter and its grid, e.g. ``{q: [0, 0.5, 1]}``.
        episodes: Monte-Carlo test episodes per (replication, method, shift) (paper: 100).
        exact: use the env's exact dynamic-programming evaluator instead of Monte Carlo
            (finite MDPs only; no sampling noise).
    """

    shifts: dict[str, list[float]] = field(default_factory=dict)
    episodes: int = 100
    exact: bool = False


@dataclass(frozen=True)
class RayConfig:
    """Where and how wide to run.

    Attributes:
        address: Ray address to attach to; None = RAY_ADDRESS or an embedded local Ray.
        num_workers: rollout actors per run; None = derived from the cluster's CPUs.
        include_dashboard: start the dashboard with the embedded Ray (bound to 127.0.0.1).
    """

    address: str | None = None
    num_workers: int | None = None
    include_dashboard: bool = False


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: an agent on an env, replicated, evaluated over shifts.

    Attributes:
        agent: agent name: r2pvi (offline robust, linear) or rllib_ppo (RLlib's PPO with a
            shared action-masked policy, for PettingZoo envs).
        env: the environment.
        seed: base seed; everything random derives from it.
        replications: independent datasets + fits (paper figure 1: 20).
        data: offline data.
        eval: evaluation grid.
        ray: cluster options.
        agent_config: the agent's own options (see agents/<name>/config.py).
        imports: modules to import first (they may register envs), in driver and workers.
        runs_dir: where run directories are created.
        name: optional label added to the run directory name.
    """

    agent: Literal["r2pvi", "rllib_ppo"] = "r2pvi"
    env: EnvConfig = field(default_factory=EnvConfig)
    seed: int = 0
    replications: int = 1
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    agent_config: Any = None
    imports: tuple[str, ...] = ()
    runs_dir: str = "runs"
    name: str = ""


AGENT_CONFIGS: dict[str, type] = {"r2pvi": R2PVIConfig, "rllib_ppo": RLlibPPOConfig}


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


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Reads a YAML config (or none), applies ``--set`` overrides, parses and validates."""
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
    return parse_config(data)


def parse_config(data: dict[str, Any]) -> ExperimentConfig:
    agent_data = data.get("agent_config")
    base = from_dict(ExperimentConfig, {k: v for k, v in data.items() if k != "agent_config"})
    agent_cls = AGENT_CONFIGS[base.agent]
    agent_cfg = from_dict(agent_cls, agent_data or {}, "agent_config")
    cfg = dataclasses.replace(base, agent_config=agent_cfg)
    validate(cfg)
    return cfg


def validate(cfg: ExperimentConfig) -> None:
    """Semantic checks that need the env registry (run before Ray starts)."""
    try:
        envs.load_plugins(cfg.imports)
        spec = envs.spec(cfg.env.id)
    except envs.EnvError as exc:
        raise ConfigError(f"env.id: {exc}") from exc
    if cfg.agent == "rllib_ppo" and spec.kind != "pettingzoo":
        raise ConfigError(f"env.id: rllib_ppo runs PettingZoo envs; {spec.id!r} is a {spec.kind} env")
    if cfg.agent == "r2pvi" and spec.kind != "gymnasium":
        raise ConfigError(f"env.id: r2pvi needs a single-agent env with linear features; {spec.id!r} is {spec.kind}")
    if cfg.replications < 1:
        raise ConfigError(f"replications: must be >= 1, got {cfg.replications}")
    if cfg.data.episodes < 1:
        raise ConfigError(f"data.episodes: must be >= 1, got {cfg.data.episodes}")
    if cfg.data.chunk < 1:
        raise ConfigError(f"data.chunk: must be >= 1, got {cfg.data.chunk}")
    if cfg.data.dataset is not None and cfg.replications != 1:
        raise ConfigError("data.dataset: a fixed dataset allows replications: 1 only")
    parse_behaviour(cfg.data.behaviour)
    if cfg.eval.episodes < 1:
        raise ConfigError(f"eval.episodes: must be >= 1, got {cfg.eval.episodes}")
    if len(cfg.eval.shifts) > 1:
        raise ConfigError(f"eval.shifts: one shift parameter per grid, got {sorted(cfg.eval.shifts)}")
    for section, shifts in (
        ("eval.shifts", {k: v for k, vs in cfg.eval.shifts.items() for v in vs}),
        ("data.shift", cfg.data.shift),
    ):
        for name in shifts:
            try:
                param = spec.shift(name)
            except envs.EnvError as exc:
                raise ConfigError(f"{section}: {exc}") from exc
    for name, values in cfg.eval.shifts.items():
        param = spec.shift(name)
        if not values:
            raise ConfigError(f"eval.shifts.{name}: empty grid")
        bad = [v for v in values if not param.low <= v <= param.high]
        if bad:
            raise ConfigError(f"eval.shifts.{name}: values {bad} outside [{param.low}, {param.high}]")
    if cfg.ray.num_workers is not None and cfg.ray.num_workers < 0:
        raise ConfigError(f"ray.num_workers: must be >= 0, got {cfg.ray.num_workers}")


def parse_behaviour(text: str) -> tuple[str, int | None]:
    """'random' -> ('random', None); 'constant:0' -> ('constant', 0)."""
    if text == "random":
        return "random", None
    kind, _, arg = text.partition(":")
    if kind == "constant" and arg.strip().lstrip("-").isdigit():
        return "constant", int(arg)
    raise ConfigError(f"data.behaviour: {text!r} is not a behaviour policy; expected 'random' or 'constant:<action>'")


def dump_config(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
