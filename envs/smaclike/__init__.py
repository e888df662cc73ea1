"""SMAC-like multi-task unit micromanagement, no StarCraft II binary.

- :mod:`envs.smaclike.units`: unit types as frozen data (``register_unit_type``).
- :mod:`envs.smaclike.scenarios`: scenarios and multi-task sets as frozen data
  (``register_scenario`` registers ``SMAClike-<name>-v0`` for every ShiftRL command).
- :mod:`envs.smaclike.rules`: the rules modes, "sc2" (default) and "smax".
- :mod:`envs.smaclike.core`: the batched numpy simulator (B battles as arrays), the
  reference implementation of the rules.
- :mod:`envs.smaclike.features`: observations and state, modes "smac_v1" / "smac_v2".
- :mod:`envs.smaclike.spawn`: start positions (map groups, SMACv2's and TRAMA's geometry).
- :mod:`envs.smaclike.smac_api`: SMAC's ``StarCraft2Env`` and SMACv2's
  ``StarCraftCapabilityEnvWrapper`` (PyMARL code runs unchanged; ``install_smac_alias``).
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
from envs.smaclike.smac_api import StarCraft2Env, StarCraftCapabilityEnvWrapper, install_smac_alias
from envs.smaclike.units import UNIT_TYPES, UnitType, register_unit_type

__all__ = [
    "BUILTIN_SCENARIOS",
    "SCENARIOS",
    "UNIT_TYPES",
    "SMACCore",
    "SMACLikeEnv",
    "Scenario",
    "StarCraft2Env",
    "StarCraftCapabilityEnvWrapper",
    "Team",
    "UnitType",
    "get_scenario",
    "install_smac_alias",
    "mirror",
    "register_scenario",
    "register_unit_type",
]

for _sc in BUILTIN_SCENARIOS:
    register_scenario(_sc)
