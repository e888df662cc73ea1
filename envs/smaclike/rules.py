"""Combat rules modes: SC2's (default) and SMAX's simplification, as frozen data.

A user picks one with ``SMACCore(..., rules="sc2" | "smax")`` (or the env kwarg ``rules``);
every scenario runs under both, so SMAC-comparable and SMAX-comparable numbers come from the
same simulator. Sources: ../shared/specs/smaclike-trama.md, "Fidelity to SC2/SMAC".

| rule | "sc2" | "smax" |
|---|---|---|
| clock | an agent step = 8 game loops at 22.4 loops/s (0.357 s, SMAC's step_mul 8 at "faster") | 8 ticks of 1/16 s (0.5 s, JaxMARL SMAX) |
| range | edge to edge: centre distance <= range + both radii (smaclite unit.py) | centre distance < ``smax_range`` |
| attack order beyond reach | the unit walks toward its target until in reach, then fires (SC2's attack command) | nothing happens until the target comes in range |
| armor | per attack, on the part that reaches hit points (shields take the full attack; smaclite unit.py take_damage) | per attack on the whole hit, shields included |
| colossus | line splash 2.8 x 0.3 across the line of fire (smaclite LASER_BEAM) | one target |
| zerg | regenerate 0.38 hp/s | no regeneration |
| end | a side with only healers (medivacs) left has lost (smacv2 only_medivac_left) | a side loses when every unit is dead |

Banelings explode (80 damage within 2.2, then die) under both: that is what the unit is.
"""

from __future__ import annotations

from dataclasses import dataclass

GAME_LOOPS_PER_SECOND = 22.4  # SC2 at "faster" speed, which SMAC plays
STEP_MUL = 8  # game loops (ticks) per agent step, SMAC's default


@dataclass(frozen=True)
class Rules:
    """One rules mode.

    Attributes:
        name: "sc2" or "smax".
        dt: seconds per tick (8 ticks per agent step).
        edge_ranges: reach measured edge to edge with ``UnitType.range``; else centre to
            centre with ``UnitType.center_range``.
        attack_move: an attack order on a unit beyond reach moves the attacker toward it.
        armor_on_shields: armor reduces the whole hit (SMAX) instead of the hp part only.
        splash: colossus line splash.
        regen: zerg hit point regeneration.
        healers_cannot_win: a side left with only healers has lost.
    """

    name: str
    dt: float
    edge_ranges: bool
    attack_move: bool
    armor_on_shields: bool
    splash: bool
    regen: bool
    healers_cannot_win: bool


RULES: dict[str, Rules] = {
    "sc2": Rules("sc2", 1.0 / GAME_LOOPS_PER_SECOND, True, True, False, True, True, True),
    "smax": Rules("smax", 1.0 / 16.0, False, False, True, False, False, False),
}


def get_rules(name: str | Rules) -> Rules:
    if isinstance(name, Rules):
        return name
    if name not in RULES:
        raise ValueError(f"unknown rules mode {name!r}; expected one of {sorted(RULES)}")
    return RULES[name]
