"""SMAC's ``MultiAgentEnv`` API over the SMAClike simulator, so PyMARL/EPyMARL code runs unchanged.

:class:`StarCraft2Env` has SMAC's (oxwhirl/smac) and SMACv2's (oxwhirl/smacv2) name,
constructor and methods; :class:`StarCraftCapabilityEnvWrapper` is SMACv2's wrapper that
draws teams and start positions from a ``capability_config``. One battle of a
:class:`~envs.smaclike.core.SMACCore` (batch size 1) runs underneath. With
:func:`install_smac_alias`, ``from smac.env import StarCraft2Env`` and
``from smacv2.env.starcraft2.wrapper import StarCraftCapabilityEnvWrapper`` import these
classes, so a PyMARL checkout needs no edit::

    from envs.smaclike.smac_api import install_smac_alias
    install_smac_alias()  # before PyMARL imports smac

``map_name`` is a registered SMAClike scenario ("3m", "protoss_5_vs_5", "surComb3", ...,
see ``envs.smaclike.SCENARIOS``) or a :class:`~envs.smaclike.scenarios.Scenario`; the
capability wrapper takes SMACv2's ``10gen_protoss`` / ``10gen_terran`` / ``10gen_zerg``.

What each SMAC keyword does here (SMAC defaults unless said otherwise):

===========================  ===========================================================
keyword                      here
===========================  ===========================================================
map_name                     scenario name (or a Scenario)
step_mul                     simulator ticks per agent step (core ``ticks``)
seed                         seeds the first reset; later resets continue that generator
continuing_episode           True: ``info["episode_limit"] = True`` on a timeout (SMAC sets
                             the key only then; PyMARL then bootstraps through timeouts)
obs_last_action,             forwarded to the core under the same names
state_last_action,
obs_timestep_number,
state_timestep_number,
obs_own_pos,
reward_sparse,
reward_only_positive,
reward_scale,
reward_scale_rate,
reward_death_value,
reward_win, reward_defeat,
reward_negative_scale
use_unit_ranges              picks the core's ``obs_mode``: False (SMAC's fixed ranges,
                             attack mask distance <= 6, sight 9) -> "smac_v1"; True
                             (per-unit ranges) -> "smac_v2". An explicit ``obs_mode``
                             wins; ``use_unit_ranges=True`` with obs_mode "smac_v1" raises
min_attack_range             forwarded when the obs mode is "smac_v2" (SMACv2 uses it only
                             with use_unit_ranges)
obs_instead_of_state         honoured here: the state is the agents' observations
                             concatenated
heuristic_ai, heuristic_rest honoured: :func:`envs.smaclike.scripted.smac_heuristic_actions`
                             drives the agents; the actions passed to step() are ignored
                             and overwritten in place with the ones played, as SMAC does.
                             A target beyond the attack mask (SMAC's order range) is
                             approached with SMAC's heuristic_rest move, whatever
                             heuristic_rest says; within it the attack order walks in
replay_dir, replay_prefix    save_replay() writes ``<replay_dir or "replays">/<prefix or
                             map_name>_<episode>_<time>.gif``
debug                        logs actions and rewards at DEBUG level (logger
                             ``envs.smaclike.smac_api``)
obs_all_health,              only True (SMAC's default) is supported; obs_own_health is
obs_own_health               ignored when obs_all_health is True, as in SMAC
move_amount                  only 2 (SMAC's default): units move at their speed for the
                             whole step instead of toward a point 2 away
obs_pathing_grid,            only False: the map is an open field without terrain
obs_terrain_height
obs_starcraft (v2)           only True
conic_fov (v2)               only False (num_fov_actions is then ignored, as in SMACv2)
fully_observable (v2)        only False
prob_obs_enemy (v2)          only 1.0
action_mask (v2)             only True
capability_config (v2)       used by StarCraftCapabilityEnvWrapper (and by StarCraft2Env
                             for 10gen_* maps): n_units, n_enemies, team_gen
                             (weighted_teams), start_positions (surrounded_and_reflect,
                             surrounded, reflect_position)
difficulty, game_version,    accepted and ignored: there is no SC2 binary; the enemies play
window_size_x,               our stand-in AI (rules "sc2": SC2's attack-move as SMAClite
                             models it; "smax": SMAX's heuristic), without difficulty levels
window_size_y,
kill_unit_step_mul (v2)      accepted and ignored (only used by SMACv2's stochastic health)
===========================  ===========================================================

A value we cannot honour raises ValueError saying so; an unknown keyword raises TypeError.
ShiftRL's own keywords, None = the core's or scenario's default: ``rules`` ("sc2" |
"smax"), ``obs_mode``, ``reward_variant`` ("smac" | "death_only"), ``max_reward``
("episode" | "first": SMACv2 computes it once), ``shield_regen_reward_bug``.

Differences from SMAC worth knowing: reset() returns ``(obs, state)`` as SMAC and SMACv2
do; get_stats()["win_rate"] is 0.0 before any battle (SMAC divides by zero); an action its
mask forbids raises ValueError (SMAC: AssertionError) naming the agent and the allowed
actions; stepping a finished episode raises RuntimeError (call reset()).
"""

from __future__ import annotations

import copy
import logging
import sys
import time
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envs.smaclike.core import MAP_SIZE, N_FIXED_ACTIONS, SMACCore
from envs.smaclike.features import Layout
from envs.smaclike.scenarios import Scenario, get_scenario

logger = logging.getLogger(__name__)

# SMAC's keywords (smac starcraft2.py StarCraft2Env.__init__) with their defaults
SMAC_V1_DEFAULTS: dict[str, Any] = {
    "step_mul": 8,
    "move_amount": 2,
    "difficulty": "7",
    "game_version": None,
    "seed": None,
    "continuing_episode": False,
    "obs_all_health": True,
    "obs_own_health": True,
    "obs_last_action": False,
    "obs_pathing_grid": False,
    "obs_terrain_height": False,
    "obs_instead_of_state": False,
    "obs_timestep_number": False,
    "state_last_action": True,
    "state_timestep_number": False,
    "reward_sparse": False,
    "reward_only_positive": True,
    "reward_death_value": 10,
    "reward_win": 200,
    "reward_defeat": 0,
    "reward_negative_scale": 0.5,
    "reward_scale": True,
    "reward_scale_rate": 20,
    "replay_dir": "",
    "replay_prefix": "",
    "window_size_x": 1920,
    "window_size_y": 1200,
    "heuristic_ai": False,
    "heuristic_rest": False,
    "debug": False,
}
# the keywords SMACv2 (smacv2 starcraft2.py) adds
SMAC_V2_DEFAULTS: dict[str, Any] = {
    "obs_own_pos": False,
    "obs_starcraft": True,
    "conic_fov": False,
    "num_fov_actions": 12,
    "use_unit_ranges": False,
    "min_attack_range": 2,
    "kill_unit_step_mul": 2,
    "fully_observable": False,
    "capability_config": None,
    "prob_obs_enemy": 1.0,
    "action_mask": True,
}
# ShiftRL's own keywords (None = the core's / scenario's default)
SHIFTRL_DEFAULTS: dict[str, Any] = {
    "rules": None,
    "obs_mode": None,
    "reward_variant": None,
    "max_reward": None,
    "shield_regen_reward_bug": None,
}
DEFAULTS: dict[str, Any] = {**SMAC_V1_DEFAULTS, **SMAC_V2_DEFAULTS, **SHIFTRL_DEFAULTS}

# SMAC keyword -> SMACCore keyword (values passed unchanged, except the two noted)
SMAC_TO_CORE: dict[str, str] = {
    "step_mul": "ticks",
    "use_unit_ranges": "obs_mode",  # False -> "smac_v1", True -> "smac_v2" (unless obs_mode is given)
    "min_attack_range": "min_attack_range",  # only in obs mode "smac_v2"
    "obs_last_action": "obs_last_action",
    "state_last_action": "state_last_action",
    "obs_timestep_number": "obs_timestep_number",
    "state_timestep_number": "state_timestep_number",
    "obs_own_pos": "obs_own_pos",
    "reward_sparse": "reward_sparse",
    "reward_only_positive": "reward_only_positive",
    "reward_scale": "reward_scale",
    "reward_scale_rate": "reward_scale_rate",
    "reward_death_value": "reward_death_value",
    "reward_win": "reward_win",
    "reward_defeat": "reward_defeat",
    "reward_negative_scale": "reward_negative_scale",
    "rules": "rules",
    "reward_variant": "reward_variant",
    "max_reward": "max_reward",
    "shield_regen_reward_bug": "shield_regen_reward_bug",
}

# keyword -> the only value we can honour (why is in the module docstring's table)
ONLY_VALUE: dict[str, Any] = {
    "obs_all_health": True,
    "move_amount": 2,
    "obs_pathing_grid": False,
    "obs_terrain_height": False,
    "obs_starcraft": True,
    "conic_fov": False,
    "fully_observable": False,
    "prob_obs_enemy": 1.0,
    "action_mask": True,
}

CAPABILITY_MAPS: dict[str, tuple[str, ...]] = {
    "10gen_protoss": ("stalker", "zealot", "colossus"),
    "10gen_terran": ("marine", "marauder", "medivac"),
    "10gen_zerg": ("zergling", "hydralisk", "baneling"),
}
CAPABILITY_EPISODE_LIMIT = 200  # smacv2 smac_maps.py, 10gen_*


def _check_options(options: dict[str, Any]) -> None:
    for key, value in ONLY_VALUE.items():
        if options[key] != value:
            raise ValueError(
                f"{key}={options[key]!r} is not supported by SMAClike (only {value!r}): "
                "see envs/smaclike/smac_api.py's option table"
            )


def scenario_from_capability_config(map_name: str, config: Mapping[str, Any]) -> Scenario:
    """A palette Scenario from SMACv2's ``capability_config`` for a ``10gen_<race>`` map.

    SMACv2's surrounded_and_reflect draws u ~ U(0, 1) and plays *surrounded* when u > p,
    so ``p`` is the probability of the reflect start (distributions.py).
    """
    if map_name not in CAPABILITY_MAPS:
        raise ValueError(
            f"map_name {map_name!r} is not a SMACv2 capability map; expected one of {list(CAPABILITY_MAPS)}"
        )
    if not isinstance(config, Mapping):
        raise ValueError(f"capability_config must be a dict, got {type(config).__name__}")
    known = {"n_units", "n_enemies", "team_gen", "start_positions"}
    unsupported = {"attack", "health", "enemy_mask"}
    for key in config:
        if key in unsupported:
            raise ValueError(f"capability_config[{key!r}] (SMACv2's stochastic {key}) is not supported by SMAClike")
        if key not in known:
            raise ValueError(f"capability_config has unknown key {key!r}; expected keys among {sorted(known)}")
    n_units = _int_key(config, "n_units", "capability_config")
    n_enemies = _int_key(config, "n_enemies", "capability_config")
    team = _sub(config, "team_gen")
    _known_keys(
        team,
        "capability_config['team_gen']",
        {"dist_type", "unit_types", "weights", "exception_unit_types", "observe", "n_units", "n_enemies", "env_key"},
    )
    where = "capability_config['team_gen']"
    if team.get("dist_type") != "weighted_teams":
        raise ValueError(f"{where}['dist_type'] must be 'weighted_teams', got {team.get('dist_type')!r}")
    for key in ("unit_types", "weights"):
        if key not in team:
            raise ValueError(f"{where} needs {key!r}")
    unit_types, weights = list(team["unit_types"]), [float(w) for w in team["weights"]]
    if len(unit_types) != len(weights) or not unit_types:
        raise ValueError(f"{where}: 'unit_types' ({len(unit_types)}) and 'weights' ({len(weights)}) must match")
    race_units = CAPABILITY_MAPS[map_name]
    for name in unit_types + list(team.get("exception_unit_types", ())):
        if name not in race_units:
            raise ValueError(f"{where}: unit type {name!r} is not one of {map_name}'s {list(race_units)}")
    if not team.get("observe", True):
        raise ValueError(f"{where}['observe']=False (teammate types hidden) is not supported by SMAClike")
    for key, n in (("n_units", n_units), ("n_enemies", n_enemies)):
        if key in team and int(team[key]) != n:
            raise ValueError(f"{where}[{key!r}]={team[key]} differs from capability_config[{key!r}]={n}")
    starts: tuple[tuple[str, float], ...] = (("classic", 1.0),)  # SMACv2 without start_positions: two clumps
    map_size = (MAP_SIZE, MAP_SIZE)
    if "start_positions" in config:
        pos = _sub(config, "start_positions")
        where = "capability_config['start_positions']"
        _known_keys(pos, where, {"dist_type", "p", "n_enemies", "n_units", "map_x", "map_y", "env_key"})
        map_size = (_float_key(pos, "map_x", where), _float_key(pos, "map_y", where))
        dist = pos.get("dist_type")
        if dist == "surrounded_and_reflect":
            p = _float_key(pos, "p", where)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{where}['p'] must be in [0, 1], got {p}")
            starts = tuple((m, q) for m, q in (("surrounded", 1.0 - p), ("reflect", p)) if q > 0)
        elif dist == "surrounded":
            starts = (("surrounded", 1.0),)
        elif dist == "reflect_position":
            starts = (("reflect", 1.0),)
        else:
            raise ValueError(
                f"{where}['dist_type'] must be one of 'surrounded_and_reflect', 'surrounded', "
                f"'reflect_position', got {dist!r}"
            )
        for key, n in (("n_units", n_units), ("n_enemies", n_enemies)):
            if key in pos and int(pos[key]) != n:
                raise ValueError(f"{where}[{key!r}]={pos[key]} differs from capability_config[{key!r}]={n}")
    extra: dict[str, Any] = {}  # fields passed only when they differ from Scenario's defaults
    if n_enemies != n_units:
        extra["n_enemies"] = n_enemies
    if team.get("exception_unit_types"):
        extra["exception_types"] = tuple(team["exception_unit_types"])
    if tuple(map_size) != (MAP_SIZE, MAP_SIZE):
        extra["map_size"] = tuple(map_size)
    return Scenario(
        name=map_name,
        palette=tuple(zip(unit_types, weights)),
        n_units=n_units,
        starts=starts,
        episode_limit=CAPABILITY_EPISODE_LIMIT,
        description=f"SMACv2 {map_name} from a capability_config",
        **extra,
    )


def _sub(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    if key not in config:
        raise ValueError(f"capability_config needs {key!r}")
    if not isinstance(config[key], Mapping):
        raise ValueError(f"capability_config[{key!r}] must be a dict, got {type(config[key]).__name__}")
    return config[key]


def _known_keys(d: Mapping[str, Any], where: str, known: set[str]) -> None:
    for key in d:
        if key not in known:
            raise ValueError(f"{where} has unknown key {key!r}; expected keys among {sorted(known)}")


def _int_key(d: Mapping[str, Any], key: str, where: str) -> int:
    if key not in d:
        raise ValueError(f"{where} needs {key!r}")
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{where}[{key!r}] must be a positive integer, got {value!r}")
    return int(value)


def _float_key(d: Mapping[str, Any], key: str, where: str) -> float:
    if key not in d:
        raise ValueError(f"{where} needs {key!r}")
    try:
        return float(d[key])
    except (TypeError, ValueError):
        raise ValueError(f"{where}[{key!r}] must be a number, got {d[key]!r}") from None


class MultiAgentEnv:
    """SMAC's abstract multi-agent env interface (smac.env.MultiAgentEnv)."""

    n_agents: int
    episode_limit: int

    def step(self, actions: Any) -> tuple[float, bool, dict[str, Any]]:
        """Returns reward, terminated, info."""
        raise NotImplementedError

    def get_obs(self) -> list[np.ndarray]:
        raise NotImplementedError

    def get_obs_agent(self, agent_id: int) -> np.ndarray:
        raise NotImplementedError

    def get_obs_size(self) -> int:
        raise NotImplementedError

    def get_state(self) -> np.ndarray:
        raise NotImplementedError

    def get_state_size(self) -> int:
        raise NotImplementedError

    def get_avail_actions(self) -> list[list[int]]:
        raise NotImplementedError

    def get_avail_agent_actions(self, agent_id: int) -> list[int]:
        raise NotImplementedError

    def get_total_actions(self) -> int:
        raise NotImplementedError

    def reset(self) -> Any:
        raise NotImplementedError

    def render(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def seed(self) -> Any:
        raise NotImplementedError

    def save_replay(self) -> Any:
        raise NotImplementedError

    def get_env_info(self) -> dict[str, Any]:
        return {
            "state_shape": self.get_state_size(),
            "obs_shape": self.get_obs_size(),
            "n_actions": self.get_total_actions(),
            "n_agents": self.n_agents,
            "episode_limit": self.episode_limit,
        }


# the core arrays a rendered frame depends on that change during an episode (save_replay)
_FRAME_ATTRS = ("z", "alive", "hp", "shield", "energy", "last_target", "won", "steps")


class StarCraft2Env(MultiAgentEnv):
    """SMAC's StarCraft2Env over one SMAClike battle; the module docstring lists what every
    keyword does here.

    Args:
        map_name: a registered SMAClike scenario name, a ``10gen_<race>`` map (with a
            ``capability_config``) or a Scenario.
        **kwargs: SMAC's and SMACv2's keywords (module docstring); anything else is a
            TypeError, as a Python signature would raise.
    """

    def __init__(self, map_name: str | Scenario = "8m", **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(DEFAULTS))
        if unknown:
            raise TypeError(f"StarCraft2Env() got an unexpected keyword argument {unknown[0]!r}")
        opts = {**DEFAULTS, **kwargs}
        _check_options(opts)
        cap = opts["capability_config"] or {}
        if isinstance(map_name, str) and map_name in CAPABILITY_MAPS:
            if not cap:
                raise ValueError(f"map_name {map_name!r} needs a capability_config (use StarCraftCapabilityEnvWrapper)")
            scenario = scenario_from_capability_config(map_name, cap)
        else:
            if cap:
                raise ValueError(
                    f"capability_config is for the SMACv2 maps {list(CAPABILITY_MAPS)}, not map_name {map_name!r}"
                )
            scenario = get_scenario(map_name)
        obs_mode = opts["obs_mode"]
        if obs_mode is None:
            obs_mode = "smac_v2" if opts["use_unit_ranges"] else "smac_v1"
        elif opts["use_unit_ranges"] and obs_mode == "smac_v1":
            raise ValueError("use_unit_ranges=True contradicts obs_mode='smac_v1' (SMAC v1 uses fixed ranges)")
        core_kwargs: dict[str, Any] = {}
        for key, core_key in SMAC_TO_CORE.items():
            if opts[key] is not None:
                core_kwargs[core_key] = opts[key]
        core_kwargs["obs_mode"] = obs_mode
        if obs_mode != "smac_v2":
            core_kwargs.pop("min_attack_range", None)
        self._core = SMACCore(scenario, 1, invalid_action="raise", **core_kwargs)
        core = self._core
        self._opts = opts
        self.map_name = scenario.name
        self.scenario = scenario
        self.n_agents, self.n_enemies = core.N, core.M
        self.n_actions = core.n_actions
        self.n_actions_no_attack = N_FIXED_ACTIONS
        self.n_actions_move = 4
        self.episode_limit = core.episode_limit
        self._seed = opts["seed"]
        self._reseed = True  # the next reset seeds the core with self._seed
        self.continuing_episode = bool(opts["continuing_episode"])
        self.obs_instead_of_state = bool(opts["obs_instead_of_state"])
        self.heuristic_ai, self.heuristic_rest = bool(opts["heuristic_ai"]), bool(opts["heuristic_rest"])
        self.debug = bool(opts["debug"])
        self.replay_dir, self.replay_prefix = opts["replay_dir"], opts["replay_prefix"]
        self.difficulty, self.game_version = opts["difficulty"], opts["game_version"]
        self.capability_config = cap
        self.map_x, self.map_y = (float(v) for v in scenario.map_size)
        self.max_distance_x, self.max_distance_y = self.map_x, self.map_y
        self.map_type = "MMM" if scenario.ally_healer else "smaclike"
        self._layout: Layout = core.layout
        self.shield_bits_ally = int(self._layout.shield_ally)
        self.shield_bits_enemy = int(self._layout.shield_enemy)
        self.unit_type_bits = int(self._layout.type_bits)
        self._episode_count = self._episode_steps = self._total_steps = 0
        self.battles_won = self.battles_game = self.timeouts = self.force_restarts = 0
        self.reward = 0.0
        self.last_action = np.zeros((self.n_agents, self.n_actions))
        self.heuristic_targets = np.full((1, self.n_agents), -1, np.int64)
        self._terminated = True  # until the first reset
        self._obs: np.ndarray | None = None
        self._snapshots: list[dict[str, np.ndarray]] = []
        self._window: Any = None  # render("human")

    # -- episode ---------------------------------------------------------------------------
    def reset(self, episode_config: Mapping[str, Any] | None = None) -> tuple[list[np.ndarray], np.ndarray]:
        """Starts a battle; returns (obs list, state) as SMAC and SMACv2 do.

        ``episode_config`` is SMACv2's StarCraft2Env argument; only an empty one is accepted
        (teams and starts are drawn by the simulator from the scenario).
        """
        if episode_config:
            raise ValueError(
                "reset(episode_config=...) is not supported: SMAClike draws teams and starts from the scenario"
            )
        seeds = [self._seed] if self._reseed else None
        self._reseed = False
        self._core.reset(seeds=seeds)
        self._episode_steps = 0
        self._terminated = False
        self.last_action = np.zeros((self.n_agents, self.n_actions))
        self.heuristic_targets[:] = -1
        self._obs = None
        self._snapshots = [self._snapshot()]
        return self.get_obs(), self.get_state()

    def step(self, actions: Any) -> tuple[float, bool, dict[str, Any]]:
        """One agent step; returns (reward, terminated, info) with SMAC's info keys.

        ``actions``: one int per agent (list, numpy array or CPU torch tensor). Dead agents
        take 0 (no-op); an action the mask forbids raises ValueError.
        """
        if self._terminated:
            raise RuntimeError("step() called on a finished episode (or before reset()); call reset() first")
        core = self._core
        if self.heuristic_ai:
            from envs.smaclike.scripted import smac_heuristic_actions

            a = smac_heuristic_actions(core, None, targets=self.heuristic_targets)[0]
            _write_back(actions, a)
        else:
            a = self._as_actions(actions)
        if self.debug:
            logger.debug("episode %d step %d actions %s", self._episode_count, self._episode_steps, a.tolist())
        reward_arr, term_arr, trunc_arr = core.step(a[None, :])
        self._obs = None
        self._snapshots.append(self._snapshot())
        self._total_steps += 1
        self._episode_steps += 1
        self.last_action = np.eye(self.n_actions)[a]
        reward = float(reward_arr[0])
        info_arr = core.info()
        won = bool(info_arr["battle_won"][0])
        info: dict[str, Any] = {
            "battle_won": won,
            "dead_allies": int(info_arr["dead_allies"][0]),
            "dead_enemies": int(info_arr["dead_enemies"][0]),
        }
        terminated = bool(term_arr[0]) or bool(trunc_arr[0])
        if terminated:
            self._terminated = True
            self._episode_count += 1
            self.battles_game += 1
            self.battles_won += won
            if bool(trunc_arr[0]):
                self.timeouts += 1
                if self.continuing_episode:
                    info["episode_limit"] = True
        self.reward = reward
        if self.debug:
            logger.debug("reward %.4f terminated %s info %s", reward, terminated, info)
        return reward, terminated, info

    def _as_actions(self, actions: Any) -> np.ndarray:
        a = np.asarray(actions)  # a CPU torch tensor converts through __array__
        if a.size != self.n_agents:
            raise ValueError(f"actions must hold one action per agent ({self.n_agents}), got shape {a.shape}")
        a = a.reshape(self.n_agents)
        if a.dtype.kind == "f" and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        if a.dtype.kind not in "iu":
            raise ValueError(f"actions must be integers, got dtype {a.dtype}")
        a = a.astype(np.int64)
        avail = self._core.avail_actions()[0]
        ok = (a >= 0) & (a < self.n_actions)
        ok[ok] = avail[np.flatnonzero(ok), a[ok]]
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            allowed = np.flatnonzero(avail[i]).tolist()
            raise ValueError(f"Agent {i} cannot perform action {int(a[i])}; available actions: {allowed}")
        return a

    # -- observations ----------------------------------------------------------------------
    def _all_obs(self) -> np.ndarray:
        if self._obs is None:
            self._obs = self._core.obs()[0]
        return self._obs

    def get_obs(self) -> list[np.ndarray]:
        """Per-agent observations (float32); a dead agent's are zeros."""
        return list(self._all_obs().copy())

    def get_obs_agent(self, agent_id: int) -> np.ndarray:
        return self._all_obs()[agent_id].copy()

    def get_obs_size(self) -> int:
        return int(self._core.obs_dim)

    def get_state(self) -> np.ndarray:
        if self.obs_instead_of_state:
            return self._all_obs().reshape(-1).copy()
        return self._core.state()[0]

    def get_state_size(self) -> int:
        if self.obs_instead_of_state:
            return self.get_obs_size() * self.n_agents
        return int(self._core.state_dim)

    def get_avail_agent_actions(self, agent_id: int) -> list[int]:
        return self._core.avail_actions()[0, agent_id].astype(int).tolist()

    def get_avail_actions(self) -> list[list[int]]:
        return self._core.avail_actions()[0].astype(int).tolist()

    def get_total_actions(self) -> int:
        return int(self.n_actions)

    def get_capabilities_agent(self, agent_id: int) -> np.ndarray:
        """SMACv2's capability features: the agent's unit-type one-hot."""
        onehot = np.zeros(self._core.T, np.float32)
        onehot[int(self._core.type[0, agent_id])] = 1.0
        return onehot

    def get_capabilities(self) -> np.ndarray:
        return np.concatenate([self.get_capabilities_agent(i) for i in range(self.n_agents)])

    # -- SMAC's layout queries (pymarl2 / QPLEX read these) --------------------------------
    def get_obs_move_feats_size(self) -> int:
        return 4

    def get_obs_enemy_feats_size(self) -> tuple[int, int]:
        return self.n_enemies, int(self._layout.enemy_feats)

    def get_obs_ally_feats_size(self) -> tuple[int, int]:
        return self.n_agents - 1, int(self._layout.ally_feats)

    def get_obs_own_feats_size(self) -> int:
        return int(self._layout.own_feats)

    def get_ally_num_attributes(self) -> int:
        return int(self._layout.state_ally_feats)

    def get_enemy_num_attributes(self) -> int:
        return int(self._layout.state_enemy_feats)

    def _attr_names(self) -> tuple[list[str], list[str]]:
        """SMAC's ally_state_attr_names / enemy_state_attr_names."""
        lay = self._layout
        bits = [f"type_{k}" for k in range(lay.type_bits)]
        ally = ["health", "energy/cooldown", "rel_x", "rel_y"] + ["shield"] * int(lay.shield_ally) + bits
        enemy = ["health", "rel_x", "rel_y"] + ["shield"] * int(lay.shield_enemy) + bits
        return ally, enemy

    def get_obs_feature_names(self) -> list[str]:
        """One name per observation entry (SMACv2's method; the core's spelling)."""
        return list(self._layout.obs_feature_names())

    def get_state_feature_names(self) -> list[str]:
        """One name per state entry (SMACv2's method; the core's spelling)."""
        if self.obs_instead_of_state:
            return [f"agent_{i}_{n}" for i in range(self.n_agents) for n in self.get_obs_feature_names()]
        return list(self._layout.state_feature_names())

    def get_env_info(self) -> dict[str, Any]:
        """SMAC's five keys, plus agent_features / enemy_features (SMAC) and unit_dim
        (the ally state block, which pymarl2-style forks read)."""
        info = super().get_env_info()
        info["agent_features"], info["enemy_features"] = self._attr_names()
        info["unit_dim"] = int(self._layout.state_ally_feats)
        return info

    def get_stats(self) -> dict[str, Any]:
        return {
            "battles_won": self.battles_won,
            "battles_game": self.battles_game,
            "battles_draw": self.timeouts,  # SMAC counts timeouts as draws
            "win_rate": self.battles_won / self.battles_game if self.battles_game else 0.0,
            "timeouts": self.timeouts,
            "restarts": self.force_restarts,
        }

    # -- SMAC's bookkeeping attributes -----------------------------------------------------
    @property
    def death_tracker_ally(self) -> np.ndarray:
        return (~self._core.alive[0, : self.n_agents]).astype(np.float64)

    @property
    def death_tracker_enemy(self) -> np.ndarray:
        return (~self._core.alive[0, self.n_agents :]).astype(np.float64)

    @property
    def max_reward(self) -> float:
        """What rewards are divided by (before reward_scale_rate), as SMAC's attribute."""
        return float(self._core.max_reward[0])

    @property
    def core(self) -> SMACCore:
        """The simulator underneath (batch size 1)."""
        return self._core

    # -- seeding, rendering, replays -------------------------------------------------------
    def seed(self, seed: int | None = None) -> int | None:
        """Returns the seed (SMAC); ``seed(s)`` (EPyMARL's wrappers) sets it for the next reset."""
        if seed is not None:
            self._seed, self._reseed = int(seed), True
        return self._seed

    def render(self, mode: str = "human") -> np.ndarray | None:
        """ "rgb_array": the current frame; "human": shows it in a matplotlib window."""
        from envs.smaclike.render import HumanWindow, render_frame

        if mode not in ("human", "rgb_array"):
            raise ValueError(f"render mode must be 'human' or 'rgb_array', got {mode!r}")
        frame = render_frame(self._core, 0)
        if mode == "rgb_array":
            return frame
        if self._window is None:
            self._window = HumanWindow(f"SMAClike {self.map_name}")
        self._window.show(frame)
        return None

    def _snapshot(self) -> dict[str, np.ndarray]:
        return {k: getattr(self._core, k).copy() for k in _FRAME_ATTRS}

    def save_replay(self) -> Path:
        """Writes the frames since the last reset as a GIF (SMAC writes an SC2 replay);
        returns its path."""
        from envs.smaclike.render import render_frame, save_gif

        if not self._snapshots:
            raise RuntimeError("save_replay(): no episode recorded yet; call reset() and step()")
        scratch = copy.deepcopy(self._core)  # replayed into, so the live battle is untouched
        frames = []
        for snap in self._snapshots:
            for k, v in snap.items():
                np.copyto(getattr(scratch, k), v)
            frames.append(render_frame(scratch, 0))
        frames.extend([frames[-1]] * 8)  # hold the last frame for a second
        prefix = self.replay_prefix or self.map_name
        stamp = time.strftime("%Y-%m-%d-%H-%M-%S")
        path = Path(self.replay_dir or "replays") / f"{prefix}_{self._episode_count:05d}_{stamp}.gif"
        save_gif(frames, path)
        logger.info("Replay saved at: %s", path)
        return path

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    def full_restart(self) -> None:
        """SMAC restarts a crashed SC2 here; nothing can crash in SMAClike."""


def _write_back(actions: Any, played: np.ndarray) -> None:
    """SMAC's heuristic_ai overwrites the caller's actions with the ones played (PyMARL's
    batch then stores them); immutable containers are left alone."""
    if not hasattr(actions, "__setitem__"):
        return
    for i, v in enumerate(played.tolist()):
        actions[i] = v


class StarCraftCapabilityEnvWrapper(MultiAgentEnv):
    """SMACv2's wrapper: a StarCraft2Env whose teams and starts come from ``capability_config``.

    Args:
        **kwargs: StarCraft2Env's keywords; ``capability_config`` and ``map_name``
            (10gen_protoss / 10gen_terran / 10gen_zerg) are required.
    """

    def __init__(self, **kwargs: Any) -> None:
        for key in ("capability_config", "map_name"):
            if key not in kwargs:
                raise TypeError(f"StarCraftCapabilityEnvWrapper() missing required keyword argument {key!r}")
        if kwargs["map_name"] not in CAPABILITY_MAPS:
            raise ValueError(
                f"map_name {kwargs['map_name']!r} is not a SMACv2 capability map; expected one of {list(CAPABILITY_MAPS)}"
            )
        self.distribution_config = kwargs["capability_config"]
        self.env = StarCraft2Env(**kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "env":  # not constructed yet (e.g. during unpickling)
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self) -> tuple[list[np.ndarray], np.ndarray]:
        return self.env.reset()

    def step(self, actions: Any) -> tuple[float, bool, dict[str, Any]]:
        return self.env.step(actions)

    def get_obs(self) -> list[np.ndarray]:
        return self.env.get_obs()

    def get_obs_feature_names(self) -> list[str]:
        return self.env.get_obs_feature_names()

    def get_state(self) -> np.ndarray:
        return self.env.get_state()

    def get_state_feature_names(self) -> list[str]:
        return self.env.get_state_feature_names()

    def get_avail_actions(self) -> list[list[int]]:
        return self.env.get_avail_actions()

    def get_env_info(self) -> dict[str, Any]:
        return self.env.get_env_info()

    def get_obs_size(self) -> int:
        return self.env.get_obs_size()

    def get_state_size(self) -> int:
        return self.env.get_state_size()

    def get_total_actions(self) -> int:
        return self.env.get_total_actions()

    def get_capabilities(self) -> np.ndarray:
        return self.env.get_capabilities()

    def get_obs_agent(self, agent_id: int) -> np.ndarray:
        return self.env.get_obs_agent(agent_id)

    def get_avail_agent_actions(self, agent_id: int) -> list[int]:
        return self.env.get_avail_agent_actions(agent_id)

    def render(self, mode: str = "human") -> np.ndarray | None:
        return self.env.render(mode=mode)

    def get_stats(self) -> dict[str, Any]:
        return self.env.get_stats()

    def full_restart(self) -> None:
        return self.env.full_restart()

    def save_replay(self) -> Path:
        return self.env.save_replay()

    def close(self) -> None:
        return self.env.close()

    def seed(self, seed: int | None = None) -> int | None:
        return self.env.seed(seed)


# module name -> names it exports (SMAC's and SMACv2's import paths)
_ALIASES: dict[str, tuple[str, ...]] = {
    "smac": (),
    "smac.env": ("MultiAgentEnv", "StarCraft2Env"),
    "smac.env.multiagentenv": ("MultiAgentEnv",),
    "smac.env.starcraft2": (),
    "smac.env.starcraft2.starcraft2": ("StarCraft2Env",),
    "smacv2": (),
    "smacv2.env": ("MultiAgentEnv", "StarCraft2Env", "StarCraftCapabilityEnvWrapper"),
    "smacv2.env.multiagentenv": ("MultiAgentEnv",),
    "smacv2.env.starcraft2": (),
    "smacv2.env.starcraft2.starcraft2": ("StarCraft2Env",),
    "smacv2.env.starcraft2.wrapper": ("StarCraftCapabilityEnvWrapper",),
}


def install_smac_alias() -> None:
    """Makes ``smac`` / ``smacv2`` imports resolve to this module's classes.

    Call it before the first ``import smac`` (e.g. at the top of PyMARL's main.py). It
    refuses when a real smac or smacv2 package is already imported: the two would mix.
    Calling it twice is harmless.
    """
    for name in ("smac", "smacv2"):
        mod = sys.modules.get(name)
        if mod is not None and not getattr(mod, "__shiftrl_alias__", False):
            raise RuntimeError(
                f"a real {name!r} package is already imported ({getattr(mod, '__file__', mod)!r}); "
                "call install_smac_alias() before anything imports it, or use the real StarCraft II env"
            )
    exports = {
        "MultiAgentEnv": MultiAgentEnv,
        "StarCraft2Env": StarCraft2Env,
        "StarCraftCapabilityEnvWrapper": StarCraftCapabilityEnvWrapper,
    }
    for name, attrs in _ALIASES.items():
        mod = sys.modules.get(name)
        if mod is None:
            mod = types.ModuleType(name, f"SMAClike alias of {name} (envs.smaclike.smac_api)")
            mod.__path__ = []  # a package, so submodule imports look in sys.modules
            mod.__shiftrl_alias__ = True  # type: ignore[attr-defined]
            sys.modules[name] = mod
        for attr in attrs:
            setattr(mod, attr, exports[attr])
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, mod)
