"""The agent registry: name -> config class, learner factory and the loop that runs it.

Adding an agent is one folder under agents/ plus one :func:`register_agent` call; every
command (train, evaluate, compare, render, resume, ``shiftrl agents``) then works for it.
The loops belong to the runtime (trainers/loops/) and are shared by every agent of a kind:

=============  ===========================================================================
loop           what the runtime does with the agent
=============  ===========================================================================
on_policy      rollout actors sample fixed-length segments of B self-resetting envs with
               the latest weights; ``learner.update(segment batch)`` once per iteration
curriculum     on-policy PPO on a level curriculum: each cycle the agent's curriculum plans a
               training rollout (one level per env), then scores generated levels in a
               rollout without gradients and admits some into its buffer (DRED, UED)
off_policy     actors stream whole episodes into a replay buffer; the learner samples
               episode batches from it
closed_form    per replication: collect (or load) data, fit in closed form, evaluate over
               a shift grid (R2PVI's linear pipeline)
offline        gradient steps on batches of a fixed Minari dataset; greedy evaluation over
               the shift grid on rollout actors (PRDC, TD3+BC, BC)
rllib          RLlib's own algorithm runs the env (trainers/loops/rllib.py)
rllib_offline  RLlib's own offline algorithm (CQL, IQL, BC) reads the dataset through
               RLlib's offline API; evaluated like ``offline`` (trainers/loops/rllib_offline.py)
=============  ===========================================================================

Entry points are strings (``"package.module:Attr"``) so registering stays cheap and the
same names resolve in Ray workers. User agents are found the same three ways as user
envs: a config's ``imports:``, the ``SHIFTRL_PLUGINS`` variable, or an installed package's
``shiftrl.agents`` (or ``shiftrl.envs``) entry-point group.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import envs
from envs.registry import entry_point_modules, load_entry_point

Loop = Literal["on_policy", "curriculum", "off_policy", "closed_form", "offline", "rllib", "rllib_offline"]
LOOPS: dict[str, str] = {
    "on_policy": "trainers.loops.on_policy",
    "curriculum": "trainers.loops.curriculum",
    "off_policy": "trainers.loops.off_policy",
    "closed_form": "trainers.loops.closed_form",
    "offline": "trainers.loops.offline",
    "rllib": "trainers.loops.rllib",
    "rllib_offline": "trainers.loops.rllib_offline",
}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class AgentError(ValueError):
    """A bad agent name or registration; the message says what was expected."""


@dataclass(frozen=True)
class AgentSpec:
    """Everything the runtime needs to run one agent name.

    Attributes:
        name: what users write in ``agent:`` (one name per method a user picks).
        config: ``"module:Class"`` of the agent's frozen config dataclass.
        loop: which runtime loop runs it (see the module docstring).
        learner: ``"module:factory"`` called as ``factory(config, spaces, seed)`` and
            returning an :class:`agents.protocols.Learner`; None for ``rllib`` agents.
        env_kinds: env kinds it accepts ("gymnasium", "pettingzoo").
        description: one line for ``shiftrl agents``.
        defaults: config values that define this name when several names share one
            learner (e.g. ``mappo`` = the PPO learner with a state critic); a user's config
            may not contradict them.
    """

    name: str
    config: str
    loop: Loop
    learner: str | None = None
    env_kinds: tuple[str, ...] = ("gymnasium", "pettingzoo")
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def config_class(self) -> type:
        cls = load_entry_point(self.config)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise AgentError(f"agent {self.name!r}: config {self.config!r} is not a dataclass")
        return cls

    def make_learner(self, config: Any, spaces: Any, seed: int) -> Any:
        if self.learner is None:
            raise AgentError(f"agent {self.name!r} runs inside RLlib and has no learner of ours")
        return load_entry_point(self.learner)(config, spaces, seed)

    def loop_module(self) -> Any:
        return importlib.import_module(LOOPS[self.loop])


_AGENTS: dict[str, AgentSpec] = {}


def register_agent(
    name: str,
    *,
    config: str,
    loop: Loop,
    learner: str | None = None,
    env_kinds: tuple[str, ...] | list[str] = ("gymnasium", "pettingzoo"),
    description: str = "",
    defaults: Mapping[str, Any] | None = None,
    override: bool = False,
) -> AgentSpec:
    """Registers an agent name for every ShiftRL command.

    Args:
        name: lower-case identifier, e.g. ``"ppo"``.
        config: ``"package.module:ConfigClass"`` (a frozen dataclass, one docstring per field).
        loop: a key of ``LOOPS`` (``"on_policy"``, ``"curriculum"``, ``"off_policy"``, ``"closed_form"``,
            ``"offline"``, ``"rllib"``, ``"rllib_offline"``).
        learner: ``"package.module:factory"`` building the learner (None for the RLlib loops).
        env_kinds: env kinds the agent accepts.
        description: one line for ``shiftrl agents``.
        defaults: config values that define this name (shared learners).
        override: allow replacing an existing name.

    Returns:
        The stored spec.
    """
    if not _NAME_RE.match(name):
        raise AgentError(f"agent name {name!r} must be lower-case letters, digits and '_' (e.g. 'my_ppo')")
    if loop not in LOOPS:
        raise AgentError(f"agent {name!r}: loop must be one of {sorted(LOOPS)}, got {loop!r}")
    if not loop.startswith("rllib") and not learner:
        raise AgentError(f"agent {name!r}: loop {loop!r} needs a learner factory 'package.module:function'")
    for ep in (config, learner):
        if ep is not None and ":" not in ep:
            raise AgentError(f"agent {name!r}: entry point {ep!r} must look like 'package.module:Name'")
    bad = sorted(set(env_kinds) - {"gymnasium", "pettingzoo"})
    if bad:
        raise AgentError(f"agent {name!r}: env_kinds {bad} not in ['gymnasium', 'pettingzoo']")
    spec = AgentSpec(name, config, loop, learner, tuple(env_kinds), description, dict(defaults or {}))
    if name in _AGENTS and not override and _AGENTS[name] != spec:
        raise AgentError(f"agent {name!r} is already registered (config {_AGENTS[name].config!r})")
    _AGENTS[name] = spec
    return spec


def load_plugins(modules: tuple[str, ...] | list[str] = ()) -> None:
    """Imports plugin modules that register envs and agents (config ``imports``,
    SHIFTRL_PLUGINS, entry-point groups ``shiftrl.envs`` and ``shiftrl.agents``)."""
    envs.load_plugins(entry_point_modules("shiftrl.agents") + tuple(modules))


def agent_spec(name: str) -> AgentSpec:
    """The spec of ``name``, or an AgentError listing the registered names."""
    if name not in _AGENTS:
        close = difflib.get_close_matches(name, list(_AGENTS), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise AgentError(f"unknown agent {name!r}{hint}; registered: {sorted(_AGENTS)} (`shiftrl agents` lists them)")
    return _AGENTS[name]


def registered_agents() -> dict[str, AgentSpec]:
    return dict(sorted(_AGENTS.items()))


def describe_agents() -> str:
    """The text of ``shiftrl agents``: each agent, its loop, env kinds and config fields."""
    lines = []
    for spec in registered_agents().values():
        lines.append(f"{spec.name}  [{spec.loop}; envs: {', '.join(spec.env_kinds)}]  {spec.description}")
        try:
            cls = spec.config_class()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not hide the others
            lines.append(f"    cannot load config {spec.config}: {exc}")
            continue
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            default = spec.defaults.get(f.name, _default(f))
            lines.append(f"    {f.name} = {default!r}: {docs.get(f.name, '')}")
    return "\n".join(lines)


def field_docs(cls: type) -> dict[str, str]:
    """Field -> its one-line doc, read from the dataclass's ``Attributes:`` docstring."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__[1:]):  # inherited fields keep their base's doc
        if dataclasses.is_dataclass(base):
            docs.update(field_docs(base))
    current = None
    in_attrs = False
    for line in (cls.__doc__ or "").splitlines():
        text = line.strip()
        if text == "Attributes:":
            in_attrs = True
            continue
        if not in_attrs:
            continue
        name, sep, rest = text.partition(":")
        if sep and name.isidentifier() and line.startswith(" " * 8) and not line.startswith(" " * 12):
            current = name
            docs[name] = rest.strip()
        elif current and text:
            docs[current] += " " + text
    return docs


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "<required>"


# -- built-in agents ----------------------------------------------------------------------------
register_agent(
    "r2pvi",
    config="agents.r2pvi.config:R2PVIConfig",
    loop="closed_form",
    learner="agents.r2pvi.learner:make_learner",
    env_kinds=("gymnasium",),
    description="R2PVI (Tang, Liu & Xu 2025) with PEVI and DRPVI: linear robust offline RL over a shift grid",
)
register_agent(
    "rllib_ppo",
    config="trainers.loops.rllib:RLlibPPOConfig",
    loop="rllib",
    env_kinds=("pettingzoo",),
    description="RLlib's own PPO, one shared action-masked policy (RLlib's new API stack)",
)
register_agent(
    "ppo",
    config="agents.ppo.config:PPOConfig",
    loop="on_policy",
    learner="agents.ppo.learner:make_learner",
    description="recurrent PPO with one shared, action-masked policy (IPPO for teams; plain PPO for one agent)",
)
register_agent(
    "mappo",
    config="agents.ppo.config:PPOConfig",
    loop="on_policy",
    learner="agents.ppo.learner:make_learner",
    env_kinds=("pettingzoo",),
    description="MAPPO (Yu et al. 2022): the PPO learner with a centralised critic on the global state",
    defaults={"critic_input": "state"},
)
register_agent(
    "vdn",
    config="agents.value_decomp.config:ValueDecompConfig",
    loop="off_policy",
    learner="agents.value_decomp.learner:make_learner",
    env_kinds=("pettingzoo",),
    description="VDN (Sunehag et al. 2018): recurrent Q-learning with a summed team value (PyMARL defaults)",
    defaults={"mixer": "vdn"},
)
register_agent(
    "qmix",
    config="agents.value_decomp.config:ValueDecompConfig",
    loop="off_policy",
    learner="agents.value_decomp.learner:make_learner",
    env_kinds=("pettingzoo",),
    description="QMIX (Rashid et al. 2018): recurrent Q-learning with a monotonic state-conditioned mixer",
    defaults={"mixer": "qmix"},
)
register_agent(
    "qplex",
    config="agents.value_decomp.config:ValueDecompConfig",
    loop="off_policy",
    learner="agents.value_decomp.learner:make_learner",
    env_kinds=("pettingzoo",),
    description="QPLEX (Wang et al. 2021): duplex dueling mixing with Qatten weights (TRAMA's released settings)",
    defaults={"mixer": "qplex"},
)
register_agent(
    "trama",
    config="agents.trama.config:TRAMAConfig",
    loop="off_policy",
    learner="agents.trama.learner:make_learner",
    env_kinds=("pettingzoo",),
    description="TRAMA (Na et al. 2025): trajectory-class-aware multi-task MARL on a QPLEX backbone",
)
for _name, _constraint, _doc in (
    ("prdc", "nearest", "PRDC (Ran et al. 2023): TD3+BC with the dataset constraint toward the nearest (beta s, a)"),
    ("td3bc", "dataset_action", "TD3+BC (Fujimoto & Gu 2021): TD3 with a BC term, PRDC's learner and data path"),
    ("bc", "none_bc", "behaviour cloning: the deterministic actor regressed on dataset actions (TD3+BC's BC)"),
):
    register_agent(
        _name,
        config="agents.prdc.config:PRDCConfig",
        loop="offline",
        learner="agents.prdc.learner:make_learner",
        env_kinds=("gymnasium",),
        description=_doc,
        defaults={"constraint": _constraint},
    )
register_agent(
    "td3",
    config="agents.prdc.config:TD3Config",
    loop="off_policy",
    learner="agents.prdc.learner:make_td3",
    env_kinds=("gymnasium",),
    description="TD3 (Fujimoto et al. 2018), online: the behaviour-policy learner behind `shiftrl collect`'s datasets",
)
for _name, _algorithm, _doc in (
    ("rllib_cql", "cql", "RLlib's own CQL (Kumar et al. 2020) on a ShiftRL dataset, through RLlib's offline API"),
    ("rllib_iql", "iql", "RLlib's own IQL (Kostrikov et al. 2022) on a ShiftRL dataset, through RLlib's offline API"),
    ("rllib_bc", "bc", "RLlib's own BC on a ShiftRL dataset, through RLlib's offline API"),
):
    register_agent(
        _name,
        config="trainers.loops.rllib_offline:RLlibOfflineConfig",
        loop="rllib_offline",
        env_kinds=("gymnasium",),
        description=_doc,
        defaults={"algorithm": _algorithm},
    )
for _name, _doc in (
    ("dred", "DRED (Garcin et al. 2024): level replay over the training levels plus VAE-generated levels"),
    ("el_dred", "EL-DRED (Garcin et al. 2024): DRED with random edits of training levels instead of the VAE"),
    ("uniform", "U: PPO on the training levels drawn uniformly (DRED's baseline)"),
    ("plr", "PLR (Jiang et al. 2021): prioritised level replay over the training levels"),
    ("rplr", "robust PLR (Jiang et al. 2021): random levels, gradients only on replayed ones"),
    ("dr", "DR: domain randomisation, fresh random levels every cycle"),
    ("accel", "ACCEL (Parker-Holder et al. 2022): robust PLR from empty rooms with edits of replayed levels"),
):
    register_agent(
        _name,
        config="agents.dred.config:DREDConfig",
        loop="curriculum",
        learner="agents.dred.learner:make_learner",
        env_kinds=("gymnasium",),
        description=_doc,
        defaults={"method": _name},
    )
