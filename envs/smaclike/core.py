"""The batched simulator: B independent battles stepped at once as (B, U, ...) numpy arrays.

Model (../shared/specs/smaclike-trama.md, "Simulator model"; SMAX-style): a 32x32 map, one
agent step = ``ticks`` (8) ticks of ``dt`` (1/16 s). Per tick: every living unit moves by
its velocity (clamped to the map); living ground units are pushed apart by their radii
(SMAX's rule); then every attack whose attacker is alive and ready (cooldown <= 0) and whose
target is alive and within range lands; damage from all attackers is summed and shields
absorb it first. An attacker that fired gets cooldown = base + U(-dt, 2 dt) (pysc2's
jitter, as SMAX); every cooldown counts down by dt per tick. Medivacs heal instead of
shooting (9 hp/s, 1 energy per 3 hp). Decisions (the agents' actions and the heuristic
enemy AI) are taken once per agent step, as in SMAC and SMAX.

Two bookkeeping choices, said in the README's smaclike section too:
- shields regenerate 2/s once a unit has taken no damage for 10 s; the regeneration is
  applied at the end of each agent step for the ticks of the step past that 10 s mark;
- medivac energy regenerates at the end of each agent step (0.7875/s, SC2).

Reward: damage actually dealt (hp + shield removed, no overkill, never reduced by healing
or shield regeneration - SMAC's regeneration reward bug) + 10 per kill + 200 on a win,
optionally minus 0.5 x (damage taken + 10 per ally death); divided by max_reward / 20 with
max_reward computed for *this* episode's enemy team (SMACv2 computes it once).

Randomness: every environment slot owns a numpy Generator, seeded through :meth:`reset`,
and all state is per environment (no global clock), so environment b of a batch replays
exactly what a single environment with the same seed and actions does.

Positions are complex numbers x + iy (one contiguous (B, U) array; ``pos`` is an (x, y)
view of the same memory): pairwise distances are one subtraction and one ``abs``, which is
what makes batch 1 fast (numpy's per-call overhead dominates there).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from envs.smaclike.scenarios import Scenario, get_scenario
from envs.smaclike.units import UnitType

MAP_SIZE = 32.0
N_FIXED_ACTIONS = 6  # 0 no-op (dead only), 1 stop, 2..5 move N/S/E/W; 6 + j attack/heal j
SHIELD_REGEN = 2.0  # per second, after SHIELD_DELAY seconds without damage
SHIELD_DELAY = 10.0
ENERGY_REGEN = 0.7875  # medivac energy per second (SC2)
ENERGY_MAX = 200.0
HP_PER_ENERGY = 3.0
MOVE_CHECK = 1.0  # a move is available if the unit stays this far inside the map
WALL_MARGIN = 0.5  # clamp every tick only if a step's moves end this close to a wall


class SMACCore:
    """B battles of one scenario.

    Use it directly for vectorised learners: ``reset`` -> ``obs()``, ``state()``,
    ``avail_actions()``; ``step(actions)`` -> (reward, terminated, truncated); reset finished
    envs with ``reset(env_ids=...)``; ``info()`` gives battle_won, dead counts and task ids.

    Args:
        scenario: a Scenario or the name of a registered one.
        batch_size: number of independent battles B.
        reward_only_positive: override the scenario's flag (None = scenario's).
        reward_negative_scale: weight of damage taken when rewards may be negative (SMAC 0.5).
        reward_scale_rate: the max return after scaling (SMAC 20).
        invalid_action: "raise" (default: an action its mask forbids is an error naming the
            env, agent and allowed actions) or "stop" (it becomes stop, or no-op for a dead
            agent; for learners that do not mask).
        ticks: simulator ticks per agent step.
        dt: seconds per tick (a power of two keeps cooldown arithmetic exact).
    """

    def __init__(
        self,
        scenario: str | Scenario,
        batch_size: int = 1,
        *,
        reward_only_positive: bool | None = None,
        reward_negative_scale: float = 0.5,
        reward_scale_rate: float = 20.0,
        invalid_action: str = "raise",
        ticks: int = 8,
        dt: float = 1.0 / 16.0,
    ) -> None:
        sc = get_scenario(scenario)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if invalid_action not in ("raise", "stop"):
            raise ValueError(f"invalid_action must be 'raise' or 'stop', got {invalid_action!r}")
        if ticks < 1 or dt <= 0:
            raise ValueError(f"ticks must be >= 1 and dt > 0, got {ticks}, {dt}")
        self.scenario = sc
        self.B, self.N, self.M = batch_size, sc.n_allies, sc.n_enemies
        self.U = self.N + self.M
        self.T = len(sc.unit_types)
        self.ticks, self.dt = ticks, dt
        self.only_positive = sc.reward_only_positive if reward_only_positive is None else reward_only_positive
        self.neg_scale, self.scale_rate = reward_negative_scale, reward_scale_rate
        self.invalid_action = invalid_action
        self.episode_limit = sc.episode_limit
        self.ally_healer = sc.ally_healer
        self.n_targets = max(self.N, self.M) if self.ally_healer else self.M
        self.n_actions = N_FIXED_ACTIONS + self.n_targets
        types = sc.unit_types
        self.has_healers = any(u.is_healer for u in types)
        self.has_shields = any(u.shield > 0 for u in types)
        self._type_stats = _stat_table(types)
        self._pair_damage = np.array([[a.hit_damage(b) for b in types] for a in types])
        self._reach_type = self._pair_damage > 0
        self._tasks = sc.teams if sc.teams else None
        self._palette_names = [n for n, _ in sc.palette]
        self._palette_p = np.array([w for _, w in sc.palette]) if sc.palette else None
        self._composition_list = sc.palette_compositions() if sc.palette else []
        self._compositions = {c: i for i, c in enumerate(self._composition_list)}
        self._team_p = np.array(sc.team_weights) if sc.team_weights else None
        self._starts = [m for m, _ in sc.starts]
        self._start_p = np.array([p for _, p in sc.starts])
        self._task_names = sc.task_names()
        self._type_index = {u.name: i for i, u in enumerate(types)}
        self.obs_dim = 4 + self.M * (6 + self.T) + (self.N - 1) * (6 + self.T) + 4 + self.T
        self.state_dim = self.N * (5 + self.T) + self.M * (4 + self.T) + self.N * self.n_actions
        # action -> direction (x + iy) and -> target unit (enemy j is unit N + j)
        self._dir_table = np.zeros(self.n_actions, np.complex128)
        self._dir_table[2:6] = [1j, -1j, 1, -1]  # N, S, E, W
        self._attack_table = np.full(self.n_actions, -1, np.int64)
        self._attack_table[N_FIXED_ACTIONS : N_FIXED_ACTIONS + self.M] = self.N + np.arange(self.M)
        self._heal_table = np.full(self.n_actions, -1, np.int64)
        if self.ally_healer:
            self._heal_table[N_FIXED_ACTIONS : N_FIXED_ACTIONS + self.N] = np.arange(self.N)
        self._rngs = [np.random.default_rng() for _ in range(self.B)]
        self._alloc()
        self.reset(seeds=None)

    # -- state -----------------------------------------------------------------------------
    def _alloc(self) -> None:
        B, U, N = self.B, self.U, self.N
        z = np.zeros
        self.type = z((B, U), np.int64)
        self.z = z((B, U), np.complex128)  # positions x + iy
        self.hp, self.shield, self.energy = z((B, U)), z((B, U)), z((B, U))
        # "wait": cooldown in ticks, counted from the start of the current step: a unit may fire
        # at tick k of the step once wait <= k; firing at tick k sets it to k + 1 + cooldown/dt;
        # each step subtracts the step's ticks. This is "cooldown -= dt per tick, fire at <= 0".
        self.wait = z((B, U))
        self.since_hit = z((B, U))  # ticks since the last damage taken
        self.credit, self._cap = z((B, U)), z((B, U))  # damage credited in rewards, its cap
        self.alive = np.ones((B, U), bool)
        self.steps = z(B, np.int64)
        self.invalid_actions = z(B, np.int64)  # actions remapped to stop/no-op this episode
        self.done = z(B, bool)
        self.won = z(B, bool)
        self.task_id = z(B, np.int64)
        self.start_id = z(B, np.int64)
        self.max_reward = np.ones(B)
        self._default_goal = z((B, self.M), np.complex128)  # enemy start rotated 180 deg about the centre
        self.enemy_target = np.full((B, self.M), -1, np.int64)
        self.last_action = np.full((B, N), -1, np.int64)
        self._onehot_actions = np.vstack([np.eye(self.n_actions), np.zeros(self.n_actions)]).astype(np.float32)
        self.last_target = np.full((B, U), -1, np.int64)
        self.stats: dict[str, np.ndarray] = {k: z((B, U)) for k in self._type_stats}
        self._speed_dt = z((B, U))
        self._inv_hp, self._inv_shield = z((B, U)), z((B, U))
        self._onehot = z((B, U, self.T), np.float32)
        self._pd = z((B, U, U))  # hit damage of unit i on unit j (this episode's teams)
        self._reach = z((B, U, U), bool)  # i may attack j (other team, weapon reaches)
        self._pair = np.ones((B, U, U), bool)  # both alive
        self._reach_live = z((B, U, U), bool)  # reach & pair
        self._wait_base = z((B, self.ticks, U))  # tick k + base cooldown in ticks
        self._speed_live = z((B, U))  # speed * dt of the living
        self._reward_scale = z(B)
        self._arange_u = np.arange(U)
        self._cd_scale = z((B, U))  # dt / (base cooldown + 2 dt): state's cooldown feature
        self._inv_sight, self._neg_inv_sight = z((B, N, 1)), z((B, N, 1))
        self._others_flat = (np.arange(N)[:, None] * U + _others(N)).ravel() if N > 1 else np.zeros(0, np.int64)
        self._healable = z((B, U, U), bool)  # i is a healer, j a biological teammate
        self._rsum = z((B, U, U))  # half the radius sums of ground pairs (0 for air / self)
        self._rlive = z((B, U, U))  # ... of pairs that are both alive
        self._eye = np.eye(U, dtype=bool)
        self._team = np.zeros((U, 2))  # unit -> [is ally, is enemy]
        self._team[:N, 0] = self._team[N:, 1] = 1.0
        self._enemy_att_base = (np.arange(B)[:, None] * U * U + (N + np.arange(self.M))[None, :] * U).astype(np.int64)
        # move feasibility: (y, x) * (1, -1) < (hi, -lo)
        self._move_sign = np.array([1.0, -1.0])
        self._move_lim = np.array([MAP_SIZE - MOVE_CHECK, -MOVE_CHECK])
        self._has_air = any(u.is_air for u in self.scenario.unit_types)
        self._pairbase = (np.arange(B * U) * U).reshape(B, U)
        self._bidx = np.arange(B)[:, None] * U
        self._avail_base = np.arange(B * N) * self.n_actions
        self._dz = z((B, U, U), np.complex128)  # per-step buffers
        self._over = z((B, U, U))
        self.dist = z((B, U, U))
        self._avail = z((B, N, self.n_actions), bool)
        self._att = z((B, U, U), bool)
        self._vis = z((B, U, U), bool)
        self._n_alive = 0
        self._views()

    _VIEWS = ("pos", "_range_col", "_sight_col")

    def _views(self) -> None:
        """Views of arrays that are never rebound (pickling copies views, so they are
        rebuilt on unpickling)."""
        self.pos = self.z.view(np.float64).reshape(self.B, self.U, 2)  # (x, y) of the same memory
        self._range_col = self.stats["range"][:, :, None]
        self._sight_col = self.stats["sight"][:, :, None]

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._VIEWS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._views()

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
        for b in ids:
            self._reset_one(b, forced_task, forced_start)
        self._n_alive = int(np.count_nonzero(self.alive))
        self._refresh()

    def _task_index(self, task: str) -> int:
        if task not in self._task_names:
            raise ValueError(f"scenario {self.scenario.name!r} has no task {task!r}; tasks: {list(self._task_names)}")
        return self._task_names.index(task)

    def _start_index(self, start: str) -> int:
        if start not in self._starts:
            raise ValueError(f"scenario {self.scenario.name!r} has no start {start!r}; starts: {self._starts}")
        return self._starts.index(start)

    def _reset_one(self, b: int, task: int | None = None, start: int | None = None) -> None:
        rng = self._rngs[b]
        N, st = self.N, self.stats
        if self._tasks is not None:
            if task is not None:
                k = task
            else:
                k = int(rng.choice(len(self._tasks), p=self._team_p)) if len(self._tasks) > 1 else 0
            allies, enemies = self._tasks[k].allies, self._tasks[k].enemies
        else:
            if task is not None:
                allies = self._composition_list[task]
            else:
                draw = rng.choice(len(self._palette_names), size=N, p=self._palette_p)
                allies = tuple(self._palette_names[i] for i in np.sort(draw))
            enemies = allies
            k = self._compositions[allies]
        if start is not None:
            s = start
        else:
            s = int(rng.choice(len(self._starts), p=self._start_p)) if len(self._starts) > 1 else 0
        self.task_id[b], self.start_id[b] = k, s
        types = np.array([self._type_index[n] for n in allies + enemies])
        self.type[b] = types
        for key, table in self._type_stats.items():
            st[key][b] = table[types]
        self.pos[b] = _start_positions(self._starts[s], N, self.M, rng)
        self._default_goal[b] = MAP_SIZE * (1 + 1j) - self.z[b, N:]
        self.hp[b], self.shield[b] = st["hp"][b], st["shield"][b]
        self.energy[b] = st["energy"][b]
        self.wait[b] = 0.0
        self.since_hit[b] = 0.0  # shields start full: counting from 0 changes nothing
        self.credit[b] = 0.0
        self._cap[b] = st["hp"][b] + st["shield"][b]
        self.alive[b] = True
        self.steps[b] = 0
        self.invalid_actions[b] = 0
        self.done[b] = self.won[b] = False
        self.enemy_target[b] = -1
        self.last_action[b] = -1
        self.last_target[b] = -1
        self._speed_dt[b] = st["speed"][b] * self.dt
        self._speed_live[b] = self._speed_dt[b]
        self._wait_base[b] = np.arange(self.ticks)[:, None] + st["cooldown"][b] / self.dt
        self._cd_scale[b] = self.dt / (st["cooldown"][b] + 2 * self.dt)
        self._inv_sight[b, :, 0] = 1.0 / st["sight"][b, :N]
        self._neg_inv_sight[b] = -self._inv_sight[b]
        self._pair[b] = True
        self._inv_hp[b] = 1.0 / st["hp"][b]
        self._inv_shield[b] = np.divide(1.0, st["shield"][b], out=np.zeros(self.U), where=st["shield"][b] > 0)
        self._onehot[b] = np.eye(self.T, dtype=np.float32)[types]
        self._pd[b] = self._pair_damage[types[:, None], types[None, :]]
        team = np.arange(self.U) >= N
        other = team[:, None] != team[None, :]
        self._reach[b] = self._reach_type[types[:, None], types[None, :]] & other
        self._reach_live[b] = self._reach[b]
        healer, bio = st["healer"][b] > 0, st["bio"][b] > 0
        self._healable[b] = healer[:, None] & bio[None, :] & ~other & ~self._eye
        ground = st["air"][b] == 0
        r = st["radius"][b]
        self._rsum[b] = 0.5 * (r[:, None] + r[None, :]) * (ground[:, None] & ground[None, :] & ~self._eye)
        self._rlive[b] = self._rsum[b]
        # max_reward of *this* episode's enemy team (SMAC's formula; SMACv2 froze it once)
        self.max_reward[b] = self.M * 10.0 + 200.0 + float((st["hp"][b, N:] + st["shield"][b, N:]).sum())
        self._reward_scale[b] = self.scale_rate / self.max_reward[b]
        rows = slice(b, b + 1)  # spawn clumps start non-overlapping
        self._push(self.z[rows], self._rlive[rows], self._dz[rows], self._over[rows])
        self._clamp(self.pos[b : b + 1])

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
        if self.done.any():
            bad = np.flatnonzero(self.done).tolist()
            raise RuntimeError(f"envs {bad} are finished; reset(env_ids=...) them before stepping")
        a = self._check_actions(a.astype(np.int64, copy=False).reshape(self.B, self.N))
        N, U, B, st = self.N, self.U, self.B, self.stats
        # decode: complex velocity and target unit (-1 none) per unit
        vel = np.empty((B, U), np.complex128)
        vel[:, :N] = self._dir_table.take(a)
        tgt = np.empty((B, U), np.int64)
        tgt[:, :N] = self._attack_table.take(a)
        if self.ally_healer:
            np.copyto(tgt[:, :N], self._heal_table.take(a), where=st["healer"][:, :N] > 0)
        # one draw per env and step: cooldown jitters (ticks x U) and the AI's chase picks (M x N)
        n_u = self.ticks * U
        draws = (
            self._rngs[0].random((1, n_u + self.M * N))
            if B == 1
            else np.stack([g.random(n_u + self.M * N) for g in self._rngs])
        )
        self._enemy_decide(vel, tgt, draws[:, n_u:].reshape(B, self.M, N))
        self.last_target = tgt  # what each unit is ordered to shoot or heal (for rendering)
        vel *= self._speed_live  # speed * dt, 0 for the dead
        self._vel = vel
        has_t = tgt >= 0
        tsafe = np.where(has_t, tgt, self._arange_u)
        fidx = (tsafe + self._bidx).ravel()
        self._fidx = fidx
        # armed: has a target, and both ends alive (kept current on deaths)
        self._armed = has_t & self.alive & self.alive.ravel().take(fidx).reshape(B, U)
        hit = self._pd.ravel().take(self._pairbase + tsafe)
        healing = has_t & (st["healer"] > 0) if self.has_healers else None
        scalar = B == 1 and not self.has_healers  # see _attack_one_env
        if scalar:
            self._tgt_list, self._hit_list = tsafe[0].tolist(), hit[0].tolist()
        u = draws[:, :n_u].reshape(B, self.ticks, U)
        # after a shot at tick k: ready from tick k + 1 + cooldown / dt, cooldown = base + (3u - 1) dt,
        # i.e. base + U(-dt, 2dt); within a step "wait" counts ticks from the step's start
        new_wait = u * 3.0
        new_wait += self._wait_base  # k + base cooldown / dt, per tick k
        self._first = float(np.where(self._armed, self.wait, np.inf).min())  # ticks to the first shot
        end = (self.z + self.ticks * vel).view(np.float64)  # where the moves alone take everyone
        near_wall = bool(end.min() < WALL_MARGIN or end.max() > MAP_SIZE - WALL_MARGIN)
        alive0 = self.alive.copy()
        taken = np.zeros((B, U))
        z, vel, rlive, d, over = self.z, self._vel, self._rlive, self._dz, self._over
        for k in range(self.ticks):
            z += vel  # (vel is zeroed in place for units that die)
            if near_wall:
                self._clamp(self.pos)
            self._push(z, rlive, d, over)
            if k >= self._first and np.count_nonzero(cand := (self.wait <= k) & self._armed):
                if scalar:
                    self._attack_one_env(k, cand, new_wait[:, k], taken)
                else:
                    self._attack(k, cand, fidx, hit, healing, new_wait[:, k], taken)
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
        if self.has_healers:
            regen = ENERGY_REGEN * self.ticks * self.dt * (st["healer"] > 0)
            np.minimum(self.energy + regen, ENERGY_MAX, out=self.energy)
        self.last_action[:] = a
        # reward and termination (SMAC's reward, per-episode max_reward). Damage credit per
        # unit is capped at its max hp + shield over the episode, so healing and shield
        # regeneration cannot push the return past reward_scale_rate (checked in tests).
        credit = np.minimum(self.credit + taken, self._cap)
        taken = credit - self.credit
        self.credit = credit
        died = alive0 ^ self.alive
        standing = (self.alive @ self._team) > 0  # (B, 2): any ally alive, any enemy alive
        won = standing[:, 0] > standing[:, 1]
        taken += died * 10.0
        per_team = taken @ self._team  # (damage + 10 per death) taken by allies, by enemies
        reward = per_team[:, 1]
        if not self.only_positive:
            reward -= self.neg_scale * per_team[:, 0]
        reward += 200.0 * won
        reward *= self._reward_scale  # reward_scale_rate / this episode's max_reward
        terminated = ~standing.all(1)
        truncated = (self.steps >= self.episode_limit) > terminated
        self.won |= won
        self.done = terminated | truncated
        self._refresh()
        return reward, np.asarray(terminated), np.asarray(truncated)

    def _check_actions(self, a: np.ndarray) -> np.ndarray:
        ok = self._avail.ravel().take(self._avail_base + a.ravel(), mode="clip").reshape(a.shape)
        if ok.all() and a.min() >= 0 and a.max() < self.n_actions:
            return a
        ok &= (a >= 0) & (a < self.n_actions)
        if self.invalid_action == "raise":
            b, i = (int(x[0]) for x in np.nonzero(~ok))
            allowed = np.flatnonzero(self._avail[b, i]).tolist()
            raise ValueError(
                f"env {b}, agent {i}: action {int(a[b, i])} is not available (allowed: {allowed}; 0 no-op is "
                "for dead agents, 1 stop, 2-5 move N/S/E/W, 6+j attack enemy j in range or heal ally j)"
            )
        self.invalid_actions += (~ok).sum(axis=1)  # remapped this episode: masking bugs stay visible
        return np.where(ok, a, np.where(self.alive[:, : self.N], 1, 0))

    def _attack(
        self,
        k: int,
        cand: np.ndarray,
        fidx: np.ndarray,
        hit: np.ndarray,
        healing: np.ndarray | None,
        new_wait: np.ndarray,
        taken: np.ndarray,
    ) -> None:
        """Resolves the attacks (and heals) of tick ``k`` by the units that are ready."""
        B, U = self.B, self.U
        tz = self.z.ravel().take(fidx).reshape(B, U)
        fire = np.abs(tz - self.z) < self.stats["range"]
        fire &= cand
        if healing is not None:
            if np.count_nonzero(heal := fire & healing):
                self._heal(heal, fidx)
            fire &= ~healing
        if not np.count_nonzero(fire):
            return
        incoming = np.bincount(fidx, weights=(hit * fire).ravel(), minlength=B * U).reshape(B, U)
        hp, sh = self.hp, self.shield
        struck = incoming > 0
        taken += incoming  # overkill is removed by the per-unit credit cap in step()
        if self.has_shields:
            absorbed = np.minimum(sh, incoming)
            sh -= absorbed
            incoming -= absorbed
        hp -= incoming  # may go below 0 on the killing blow; alive = hp > 0
        np.copyto(self.since_hit, -1.0 - k, where=struck)
        np.copyto(self.wait, new_wait, where=fire)
        np.greater(hp, 0.0, out=self.alive)
        if int(np.count_nonzero(self.alive)) != self._n_alive:
            self._after_deaths()
        self._first = float(np.where(self._armed, self.wait, np.inf).min())

    def _attack_one_env(self, k: int, cand: np.ndarray, new_wait: np.ndarray, taken: np.ndarray) -> None:
        """_attack for a single env without healers, on the few ready units as scalars.

        At batch 1 a tick has one to three shooters and numpy's per-call overhead is most
        of _attack's cost. The arithmetic is the same operations in the same order (damage
        summed over attackers by ascending index, as bincount does), so trajectories are
        identical to the vectorised path; tests/test_smaclike.py compares a batch-1 facade
        with a batch-3 core step by step.
        """
        z, reach, tg, hit = self.z[0], self.stats["range"][0], self._tgt_list, self._hit_list
        fired: list[int] = []
        incoming: dict[int, float] = {}
        for u in np.flatnonzero(cand[0]).tolist():
            t = tg[u]
            if abs(z[t] - z[u]) < reach[u]:
                fired.append(u)
                incoming[t] = incoming.get(t, 0.0) + hit[u]
        if not fired:
            return
        hp, sh, since, got, wait = self.hp[0], self.shield[0], self.since_hit[0], taken[0], self.wait[0]
        died = False
        for t, x in incoming.items():
            if x > 0:
                since[t] = -1.0 - k
            got[t] += x
            if self.has_shields:
                absorbed = min(sh[t], x)
                sh[t] -= absorbed
                x -= absorbed
            hp[t] -= x
            if not hp[t] > 0.0:
                self.alive[0, t] = False
                died = True
        for u in fired:
            wait[u] = new_wait[0, u]
        if died:
            self._after_deaths()
        self._first = float(np.where(self._armed, self.wait, np.inf).min())

    def _after_deaths(self) -> None:
        """Someone died this tick: stop them, disarm shots at or by them, and take them out
        of collisions."""
        B, U = self.B, self.U
        self._vel *= self.alive
        self._armed &= self.alive
        self._armed &= self.alive.ravel().take(self._fidx).reshape(B, U)
        self._on_deaths()

    def _on_deaths(self) -> None:
        """Refreshes the matrices that depend on who is alive (deaths are rare events)."""
        np.logical_and(self.alive[:, :, None], self.alive[:, None, :], out=self._pair)
        np.multiply(self._rsum, self._pair, out=self._rlive)
        np.logical_and(self._reach, self._pair, out=self._reach_live)
        np.multiply(self._speed_dt, self.alive, out=self._speed_live)
        self._n_alive = int(np.count_nonzero(self.alive))

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
        np.abs(d, out=over)
        over += 1e-6  # as SMAX: coincident units get a huge overlap along a zero vector
        np.divide(rhalf, over, out=over)  # rhalf = half the radius sum (0 for self/air/dead)
        over -= 0.5
        np.fmax(over, 0.0, out=over)  # half the relative overlap
        z += np.vecdot(over, d)

    @staticmethod
    def _clamp(pos: np.ndarray) -> None:
        np.minimum(pos, MAP_SIZE, out=pos)
        np.maximum(pos, 0.0, out=pos)

    # -- heuristic enemy AI ----------------------------------------------------------------
    def _enemy_decide(self, vel: np.ndarray, tgt: np.ndarray, pick: np.ndarray) -> None:
        """SMAX's heuristic (spec; jaxmarl/environments/smax/heuristic_enemy.py): keep the
        last target while shootable, else shoot the closest shootable ally; with nothing to
        shoot, move toward a uniformly random visible ally (``pick``: uniforms (B, M, N)),
        else toward the unit's own start position rotated 180 degrees about the map centre;
        moves take the cardinal direction best aligned with the goal."""
        N = self.N
        D = self.dist[:, N:, :N]  # (B, M, N)
        last = self.enemy_target
        keep = self._att.ravel().take(self._enemy_att_base + last)  # last = -1 reads junk, masked next
        keep &= last >= 0
        dv = np.where(self._vis[:, N:, :N], D, np.inf)
        seen = dv.argmin(2)
        d_seen = dv.min(2)
        if self._has_air:  # the closest visible unit may be out of reach: search the shootable ones
            shootable = self._att[:, N:, :N]
            closest = np.where(shootable.any(2), np.where(shootable, D, np.inf).argmin(2), -1)
        else:  # range < sight and every weapon reaches: the closest visible is the closest shootable
            closest = np.where(d_seen < self.stats["range"][:, N:], seen, -1)
        target = np.where(keep, last, closest)
        chase = np.where(self._vis[:, N:, :N], pick, -1.0).argmax(2)
        goal = np.where(d_seen < np.inf, self.z.ravel().take(chase + self._bidx), self._default_goal)
        if self.has_healers:
            target, goal = self._enemy_healers(target, goal)
        delta = goal - self.z[:, N:]
        move = np.where(np.abs(delta.real) >= np.abs(delta.imag), np.sign(delta.real), 1j * np.sign(delta.imag))
        vel[:, N:] = move * (target < 0)
        if self.has_healers:
            self.enemy_target = np.where(self.stats["healer"][:, N:] > 0, -1, target)
            tgt[:, N:] = np.where(target >= 0, target + N * (self.stats["healer"][:, N:] > 0), -1)
        else:
            self.enemy_target = target
            tgt[:, N:] = target

    def _enemy_healers(self, target: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Enemy medivacs heal the most damaged biological teammate in range, else follow
        their closest living non-healer teammate."""
        N, st = self.N, self.stats
        e = slice(N, None)
        healer = st["healer"][:, e] > 0
        D = self.dist[:, e, e]
        mate = self.alive[:, None, e] & (st["healer"][:, None, e] == 0)
        missing = (st["hp"][:, e] - self.hp[:, e]) * st["bio"][:, e]
        can = mate & (D < st["range"][:, e, None]) & (missing[:, None, :] > 0)
        heal_t = np.where(can.any(2), np.where(can, missing[:, None, :], -1.0).argmax(2), -1)
        follow = np.where(mate, D, np.inf).argmin(2)
        far = np.take_along_axis(D, follow[..., None], 2)[..., 0] > 2.0
        follow_z = np.take_along_axis(self.z[:, e], follow, 1)
        goal = np.where(healer & far, follow_z, np.where(healer, self.z[:, e], goal))
        return np.where(healer, heal_t, target), goal

    # -- observations ----------------------------------------------------------------------
    def _refresh(self) -> None:
        """Distances, attack/visibility matrices and action masks for the current positions."""
        self._feat: np.ndarray | None = None
        self._pairwise(self.z, self._dz)
        np.abs(self._dz, out=self.dist)
        N, M = self.N, self.M
        pair = self._pair
        np.less(self.dist, self._range_col, out=self._att)
        self._att &= self._reach_live
        np.less(self.dist, self._sight_col, out=self._vis)
        self._vis &= pair
        av = self._avail
        alive = self.alive[:, :N]
        av[:, :, 0] = ~alive
        av[:, :, 1] = alive
        # [[y < hi, y > lo], [x < hi, x > lo]] = moves N, S, E, W
        moves = self.pos[:, :N, ::-1, None] * self._move_sign < self._move_lim
        moves &= alive[..., None, None]
        av[:, :, 2:6] = moves.reshape(self.B, N, 4)
        av[:, :, N_FIXED_ACTIONS : N_FIXED_ACTIONS + M] = self._att[:, :N, N:]
        if self.ally_healer:
            av[:, :, N_FIXED_ACTIONS + M :] = False
            heal = self._healable[:, :N, :N] & (self.dist[:, :N, :N] < self._range_col[:, :N]) & pair[:, :N, :N]
            av[:, :, N_FIXED_ACTIONS : N_FIXED_ACTIONS + N] |= heal

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
        self._on_deaths()
        self._feat = None
        self._refresh()

    def avail_actions(self) -> np.ndarray:
        """(B, N, n_actions) bool: what each ally may do now."""
        return self._avail.copy()

    def _unit_features(self) -> np.ndarray:
        """(B, U, 2 + T): [health, shield, type one-hot]; type ids are the same for allies
        and enemies (SMAC's inconsistent ids are a user complaint). Cached until the next
        step or reset."""
        if self._feat is not None:
            return self._feat
        self._feat = f = np.empty((self.B, self.U, 2 + self.T), np.float32)
        np.multiply(self.hp, self._inv_hp, out=f[..., 0], casting="unsafe")
        np.multiply(self.shield, self._inv_shield, out=f[..., 1], casting="unsafe")
        f[..., 2:] = self._onehot
        return f

    def obs(self) -> np.ndarray:
        """(B, N, obs_dim) float32 observations (SMACv2 layout; spec "Agent interface").

        [move N/S/E/W feasible (4)] + per enemy [attackable, dist, dx, dy, health, shield,
        type (T)] + per other ally [visible, dist, dx, dy, health, shield, type] + own
        [health, shield, x, y, type]; distances are divided by the agent's sight range;
        units out of sight, dead units and everything of a dead agent are zeros.
        """
        B, N, M, T, U = self.B, self.N, self.M, self.T, self.U
        F = 6 + T
        feat = self._unit_features()
        vis = self._vis[:, :N]
        blk = np.empty((B, N, U, F), np.float32)  # features of every unit as seen by each ally
        blk[:, :, :N, 0] = vis[:, :, :N]
        blk[:, :, N:, 0] = self._att[:, :N, N:]
        rel = self._dz[:, :N] * self._neg_inv_sight  # (z_j - z_i) / sight
        blk[..., 1] = self.dist[:, :N] * self._inv_sight
        blk[..., 2:4] = rel.view(np.float64).reshape(B, N, U, 2)
        blk[..., 4:] = feat[:, None]
        blk *= vis[..., None]
        out = np.empty((B, N, self.obs_dim), np.float32)
        out[..., :4] = self._avail[:, :, 2:6]
        o = 4 + M * F
        out[..., 4:o].reshape(B, N, M, F)[...] = blk[:, :, N:]
        o2 = o + (N - 1) * F
        if N > 1:
            out[..., o:o2] = blk.reshape(B, N * U, F).take(self._others_flat, axis=1).reshape(B, N, -1)
        out[..., o2 : o2 + 2] = feat[:, :N, :2]
        out[..., o2 + 2 : o2 + 4] = self.pos[:, :N] * (1.0 / MAP_SIZE)
        out[..., o2 + 4 :] = self._onehot[:, :N]
        out *= self.alive[:, :N, None]
        return out

    def state(self) -> np.ndarray:
        """(B, state_dim) float32 global state (spec; SMAC's layout).

        Allies [health, cooldown or energy, rel x, rel y, shield, type], enemies [health,
        rel x, rel y, shield, type], then every ally's last action one-hot. Dead units are
        zeros; the task id is never part of it.
        """
        B, N, M, T = self.B, self.N, self.M, self.T
        st = self.stats
        feat = self._unit_features()
        rel = (self.pos - MAP_SIZE / 2) * (2 / MAP_SIZE)
        out = np.zeros((B, self.state_dim), np.float32)
        al = out[:, : N * (5 + T)].reshape(B, N, 5 + T)
        al[..., 0] = feat[:, :N, 0]
        cd = np.maximum(self.wait[:, :N], 0.0) * self._cd_scale[:, :N]  # cooldown / (base + 2 dt)
        if self.has_healers:
            cd = np.where(st["healer"][:, :N] > 0, self.energy[:, :N] / ENERGY_MAX, cd)
        al[..., 1] = cd
        al[..., 2:4] = rel[:, :N]
        al[..., 4:] = feat[:, :N, 1:]
        al *= self.alive[:, :N, None]
        o = N * (5 + T)
        en = out[:, o : o + M * (4 + T)].reshape(B, M, 4 + T)
        en[..., 0] = feat[:, N:, 0]
        en[..., 1:3] = rel[:, N:]
        en[..., 3:] = feat[:, N:, 1:]
        en *= self.alive[:, N:, None]
        # last actions one-hot; -1 (none yet, after reset) is the all-zero row, as in SMAC
        out[:, o + M * (4 + T) :] = self._onehot_actions.take(self.last_action.ravel(), axis=0).reshape(B, -1)
        return out

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


# stat key -> UnitType attribute, gathered per unit at reset
_STAT_ATTRS = {
    "hp": "hp",
    "shield": "shield",
    "cooldown": "cooldown",
    "speed": "speed",
    "range": "range",
    "sight": "sight",
    "radius": "radius",
    "air": "is_air",
    "can_hit_air": "can_hit_air",
    "healer": "is_healer",
    "heal_rate": "heal_rate",
    "energy": "energy",
}


def _stat_table(types: tuple[UnitType, ...]) -> dict[str, np.ndarray]:
    """Per-type float arrays (booleans as 0/1), indexed by the scenario's type ids."""
    table = {k: np.array([float(getattr(u, attr)) for u in types]) for k, attr in _STAT_ATTRS.items()}
    table["bio"] = np.array([float("bio" in u.attributes) for u in types])
    return table


@functools.cache
def _others(n: int) -> np.ndarray:
    """(n, n-1) indices of the other allies of each ally, in order."""
    return np.array([[j for j in range(n) if j != i] for i in range(n)], dtype=np.int64).reshape(n, n - 1)


_HALFWAY = np.array([[8.0, 8.0], [8.0, 24.0], [24.0, 24.0], [24.0, 8.0]])


def _start_positions(mode: str, n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """Start positions (n + m, 2) for a start mode (spec, "Multi-task sets")."""
    c = MAP_SIZE / 2
    if mode == "classic":  # SMAX: two clumps at x = 8 and x = 24
        spread = max(2.0, 0.6 * np.sqrt(max(n, m)))
        allies = np.array([MAP_SIZE / 4, c]) + rng.uniform(-spread, spread, (n, 2))
        enemies = np.array([3 * MAP_SIZE / 4, c]) + rng.uniform(-spread, spread, (m, 2))
    elif mode == "surrounded":  # allies at the centre, enemies in 1-4 groups on the diagonals
        allies = np.array([c, c]) + rng.uniform(-0.5, 0.5, (n, 2))
        n_groups = int(rng.integers(1, min(4, m) + 1))
        corners = rng.choice(4, size=n_groups, replace=False)
        frac = rng.uniform(0.0, 1.0, n_groups)
        direction = (_HALFWAY[corners] - c) / np.linalg.norm(_HALFWAY[corners] - c, axis=1, keepdims=True)
        near = c + 2.0 * direction
        centres = near + frac[:, None] * (_HALFWAY[corners] - near)
        group = np.concatenate([np.arange(n_groups), rng.integers(0, n_groups, m - n_groups)])
        enemies = centres[rng.permutation(group)] + rng.uniform(-0.5, 0.5, (m, 2))
    elif mode == "reflect":  # allies in x [8, 15], y [8, 24]; enemies mirrored x -> 32 - x
        allies = np.column_stack([rng.uniform(8, 15, n), rng.uniform(8, 24, n)])
        extra = np.column_stack([rng.uniform(8, 15, max(0, m - n)), rng.uniform(8, 24, max(0, m - n))])
        src = np.concatenate([allies, extra])[:m]
        enemies = np.column_stack([MAP_SIZE - src[:, 0], src[:, 1]])
    else:
        raise ValueError(f"unknown start mode {mode!r}")
    return np.clip(np.concatenate([allies, enemies]), 0.5, MAP_SIZE - 0.5)
