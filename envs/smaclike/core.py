"""The batched simulator: B independent battles stepped at once as (B, U, ...) numpy arrays.

This is the numpy reference implementation of the rules (envs/smaclike/rules.py: "sc2" by
default, "smax" as an option). One agent step is ``ticks`` (8) ticks of ``dt`` seconds. Per
tick: every living unit moves (its ordered direction, or toward the unit it was ordered to
attack when that unit is beyond reach and the rules walk attackers in), clamped to the
playable area; living ground units are pushed apart by their radii (SMAX's rule); then every
ready unit (cooldown <= 0) whose target is alive and within reach fires. The hits of a tick
are applied victim by victim in ascending attacker order, each attack's damage going to the
shield first and, under "sc2", armor reducing only the part that reaches hit points. A unit
that fired gets cooldown = base + U(-dt, 2 dt) (pysc2's jitter, as SMAX). Colossi splash
along a line (sc2), banelings explode on everything around them and die, medivacs heal
(9 hp/s, 1 energy per 3 hp). Decisions (the agents' actions and the heuristic enemy AI) are
taken once per agent step, as in SMAC and SMAX.

End-of-step bookkeeping: shields regenerate 2/s once a unit has taken no damage for 10 s
(applied for the ticks of the step past that mark), zerg hit points 0.38/s (sc2), medivac
energy 0.7875/s.

Reward (SMAC's, oxwhirl/smac starcraft2.py reward_battle): per step the hp + shield the
enemies lost (regeneration and healing count against it, as in SMAC) + 10 per enemy death,
minus 0.5 x (what the allies lost + 10 per ally death) when reward_only_positive is False;
+200 on a win; divided by max_reward / 20, with max_reward computed from *this* episode's
enemy team by default (SMACv2 computes it once, at the first episode: ``max_reward="first"``).
With reward_only_positive the step reward is max(., 0) (SMACv2); SMAC v1's abs(), which pays
for enemy shield regeneration (oxwhirl/smac issue 72), is ``shield_regen_reward_bug=True``.
TRAMA's released env pays the death terms only: ``reward_variant="death_only"``.

Randomness: every environment slot owns a numpy Generator, seeded through :meth:`reset`,
and all state is per environment (no global clock), so environment b of a batch replays
exactly what a single environment with the same seed and actions does.

Positions are complex numbers x + iy (one contiguous (B, U) array; ``pos`` is an (x, y)
view of the same memory): pairwise distances are one subtraction and one ``abs``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from envs.smaclike import features, kernel
from envs.smaclike.features import V1_SHOOT, V1_SIGHT, V2_MIN_ATTACK_RANGE, Layout
from envs.smaclike.kernel import (
    C_INDEX,
    C_ROWS,
    ENERGY_MAX,
    ENERGY_REGEN,
    EXTRA_ROWS,
    F_ROWS,
    HP_PER_ENERGY,
    MOVE_CHECK,
    P_ROWS,
    Q_ROWS,
    SCAN_RANGE,
    SHIELD_DELAY,
    SHIELD_REGEN,
    STAT_ATTRS,
    STAT_KEYS,
)
from envs.smaclike.rules import STEP_MUL, Rules, get_rules
from envs.smaclike.scenarios import OBS_MODES, REWARD_VARIANTS, Scenario, get_scenario
from envs.smaclike.spawn import start_positions
from envs.smaclike.units import UnitType

MAP_SIZE = 32.0  # the default map side (Scenario.map_size)
N_FIXED_ACTIONS = 6  # 0 no-op (dead only), 1 stop, 2..5 move N/S/E/W; 6 + j attack/heal j
MAX_REWARD_MODES = ("episode", "first")
DRAW_BLOCK = 16  # agent steps of random draws taken from an env's generator at once


class SMACCore:
    """B battles of one scenario.

    Use it directly for vectorised learners: ``reset`` -> ``obs()``, ``state()``,
    ``avail_actions()``; ``step(actions)`` -> (reward, terminated, truncated); reset finished
    envs with ``reset(env_ids=...)``; ``info()`` gives battle_won, dead counts and task ids.

    Args:
        scenario: a Scenario or the name of a registered one.
        batch_size: number of independent battles B.
        rules: "sc2" (SC2's clock, reach and damage rules) or "smax" (JaxMARL SMAX's model).
        obs_mode: "smac_v1" or "smac_v2" (None = the scenario's default).
        obs_last_action: other allies' last actions in observations (SMAC; off by default:
            PyMARL's agent appends the last action itself).
        state_last_action: every ally's last action in the state (SMAC default on).
        obs_timestep_number: append episode step / limit to observations.
        state_timestep_number: append it to the state.
        obs_own_pos: own position in observations (None = on in smac_v2, off in smac_v1).
        min_attack_range: smac_v2's attack mask reaches max(unit range, this) (None = 2).
        reward_sparse: +1 win / -1 loss, nothing else (SMAC's reward_sparse).
        reward_only_positive: None = the scenario's flag.
        reward_scale: divide rewards by max_reward / reward_scale_rate.
        reward_scale_rate: the max return after scaling (SMAC 20).
        reward_death_value: reward per death (SMAC 10).
        reward_win: reward on a win (SMAC 200).
        reward_defeat: reward on a loss (SMAC 0).
        reward_negative_scale: weight of the allies' losses when rewards may be negative.
        reward_variant: "smac" or "death_only" (None = the scenario's).
        max_reward: "episode" (this episode's enemy team) or "first" (frozen at each env's
            first episode, as SMACv2).
        shield_regen_reward_bug: SMAC v1's abs() on positive-only rewards (issue 72).
        invalid_action: "raise" (default: an action its mask forbids is an error naming the
            env, agent and allowed actions) or "stop" (it becomes stop, or no-op for a dead
            agent, counted in ``info()["invalid_actions"]``).
        ticks: simulator ticks per agent step (SMAC's step_mul 8).
        dt: seconds per tick (None = the rules' clock).
        backend: "numba" (the compiled kernel, envs/smaclike/kernel.py), "numpy" (this
            module's vectorised reference) or "auto" (numba when it imports).
        threads: cores the compiled step may use (battles in parallel; for large batches).
    """

    def __init__(
        self,
        scenario: str | Scenario,
        batch_size: int = 1,
        *,
        rules: str | Rules = "sc2",
        obs_mode: str | None = None,
        obs_last_action: bool = False,
        state_last_action: bool = True,
        obs_timestep_number: bool = False,
        state_timestep_number: bool = False,
        obs_own_pos: bool | None = None,
        min_attack_range: float | None = None,
        reward_sparse: bool = False,
        reward_only_positive: bool | None = None,
        reward_scale: bool = True,
        reward_scale_rate: float = 20.0,
        reward_death_value: float = 10.0,
        reward_win: float = 200.0,
        reward_defeat: float = 0.0,
        reward_negative_scale: float = 0.5,
        reward_variant: str | None = None,
        max_reward: str = "episode",
        shield_regen_reward_bug: bool = False,
        invalid_action: str = "raise",
        ticks: int = STEP_MUL,
        dt: float | None = None,
        backend: str = "auto",
        threads: int = 1,
    ) -> None:
        sc = get_scenario(scenario)
        self.rules = get_rules(rules)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if invalid_action not in ("raise", "stop"):
            raise ValueError(f"invalid_action must be 'raise' or 'stop', got {invalid_action!r}")
        mode = obs_mode or sc.default_obs_mode
        if mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        variant = reward_variant or sc.reward_variant
        if variant not in REWARD_VARIANTS:
            raise ValueError(f"reward_variant must be one of {REWARD_VARIANTS}, got {reward_variant!r}")
        if max_reward not in MAX_REWARD_MODES:
            raise ValueError(f"max_reward must be one of {MAX_REWARD_MODES}, got {max_reward!r}")

        if backend not in ("auto", "numba", "numpy"):
            raise ValueError(f"backend must be 'auto', 'numba' or 'numpy', got {backend!r}")
        if backend == "numba" and not kernel.available():
            raise ValueError("backend='numba' needs numba: pip install numba (or use backend='numpy')")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.backend = (
            "numba" if backend == "auto" and kernel.available() else ("numpy" if backend == "auto" else backend)
        )
        self.threads = threads
        dt = self.rules.dt if dt is None else dt
        if ticks < 1 or dt <= 0:
            raise ValueError(f"ticks must be >= 1 and dt > 0, got {ticks}, {dt}")
        self.scenario = sc
        self.B, self.N, self.M = batch_size, sc.n_allies, sc.n_enemies_total
        self.U = self.N + self.M
        self.T = len(sc.unit_types)
        self.ticks, self.dt = ticks, dt
        self.map_w, self.map_h = (float(v) for v in sc.map_size)
        self.bounds = sc.bounds
        self.obs_mode = mode
        self.only_positive = sc.reward_only_positive if reward_only_positive is None else reward_only_positive
        self.reward_variant = variant
        self.reward_sparse, self.reward_scale = reward_sparse, reward_scale
        self.neg_scale, self.scale_rate = reward_negative_scale, reward_scale_rate
        self.death_value, self.win_value, self.defeat_value = reward_death_value, reward_win, reward_defeat
        self.max_reward_mode = max_reward
        self.abs_reward_bug = shield_regen_reward_bug
        self.invalid_action = invalid_action
        self.episode_limit = sc.episode_limit
        self.ally_healer = sc.ally_healer
        self.n_targets = max(self.N, self.M) if self.ally_healer else self.M
        self.n_actions = N_FIXED_ACTIONS + self.n_targets
        types = sc.unit_types
        tb = sc.type_bits(mode)
        if 0 < tb < self.T:
            raise ValueError(f"scenario {sc.name!r}: unit_type_bits {tb} < its {self.T} unit types")
        self.layout = Layout(
            mode,
            self.N,
            self.M,
            self.n_actions,
            tb,
            sc.side_has_shields(False),
            sc.side_has_shields(True),
            (mode == "smac_v2") if obs_own_pos is None else bool(obs_own_pos),
            bool(obs_last_action),
            bool(state_last_action),
            bool(obs_timestep_number),
            bool(state_timestep_number),
        )
        self.obs_dim, self.state_dim = self.layout.obs_dim, self.layout.state_dim
        self._min_attack_range = V2_MIN_ATTACK_RANGE if min_attack_range is None else float(min_attack_range)
        self.has_healers = any(u.is_healer for u in types)
        self.has_shields = any(u.shield > 0 for u in types)
        self.has_regen = self.rules.regen and any(u.hp_regen > 0 for u in types)
        self.has_kamikaze = any(u.kamikaze_radius > 0 for u in types)
        self.has_splash = self.rules.splash and any(u.splash_width > 0 for u in types)
        self._type_stats = _stat_table(types, self.rules, mode, self._min_attack_range)
        self._pair_hit = np.array([[a.hit_damage(b) for b in types] for a in types])  # smax: whole hit
        self._pair_raw = np.array([[a.attack_damage(b) for b in types] for a in types])  # per attack
        self._reach_type = np.array([[a.reaches(b) for b in types] for a in types])
        self._tasks = sc.teams if sc.teams else None
        self._palette_names = [n for n, _ in sc.palette]
        self._palette_p = np.array([w for _, w in sc.palette]) if sc.palette else None
        self._exceptions = {self._palette_names.index(n) for n in sc.exception_types}
        self._composition_list = sc.palette_compositions() if sc.palette else []
        self._compositions = {c: i for i, c in enumerate(self._composition_list)}
        self._team_p = np.array(sc.team_weights) if sc.team_weights else None
        self._starts = [m for m, _ in sc.starts]
        self._start_cdf = np.cumsum([p for _, p in sc.starts])
        self._team_cdf = np.cumsum(sc.team_weights or [1.0] * max(1, len(sc.teams)))
        self._palette_cdf = np.cumsum([w for _, w in sc.palette]) if sc.palette else np.ones(1)
        self._task_names = sc.task_names()
        self._type_index = {u.name: i for i, u in enumerate(types)}
        self._onehot_table = np.zeros((self.T, tb), np.float32)
        if tb:
            self._onehot_table[:, : self.T] = np.eye(self.T, dtype=np.float32)
        # action -> direction (x + iy) and -> target unit (enemy j is unit N + j)
        self._dir_table = np.zeros(self.n_actions, np.complex128)
        self._dir_table[2:6] = [1j, -1j, 1, -1]  # N, S, E, W
        self._attack_table = np.full(self.n_actions, -1, np.int64)
        self._attack_table[N_FIXED_ACTIONS : N_FIXED_ACTIONS + self.M] = self.N + np.arange(self.M)
        self._heal_table = np.full(self.n_actions, -1, np.int64)
        if self.ally_healer:
            self._heal_table[N_FIXED_ACTIONS : N_FIXED_ACTIONS + self.N] = np.arange(self.N)
        self._rngs = [np.random.default_rng() for _ in range(self.B)]
        self._n_draws = self.ticks * self.U + self.M * self.N
        self._tables: dict[bytes, tuple[np.ndarray, ...]] = {}
        self._spawns: dict[bytes, np.ndarray] = {}
        self._draw_buf = np.zeros((DRAW_BLOCK, self.B, self._n_draws))
        self._draw_pos = np.full(self.B, DRAW_BLOCK, np.int64)
        self._alloc()
        self._settings()
        self.reset(seeds=None)

    # -- state -----------------------------------------------------------------------------
    def _alloc(self) -> None:
        B, U, N = self.B, self.U, self.N
        z = np.zeros
        self.type = z((B, U), np.int64)
        self.z = z((B, U), np.complex128)  # positions x + iy
        # Packed storage (the compiled kernel takes a few arrays, not dozens): every (B, U)
        # float of a unit's dynamic state is a row of _F, every per-unit constant a row of _C,
        # every pair constant a layer of _P / _Q; the named attributes are views of them and
        # are only ever modified in place. Dynamic rows: hp, shield, energy, wait, since_hit.
        # "wait": cooldown in ticks, counted from the start of the current step: a unit may fire
        # at tick k of the step once wait <= k; firing at tick k sets it to k + 1 + cooldown/dt;
        # each step subtracts the step's ticks. This is "cooldown -= dt per tick, fire at <= 0".
        # "since_hit": ticks since the last damage taken.
        self._F = z((len(F_ROWS), B, U))
        self._C = z((len(C_ROWS), B, U))
        self._P = z((len(P_ROWS), B, U, U))
        self._Q = z((len(Q_ROWS), B, U, U), bool)
        self.alive = np.ones((B, U), bool)
        self.steps = z(B, np.int64)
        self.invalid_actions = z(B, np.int64)  # actions remapped to stop/no-op this episode
        self.done = z(B, bool)
        self.won = z(B, bool)
        self.task_id = z(B, np.int64)
        self.start_id = z(B, np.int64)
        self.max_reward = np.ones(B)
        self._max_reward_set = z(B, bool)
        self._default_goal = z((B, self.M), np.complex128)  # enemy start rotated 180 deg about the centre
        self.enemy_target = np.full((B, self.M), -1, np.int64)
        self.last_action = np.full((B, N), -1, np.int64)
        self._onehot_actions = np.vstack([np.eye(self.n_actions), np.zeros(self.n_actions)]).astype(np.float32)
        self.last_target = np.full((B, U), -1, np.int64)
        self.type_onehot = z((B, U, self.layout.type_bits), np.float32)
        self._pair = np.ones((B, U, U), bool)  # both alive
        self._reach_live = z((B, U, U), bool)  # reach & pair
        self._wait_base = z((B, self.ticks, U))  # tick k + base cooldown in ticks
        self._speed_live = z((B, U))  # speed * dt of the living
        self._arange_u = np.arange(U)
        self.others_flat = (np.arange(N)[:, None] * N + _others(N)).ravel() if N > 1 else np.zeros(0, np.int64)
        self._rlive = z((B, U, U))  # ... of pairs that are both alive
        self._eye = np.eye(U, dtype=bool)
        self._is_enemy = np.arange(U) >= N
        self._other = self._is_enemy[:, None] != self._is_enemy[None, :]
        self._enemy_att_base = (np.arange(B)[:, None] * U * U + (N + np.arange(self.M))[None, :] * U).astype(np.int64)
        x0, y0, x1, y1 = self.bounds
        # move feasibility: [[y, -y], [x, -x]] < [[y1 - 1, -(y0 + 1)], [x1 - 1, -(x0 + 1)]] = N, S, E, W
        self._move_sign = np.array([1.0, -1.0])
        self._move_lim = np.array([[y1 - MOVE_CHECK, -(y0 + MOVE_CHECK)], [x1 - MOVE_CHECK, -(x0 + MOVE_CHECK)]])
        self._pairbase = (np.arange(B * U) * U).reshape(B, U)
        self._bidx = np.arange(B)[:, None] * U
        self._avail_base = np.arange(B * N) * self.n_actions
        self.dz = z((B, U, U), np.complex128)  # z_i - z_j, refreshed after every step
        self._over = z((B, U, U))
        self.dist = z((B, U, U))
        self.avail = z((B, N, self.n_actions), bool)
        self._att = z((B, U, U), bool)
        self._vis = z((B, U, U), bool)
        self._views()

    _VIEWS = (
        "pos",
        "stats",
        "order_range",
        "obs_sight",
        "obs_inv_sight",
        *F_ROWS,
        "_speed_dt",
        "_inv_hp",
        "_inv_shield",
        "_cd_ticks",
        "_hit",
        "_raw",
        "_reachd",
        "_rsum",
        "_reach",
        "_healable",
    )

    def _views(self) -> None:
        """Named views of the packed arrays (pickling copies views, so they are rebuilt on
        unpickling)."""
        self.pos = self.z.view(np.float64).reshape(self.B, self.U, 2)  # (x, y) of the same memory
        self.hp, self.shield, self.energy, self.wait, self.since_hit = self._F
        self.stats = {k: self._C[i] for i, k in enumerate(STAT_KEYS)}
        self._speed_dt, self._inv_hp, self._inv_shield, self._cd_ticks = (self._C[C_INDEX[k]] for k in EXTRA_ROWS[:4])
        N = self.N
        self.order_range = self._C[C_INDEX["mask_range"], :, :N]  # the attack mask's centre distance (sc2)
        self.obs_sight = self._C[C_INDEX["obs_sight"], :, :N]
        self.obs_inv_sight = self._C[C_INDEX["obs_inv_sight"], :, :N]
        # smax hit damage, sc2 per-attack damage, firing reach (centre distance), half radius sums
        self._hit, self._raw, self._reachd, self._rsum = self._P
        # i may attack j (other team, weapon reaches); i heals j (healer, biological teammate)
        self._reach, self._healable = self._Q

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in self._VIEWS}
        state["_kargs"], state["_step_fn"] = (), None  # views and a compiled function: rebuilt on the next step
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._views()

    def _settings(self) -> None:
        """Scalar settings for the compiled kernel (kernel.FP_NAMES / IP_NAMES order)."""

        r, lay = self.rules, self.layout
        x0, y0, x1, y1 = self.bounds
        fp = {
            "dt": self.dt,
            "attack_move": r.attack_move,
            "armor_on_shields": r.armor_on_shields,
            "splash": self.has_splash,
            "regen": self.has_regen,
            "healers_cannot_win": r.healers_cannot_win,
            "has_healers": self.has_healers,
            "has_kamikaze": self.has_kamikaze,
            "has_shields": self.has_shields,
            "only_positive": self.only_positive,
            "abs_bug": self.abs_reward_bug,
            "death_only": self.reward_variant == "death_only",
            "sparse": self.reward_sparse,
            "scale": self.reward_scale,
            "scale_rate": self.scale_rate,
            "death_value": self.death_value,
            "win": self.win_value,
            "defeat": self.defeat_value,
            "neg_scale": self.neg_scale,
            "x0": x0,
            "y0": y0,
            "x1": x1,
            "y1": y1,
            "map_w": self.map_w,
            "map_h": self.map_h,
            "invalid_stop": self.invalid_action == "stop",
            "ally_healer": self.ally_healer,
        }
        ip = {
            "ticks": self.ticks,
            "n_allies": self.N,
            "episode_limit": self.episode_limit,
            "type_bits": lay.type_bits,
            "shield_ally": lay.shield_ally,
            "shield_enemy": lay.shield_enemy,
            "own_pos": lay.own_pos,
            "obs_last_action": lay.obs_last_action,
            "state_last_action": lay.state_last_action,
            "obs_timestep": lay.obs_timestep,
            "state_timestep": lay.state_timestep,
        }
        self._fp = np.array([float(fp[k]) for k in kernel.FP_NAMES])
        self._ip = np.array([int(ip[k]) for k in kernel.IP_NAMES], np.int64)
        self._obs_buf = np.zeros((self.B, self.N, self.obs_dim), np.float32)
        self._state_buf = np.zeros((self.B, self.state_dim), np.float32)
        self._out_r, self._out_term, self._out_trunc = np.zeros(self.B), np.zeros(self.B, bool), np.zeros(self.B, bool)
        self._kargs: tuple = ()  # the kernel's array arguments (never rebound), built at the first step
        self._step_fn: Any = None
        self._remap = self.invalid_action == "stop"

    def _kernel_refresh(self, ids: Sequence[int]) -> None:
        """Masks, observations and state of battles ``ids`` through the compiled kernel
        (after reset/place)."""
        args: tuple[np.ndarray, ...] = (np.asarray(ids, np.int64), self.z, self._F, self.alive, self.steps)
        args += (self.last_action, self._C, self._P, self._Q, self.type_onehot, self._fp, self._ip, self.dz)
        kernel.timed_first_call(
            "refresh", kernel.refresh_envs, *args, self.dist, self.avail, self._obs_buf, self._state_buf
        )

    def reset(
        self,
        seeds: Sequence[int | None] | int | None = None,
        env_ids: Sequence[int] | None = None,
        task: str | None = None,
        start: str | None = None,
    ) -> None:
        """Starts new episodes in ``env_ids`` (all by default).

        Args:
            seeds: one seed per reset env (or a single int for all: env k gets seed + k);
                None keeps each env's generator running (gymnasium's reset() semantics).
            env_ids: which envs to reset.
            task: play this task (a name from ``task_names``) instead of drawing one, e.g.
                to evaluate a multi-task policy per task.
            start: use this start mode (one of the scenario's) instead of drawing one.
        """
        forced_task = self._task_index(task) if task is not None else None
        forced_start = self._start_index(start) if start is not None else None
        ids = list(range(self.B)) if env_ids is None else [int(i) for i in env_ids]
        if isinstance(seeds, int | np.integer):
            seeds = [int(seeds) + k for k in range(len(ids))]
        if seeds is not None:
            if len(seeds) != len(ids):
                raise ValueError(f"reset: {len(seeds)} seeds for {len(ids)} envs")
            for b, s in zip(ids, seeds):
                if s is not None:
                    self._rngs[b] = np.random.default_rng(s)
                    self._draw_pos[b] = DRAW_BLOCK  # draw afresh from the new seed
        for b in ids:
            self._reset_one(b, forced_task, forced_start)
        if self.backend == "numba":
            self._kernel_refresh(ids)
        else:
            self._refresh()

    def _task_index(self, task: str) -> int:
        if task not in self._task_names:
            raise ValueError(f"scenario {self.scenario.name!r} has no task {task!r}; tasks: {list(self._task_names)}")
        return self._task_names.index(task)

    def _start_index(self, start: str) -> int:
        if start not in self._starts:
            raise ValueError(f"scenario {self.scenario.name!r} has no start {start!r}; starts: {self._starts}")
        return self._starts.index(start)

    def _draw_palette(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n i.i.d. palette draws, redrawn while every member is an exception type (SMACv2)."""
        while True:
            draw = _pick(rng, self._palette_cdf, n)
            if not self._exceptions or not set(draw.tolist()) <= self._exceptions:
                return draw

    def _draw_teams(self, b: int, task: int | None) -> tuple[tuple[str, ...], tuple[str, ...], int]:
        rng, sc = self._rngs[b], self.scenario
        if self._tasks is not None:
            if task is not None:
                k = task
            else:
                k = int(_pick(rng, self._team_cdf)) if len(self._tasks) > 1 else 0
            allies, enemies = self._tasks[k].allies, self._tasks[k].enemies
            if sc.shuffle_units:  # TRAMA: one shuffled list for both teams
                order = rng.permutation(len(allies))
                allies = tuple(allies[i] for i in order)
                if enemies == self._tasks[k].allies:
                    enemies = allies
            return allies, enemies, k
        if task is not None:
            allies = self._composition_list[task]
            draw = np.array([self._palette_names.index(n) for n in allies])
        else:
            draw = self._draw_palette(rng, self.N)
        # enemies copy the allies' draw; extra enemies are drawn the same way (SMACv2)
        extra = self._draw_palette(rng, self.M - self.N) if self.M > self.N else np.zeros(0, np.int64)
        enemies = tuple(self._palette_names[i] for i in np.concatenate([draw, extra])[: self.M])
        allies = tuple(self._palette_names[i] for i in np.sort(draw))
        return allies, enemies, self._compositions[allies]

    def _team_tables(self, types: np.ndarray) -> tuple[np.ndarray, ...]:
        """Everything about a line-up that does not change during an episode: the per-unit
        rows of _C, the pair layers of _P / _Q, the type one-hot, the cooldown base per
        tick and the enemies' hp + shield pool. Cached per line-up (a reset then copies a
        few arrays instead of recomputing them)."""
        key = types.tobytes()
        hit = self._tables.get(key)
        if hit is not None:
            return hit
        U = self.U
        C = np.zeros((len(C_ROWS), U))
        for k, name in enumerate(STAT_KEYS):
            C[k] = self._type_stats[name][types]
        row = {name: C[C_INDEX[name]] for name in C_ROWS}
        row["speed_dt"][:] = row["speed"] * self.dt
        row["cd_ticks"][:] = row["cooldown"] / self.dt
        row["inv_hp"][:] = 1.0 / row["hp"]
        row["inv_shield"][:] = np.divide(1.0, row["shield"], out=np.zeros(U), where=row["shield"] > 0)
        row["obs_inv_sight"][:] = 1.0 / row["obs_sight"]
        P = np.zeros((len(P_ROWS), U, U))
        Q = np.zeros((len(Q_ROWS), U, U), bool)
        tt = (types[:, None], types[None, :])
        P[0], P[1] = self._pair_hit[tt], self._pair_raw[tt]
        r = row["radius"]
        if self.rules.edge_ranges:  # edge to edge: range + both radii (smaclite unit.py)
            P[2] = row["range"][:, None] + r[:, None] + r[None, :]
        else:  # centre distance strictly below the SMAX range
            P[2] = np.nextafter(row["range"], 0.0)[:, None]
        ground = row["air"] == 0
        P[3] = 0.5 * (r[:, None] + r[None, :]) * (ground[:, None] & ground[None, :] & ~self._eye)
        Q[0] = self._reach_type[tt] & self._other
        healer, bio = row["healer"] > 0, row["bio"] > 0
        Q[1] = healer[:, None] & bio[None, :] & ~self._other & ~self._eye
        wait_base = np.arange(self.ticks)[:, None] + row["cd_ticks"]
        pool = float((row["hp"][self.N :] + row["shield"][self.N :]).sum())
        tables = (C, P, Q, self._onehot_table[types], wait_base, np.array([pool]))
        if len(self._tables) >= 4096:  # TRAMA's shuffled line-ups: bound the cache
            self._tables.clear()
        self._tables[key] = tables
        return tables

    def _reset_one(self, b: int, task: int | None = None, start: int | None = None) -> None:
        rng = self._rngs[b]
        N = self.N
        allies, enemies, k = self._draw_teams(b, task)
        if start is not None:
            s = start
        else:
            s = int(_pick(rng, self._start_cdf)) if len(self._starts) > 1 else 0
        self.task_id[b], self.start_id[b] = k, s
        types = np.array([self._type_index[n] for n in allies + enemies])
        self.type[b] = types
        C, P, Q, onehot, wait_base, pool = self._team_tables(types)
        self._C[:, b], self._P[:, b], self._Q[:, b] = C, P, Q
        self.type_onehot[b] = onehot
        self._wait_base[b] = wait_base
        st = self.stats
        mode = self._starts[s]
        spawn = self._spawns.get(types.tobytes()) if mode == "map" else None
        if spawn is None:
            self.pos[b] = start_positions(self.scenario, mode, st["radius"][b], rng)
        else:  # "map" starts are deterministic: the spread-out layout of an earlier reset
            self.z[b] = spawn
        self.hp[b], self.shield[b] = st["hp"][b], st["shield"][b]
        self.energy[b] = st["energy"][b]
        self.wait[b] = 0.0
        self.since_hit[b] = 0.0  # shields start full: counting from 0 changes nothing
        self.alive[b] = True
        self.steps[b] = 0
        self.invalid_actions[b] = 0
        self.done[b] = self.won[b] = False
        self.enemy_target[b] = -1
        self.last_action[b] = -1
        self.last_target[b] = -1
        self._speed_live[b] = self._speed_dt[b]
        self._pair[b] = True
        self._reach_live[b] = self._reach[b]
        self._rlive[b] = self._rsum[b]
        # SMAC's max_reward: deaths + win + the enemies' hp and shields (of this episode's
        # team, or frozen at the first episode as SMACv2 does)
        if self.max_reward_mode == "episode" or not self._max_reward_set[b]:
            self.max_reward[b] = self.M * self.death_value + self.win_value + pool[0]
            self._max_reward_set[b] = True
        if spawn is None:  # one push spreads units that start overlapping, then clamp
            if self.backend == "numba":
                kernel.settle(b, self.z, self._P, self._fp)
            else:
                rows = slice(b, b + 1)
                self._push(self.z[rows], self._rlive[rows], self.dz[rows], self._over[rows])
                self._clamp(self.pos[b : b + 1])
            if mode == "map":
                self._spawns[types.tobytes()] = self.z[b].copy()
        self._default_goal[b] = complex(self.map_w, self.map_h) - self.z[b, N:]

    # -- one agent step --------------------------------------------------------------------
    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advances every env by one agent step.

        Args:
            actions: (B, N) integer actions of the allies (0 for dead agents).

        Returns:
            (reward, terminated, truncated), each of shape (B,). Finished envs must be reset
            (``reset(env_ids=...)``) before the next step.
        """
        a = np.asarray(actions)
        if a.shape != (self.B, self.N) or a.dtype.kind not in "iu":
            raise ValueError(f"actions must be integers of shape (B={self.B}, N={self.N}), got {a.dtype} {a.shape}")
        if self.backend == "numba":
            return self._kernel_step(a)
        if self.done.any():
            self._raise_done()
        a = self._check_actions(a.astype(np.int64, copy=False).reshape(self.B, self.N))
        N, U, B, st = self.N, self.U, self.B, self.stats
        # decode: complex velocity and target unit (-1 none) per unit
        vel = np.empty((B, U), np.complex128)
        vel[:, :N] = self._dir_table.take(a)
        tgt = np.empty((B, U), np.int64)
        tgt[:, :N] = self._attack_table.take(a)
        if self.ally_healer:
            np.copyto(tgt[:, :N], self._heal_table.take(a), where=st["healer"][:, :N] > 0)
        n_u = self.ticks * U
        draws = self._draws()
        if self.rules.attack_move:
            self._enemy_decide_sc2(vel, tgt)
        else:
            self._enemy_decide(vel, tgt, draws[:, n_u:].reshape(B, self.M, N))
        self.last_target[...] = tgt  # what each unit is ordered to shoot or heal (for rendering)
        vel *= self._speed_live  # speed * dt, 0 for the dead
        self._vel = vel
        has_t = tgt >= 0
        tsafe = np.where(has_t, tgt, self._arange_u)
        self._tsafe = tsafe
        fidx = (tsafe + self._bidx).ravel()
        self._fidx = fidx
        # armed: has a target, and both ends alive (kept current on deaths)
        self._armed = has_t & self.alive & self.alive.ravel().take(fidx).reshape(B, U)
        reach_t = self._reachd.ravel().take(self._pairbase + tsafe)  # (B, U) reach to own target
        u = draws[:, :n_u].reshape(B, self.ticks, U)
        # after a shot at tick k: ready from tick k + 1 + cooldown / dt, cooldown = base + (3u - 1) dt,
        # i.e. base + U(-dt, 2dt); within a step "wait" counts ticks from the step's start
        new_wait = u * 3.0
        new_wait += self._wait_base  # k + base cooldown / dt, per tick k
        alive0 = self.alive.copy()
        pool0 = self._pool()
        z, rlive, d, over = self.z, self._rlive, self.dz, self._over
        chase_on = self.rules.attack_move
        for k in range(self.ticks):
            mv = self._vel  # zeroed in place for units that die
            if chase_on and self._armed.any():
                # SC2's attack order: beyond reach, walk straight toward the target
                delta = z.ravel().take(fidx).reshape(B, U) - z
                gap = cabs(delta)
                walk = gap - reach_t
                chase = self._armed & (walk > 0)
                if chase.any():
                    # at full speed, as SMAClite's MoveCommand: a unit blocked by a teammate
                    # then pushes its way in instead of creeping toward the reach boundary
                    stepw = self._speed_live / np.maximum(gap, 1e-12)
                    mv = np.where(chase, delta * stepw, mv)
            z += mv
            self._clamp(self.pos)
            self._push(z, rlive, d, over)
            ready = self._armed & (self.wait <= k)
            if ready.any():
                tz = z.ravel().take(fidx).reshape(B, U)
                fire = ready & (cabs(tz - z) <= reach_t)
                if fire.any():
                    self._fire(k, fire, new_wait[:, k])
        self.wait -= self.ticks
        self._clamp(self.pos)
        self.steps += 1
        self.since_hit += self.ticks  # units hit at tick k were set to -1 - k
        if self.has_shields and self.since_hit.max() > SHIELD_DELAY / self.dt:
            # ticks of this step past the 10 s mark, at 2 shield per second
            eligible = np.minimum(np.maximum(self.since_hit - SHIELD_DELAY / self.dt, 0.0), self.ticks)
            eligible *= SHIELD_REGEN * self.dt
            eligible *= self.alive
            eligible += self.shield
            np.minimum(eligible, st["shield"], out=self.shield)
        if self.has_regen:
            regen = self.hp + st["hp_regen"] * (self.ticks * self.dt) * self.alive
            np.minimum(regen, st["hp"], out=self.hp)
        if self.has_healers:
            energy = ENERGY_REGEN * self.ticks * self.dt * (st["healer"] > 0)
            np.minimum(self.energy + energy, ENERGY_MAX, out=self.energy)
        self.last_action[:] = a
        reward, terminated, won = self._reward(alive0, pool0)
        truncated = (self.steps >= self.episode_limit) > terminated
        self.won |= won
        self.done[...] = terminated | truncated
        self._refresh()
        return reward, terminated, truncated

    def _draws(self) -> np.ndarray:
        """(B, n) uniforms for this step: cooldown jitters (ticks x U) and the SMAX AI's
        chase picks (M x N). Each env draws DRAW_BLOCK steps' worth at a time from its own
        generator (one generator call per 16 steps instead of one per step), so env b's
        stream depends only on its own seed and history, never on the batch around it."""
        K, B = DRAW_BLOCK, self.B
        pos = self._draw_pos
        if B == 1:
            if pos[0] >= K:
                self._draw_buf[:, 0] = self._rngs[0].random((K, self._n_draws))
                pos[0] = 0
            out = self._draw_buf[pos[0]]
            pos[0] += 1
            return out
        for b in np.flatnonzero(pos >= K).tolist():
            self._draw_buf[:, b] = self._rngs[b].random((K, self._n_draws))
            pos[b] = 0
        if (pos == pos[0]).all():
            out = self._draw_buf[pos[0]]
        else:
            out = self._draw_buf[pos, np.arange(B)]
        pos += 1
        return out

    def _kernel_step(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """SMACCore.step through the compiled kernel (same rules, same random draws)."""
        if self._remap or a.dtype != np.int64 or not a.flags.c_contiguous:
            a = np.array(a, np.int64, order="C")  # remapped in place with invalid_action="stop"
        fn = self._step_fn
        if fn is None:  # first step: build the argument tuple, time the first call
            self._kargs = (self.z, self._F, self.alive, self.steps, self.won, self.done, self.last_action)
            self._kargs += (self.enemy_target, self.last_target, self.max_reward, self._default_goal, self._C)
            self._kargs += (self._P, self._Q, self.type_onehot, self._dir_table, self._attack_table)
            self._kargs += (self._heal_table, self._fp, self._ip, self._out_r, self._out_term, self._out_trunc)
            self._kargs += (self.dz, self.dist, self.avail, self._obs_buf, self._state_buf, self.invalid_actions)
            if self.threads > 1:
                kernel.set_threads(self.threads)
                fn, name = kernel.step_parallel, "step_parallel"
            else:
                fn, name = kernel.step_serial, "step"
            bad = kernel.timed_first_call(name, fn, a, self._draws(), *self._kargs)
            self._step_fn = fn
        else:
            if self.threads > 1:
                kernel.set_threads(self.threads)
            bad = fn(a, self._draws(), *self._kargs)
        if bad == -2:
            self._raise_done()
        if bad >= 0:
            self._raise_invalid(a, int(bad) // self.N, int(bad) % self.N)
        return self._out_r.copy(), self._out_term.copy(), self._out_trunc.copy()

    def _pool(self) -> np.ndarray:
        """(B, U) hp + shield of the living (SMAC's health used in rewards)."""
        return (np.maximum(self.hp, 0.0) + self.shield) * self.alive

    def _standing(self) -> np.ndarray:
        """(B, 2): whether allies / enemies still stand (a side of healers only does not)."""
        fighting = self.alive
        if self.rules.healers_cannot_win and self.has_healers:
            fighting = fighting & (self.stats["healer"] == 0)
        return np.stack([fighting[:, : self.N].any(1), fighting[:, self.N :].any(1)], 1)

    def _reward(self, alive0: np.ndarray, pool0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """SMAC's reward_battle + win/defeat terms + scaling; (reward, terminated, won)."""
        N = self.N
        lost_pool = (pool0 - self._pool()) * alive0  # hp + shield each unit lost (healing: < 0)
        died = alive0 & ~self.alive
        deaths_a = died[:, :N].sum(1) * self.death_value
        deaths_e = died[:, N:].sum(1) * self.death_value
        if self.reward_variant == "death_only":  # TRAMA's released env: no damage terms
            dmg_a = dmg_e = np.zeros(self.B)
        else:
            dmg_a, dmg_e = lost_pool[:, :N].sum(1), lost_pool[:, N:].sum(1)
        gained = dmg_e + deaths_e
        reward: np.ndarray
        if self.only_positive:
            reward = np.abs(gained) if self.abs_reward_bug else np.maximum(gained, 0.0)
        else:
            reward = gained - self.neg_scale * (dmg_a + deaths_a)
        standing = self._standing()
        won = standing[:, 0] & ~standing[:, 1]
        lost = standing[:, 1] & ~standing[:, 0]
        terminated = ~standing.all(1)
        if self.reward_sparse:
            reward = won.astype(float) - lost
        else:
            reward = reward + self.win_value * won + self.defeat_value * lost
        if self.reward_scale:
            reward = reward * (self.scale_rate / self.max_reward)
        return np.asarray(reward, float), np.asarray(terminated), np.asarray(won)

    def _check_actions(self, a: np.ndarray) -> np.ndarray:
        ok = self.avail.ravel().take(self._avail_base + a.ravel(), mode="clip").reshape(a.shape)
        if ok.all() and a.min() >= 0 and a.max() < self.n_actions:
            return a
        ok &= (a >= 0) & (a < self.n_actions)
        if self.invalid_action == "raise":
            b, i = (int(x[0]) for x in np.nonzero(~ok))
            self._raise_invalid(a, b, i)
        self.invalid_actions += (~ok).sum(axis=1)  # remapped this episode: masking bugs stay visible
        return np.where(ok, a, np.where(self.alive[:, : self.N], 1, 0))

    def _raise_done(self) -> None:
        bad = np.flatnonzero(self.done).tolist()
        raise RuntimeError(f"envs {bad} are finished; reset(env_ids=...) them before stepping")

    def _raise_invalid(self, a: np.ndarray, b: int, i: int) -> None:
        allowed = np.flatnonzero(self.avail[b, i]).tolist()
        raise ValueError(
            f"env {b}, agent {i}: action {int(a[b, i])} is not available (allowed: {allowed}; 0 no-op is "
            "for dead agents, 1 stop, 2-5 move N/S/E/W, 6+j attack enemy j or heal ally j)"
        )

    # -- combat ----------------------------------------------------------------------------
    def _fire(self, k: int, fire: np.ndarray, new_wait: np.ndarray) -> None:
        """Resolves the attacks (and heals) of tick ``k`` by the units in ``fire``."""
        st = self.stats
        if self.has_healers:
            heal = fire & (st["healer"] > 0)
            if heal.any():
                self._heal(heal, self._fidx)
                fire = fire & ~heal
                if not fire.any():
                    return
        U = self.U
        bb, uu = np.nonzero(fire)
        tt = self._tsafe[bb, uu]
        att, vic = [bb * U + uu], [bb * U + tt]
        special = np.zeros(len(bb), bool)
        if self.has_kamikaze:
            special |= st["kamikaze"][bb, uu] > 0
        if self.has_splash:
            special |= st["splash_width"][bb, uu] > 0
        if special.any():
            att, vic = [att[0][~special]], [vic[0][~special]]
            for b, u, t in zip(bb[special].tolist(), uu[special].tolist(), tt[special].tolist()):
                victims = self._area_victims(b, u, t)
                att.append(np.full(len(victims), b * U + u))
                vic.append(b * U + victims)
        att_f, vic_f = np.concatenate(att), np.concatenate(vic)
        self._apply_hits(k, att_f, vic_f)
        fired = fire & (st["kamikaze"] == 0) if self.has_kamikaze else fire
        np.copyto(self.wait, new_wait, where=fired)
        if self.has_kamikaze and (boom := fire & (st["kamikaze"] > 0)).any():
            self.hp[boom] = 0.0  # a baneling dies in its own explosion
        before = int(np.count_nonzero(self.alive))
        np.greater(self.hp, 0.0, out=self.alive)
        if int(np.count_nonzero(self.alive)) != before:
            self._after_deaths()

    def _area_victims(self, b: int, u: int, t: int) -> np.ndarray:
        """Units hit by an area attack of unit ``u`` on ``t`` in env ``b`` (ascending ids)."""
        st, z = self.stats, self.z[b]
        cand = self._reach_live[b, u] & self.alive[b]
        r = st["radius"][b]
        if st["kamikaze"][b, u] > 0:  # smaclite KAMIKAZE: bodies within the radius of the baneling
            hit = cand & (cabs(z - z[u]) <= st["kamikaze"][b, u] + r)
        else:  # smaclite LASER_BEAM: bodies touching a width x depth box centred on the target
            axis = z[t] - z[u]
            na = float(cabs(axis))
            axis = complex(axis.real / na, axis.imag / na) if na > 0 else 1.0 + 0j
            rel = (z - z[t]) * np.conj(axis)  # along the line of fire = real, across = imag
            out_along = np.maximum(np.abs(rel.real) - st["splash_depth"][b, u] / 2, 0.0)
            out_across = np.maximum(np.abs(rel.imag) - st["splash_width"][b, u] / 2, 0.0)
            hit = cand & (out_along**2 + out_across**2 <= r**2)
            hit[t] = cand[t]
        return np.flatnonzero(hit)

    def _apply_hits(self, k: int, att: np.ndarray, vic: np.ndarray) -> None:
        """Applies hits (flat attacker, flat victim) victim by victim in attacker order."""
        if len(vic) > 1:
            order = np.lexsort((att, vic))
            att, vic = att[order], vic[order]
            first = np.r_[True, vic[1:] != vic[:-1]]
            idx = np.arange(len(vic))
            rank = idx - np.maximum.accumulate(np.where(first, idx, 0))
        else:
            rank = np.zeros(len(vic), np.int64)
        U = self.U
        pair = (att // U) * U * U + (att % U) * U + vic % U  # flat (b, i, j)
        HP, SH = self.hp.reshape(-1), self.shield.reshape(-1)
        armor = self.stats["armor"].reshape(-1)
        n_att = self.stats["n_attacks"].reshape(-1)
        struck = np.zeros(0, np.int64)
        for r in range(int(rank.max()) + 1 if len(rank) else 0):
            sel = rank == r
            v, p = vic[sel], pair[sel]
            h, s = HP[v], SH[v]
            if self.rules.armor_on_shields:  # SMAX: armor on the whole hit, shields absorb first
                dmg = self._hit.reshape(-1)[p]
                ab = np.minimum(s, dmg)
                s = s - ab
                h = h - (dmg - ab)
            else:  # SC2: per attack, shields take it whole, armor reduces the hp part only
                raw = self._raw.reshape(-1)[p]
                n = n_att[att[sel]]
                arm = armor[v]
                for q in range(int(n.max())):
                    act = (q < n) & (raw > 0)
                    ab = np.minimum(s, raw) * act
                    rem = (raw - ab) * act
                    s = s - ab
                    h = h - np.where(rem > 0, np.maximum(0.5, rem - arm), 0.0)
            HP[v], SH[v] = h, s
            struck = np.concatenate([struck, v])
        self.since_hit.reshape(-1)[struck] = -1.0 - k

    def _after_deaths(self) -> None:
        """Someone may have died this tick: stop them, disarm shots at or by them, and take
        them out of collisions."""
        B, U = self.B, self.U
        self._vel *= self.alive
        self._armed &= self.alive
        self._armed &= self.alive.ravel().take(self._fidx).reshape(B, U)
        self._on_deaths()

    def _on_deaths(self) -> None:
        """Refreshes the matrices that depend on who is alive."""
        np.logical_and(self.alive[:, :, None], self.alive[:, None, :], out=self._pair)
        np.multiply(self._rsum, self._pair, out=self._rlive)
        np.logical_and(self._reach, self._pair, out=self._reach_live)
        np.multiply(self._speed_dt, self.alive, out=self._speed_live)

    def _heal(self, heal: np.ndarray, fidx: np.ndarray) -> None:
        st = self.stats
        amount = np.minimum(st["heal_rate"] * self.dt, self.energy * HP_PER_ENERGY) * heal
        gained = np.bincount(fidx, weights=amount.ravel(), minlength=fidx.size).reshape(self.hp.shape)
        applied = np.minimum(gained, st["hp"] - self.hp) * st["bio"]
        # energy pays for what the targets actually received, split over their healers
        frac = np.divide(applied, gained, out=np.zeros_like(gained), where=gained > 0)
        self.energy -= amount * frac.ravel().take(fidx).reshape(heal.shape) / HP_PER_ENERGY
        self.hp += applied

    @staticmethod
    def _pairwise(z: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out[b, i, j] = z[b, i] - z[b, j]; one env takes numpy's cheaper outer subtraction
        (the same numbers: it is the same elementwise operation)."""
        if z.shape[0] == 1:
            np.subtract.outer(z[0], z[0], out=out[0])
        else:
            np.subtract(z[:, :, None], z[:, None, :], out=out)
        return out

    @classmethod
    def _push(cls, z: np.ndarray, rhalf: np.ndarray, d: np.ndarray, over: np.ndarray) -> None:
        """Pushes overlapping living ground units apart in place (SMAX's rule, firmness 1):
        each unit moves by half the sum of its relative overlaps along the joining lines.
        ``d`` and ``over`` are (B, U, U) buffers (complex, float); runs once per tick."""
        cls._pairwise(z, d)
        cabs(d, out=over)
        over += 1e-6  # as SMAX: coincident units get a huge overlap along a zero vector
        np.divide(rhalf, over, out=over)  # rhalf = half the radius sum (0 for self/air/dead)
        over -= 0.5
        np.fmax(over, 0.0, out=over)  # half the relative overlap
        z += np.vecdot(over, d)

    def _clamp(self, pos: np.ndarray) -> None:
        x0, y0, x1, y1 = self.bounds
        np.clip(pos[..., 0], x0, x1, out=pos[..., 0])
        np.clip(pos[..., 1], y0, y1, out=pos[..., 1])

    # -- heuristic enemy AI ----------------------------------------------------------------
    def _enemy_decide(self, vel: np.ndarray, tgt: np.ndarray, pick: np.ndarray) -> None:
        """SMAX's heuristic (spec; jaxmarl/environments/smax/heuristic_enemy.py): keep the
        last target while shootable, else shoot the closest shootable ally; with nothing to
        shoot, move toward a uniformly random visible ally (``pick``: uniforms (B, M, N)),
        else toward the unit's own start position rotated 180 degrees about the map centre;
        moves take the cardinal direction best aligned with the goal. "Shootable" is the
        rules' reach (edge to edge under sc2)."""
        N = self.N
        D = self.dist[:, N:, :N]  # (B, M, N)
        last = self.enemy_target
        keep = self._att.ravel().take(self._enemy_att_base + last)  # last = -1 reads junk, masked next
        keep &= last >= 0
        shootable = self._att[:, N:, :N]
        closest = np.where(shootable.any(2), np.where(shootable, D, np.inf).argmin(2), -1)
        dv = np.where(self._vis[:, N:, :N], D, np.inf)
        d_seen = dv.min(2)
        target = np.where(keep, last, closest)
        chase = np.where(self._vis[:, N:, :N], pick, -1.0).argmax(2)
        goal = np.where(d_seen < np.inf, self.z.ravel().take(chase + self._bidx), self._default_goal)
        if self.has_healers:
            target, goal = self._enemy_healers(target, goal)
        delta = goal - self.z[:, N:]
        move = np.where(np.abs(delta.real) >= np.abs(delta.imag), np.sign(delta.real), 1j * np.sign(delta.imag))
        vel[:, N:] = move * (target < 0)
        if self.has_healers:
            self.enemy_target[...] = np.where(self.stats["healer"][:, N:] > 0, -1, target)
            tgt[:, N:] = np.where(target >= 0, target + N * (self.stats["healer"][:, N:] > 0), -1)
        else:
            self.enemy_target[...] = target
            tgt[:, N:] = target

    def _enemy_decide_sc2(self, vel: np.ndarray, tgt: np.ndarray) -> None:
        """The enemy AI under rules "sc2": SC2's attack-move, as SMAClite models it
        (unit_command.py AttackMoveCommand, ~102-152). Every enemy attack-moves toward the
        allies' side (its start rotated 180 degrees about the map centre). It keeps its
        target while the target lives and is within reach or is itself attacking this unit;
        otherwise it acquires the closest ally within scan range (5 + the ally's radius,
        centre distance), else the closest ally attacking it. A unit with a target walks in
        and fires (the attack order); without one it walks on toward the goal."""
        N, st = self.N, self.stats
        D = self.dist[:, N:, :N]  # (B, M, N)
        ally_orders = tgt[:, :N]  # what each ally was ordered to attack this step
        attacking_me = (ally_orders[:, None, :] == (N + np.arange(self.M))[None, :, None]) & (
            st["healer"][:, None, :N] == 0
        )
        shootable = self._reach_live[:, N:, :N]
        last = self.enemy_target
        keep = self._att.ravel().take(self._enemy_att_base + last)  # in reach; last = -1 reads junk
        keep |= np.take_along_axis(attacking_me, np.maximum(last, 0)[..., None], 2)[..., 0]
        keep &= (last >= 0) & np.take_along_axis(shootable, np.maximum(last, 0)[..., None], 2)[..., 0]
        scan = D < SCAN_RANGE + st["radius"][:, None, :N]
        key = np.where(shootable & scan, D, np.where(shootable & attacking_me, 1e9 + D, np.inf))
        acquired = np.where(np.isfinite(key.min(2)), key.argmin(2), -1)
        target = np.where(keep, last, acquired)
        goal = self._default_goal
        if self.has_healers:
            target, goal = self._enemy_healers(target, goal)
        delta = goal - self.z[:, N:]
        norm = cabs(delta)
        safe = np.maximum(norm, 1e-12)
        move = np.where(norm > 0.5, delta.real / safe + 1j * (delta.imag / safe), 0.0)
        vel[:, N:] = move * (target < 0)
        if self.has_healers:
            self.enemy_target[...] = np.where(st["healer"][:, N:] > 0, -1, target)
            tgt[:, N:] = np.where(target >= 0, target + N * (st["healer"][:, N:] > 0), -1)
        else:
            self.enemy_target[...] = target
            tgt[:, N:] = target

    def _enemy_healers(self, target: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Enemy medivacs heal the most damaged biological teammate in reach, else follow
        their closest living non-healer teammate."""
        N, st = self.N, self.stats
        e = slice(N, None)
        healer = st["healer"][:, e] > 0
        D = self.dist[:, e, e]
        mate = self.alive[:, None, e] & (st["healer"][:, None, e] == 0)
        missing = (st["hp"][:, e] - self.hp[:, e]) * st["bio"][:, e]
        can = mate & (D <= self._reachd[:, e, e]) & (missing[:, None, :] > 0)
        heal_t = np.where(can.any(2), np.where(can, missing[:, None, :], -1.0).argmax(2), -1)
        follow = np.where(mate, D, np.inf).argmin(2)
        far = np.take_along_axis(D, follow[..., None], 2)[..., 0] > 2.0
        follow_z = np.take_along_axis(self.z[:, e], follow, 1)
        goal = np.where(healer & far, follow_z, np.where(healer, self.z[:, e], goal))
        return np.where(healer, heal_t, target), goal

    # -- observations ----------------------------------------------------------------------
    def _refresh(self) -> None:
        """Distances, attack/visibility matrices and action masks for the current positions."""
        self._on_deaths()
        self._pairwise(self.z, self.dz)
        cabs(self.dz, out=self.dist)
        N, M = self.N, self.M
        pair = self._pair
        np.less_equal(self.dist, self._reachd, out=self._att)
        self._att &= self._reach_live
        np.less(self.dist, self.stats["sight"][:, :, None], out=self._vis)
        self._vis &= pair
        av = self.avail
        alive = self.alive[:, :N]
        av[:, :, 0] = ~alive
        av[:, :, 1] = alive
        moves = self.pos[:, :N, ::-1, None] * self._move_sign < self._move_lim
        moves &= alive[..., None, None]
        av[:, :, 2:6] = moves.reshape(self.B, N, 4)
        if self.rules.attack_move:  # SMAC's mask: an order range, the unit walks in (sc2)
            order = self.dist[:, :N] <= self.order_range[:, :, None]
        else:  # SMAX: only what can be hit from here
            order = self.dist[:, :N] <= self._reachd[:, :N]
        av[:, :, N_FIXED_ACTIONS : N_FIXED_ACTIONS + M] = order[:, :, N:] & self._reach_live[:, :N, N:]
        if self.ally_healer:
            av[:, :, N_FIXED_ACTIONS + M :] = False
            heal = self._healable[:, :N, :N] & order[:, :, :N] & pair[:, :N, :N]
            healer = self.stats["healer"][:, :N, None] > 0
            av[:, :, N_FIXED_ACTIONS : N_FIXED_ACTIONS + N] = np.where(
                healer, heal, av[:, :, N_FIXED_ACTIONS : N_FIXED_ACTIONS + N]
            )

    def place(
        self, b: int, positions: np.ndarray, hp: np.ndarray | None = None, shield: np.ndarray | None = None
    ) -> None:
        """Puts env ``b``'s units at (U, 2) positions (and optionally sets hp / shield):
        for scripted scenarios, tutorials and hand-computed tests."""
        self.pos[b] = np.asarray(positions, float)
        if hp is not None:
            self.hp[b] = hp
        if shield is not None:
            self.shield[b] = shield
        self.alive[b] = self.hp[b] > 0
        self._refresh()
        if self.backend == "numba":
            self._kernel_refresh([b])

    def avail_actions(self) -> np.ndarray:
        """(B, N, n_actions) bool: what each ally may do now."""
        return self.avail.copy()

    def hp_frac(self) -> np.ndarray:
        """(B, U) hit points / maximum (0 for the dead)."""
        return (np.maximum(self.hp, 0.0) * self._inv_hp * self.alive).astype(np.float32)

    def shield_frac(self) -> np.ndarray:
        """(B, U) shield / maximum (0 for units without shields)."""
        return (self.shield * self._inv_shield * self.alive).astype(np.float32)

    def last_action_onehot(self) -> np.ndarray:
        """(B, N, n_actions) float32; all zeros before the first step (SMAC)."""
        return self._onehot_actions.take(self.last_action.ravel(), axis=0).reshape(self.B, self.N, -1)

    def obs(self) -> np.ndarray:
        """(B, N, obs_dim) float32 observations (envs/smaclike/features.py: SMAC's layout)."""
        if self.backend == "numba":
            return self._obs_buf.copy()
        return features.observations(self)

    def state(self) -> np.ndarray:
        """(B, state_dim) float32 global state (envs/smaclike/features.py)."""
        if self.backend == "numba":
            return self._state_buf.copy()
        return features.state(self)

    def cooldown(self) -> np.ndarray:
        """(B, U) seconds until each unit may fire again (0 = ready)."""
        return np.maximum(self.wait, 0.0) * self.dt

    def info(self) -> dict[str, np.ndarray]:
        """Per-env episode facts, arrays of shape (B,)."""
        N = self.N
        return {
            "battle_won": self.won.copy(),
            "dead_allies": (~self.alive[:, :N]).sum(1),
            "dead_enemies": (~self.alive[:, N:]).sum(1),
            "task_id": self.task_id.copy(),
            "start_id": self.start_id.copy(),
            "episode_step": self.steps.copy(),
            "invalid_actions": self.invalid_actions.copy(),
        }

    def task_name(self, b: int) -> str:
        return self._task_names[int(self.task_id[b])]

    def start_name(self, b: int) -> str:
        return self._starts[int(self.start_id[b])]

    @property
    def task_names(self) -> tuple[str, ...]:
        return self._task_names


def _stat_table(types: tuple[UnitType, ...], rules: Rules, mode: str, min_range: float) -> dict[str, np.ndarray]:
    """Per-type float arrays (booleans as 0/1), indexed by the scenario's type ids."""
    table = {k: np.array([float(getattr(u, attr)) for u in types]) for k, attr in STAT_ATTRS.items()}
    table["bio"] = np.array([float("bio" in u.attributes) for u in types])
    table["range"] = np.array([u.range if rules.edge_ranges else u.center_range for u in types])
    if mode == "smac_v1":  # smac starcraft2.py: shoot range 6 and sight 9 for every unit
        table["mask_range"] = np.full(len(types), V1_SHOOT)
        table["obs_sight"] = np.full(len(types), V1_SIGHT)
    else:  # smacv2 use_unit_ranges: max(unit range, min_attack_range), the unit's sight
        table["mask_range"] = np.array([max(u.range, min_range) for u in types])
        table["obs_sight"] = np.array([u.sight for u in types])
    return table


def _pick(rng: np.random.Generator, cdf: np.ndarray, size: int | None = None) -> Any:
    """Index drawn with the probabilities whose cumulative sums are ``cdf`` (numpy's
    ``choice(p=...)`` costs about 20 us a call; resets draw several)."""
    u = rng.random(size) * cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def cabs(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """|z| as sqrt(re^2 + im^2): numpy's complex abs (a hypot) rounds differently from the
    compiled kernel's; this formula is the same bits in both, so ties break the same way."""
    re, im = np.asarray(z).real, np.asarray(z).imag
    r = np.multiply(re, re, out=out)
    r = np.add(r, im * im, out=out)
    return np.sqrt(r, out=out)


@functools.cache
def _others(n: int) -> np.ndarray:
    """(n, n-1) indices of the other allies of each ally, in order."""
    return np.array([[j for j in range(n) if j != i] for i in range(n)], dtype=np.int64).reshape(n, n - 1)
