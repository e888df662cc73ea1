"""Unit types as frozen data: SC2-flavoured stats from ../shared/specs/smaclike-trama.md.

Per hit, an attacker deals ``n_attacks * max(0.5, damage + bonus(target) - target.armor)``
(spec, "Simulator model"); shields absorb first and regenerate 2/s after 10 s without
damage. Ranges and sight are centre-to-centre distances on the 32x32 map. The numbers are
SMAClite's / SMACv2's (SC2 Legacy of the Void, normal speed) except where a comment says
otherwise; they are data, so a user can register a new type without touching the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        armor: subtracted from every hit (per attack), floor 0.5 per attack.
        damage: damage per attack.
        n_attacks: attacks per hit (zealot and colossus hit twice).
        bonus: extra damage per attack against targets with an attribute.
        cooldown: seconds between hits (before the U(-dt, 2dt) jitter).
        speed: distance per second.
        range: shooting (or healing) range.
        sight: sight range; observation features are scaled by it.
        radius: collision radius (ground units are pushed apart; air units are not).
        attributes: subset of ATTRIBUTES.
        heal_rate: hit points healed per second (medivac); 0 = an attacker.
        can_hit_air: whether the weapon reaches air units.
        energy: starting energy of a healer (SC2: 50, max 200, regen 0.7875/s, 1 energy per
            3 hp healed).
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
    def is_air(self) -> bool:
        return "air" in self.attributes

    @property
    def is_healer(self) -> bool:
        return self.heal_rate > 0

    def hit_damage(self, target: UnitType) -> float:
        """Damage of one hit on ``target``: n_attacks * max(0.5, damage + bonus - armor)."""
        if self.is_healer or (target.is_air and not self.can_hit_air):
            return 0.0
        bonus = sum(v for attr, v in self.bonus if attr in target.attributes)
        return self.n_attacks * max(0.5, self.damage + bonus - target.armor)


def _t(*attrs: str) -> frozenset[str]:
    return frozenset(attrs)


_BUILTIN = (
    # spec table (SMAClite / SMACv2 values)
    UnitType("marine", "m", "terran", 45, 0, 0, 6, 1, 0.61, 3.15, 5, 9, 0.375, _t("light", "bio"), can_hit_air=True),
    UnitType(
        "marauder", "M", "terran", 125, 0, 1, 10, 1, 1.07, 3.15, 6, 10, 0.5625, _t("armored", "bio"), (("armored", 10),)
    ),
    UnitType(
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
        0.75,
        _t("armored", "mech", "air"),
        heal_rate=9.0,
        energy=50.0,
    ),
    UnitType(
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
        0.625,
        _t("armored", "mech"),
        (("armored", 5),),
        can_hit_air=True,
    ),
    UnitType("zealot", "z", "protoss", 100, 50, 1, 8, 2, 0.86, 3.15, 2, 9, 0.5, _t("light", "bio")),
    UnitType(
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
        1.0,
        _t("armored", "mech", "massive"),
        (("light", 5),),
    ),
    # zerg (SC2 LotV numbers; SMAX uses the same ranges 2 and 5)
    UnitType("zergling", "g", "zerg", 35, 0, 0, 5, 1, 0.497, 4.13, 2, 8, 0.375, _t("light", "bio")),
    UnitType("hydralisk", "h", "zerg", 90, 0, 0, 12, 1, 0.59, 3.15, 5, 9, 0.625, _t("light", "bio"), can_hit_air=True),
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
