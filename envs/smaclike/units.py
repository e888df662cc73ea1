"""Unit types as frozen data: SC2 stats from ../shared/specs/smaclike-trama.md.

Times are SC2 "faster"-speed seconds (the game speed SMAC plays at: 22.4 game loops per
second), distances are map units. Numbers are SMAClite's (uoe-agents/smaclite,
env/units/smaclite_units/*.json) and SMACv2's unit tables (sight ranges, SMAC's cooldown
normalisers); the hydralisk, absent from SMAClite, has SC2 Legacy of the Void stats. They
are data, so a user can register a new type without touching the simulator.

``range`` is SC2's reach, edge to edge (a unit may fire when the centre distance is at most
range + both radii; melee 0.1, baneling 0.25). ``smax_range`` is the centre-to-centre range
of the SMAX rules mode (JaxMARL's numbers: melee 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ATTRIBUTES = ("light", "armored", "bio", "mech", "massive", "air")


@dataclass(frozen=True)
class UnitType:
    """One unit type.

    Attributes:
        name: unique name ("stalker").
        short: one-letter code used in composition names ("s" in "3s2z").
        race: "terran", "protoss" or "zerg".
        hp: maximum hit points.
        shield: maximum shield points (protoss); absorbed before hit points.
        armor: subtracted from every attack that reaches hit points (rules "sc2"; under
            "smax" from every attack, shields included), floor 0.5 per attack.
        damage: damage per attack.
        n_attacks: attacks per hit (zealot and colossus hit twice).
        bonus: extra damage per attack against targets with an attribute.
        cooldown: seconds between hits (before the U(-dt, 2dt) jitter).
        speed: distance per second.
        range: SC2 reach, edge to edge (rules "sc2").
        sight: sight range (SMACv2's per-unit table); SMACv2 observations scale by it.
        radius: collision radius (ground units are pushed apart; air units are not).
        attributes: subset of ATTRIBUTES.
        heal_rate: hit points healed per second (medivac); 0 = an attacker.
        can_hit_air: whether the weapon reaches air units.
        energy: starting energy of a healer (SC2: 50, max 200, regen 0.7875/s, 1 energy per
            3 hp healed).
        smax_range: centre-to-centre range under rules "smax" (None = ``range``).
        max_cooldown: SMAC's normaliser of the weapon cooldown in the state, in game loops
            (smac starcraft2.py unit_max_cooldown; medivacs: max energy 200).
        hp_regen: hit points regenerated per second, always (zerg: 0.38).
        kamikaze_radius: > 0 makes the unit a baneling: its attack deals ``damage`` to
            every ground enemy whose body is within this distance of its centre, then it dies
            (smaclite targeter.py KAMIKAZE, radius 2.2).
        splash_width: > 0 gives a colossus-style line splash (rules "sc2"): every enemy whose
            body touches a ``splash_width`` x ``splash_depth`` rectangle centred on the target,
            long side across the line of fire, takes a full hit (smaclite LASER_BEAM 2.8 x 0.3).
        splash_depth: see ``splash_width``.
    """

    name: str
    short: str
    race: str
    hp: float
    shield: float
    armor: float
    damage: float
    n_attacks: int
    cooldown: float
    speed: float
    range: float
    sight: float
    radius: float
    attributes: frozenset[str]
    bonus: tuple[tuple[str, float], ...] = ()
    heal_rate: float = 0.0
    can_hit_air: bool = False
    energy: float = 0.0
    smax_range: float | None = None
    max_cooldown: float = 15.0
    hp_regen: float = 0.0
    kamikaze_radius: float = 0.0
    splash_width: float = 0.0
    splash_depth: float = 0.0

    def __post_init__(self) -> None:
        unknown = set(self.attributes) - set(ATTRIBUTES)
        if unknown:
            raise ValueError(f"unit type {self.name!r}: unknown attributes {sorted(unknown)}; allowed {ATTRIBUTES}")
        for attr, _ in self.bonus:
            if attr not in ATTRIBUTES:
                raise ValueError(f"unit type {self.name!r}: bonus against unknown attribute {attr!r}")
        if self.hp <= 0 or self.speed < 0 or self.range <= 0 or self.sight <= 0:
            raise ValueError(f"unit type {self.name!r}: hp, range and sight must be positive, speed >= 0")

    @property
    def center_range(self) -> float:
        """Centre-to-centre range under rules "smax"."""
        return self.range if self.smax_range is None else self.smax_range

    @property
    def is_air(self) -> bool:
        return "air" in self.attributes

    @property
    def is_healer(self) -> bool:
        return self.heal_rate > 0

    def reaches(self, target: UnitType) -> bool:
        """Whether this unit's weapon can hit ``target`` (healers hit nothing)."""
        return not self.is_healer and (self.can_hit_air or not target.is_air)

    def attack_damage(self, target: UnitType) -> float:
        """Raw damage of one attack on ``target`` before armor: damage + bonus."""
        if not self.reaches(target):
            return 0.0
        return self.damage + sum(v for attr, v in self.bonus if attr in target.attributes)

    def hit_damage(self, target: UnitType) -> float:
        """Damage of one hit under rules "smax": n_attacks * max(0.5, damage + bonus - armor)."""
        if not self.reaches(target):
            return 0.0
        return self.n_attacks * max(0.5, self.attack_damage(target) - target.armor)


def _t(*attrs: str) -> frozenset[str]:
    return frozenset(attrs)


def _u(
    name: str,
    short: str,
    race: str,
    hp: float,
    shield: float,
    armor: float,
    damage: float,
    n: int,
    cooldown: float,
    speed: float,
    reach: float,
    sight: float,
    size: float,
    attrs: frozenset[str],
    **kw: Any,
) -> UnitType:
    """radius = SMAClite's size / 2."""
    return UnitType(
        name,
        short,
        race,
        hp,
        shield,
        armor,
        damage,
        n,
        cooldown,
        speed,
        reach,
        sight,
        size / 2,
        attrs,
        **kw,
    )  # type: ignore[arg-type]


_BUILTIN = (
    # name, code, race, hp, shield, armor, damage x n, cooldown, speed, reach, sight, size
    _u(
        "marine",
        "m",
        "terran",
        45,
        0,
        0,
        6,
        1,
        0.61,
        3.15,
        5,
        9,
        0.75,
        _t("light", "bio"),
        can_hit_air=True,
        max_cooldown=15,
    ),
    _u(
        "marauder",
        "M",
        "terran",
        125,
        0,
        1,
        10,
        1,
        1.07,
        3.15,
        6,
        10,
        1.125,
        _t("armored", "bio"),
        bonus=(("armored", 10),),
        max_cooldown=25,
    ),
    _u(
        "medivac",
        "v",
        "terran",
        150,
        0,
        1,
        0,
        0,
        0.0,
        3.5,
        4,
        11,
        1.5,
        _t("armored", "mech", "air"),
        heal_rate=9.0,
        energy=50.0,
        max_cooldown=200,
    ),
    _u(
        "stalker",
        "s",
        "protoss",
        80,
        80,
        1,
        13,
        1,
        1.34,
        4.13,
        6,
        10,
        1.25,
        _t("armored", "mech"),
        bonus=(("armored", 5),),
        can_hit_air=True,
        max_cooldown=35,
    ),
    _u(
        "zealot",
        "z",
        "protoss",
        100,
        50,
        1,
        8,
        2,
        0.86,
        3.15,
        0.1,
        9,
        1.0,
        _t("light", "bio"),
        smax_range=2.0,
        max_cooldown=22,
    ),
    _u(
        "colossus",
        "c",
        "protoss",
        200,
        150,
        1,
        10,
        2,
        1.07,
        3.15,
        7,
        10,
        2.0,
        _t("armored", "mech", "massive"),
        bonus=(("light", 5),),
        max_cooldown=24,
        splash_width=2.8,
        splash_depth=0.3,
    ),
    _u(
        "zergling",
        "g",
        "zerg",
        35,
        0,
        0,
        5,
        1,
        0.497,
        4.13,
        0.1,
        8,
        0.75,
        _t("light", "bio"),
        smax_range=2.0,
        max_cooldown=11,
        hp_regen=0.38,
    ),
    # not in SMAClite: SC2 LotV stats, size of SC2's footprint
    _u(
        "hydralisk",
        "h",
        "zerg",
        90,
        0,
        0,
        12,
        1,
        0.59,
        3.15,
        5,
        9,
        1.25,
        _t("light", "bio"),
        can_hit_air=True,
        max_cooldown=10,
        hp_regen=0.38,
    ),
    # smaclite baneling.json: not light; 80 damage to every ground enemy within 2.2, then dies
    _u(
        "baneling",
        "b",
        "zerg",
        30,
        0,
        0,
        80,
        1,
        1.0,
        3.15,
        0.25,
        8,
        0.75,
        _t("bio"),
        smax_range=1.0,
        max_cooldown=1,
        hp_regen=0.38,
        kamikaze_radius=2.2,
    ),
)

UNIT_TYPES: dict[str, UnitType] = {u.name: u for u in _BUILTIN}
_SHORT: dict[str, str] = {u.short: u.name for u in _BUILTIN}


def register_unit_type(unit: UnitType, override: bool = False) -> UnitType:
    """Adds a unit type usable in any scenario registered afterwards."""
    if unit.name in UNIT_TYPES and not override and UNIT_TYPES[unit.name] != unit:
        raise ValueError(f"unit type {unit.name!r} is already registered")
    if unit.short in _SHORT and _SHORT[unit.short] != unit.name:
        raise ValueError(f"unit type {unit.name!r}: short code {unit.short!r} is taken by {_SHORT[unit.short]!r}")
    UNIT_TYPES[unit.name] = unit
    _SHORT[unit.short] = unit.name
    return unit


def unit_type(name: str) -> UnitType:
    """Looks a type up by name or one-letter code."""
    if name in UNIT_TYPES:
        return UNIT_TYPES[name]
    if name in _SHORT:
        return UNIT_TYPES[_SHORT[name]]
    raise ValueError(f"unknown unit type {name!r}; known: {sorted(UNIT_TYPES)}")
