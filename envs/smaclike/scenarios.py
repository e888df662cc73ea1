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

STARTS = ("map", "classic", "surrounded", "reflect")
GEOMETRIES = ("smacv2", "trama")
OBS_MODES = ("smac_v1", "smac_v2")
REWARD_VARIANTS = ("smac", "death_only")
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
            enemies mirror the allies (SMACv2 weighted_teams). Used when ``teams`` is empty.
        n_units: team size for ``palette`` scenarios.
        n_enemies: enemy team size for ``palette`` scenarios (0 = n_units); extra enemies
            are drawn from the palette like the allies (SMACv2 10v11).
        exception_types: a palette team made only of these types is drawn again (SMACv2's
            exception_unit_types: no all-medivac or all-baneling team).
        starts: (start mode, probability) pairs; modes: "map" (groups at ``ally_groups`` /
            ``enemy_groups``, SMAClite's map files), "classic" (SMAX's random clumps),
            "surrounded", "reflect" (drawn with ``geometry``).
        geometry: "smacv2" (SMACv2 distributions.py: surrounded enemies between the centre
            and the map corners, reflect allies anywhere in the left half) or "trama"
            (TRAMA's compressed geometry, spec "Multi-task sets").
        map_size: (width, height) of the map.
        playable: (x0, y0, x1, y1) where units may stand (SMAClite's SIMPLE terrain is the
            band 8 <= y < 24); None = the whole map.
        ally_groups: "map" starts: (x, y, count) per group, in ally slot order; units of a
            group stand on a square grid around (x, y) as SMAClite spawns them. Empty = one
            group at (9, height / 2).
        enemy_groups: the same for the enemies (empty = one group at (width - 9, height / 2)).
        shuffle_units: shuffle the slot order of a drawn team each episode (TRAMA's
            released env); the enemies keep the allies' composition.
        episode_limit: agent steps before the episode is truncated (a loss).
        reward_only_positive: SMAC's flag; False subtracts 0.5 x (damage taken + 10 per
            ally death).
        reward_variant: "smac" (damage + deaths + win, SMAC's) or "death_only" (TRAMA's
            released env: deaths and win only).
        obs_mode: default observation mode: "smac_v1" (SMAC's classic maps) or "smac_v2";
            None = smac_v1 for fixed-team "map" scenarios, smac_v2 otherwise.
        unit_type_bits: length of the type one-hot in observations and state; None = SMAC's
            rule (smac_v1: 0 when every ally has one type, else the number of types;
            smac_v2: the number of types).
        description: one line for ``shiftrl envs``.
        unit_types: resolved one-hot palette (filled in; same ids for allies and enemies).
    """

    name: str
    teams: tuple[Team, ...] = ()
    team_weights: tuple[float, ...] = ()
    palette: tuple[tuple[str, float], ...] = ()
    n_units: int = 0
    n_enemies: int = 0
    exception_types: tuple[str, ...] = ()
    starts: tuple[tuple[str, float], ...] = (("map", 1.0),)
    geometry: str = "smacv2"
    map_size: tuple[float, float] = (32.0, 32.0)
    playable: tuple[float, float, float, float] | None = None
    ally_groups: tuple[tuple[float, float, int], ...] = ()
    enemy_groups: tuple[tuple[float, float, int], ...] = ()
    shuffle_units: bool = False
    episode_limit: int = 200
    reward_only_positive: bool = True
    reward_variant: str = "smac"
    obs_mode: str | None = None
    unit_type_bits: int | None = None
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
            if set(self.exception_types) >= {n for n, w in self.palette if w > 0}:
                raise ValueError(f"{where}: exception_types {list(self.exception_types)} cover the whole palette")
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
        choices = {
            "geometry": (self.geometry, GEOMETRIES),
            "reward_variant": (self.reward_variant, REWARD_VARIANTS),
        }
        if self.obs_mode is not None:
            choices["obs_mode"] = (self.obs_mode, OBS_MODES)
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"{where}: {key} must be one of {allowed}, got {value!r}")
        w, h = self.map_size
        if w <= 2 or h <= 2:
            raise ValueError(f"{where}: map_size must exceed 2 x 2, got {self.map_size}")
        x0, y0, x1, y1 = self.playable or (0.0, 0.0, w, h)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and x1 - x0 > 2 and y1 - y0 > 2):
            raise ValueError(f"{where}: playable {self.playable} must be a box inside map_size {self.map_size}")
        for key, groups, n in (
            ("ally_groups", self.ally_groups, self.n_allies),
            ("enemy_groups", self.enemy_groups, self.n_enemies_total),
        ):
            if groups and sum(int(c) for _, _, c in groups) != n:
                raise ValueError(f"{where}: {key} place {sum(int(c) for _, _, c in groups)} units for a team of {n}")
        if self.n_enemies < 0 or (self.n_enemies and not self.palette):
            raise ValueError(f"{where}: n_enemies is for palette scenarios (teams give their enemies)")
        if self.unit_type_bits is not None and self.unit_type_bits < 0:
            raise ValueError(f"{where}: unit_type_bits must be >= 0")
        resolved = {unit_type(n).name for n in names}
        order = [n for n in UNIT_TYPES if n in resolved]  # registry order: stable one-hot ids
        object.__setattr__(self, "unit_types", tuple(UNIT_TYPES[n] for n in order))
        if self.teams:
            canon = tuple(
                Team(
                    t.name,
                    tuple(unit_type(u).name for u in t.allies),
                    tuple(unit_type(u).name for u in t.enemies),
                )
                for t in self.teams
            )
            object.__setattr__(self, "teams", canon)
        else:
            object.__setattr__(self, "palette", tuple((unit_type(n).name, w) for n, w in self.palette))
            object.__setattr__(
                self,
                "exception_types",
                tuple(unit_type(n).name for n in self.exception_types),
            )
        # from here on only the resolved UnitType objects are used, never the global
        # registry: a pickled scenario works in a Ray worker that never saw a user's
        # register_unit_type call

    @property
    def n_allies(self) -> int:
        return len(self.teams[0].allies) if self.teams else self.n_units

    @property
    def n_enemies_total(self) -> int:
        """Enemy team size (``n_enemies`` is the palette field, 0 meaning n_units)."""
        return len(self.teams[0].enemies) if self.teams else (self.n_enemies or self.n_units)

    @property
    def default_obs_mode(self) -> str:
        if self.obs_mode is not None:
            return self.obs_mode
        return "smac_v1" if self.teams and all(m == "map" for m, _ in self.starts) else "smac_v2"

    def type_bits(self, obs_mode: str) -> int:
        """Type one-hot length in observations and state (SMAC's unit_type_bits)."""
        if self.unit_type_bits is not None:
            return self.unit_type_bits
        if obs_mode == "smac_v1":
            allies = {u for t in self.teams for u in t.allies} if self.teams else {n for n, _ in self.palette}
            return 0 if len(allies) == 1 else len(self.unit_types)
        return len(self.unit_types)

    def side_has_shields(self, enemies: bool) -> bool:
        """Whether a side can field shielded units (SMAC's shield_bits_ally / _enemy)."""
        if self.teams:
            names = {u for t in self.teams for u in (t.enemies if enemies else t.allies)}
        else:
            names = {n for n, _ in self.palette}
        return any(self.unit(n).shield > 0 for n in names)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) where units may stand."""
        return self.playable or (
            0.0,
            0.0,
            float(self.map_size[0]),
            float(self.map_size[1]),
        )

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
        every = itertools.combinations_with_replacement(names, self.n_units)
        return [c for c in every if not set(c) <= set(self.exception_types)]

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
# SMAClite's maps (smaclite/env/maps/smaclite_maps/*.json): 32 x 32, SIMPLE terrain (units
# stand in the band 8 <= y < 24), allies around (9, 16), enemies around (23, 16). Maps SMAClite
# lacks (3m, 8m, 25m, 5m_vs_6m, 6h_vs_8z) use the same layout. Episode limits are SMAC's
# (smac/env/starcraft2/maps/smac_maps.py).
_SIMPLE = (0.0, 8.0, 32.0, 24.0)


def _classic(name: str, allies: str, enemies: str, limit: int, desc: str, **kw: object) -> Scenario:
    team = Team(name, composition(allies), composition(enemies))
    kw.setdefault("playable", _SIMPLE)
    return Scenario(name, teams=(team,), episode_limit=limit, description=desc, **kw)  # type: ignore[arg-type]


_SURROUND_REFLECT = (("surrounded", 0.5), ("reflect", 0.5))
# SMACv2's official configs (smacv2 examples/configs/sc2_gen_*.yaml)
_PALETTES = {
    "protoss": ((("stalker", 0.45), ("zealot", 0.45), ("colossus", 0.1)), ()),
    "terran": ((("marine", 0.45), ("marauder", 0.45), ("medivac", 0.1)), ("medivac",)),
    "zerg": (
        (("zergling", 0.45), ("hydralisk", 0.45), ("baneling", 0.1)),
        ("baneling",),
    ),
}


def _smacv2(race: str, n: int, m: int) -> Scenario:
    palette, exceptions = _PALETTES[race]
    return Scenario(
        f"{race}_{n}_vs_{m}",
        palette=palette,
        n_units=n,
        n_enemies=m,
        exception_types=exceptions,
        starts=_SURROUND_REFLECT,
        description=f"SMACv2 {race} {n}v{m}: random mirrored teams, surrounded/reflect starts",
    )


def _trama(name: str, codes: tuple[str, ...], starts: tuple[tuple[str, float], ...]) -> Scenario:
    where = "surrounded" if len(starts) == 1 else "surrounded or reflect"
    return Scenario(
        name,
        teams=tuple(mirror(c) for c in codes),
        starts=starts,
        geometry="trama",
        shuffle_units=True,
        reward_only_positive=False,
        reward_variant="death_only",
        description=f"TRAMA {name}: {' / '.join(codes)}, {where}",
    )


BUILTIN_SCENARIOS: tuple[Scenario, ...] = (
    _classic("3m", "3m", "3m", 60, "3 marines vs 3 marines"),
    _classic("8m", "8m", "8m", 120, "8 marines vs 8 marines"),
    _classic("25m", "25m", "25m", 150, "25 marines vs 25 marines"),
    _classic("5m_vs_6m", "5m", "6m", 70, "5 marines vs 6 marines (hard)"),
    _classic("10m_vs_11m", "10m", "11m", 150, "10 marines vs 11 marines"),
    _classic("27m_vs_30m", "27m", "30m", 180, "27 marines vs 30 marines (super hard)"),
    _classic("2s3z", "2s3z", "2s3z", 120, "2 stalkers + 3 zealots each side"),
    _classic("3s5z", "3s5z", "3s5z", 150, "3 stalkers + 5 zealots each side"),
    _classic(
        "3s5z_vs_3s6z",
        "3s5z",
        "3s6z",
        170,
        "3 stalkers + 5 zealots vs 3 stalkers + 6 zealots (super hard)",
    ),
    _classic("3s_vs_5z", "3s", "5z", 250, "3 stalkers vs 5 zealots (kiting)", playable=None),  # ALL_GREEN
    _classic("6h_vs_8z", "6h", "8z", 150, "6 hydralisks vs 8 zealots (super hard)"),
    _classic("MMM", "1v2M7m", "1v2M7m", 150, "1 medivac, 2 marauders, 7 marines each side"),
    _classic(
        "MMM2",
        "1v2M7m",
        "1v3M8m",
        180,
        "MMM vs 1 medivac, 3 marauders, 8 marines (super hard)",
    ),
    # smaclite bane_vs_bane.json; OCTAGON terrain approximated by its bounding band 5 <= y < 27
    _classic(
        "bane_vs_bane",
        "20g4b",
        "4b20g",
        200,
        "20 zerglings + 4 banelings each side",
        playable=(0.0, 5.0, 32.0, 27.0),
        ally_groups=((16.0, 11.0, 20), (16.0, 8.0, 4)),
        enemy_groups=((16.0, 24.0, 4), (16.0, 21.0, 20)),
    ),
    *(_smacv2(race, n, m) for n, m in ((5, 5), (10, 10), (10, 11)) for race in ("protoss", "terran", "zerg")),
    # TRAMA's multi-task sets (10gen_protoss 5v5, allies' composition = enemies')
    _trama("surComb3", ("3s2z", "3z2c", "3s2c"), (("surrounded", 1.0),)),
    _trama("surComb4", ("2s2z1c", "3s2z", "3z2c", "3s2c"), (("surrounded", 1.0),)),
    _trama("reSurComb3", ("3s2z", "3z2c", "3s2c"), _SURROUND_REFLECT),
    _trama("reSurComb4", ("2s2z1c", "3s2z", "3z2c", "3s2c"), _SURROUND_REFLECT),
)
