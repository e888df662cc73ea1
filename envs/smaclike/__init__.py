"""SMAC-like multi-task unit micromanagement, no StarCraft II binary.

- :mod:`envs.smaclike.units`: unit types as frozen data (``register_unit_type``).
- :mod:`envs.smaclike.scenarios`: scenarios and multi-task sets as frozen data
  (``register_scenario`` registers ``SMAClike-<name>-v0`` for every ShiftRL command).
- :mod:`envs.smaclike.core`: the batched numpy simulator (B battles as arrays).
- :mod:`envs.smaclike.env`: the PettingZoo ParallelEnv facade.
- :mod:`envs.smaclike.scripted`: scripted policies (random, focus fire) for baselines/tests.
- :mod:`envs.smaclike.render`: rgb_array frames and episode GIFs.
"""

from envs.smaclike.core import SMACCore
from envs.smaclike.env import SMACLikeEnv
from envs.smaclike.scenarios import (
    BUILTIN_SCENARIOS,
    SCENARIOS,
    Scenario,
    Team,
    get_scenario,
    mirror,
    register_scenario,
)
from envs.smaclike.units import UNIT_TYPES, UnitType, register_unit_type

__all__ = [
    "BUILTIN_SCENARIOS",
    "SCENARIOS",
    "UNIT_TYPES",
    "SMACCore",
    "SMACLikeEnv",
    "Scenario",
    "Team",
    "UnitType",
    "get_scenario",
    "mirror",
    "register_scenario",
    "register_unit_type",
]

for _sc in BUILTIN_SCENARIOS:
    register_scenario(_sc)
