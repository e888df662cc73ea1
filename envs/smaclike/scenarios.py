"""Scenarios as frozen data, and the one public call that registers them.

A :class:`Scenario` is either a list of explicit team compositions (classic maps, TRAMA's
multi-task sets) or a SMACv2-style palette from which a composition is drawn per episode.
Either way observation, state and action sizes are fixed by the scenario, never by the
episode's draw (SMACv2/PyMARL users lose runs to configs whose unit counts are silently
ignored: here a team of another size is an error at registration).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from envs.smaclike.units import UNIT_TYPES, UnitType, unit_type

STARTS = ("classic", "surrounded", "reflect")
_COMP_RE = re.compile(r"(\d+)([A-Za-z])")


@dataclass(frozen=True)
class Team:
    """One task of a scenario: who fights whom.

    Attributes:
        name: task name reported in ``info["task"]`` (e.g. "3s2z").
        allies: unit type name per ally slot (agent i controls allies[i]).
        enemies: unit type name per enemy slot (heuristic AI).
    """

    name: str
    allies: tuple[str, ...]
    enemies: tuple[str, ...]


def composition(code: str) -> tuple[str, ...]:
    """'3s2z' -> ('stalker',)*3 + ('zealot',)*2, in the order written."""
    parts = _COMP_RE.findall(code)
    if not parts or "".join(n + c for n, c in parts) != code:
        raise ValueError(f"composition {code!r} must look like '3s2z' (count + one-letter unit code, repeated)")
    return tuple(name for n, c in parts for name in [unit_type(c).name] * int(n))


def mirror(name: str, code: str | None = None) -> Team:
    """A task whose enemies have the allies' composition (SMACv2, TRAMA)."""
    units = composition(code or name)
    return Team(name, units, units)


@dataclass(frozen=True)
class Scenario:
    """A map: teams (or a palette to draw them from), start positions and limits.

    Attributes:
        name: scenario name; the env id is ``SMAClike-<name>-v0``.
        teams: explicit tasks, drawn per episode with ``team_weights`` (equal if empty).
        team_weights: probabilities of ``teams``.
        palette: SMACv2-style (type name, weight) pairs: each ally slot draws a type, the
            enemies mirror the allies. Used when ``teams`` is empty.
        n_units: team size for ``palette`` scenarios.
        starts: (start mode, probability) pairs; modes: classic (two clumps, SMAX),
            surrounded, reflect (SMACv2, spec "Multi-task sets").
        episode_limit: agent steps before the episode is truncated (a loss).
        reward_only_positive: SMAC's flag; False subtracts 0.5 x (damage taken + 10 per
            ally death) as TRAMA does.
        description: one line for ``shiftrl envs``.
        unit_types: resolved one-hot palette (filled in; same ids for allies and enemies).
    """

    name: str
    teams: tuple[Team, ...] = ()
    team_weights: tuple[float, ...] = ()
    palette: tuple[tuple[str, float], ...] = ()
    n_units: int = 0
    starts: tuple[tuple[str, float], ...] = (("classic", 1.0),)
    episode_limit: int = 200
    reward_only_positive: bool = True
    description: str = ""
    unit_types: tuple[UnitType, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        where = f"scenario {self.name!r}"
        if not re.fullmatch(r"[A-Za-z0-9_.]+", self.name):
            raise ValueError(f"{where}: name may hold letters, digits, '_' and '.' only")
        if bool(self.teams) == bool(self.palette):
            raise ValueError(f"{where}: give either teams or a palette, not both or neither")
        if self.teams:
            na, ne = len(self.teams[0].allies), len(self.teams[0].enemies)
            for t in self.teams:
                if (len(t.allies), len(t.enemies)) != (na, ne):
                    raise ValueError(
                        f"{where}: task {t.name!r} has {len(t.allies)} allies / {len(t.enemies)} enemies, but "
                        f"task {self.teams[0].name!r} has {na} / {ne}; sizes must be fixed across a scenario's tasks"
                    )
            if na < 1 or ne < 1:
                raise ValueError(f"{where}: a team needs at least one unit")
            if self.team_weights and len(self.team_weights) != len(self.teams):
                raise ValueError(f"{where}: {len(self.team_weights)} team_weights for {len(self.teams)} teams")
            names = [u for t in self.teams for u in t.allies + t.enemies]
        else:
            if self.n_units < 1:
                raise ValueError(f"{where}: a palette scenario needs n_units >= 1")
            names = [n for n, _ in self.palette]
        checks = {
            "team_weights": self.team_weights,
            "palette weights": tuple(w for _, w in self.palette),
            "starts": tuple(p for _, p in self.starts),
        }
        for what, probs in checks.items():
            if probs and (min(probs) < 0 or abs(sum(probs) - 1.0) > 1e-6):
                raise ValueError(f"{where}: {what} must be non-negative and sum to 1, got {list(probs)}")
        for mode, _ in self.starts:
            if mode not in STARTS:
                raise ValueError(f"{where}: unknown start mode {mode!r}; expected one of {STARTS}")
        if self.episode_limit < 1:
            raise ValueError(f"{where}: episode_limit must be >= 1")
        resolved = {unit_type(n).name for n in names}
        order = [n for n in UNIT_TYPES if n in resolved]  # registry order: stable one-hot ids
        object.__setattr__(self, "unit_types", tuple(UNIT_TYPES[n] for n in order))
        if self.teams:
            canon = tuple(
                Team(t.name, tuple(unit_type(u).name for u in t.allies), tuple(unit_type(u).name for u in t.enemies))
                for t in self.teams
            )
            object.__setattr__(self, "teams", canon)
        else:
            object.__setattr__(self, "palette", tuple((unit_type(n).name, w) for n, w in self.palette))
        # from here on only the resolved UnitType objects are used, never the global
        # registry: a pickled scenario works in a Ray worker that never saw a user's
        # register_unit_type call

    @property
    def n_allies(self) -> int:
        return len(self.teams[0].allies) if self.teams else self.n_units

    @property
    def n_enemies(self) -> int:
        return len(self.teams[0].enemies) if self.teams else self.n_units

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(u.name for u in self.unit_types)

    def unit(self, name: str) -> UnitType:
        """This scenario's own UnitType of a (canonical) name."""
        for u in self.unit_types:
            if u.name == name:
                return u
        raise ValueError(f"scenario {self.name!r} has no unit type {name!r}; it has {list(self.type_names)}")

    @property
    def ally_healer(self) -> bool:
        """Whether an ally can be a healer (then heal targets share the attack slots)."""
        allies = {u for t in self.teams for u in t.allies} if self.teams else {n for n, _ in self.palette}
        return any(self.unit(n).is_healer for n in allies)

    def task_names(self) -> tuple[str, ...]:
        """Every task this scenario can draw (palette: every multiset, by composition code)."""
        if self.teams:
            return tuple(t.name for t in self.teams)
        return tuple(self._code(c) for c in self.palette_compositions())

    def palette_compositions(self) -> list[tuple[str, ...]]:
        names = [n for n, _ in self.palette]
        return list(itertools.combinations_with_replacement(names, self.n_units))

    def _code(self, units: Sequence[str]) -> str:
        counts: dict[str, int] = {}
        for u in units:
            counts[u] = counts.get(u, 0) + 1
        return "".join(f"{n}{self.unit(u).short}" for u, n in counts.items())


SCENARIOS: dict[str, Scenario] = {}


def get_scenario(name: str | Scenario) -> Scenario:
    if isinstance(name, Scenario):
        return name
    if name not in SCENARIOS:
        import difflib

        close = difflib.get_close_matches(name, list(SCENARIOS), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown smaclike scenario {name!r}{hint}; known: {sorted(SCENARIOS)}")
    return SCENARIOS[name]


def register_scenario(scenario: Scenario, override: bool = False, env_id: str | None = None) -> str:
    """Registers a scenario and its PettingZoo env ``SMAClike-<name>-v0``; returns the env id.

    The Scenario object itself (frozen, picklable) is the env's constructor argument, so a
    scenario registered in the driver reaches every Ray worker inside the EnvSpec.
    """
    from envs.registry import register

    if scenario.name in SCENARIOS and not override and SCENARIOS[scenario.name] != scenario:
        raise ValueError(f"smaclike scenario {scenario.name!r} is already registered (pass override=True)")
    SCENARIOS[scenario.name] = scenario
    env_id = env_id or f"SMAClike-{scenario.name}-v0"
    tasks = scenario.task_names()
    desc = scenario.description or f"{scenario.n_allies} vs {scenario.n_enemies}"
    register(
        env_id,
        "envs.smaclike.env:SMACLikeEnv",
        kind="pettingzoo",
        kwargs={"scenario": scenario},
        tasks=tasks if len(tasks) > 1 else (),
        description=f"SMAC-like: {desc}",
        max_episode_steps=scenario.episode_limit,
        override=True,
    )
    return env_id


# -- built-in scenarios --------------------------------------------------------------------
def _classic(name: str, allies: str, enemies: str, limit: int, desc: str) -> Scenario:
    team = Team(name, composition(allies), composition(enemies))
    return Scenario(name, teams=(team,), episode_limit=limit, description=desc)


_SURROUND_REFLECT = (("surrounded", 0.5), ("reflect", 0.5))

BUILTIN_SCENARIOS: tuple[Scenario, ...] = (
    # SMAC classic maps (episode limits from SMAC's map registry)
    _classic("3m", "3m", "3m", 60, "3 marines vs 3 marines"),
    _classic("8m", "8m", "8m", 120, "8 marines vs 8 marines"),
    _classic("25m", "25m", "25m", 150, "25 marines vs 25 marines"),
    _classic("5m_vs_6m", "5m", "6m", 70, "5 marines vs 6 marines (hard)"),
    _classic("2s3z", "2s3z", "2s3z", 120, "2 stalkers + 3 zealots each side"),
    _classic("3s5z", "3s5z", "3s5z", 150, "3 stalkers + 5 zealots each side"),
    _classic("3s_vs_5z", "3s", "5z", 250, "3 stalkers vs 5 zealots (kiting)"),
    _classic("MMM", "1v2M7m", "1v2M7m", 150, "1 medivac, 2 marauders, 7 marines each side"),
    _classic("MMM2", "1v2M7m", "1v3M8m", 180, "MMM vs 1 medivac, 3 marauders, 8 marines (super hard)"),
    # SMACv2-style random teams (type weights 0.45/0.45/0.1; zerg without banelings: 0.5/0.5)
    Scenario(
        "protoss_5_vs_5",
        palette=(("stalker", 0.45), ("zealot", 0.45), ("colossus", 0.1)),
        n_units=5,
        starts=_SURROUND_REFLECT,
        description="SMACv2 protoss 5v5: random mirrored teams, surrounded/reflect starts",
    ),
    Scenario(
        "terran_5_vs_5",
        palette=(("marine", 0.45), ("marauder", 0.45), ("medivac", 0.1)),
        n_units=5,
        starts=_SURROUND_REFLECT,
        description="SMACv2 terran 5v5: random mirrored teams, surrounded/reflect starts",
    ),
    Scenario(
        "zerg_5_vs_5",
        palette=(("zergling", 0.5), ("hydralisk", 0.5)),
        n_units=5,
        starts=_SURROUND_REFLECT,
        description="SMACv2-style zerg 5v5 (no banelings): random mirrored teams",
    ),
    # TRAMA's multi-task sets (10gen_protoss 5v5, allies' composition = enemies')
    Scenario(
        "surComb3",
        teams=tuple(mirror(c) for c in ("3s2z", "3z2c", "3s2c")),
        starts=(("surrounded", 1.0),),
        reward_only_positive=False,
        description="TRAMA surComb3: 3s2z / 3z2c / 3s2c, surrounded",
    ),
    Scenario(
        "surComb4",
        teams=tuple(mirror(c) for c in ("2s2z1c", "3s2z", "3z2c", "3s2c")),
        starts=(("surrounded", 1.0),),
        reward_only_positive=False,
        description="TRAMA surComb4: 2s2z1c / 3s2z / 3z2c / 3s2c, surrounded",
    ),
    Scenario(
        "reSurComb3",
        teams=tuple(mirror(c) for c in ("3s2z", "3z2c", "3s2c")),
        starts=_SURROUND_REFLECT,
        reward_only_positive=False,
        description="TRAMA reSurComb3: 3s2z / 3z2c / 3s2c, surrounded or reflect",
    ),
    Scenario(
        "reSurComb4",
        teams=tuple(mirror(c) for c in ("2s2z1c", "3s2z", "3z2c", "3s2c")),
        starts=_SURROUND_REFLECT,
        reward_only_positive=False,
        description="TRAMA reSurComb4: 2s2z1c / 3s2z / 3z2c / 3s2c, surrounded or reflect",
    ),
)
