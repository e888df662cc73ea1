"""The compiled SMAC-like step (numba, CPU): one agent step, masks, observations and state.

The numpy code in :mod:`envs.smaclike.core` is the reference; this module computes the same
rules one battle at a time in compiled loops, on the same (packed) arrays, so a step over
16 units costs microseconds instead of the ~100 numpy calls of the vectorised path.
``tests/test_smaclike_kernel.py`` steps both from identical states, scenario by scenario,
and compares every array. Operations follow the reference's order; sums over units may
round differently in the last bit (numpy sums pairwise), hence the tolerance there.

Compiled functions are cached on disk (numba ``cache=True``, in ``__pycache__`` beside this
file): the first call on a machine compiles (tens of seconds, reported by
:func:`compile_report`), later processes load the cache in about a second. The parallel
variant (``threads > 1``) runs battles on several cores with ``numba.prange``.

Layout of the packed arguments (see SMACCore._views):
  F (5, B, U): hp, shield, energy, wait, since_hit.   C (K, B, U): per-unit constants
  (core.C_ROWS).   P (4, B, U, U): smax hit, sc2 raw attack damage, firing reach, half
  radius sums.   Q (2, B, U, U): may attack, heals.   fp / ip: scalar settings (FP_*, IP_*).
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from envs.smaclike.rules import GAME_LOOPS_PER_SECOND

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a dependency; the numpy path stays usable
    numba = None  # type: ignore[assignment]


# float settings (fp)
FP_NAMES = (
    "dt",
    "attack_move",
    "armor_on_shields",
    "splash",
    "regen",
    "healers_cannot_win",
    "has_healers",
    "has_kamikaze",
    "has_shields",
    "only_positive",
    "abs_bug",
    "death_only",
    "sparse",
    "scale",
    "scale_rate",
    "death_value",
    "win",
    "defeat",
    "neg_scale",
    "x0",
    "y0",
    "x1",
    "y1",
    "map_w",
    "map_h",
    "invalid_stop",
    "ally_healer",
)
# integer settings (ip)
IP_NAMES = (
    "ticks",
    "n_allies",
    "episode_limit",
    "type_bits",
    "shield_ally",
    "shield_enemy",
    "own_pos",
    "obs_last_action",
    "state_last_action",
    "obs_timestep",
    "state_timestep",
)
FP = {k: i for i, k in enumerate(FP_NAMES)}
IP = {k: i for i, k in enumerate(IP_NAMES)}

# Rules constants (SC2 / SMAClite; the numpy reference in core.py imports them from here)
SHIELD_REGEN = 2.0  # per second, after SHIELD_DELAY seconds without damage
SHIELD_DELAY = 10.0
ENERGY_REGEN = 0.7875  # medivac energy per second (SC2)
ENERGY_MAX = 200.0
HP_PER_ENERGY = 3.0
MOVE_CHECK = 1.0  # a move is available if the unit stays this far inside the playable area
SCAN_RANGE = 5.0  # SC2 units acquire targets within this (smaclite unit_type.py minimum_scan_range)
LOOPS_PER_SECOND = GAME_LOOPS_PER_SECOND

# The packed layout the kernel compiles against. It lives in this file on purpose: numba's
# disk cache is keyed on this file, so changing a row invalidates the compiled code.
F_ROWS = ("hp", "shield", "energy", "wait", "since_hit")  # packed dynamic state, in order
P_ROWS = ("hit", "raw", "reachd", "rsum")
Q_ROWS = ("reach", "healable")
# stat key -> UnitType attribute, gathered per unit at reset
STAT_ATTRS = {
    "hp": "hp",
    "shield": "shield",
    "armor": "armor",
    "n_attacks": "n_attacks",
    "cooldown": "cooldown",
    "speed": "speed",
    "sight": "sight",
    "radius": "radius",
    "air": "is_air",
    "can_hit_air": "can_hit_air",
    "healer": "is_healer",
    "heal_rate": "heal_rate",
    "energy": "energy",
    "max_cooldown": "max_cooldown",
    "hp_regen": "hp_regen",
    "kamikaze": "kamikaze_radius",
    "splash_width": "splash_width",
    "splash_depth": "splash_depth",
}
STAT_KEYS = (*STAT_ATTRS, "bio", "range", "mask_range", "obs_sight")
EXTRA_ROWS = ("speed_dt", "inv_hp", "inv_shield", "cd_ticks", "obs_inv_sight")  # filled at reset
C_ROWS = STAT_KEYS + EXTRA_ROWS
C_INDEX = {k: i for i, k in enumerate(C_ROWS)}

# C rows used here
_HPMAX, _SHMAX, _ARMOR, _NATT = C_INDEX["hp"], C_INDEX["shield"], C_INDEX["armor"], C_INDEX["n_attacks"]
_SIGHT, _RADIUS, _HEALER, _HEALRATE = C_INDEX["sight"], C_INDEX["radius"], C_INDEX["healer"], C_INDEX["heal_rate"]
_MAXCD, _REGEN, _KAMI = C_INDEX["max_cooldown"], C_INDEX["hp_regen"], C_INDEX["kamikaze"]
_SPW, _SPD, _BIO = C_INDEX["splash_width"], C_INDEX["splash_depth"], C_INDEX["bio"]
_MASK, _OBSSIGHT, _OBSINV = C_INDEX["mask_range"], C_INDEX["obs_sight"], C_INDEX["obs_inv_sight"]
_SPEEDDT, _INVHP, _INVSH, _CDT = C_INDEX["speed_dt"], C_INDEX["inv_hp"], C_INDEX["inv_shield"], C_INDEX["cd_ticks"]
_AIR = C_INDEX["air"]

_COMPILE_SECONDS: dict[str, float] = {}


def available() -> bool:
    """Whether numba imports here (else SMACCore falls back to the numpy reference)."""
    return numba is not None


def _jit(parallel: bool = False):
    return njit(cache=True, nogil=True, parallel=parallel, error_model="numpy")


if numba is not None:

    @njit(cache=True, inline="always")
    def _abs(d):  # pragma: no cover - compiled
        """|d| = sqrt(re^2 + im^2), the same bits as core.cabs."""
        return math.sqrt(d.real * d.real + d.imag * d.imag)

    @_jit()
    def _check_actions(actions, avail, alive, invalid, stop, done):  # pragma: no cover - compiled
        """Validates (and, with stop, remaps) actions; returns -2 if a battle is finished,
        else the first bad flat index, or -1."""
        B, N = actions.shape
        A = avail.shape[2]
        for b in range(B):
            if done[b]:
                return -2
        for b in range(B):
            for i in range(N):
                a = actions[b, i]
                if a < 0 or a >= A or not avail[b, i, a]:
                    if not stop:
                        return b * N + i
                    actions[b, i] = 1 if alive[b, i] else 0
                    invalid[b] += 1
        return -1

    @_jit()
    def _refresh_env(b, z, alive, C, P, Q, fp, ip, dz, dist, avail):  # pragma: no cover
        """Pairwise offsets and distances, and the allies' action masks (core._refresh)."""
        U = z.shape[1]
        N = ip[1]
        M = U - N
        for i in range(U):
            dz[b, i, i] = 0j
            dist[b, i, i] = 0.0
            for j in range(i + 1, U):
                d = z[b, i] - z[b, j]
                dz[b, i, j] = d
                dz[b, j, i] = -d
                a = _abs(d)
                dist[b, i, j] = a
                dist[b, j, i] = a
        x0, y0, x1, y1 = fp[19], fp[20], fp[21], fp[22]
        attack_move = fp[1] > 0
        ally_healer = fp[26] > 0
        A = avail.shape[2]
        for i in range(N):
            al = alive[b, i]
            for a in range(A):
                avail[b, i, a] = False
            avail[b, i, 0] = not al
            avail[b, i, 1] = al
            if not al:
                continue
            x, y = z[b, i].real, z[b, i].imag
            avail[b, i, 2] = y < y1 - MOVE_CHECK
            avail[b, i, 3] = -y < -(y0 + MOVE_CHECK)
            avail[b, i, 4] = x < x1 - MOVE_CHECK
            avail[b, i, 5] = -x < -(x0 + MOVE_CHECK)
            healer = ally_healer and C[_HEALER, b, i] > 0
            for j in range(U):
                if not alive[b, j]:
                    continue
                if attack_move:
                    order = dist[b, i, j] <= C[_MASK, b, i]
                else:
                    order = dist[b, i, j] <= P[2, b, i, j]
                if not order:
                    continue
                if healer:
                    if j < N and Q[1, b, i, j]:
                        avail[b, i, 6 + j] = True
                elif j >= N and Q[0, b, i, j]:
                    avail[b, i, 6 + j - N] = True
        return M

    @_jit()
    def _features_env(
        b, z, F, alive, steps, last_action, C, onehot, fp, ip, dz, dist, avail, obs, state
    ):  # pragma: no cover
        """Observations and state of one battle (envs/smaclike/features.py)."""
        U = z.shape[1]
        N = ip[1]
        M = U - N
        limit = ip[2]
        tb, sh_a, sh_e, own_pos = ip[3], ip[4] > 0, ip[5] > 0, ip[6] > 0
        ola, sla, ots, sts = ip[7] > 0, ip[8] > 0, ip[9] > 0, ip[10] > 0
        A = avail.shape[2]
        hp, sh = F[0, b], F[1, b]
        health = np.empty(U, np.float32)
        shield = np.empty(U, np.float32)
        for j in range(U):
            aj = 1.0 if alive[b, j] else 0.0
            health[j] = max(hp[j], 0.0) * C[_INVHP, b, j] * aj
            shield[j] = sh[j] * C[_INVSH, b, j] * aj
        ef = 5 + (1 if sh_e else 0) + tb
        af = 5 + (1 if sh_a else 0) + tb + (A if ola else 0)
        D = obs.shape[2]
        for i in range(N):
            o = obs[b, i]
            for k in range(D):
                o[k] = 0.0
            if not alive[b, i]:
                continue
            sight = C[_OBSSIGHT, b, i]
            inv = C[_OBSINV, b, i]
            for k in range(4):
                o[k] = 1.0 if avail[b, i, 2 + k] else 0.0
            base = 4
            for e in range(M):
                j = N + e
                if alive[b, j] and dist[b, i, j] < sight:
                    p = base + e * ef
                    o[p] = 1.0 if avail[b, i, 6 + e] else 0.0
                    o[p + 1] = dist[b, i, j] * inv
                    o[p + 2] = -dz[b, i, j].real * inv
                    o[p + 3] = -dz[b, i, j].imag * inv
                    o[p + 4] = health[j]
                    q = p + 5
                    if sh_e:
                        o[q] = shield[j]
                        q += 1
                    for t in range(tb):
                        o[q + t] = onehot[b, j, t]
            base += M * ef
            slot = 0
            for j in range(N):
                if j == i:
                    continue
                if alive[b, j] and dist[b, i, j] < sight:
                    p = base + slot * af
                    o[p] = 1.0
                    o[p + 1] = dist[b, i, j] * inv
                    o[p + 2] = -dz[b, i, j].real * inv
                    o[p + 3] = -dz[b, i, j].imag * inv
                    o[p + 4] = health[j]
                    q = p + 5
                    if sh_a:
                        o[q] = shield[j]
                        q += 1
                    for t in range(tb):
                        o[q + t] = onehot[b, j, t]
                    q += tb
                    if ola and last_action[b, j] >= 0:
                        o[q + last_action[b, j]] = 1.0
                slot += 1
            base += (N - 1) * af
            o[base] = health[i]
            base += 1
            if sh_a:
                o[base] = shield[i]
                base += 1
            if own_pos:
                o[base] = z[b, i].real / fp[23]
                o[base + 1] = z[b, i].imag / fp[24]
                base += 2
            for t in range(tb):
                o[base + t] = onehot[b, i, t]
            base += tb
            if ots:
                o[base] = steps[b] / limit
        # state
        s = state[b]
        for k in range(s.shape[0]):
            s[k] = 0.0
        x0, y0, x1, y1 = fp[19], fp[20], fp[21], fp[22]
        half_w, half_h = fp[23] / 2, fp[24] / 2
        loops = fp[0] * LOOPS_PER_SECOND
        sa = 4 + (1 if sh_a else 0) + tb
        se = 3 + (1 if sh_e else 0) + tb
        has_healers = fp[6] > 0
        for i in range(N):
            if not alive[b, i]:
                continue
            p = i * sa
            s[p] = health[i]
            if has_healers and C[_HEALER, b, i] > 0:
                s[p + 1] = F[2, b, i] / C[_MAXCD, b, i]
            else:
                s[p + 1] = (max(F[3, b, i], 0.0) * loops) / C[_MAXCD, b, i]
            s[p + 2] = (z[b, i].real - half_w) / (x1 - x0)
            s[p + 3] = (z[b, i].imag - half_h) / (y1 - y0)
            q = p + 4
            if sh_a:
                s[q] = shield[i]
                q += 1
            for t in range(tb):
                s[q + t] = onehot[b, i, t]
        o2 = N * sa
        for e in range(M):
            j = N + e
            if not alive[b, j]:
                continue
            p = o2 + e * se
            s[p] = health[j]
            s[p + 1] = (z[b, j].real - half_w) / (x1 - x0)
            s[p + 2] = (z[b, j].imag - half_h) / (y1 - y0)
            q = p + 3
            if sh_e:
                s[q] = shield[j]
                q += 1
            for t in range(tb):
                s[q + t] = onehot[b, j, t]
        o2 += M * se
        if sla:
            for i in range(N):
                if last_action[b, i] >= 0:
                    s[o2 + i * A + last_action[b, i]] = 1.0
            o2 += N * A
        if sts:
            s[o2] = steps[b] / limit

    @_jit()
    def _enemy_sc2(b, z, F, alive, C, P, Q, dist, enemy_target, default_goal, tgt, vel, fp, N):  # pragma: no cover
        """core._enemy_decide_sc2 + core._enemy_healers for one battle."""
        U = z.shape[1]
        M = U - N
        has_healers = fp[6] > 0
        for e in range(M):
            i = N + e
            last = enemy_target[b, e]
            keep = False
            if last >= 0:
                shoot_last = Q[0, b, i, last] and alive[b, i] and alive[b, last]
                in_reach = dist[b, i, last] <= P[2, b, i, last] and shoot_last
                attacking = tgt[last] == i and C[_HEALER, b, last] == 0
                keep = (in_reach or attacking) and shoot_last
            best = np.inf
            acquired = -1
            for j in range(N):
                if not (Q[0, b, i, j] and alive[b, i] and alive[b, j]):
                    continue
                d = dist[b, i, j]
                if d < SCAN_RANGE + C[_RADIUS, b, j]:
                    key = d
                elif tgt[j] == i and C[_HEALER, b, j] == 0:
                    key = 1e9 + d
                else:
                    continue
                if key < best:
                    best = key
                    acquired = j
            target = last if keep else acquired
            goal = default_goal[b, e]
            healer = has_healers and C[_HEALER, b, i] > 0
            if healer:
                target, goal = _enemy_healer(b, e, z, F, alive, C, P, dist, goal, N)
            delta = goal - z[b, i]
            norm = _abs(delta)
            safe = max(norm, 1e-12)
            move = complex(delta.real / safe, delta.imag / safe) if norm > 0.5 else 0j
            vel[i] = move if target < 0 else 0j
            if healer:
                enemy_target[b, e] = -1
                tgt[i] = target + N if target >= 0 else -1
            else:
                enemy_target[b, e] = target
                tgt[i] = target

    @_jit()
    def _enemy_healer(b, e, z, F, alive, C, P, dist, goal, N):  # pragma: no cover
        """core._enemy_healers for enemy ``e`` (a healer): (heal target among enemies, goal)."""
        U = z.shape[1]
        M = U - N
        i = N + e
        best = -1.0
        heal_t = -1
        follow = 0
        fbest = np.inf
        for f in range(M):
            j = N + f
            mate = alive[b, j] and C[_HEALER, b, j] == 0
            if not mate:
                continue
            d = dist[b, i, j]
            missing = (C[_HPMAX, b, j] - F[0, b, j]) * C[_BIO, b, j]
            if d <= P[2, b, i, j] and missing > 0 and missing > best:
                best = missing
                heal_t = f
            if d < fbest:
                fbest = d
                follow = f
        far = dist[b, i, N + follow] > 2.0
        if far:
            goal = z[b, N + follow]
        else:
            goal = z[b, i]
        return heal_t, goal

    @_jit()
    def _enemy_smax(
        b, z, alive, C, P, Q, dist, enemy_target, default_goal, tgt, vel, pick, fp, N, F
    ):  # pragma: no cover
        """core._enemy_decide (SMAX's heuristic) for one battle."""
        U = z.shape[1]
        M = U - N
        has_healers = fp[6] > 0
        for e in range(M):
            i = N + e
            last = enemy_target[b, e]
            keep = False
            if last >= 0:
                keep = dist[b, i, last] <= P[2, b, i, last] and Q[0, b, i, last] and alive[b, i] and alive[b, last]
            closest = -1
            best = np.inf
            seen_d = np.inf
            chase = 0
            pbest = -2.0
            for j in range(N):
                pair = alive[b, i] and alive[b, j]
                d = dist[b, i, j]
                if pair and d <= P[2, b, i, j] and Q[0, b, i, j] and d < best:
                    best = d
                    closest = j
                vis = pair and d < C[_SIGHT, b, i]
                if vis and d < seen_d:
                    seen_d = d
                pv = pick[e * N + j] if vis else -1.0
                if pv > pbest:
                    pbest = pv
                    chase = j
            target = last if keep else closest
            goal = z[b, chase] if seen_d < np.inf else default_goal[b, e]
            healer = has_healers and C[_HEALER, b, i] > 0
            if healer:
                target, goal = _enemy_healer(b, e, z, F, alive, C, P, dist, goal, N)
            delta = goal - z[b, i]
            if abs(delta.real) >= abs(delta.imag):
                move = complex(np.sign(delta.real), 0.0)
            else:
                move = complex(0.0, np.sign(delta.imag))
            vel[i] = move if target < 0 else 0j
            if healer:
                enemy_target[b, e] = -1
                tgt[i] = target + N if target >= 0 else -1
            else:
                enemy_target[b, e] = target
                tgt[i] = target

    @_jit()
    def _pairs(b, alive, P, pi, pj, pr):  # pragma: no cover - compiled
        """The living ground pairs (i < j) that collide: (i, j, half radius sum) lists."""
        U = alive.shape[1]
        n = 0
        for i in range(U):
            if not alive[b, i]:
                continue
            for j in range(i + 1, U):
                r = P[3, b, i, j]
                if r != 0.0 and alive[b, j]:
                    pi[n], pj[n], pr[n] = i, j, r
                    n += 1
        return n

    @njit(cache=True, inline="always")
    def _hit(b, i, v, k, hp, sh, since, C, P, armor_on_shields):  # pragma: no cover - compiled
        """One hit of unit i on unit v (core._apply_hits): shields first; SMAX's armor on
        the whole hit, SC2's per attack on the part that reaches hit points."""
        h, s = hp[v], sh[v]
        if armor_on_shields:
            dmg = P[0, b, i, v]
            ab = min(s, dmg)
            s = s - ab
            h = h - (dmg - ab)
        else:
            raw = P[1, b, i, v]
            if raw > 0:
                arm = C[_ARMOR, b, v]
                for _q in range(int(C[_NATT, b, i])):
                    ab = min(s, raw)
                    rem = raw - ab
                    s = s - ab
                    if rem > 0:
                        h = h - max(0.5, rem - arm)
        hp[v], sh[v] = h, s
        since[v] = -1.0 - k

    @_jit()
    def _step_env(
        b,
        actions,
        draws,
        z,
        F,
        alive,
        steps,
        won,
        done,
        last_action,
        enemy_target,
        last_target,
        max_reward,
        default_goal,
        C,
        P,
        Q,
        onehot,
        dir_table,
        attack_table,
        heal_table,
        fp,
        ip,
        reward,
        terminated,
        truncated,
        dz,
        dist,
        avail,
        obs,
        state,
    ):  # pragma: no cover - compiled
        """core.SMACCore.step for battle ``b`` (the reference's operations in its order)."""
        U = z.shape[1]
        N = ip[1]
        ticks = ip[0]
        dt = fp[0]
        attack_move = fp[1] > 0
        armor_on_shields = fp[2] > 0
        has_healers = fp[6] > 0
        x0, y0, x1, y1 = fp[19], fp[20], fp[21], fp[22]
        hp, sh, en, wait, since = F[0, b], F[1, b], F[2, b], F[3, b], F[4, b]
        # decode the allies' actions
        vel = np.empty(U, np.complex128)
        tgt = np.empty(U, np.int64)
        for i in range(N):
            a = actions[b, i]
            vel[i] = dir_table[a]
            tgt[i] = attack_table[a]
            if fp[26] > 0 and C[_HEALER, b, i] > 0:
                tgt[i] = heal_table[a]
        n_u = ticks * U
        if attack_move:
            _enemy_sc2(b, z, F, alive, C, P, Q, dist, enemy_target, default_goal, tgt, vel, fp, N)
        else:
            _enemy_smax(b, z, alive, C, P, Q, dist, enemy_target, default_goal, tgt, vel, draws[b, n_u:], fp, N, F)
        for i in range(U):
            last_target[b, i] = tgt[i]
            sp = C[_SPEEDDT, b, i] if alive[b, i] else 0.0
            vel[i] = vel[i] * sp
        armed = np.zeros(U, np.bool_)
        tsafe = np.empty(U, np.int64)
        reach_t = np.empty(U)
        for i in range(U):
            t = tgt[i]
            tsafe[i] = t if t >= 0 else i
            armed[i] = t >= 0 and alive[b, i] and alive[b, t]
            reach_t[i] = P[2, b, i, tsafe[i]]
        alive0 = alive[b].copy()
        pool0 = np.empty(U)
        for i in range(U):
            pool0[i] = (max(hp[i], 0.0) + sh[i]) if alive[b, i] else 0.0
        zl = z[b].copy()  # positions of this battle, written back at the end of the step
        pi = np.empty(U * U // 2 + 1, np.int64)
        pj = np.empty(U * U // 2 + 1, np.int64)
        pr = np.empty(U * U // 2 + 1)
        n_pairs = _pairs(b, alive, P, pi, pj, pr)
        mv = np.empty(U, np.complex128)
        push = np.empty(U, np.complex128)
        fire = np.zeros(U, np.bool_)
        gained = np.zeros(U)
        amount = np.zeros(U)
        for k in range(ticks):
            # moves: ordered directions, or the attack order's walk toward an unreached target
            for i in range(U):
                mv[i] = vel[i]
            if attack_move:
                for i in range(U):
                    if armed[i]:
                        delta = zl[tsafe[i]] - zl[i]
                        gap = _abs(delta)
                        if gap - reach_t[i] > 0:
                            sp = C[_SPEEDDT, b, i] if alive[b, i] else 0.0
                            mv[i] = delta * (sp / max(gap, 1e-12))
            for i in range(U):
                p = zl[i] + mv[i]
                zl[i] = complex(min(max(p.real, x0), x1), min(max(p.imag, y0), y1))
            # push overlapping living ground units apart (all from the same positions); a
            # pair whose squared distance clearly exceeds (radius sum)^2 adds exactly 0, so
            # the square root is only taken for pairs that may touch
            for i in range(U):
                push[i] = 0j
            for q in range(n_pairs):
                i, j, r = pi[q], pj[q], pr[q]
                d = zl[i] - zl[j]
                d2 = d.real * d.real + d.imag * d.imag
                if d2 > 4.0 * r * r * (1.0 + 1e-9) + 1e-12:
                    continue
                o = r / (math.sqrt(d2) + 1e-6) - 0.5
                if o > 0.0:
                    push[i] += o * d
                    push[j] -= o * d
            for i in range(U):
                zl[i] += push[i]
            # who fires this tick
            n_fire = 0
            for i in range(U):
                fire[i] = False
                if armed[i] and wait[i] <= k:
                    if _abs(zl[tsafe[i]] - zl[i]) <= reach_t[i]:
                        fire[i] = True
                        n_fire += 1
            if n_fire == 0:
                continue
            # heals first (core._heal)
            if has_healers:
                for t in range(U):
                    gained[t] = 0.0
                any_heal = False
                for i in range(U):
                    amount[i] = 0.0
                    if fire[i] and C[_HEALER, b, i] > 0:
                        amount[i] = min(C[_HEALRATE, b, i] * dt, en[i] * HP_PER_ENERGY)
                        gained[tsafe[i]] += amount[i]
                        any_heal = True
                        fire[i] = False
                if any_heal:
                    applied = np.empty(U)
                    for t in range(U):
                        applied[t] = min(gained[t], C[_HPMAX, b, t] - hp[t]) * C[_BIO, b, t]
                    for i in range(U):
                        if amount[i] != 0.0:
                            t = tsafe[i]
                            frac = applied[t] / gained[t] if gained[t] > 0 else 0.0
                            en[i] -= amount[i] * frac / HP_PER_ENERGY
                    for t in range(U):
                        hp[t] += applied[t]
            # hits, attacker by attacker in ascending order (so each victim takes its hits in
            # ascending attacker order, as the reference); area attacks pick their victims
            # from the tick's living units, and nobody dies before every hit has landed
            for i in range(U):
                if not fire[i]:
                    continue
                t = tsafe[i]
                kam = C[_KAMI, b, i] > 0
                spl = fp[3] > 0 and C[_SPW, b, i] > 0
                if not (kam or spl):
                    _hit(b, i, t, k, hp, sh, since, C, P, armor_on_shields)
                    continue
                cax = 1.0 + 0j
                if spl:
                    axis = zl[t] - zl[i]
                    na = _abs(axis)
                    axis = complex(axis.real / na, axis.imag / na) if na > 0 else 1.0 + 0j
                    cax = np.conj(axis)
                for v in range(U):
                    if not (Q[0, b, i, v] and alive[b, i] and alive[b, v]):
                        continue
                    r = C[_RADIUS, b, v]
                    if kam:
                        hit = _abs(zl[v] - zl[i]) <= C[_KAMI, b, i] + r
                    else:
                        rel = (zl[v] - zl[t]) * cax
                        oa = max(abs(rel.real) - C[_SPD, b, i] / 2, 0.0)
                        oc = max(abs(rel.imag) - C[_SPW, b, i] / 2, 0.0)
                        hit = oa**2 + oc**2 <= r**2 or v == t
                    if hit:
                        _hit(b, i, v, k, hp, sh, since, C, P, armor_on_shields)
            died = False
            for i in range(U):
                if fire[i]:
                    if C[_KAMI, b, i] > 0:
                        hp[i] = 0.0
                    else:
                        u = draws[b, k * U + i]
                        wait[i] = u * 3.0 + (k + C[_CDT, b, i])
            for i in range(U):
                now = hp[i] > 0.0
                if alive[b, i] and not now:
                    died = True
                alive[b, i] = now
            if died:
                n_pairs = _pairs(b, alive, P, pi, pj, pr)
                for i in range(U):
                    if not alive[b, i]:
                        vel[i] = 0j
                        armed[i] = False
                    elif armed[i] and not alive[b, tsafe[i]]:
                        armed[i] = False
        for i in range(U):
            z[b, i] = zl[i]
        # end of step
        for i in range(U):
            wait[i] -= ticks
            p = z[b, i]
            z[b, i] = complex(min(max(p.real, x0), x1), min(max(p.imag, y0), y1))
            since[i] += ticks
        steps[b] += 1
        if fp[8] > 0:  # shields: 2/s once 10 s passed without damage
            delay = SHIELD_DELAY / dt
            rate = SHIELD_REGEN * dt
            for i in range(U):
                el = min(max(since[i] - delay, 0.0), float(ticks)) * rate
                el = el * (1.0 if alive[b, i] else 0.0) + sh[i]
                sh[i] = min(el, C[_SHMAX, b, i])
        if fp[4] > 0:  # zerg regeneration
            per = ticks * dt
            for i in range(U):
                regen = hp[i] + C[_REGEN, b, i] * per * (1.0 if alive[b, i] else 0.0)
                hp[i] = min(regen, C[_HPMAX, b, i])
        if has_healers:
            er = ENERGY_REGEN * ticks * dt
            for i in range(U):
                add = er * (1.0 if C[_HEALER, b, i] > 0 else 0.0)
                en[i] = min(en[i] + add, ENERGY_MAX)
        for i in range(N):
            last_action[b, i] = actions[b, i]
        # reward (core._reward)
        dmg_a = 0.0
        dmg_e = 0.0
        deaths_a = 0
        deaths_e = 0
        for i in range(U):
            if not alive0[i]:
                continue
            now = (max(hp[i], 0.0) + sh[i]) if alive[b, i] else 0.0
            lost = pool0[i] - now
            if i < N:
                dmg_a += lost
                deaths_a += 0 if alive[b, i] else 1
            else:
                dmg_e += lost
                deaths_e += 0 if alive[b, i] else 1
        if fp[11] > 0:
            dmg_a = 0.0
            dmg_e = 0.0
        gained_r = dmg_e + deaths_e * fp[15]
        if fp[9] > 0:
            r = abs(gained_r) if fp[10] > 0 else max(gained_r, 0.0)
        else:
            r = gained_r - fp[18] * (dmg_a + deaths_a * fp[15])
        stand_a = False
        stand_e = False
        no_healers = not (fp[5] > 0 and has_healers)
        for i in range(U):
            if alive[b, i] and (no_healers or C[_HEALER, b, i] == 0):
                if i < N:
                    stand_a = True
                else:
                    stand_e = True
        w = stand_a and not stand_e
        lo = stand_e and not stand_a
        term = not (stand_a and stand_e)
        if fp[12] > 0:
            r = (1.0 if w else 0.0) - (1.0 if lo else 0.0)
        else:
            r = r + fp[16] * (1.0 if w else 0.0) + fp[17] * (1.0 if lo else 0.0)
        if fp[13] > 0:
            r = r * (fp[14] / max_reward[b])
        reward[b] = r
        terminated[b] = term
        truncated[b] = steps[b] >= ip[2] and not term
        won[b] = won[b] or w
        done[b] = term or truncated[b]
        _refresh_env(b, z, alive, C, P, Q, fp, ip, dz, dist, avail)
        _features_env(b, z, F, alive, steps, last_action, C, onehot, fp, ip, dz, dist, avail, obs, state)

    @_jit()
    def step_serial(
        actions,
        draws,
        z,
        F,
        alive,
        steps,
        won,
        done,
        last_action,
        enemy_target,
        last_target,
        max_reward,
        default_goal,
        C,
        P,
        Q,
        onehot,
        dir_table,
        attack_table,
        heal_table,
        fp,
        ip,
        reward,
        terminated,
        truncated,
        dz,
        dist,
        avail,
        obs,
        state,
        invalid,
    ):  # pragma: no cover - compiled
        """Steps every battle; returns -2 (a battle is finished), the flat index of the first
        forbidden action (nothing stepped), or -1 (stepped)."""
        bad = _check_actions(actions, avail, alive, invalid, fp[25] > 0, done)
        if bad != -1:
            return bad
        for b in range(actions.shape[0]):
            _step_env(
                b, actions, draws, z, F, alive, steps, won, done, last_action, enemy_target, last_target,
                max_reward, default_goal, C, P, Q, onehot, dir_table, attack_table, heal_table, fp, ip,
                reward, terminated, truncated, dz, dist, avail, obs, state,
            )  # fmt: skip
        return -1

    @_jit(parallel=True)
    def step_parallel(
        actions,
        draws,
        z,
        F,
        alive,
        steps,
        won,
        done,
        last_action,
        enemy_target,
        last_target,
        max_reward,
        default_goal,
        C,
        P,
        Q,
        onehot,
        dir_table,
        attack_table,
        heal_table,
        fp,
        ip,
        reward,
        terminated,
        truncated,
        dz,
        dist,
        avail,
        obs,
        state,
        invalid,
    ):  # pragma: no cover - compiled
        """step_serial with battles spread over numba's threads."""
        bad = _check_actions(actions, avail, alive, invalid, fp[25] > 0, done)
        if bad != -1:
            return bad
        for b in prange(actions.shape[0]):
            _step_env(
                b, actions, draws, z, F, alive, steps, won, done, last_action, enemy_target, last_target,
                max_reward, default_goal, C, P, Q, onehot, dir_table, attack_table, heal_table, fp, ip,
                reward, terminated, truncated, dz, dist, avail, obs, state,
            )  # fmt: skip
        return -1

    @_jit()
    def refresh_envs(
        ids, z, F, alive, steps, last_action, C, P, Q, onehot, fp, ip, dz, dist, avail, obs, state
    ):  # pragma: no cover
        """Masks, observations and state of battles ``ids`` (after reset / place)."""
        for b in ids:
            _refresh_env(b, z, alive, C, P, Q, fp, ip, dz, dist, avail)
            _features_env(b, z, F, alive, steps, last_action, C, onehot, fp, ip, dz, dist, avail, obs, state)

    @_jit()
    def settle(b, z, P, fp):  # pragma: no cover - compiled
        """At reset (everyone alive): one push of overlapping ground units, then the clamp
        to the playable area (core.SMACCore._push + _clamp)."""
        U = z.shape[1]
        push = np.zeros(U, np.complex128)
        for i in range(U):
            for j in range(i + 1, U):
                r = P[3, b, i, j]
                if r == 0.0:
                    continue
                d = z[b, i] - z[b, j]
                o = r / (_abs(d) + 1e-6) - 0.5
                if o > 0.0:
                    push[i] += o * d
                    push[j] -= o * d
        x0, y0, x1, y1 = fp[19], fp[20], fp[21], fp[22]
        for i in range(U):
            p = z[b, i] + push[i]
            z[b, i] = complex(min(max(p.real, x0), x1), min(max(p.imag, y0), y1))

    @_jit()
    def first_max_of_product(u, avail, out):  # pragma: no cover - compiled
        """out[b, i] = argmax_a u[b, i, a] * avail[b, i, a] (first maximum, as numpy)."""
        B, N, A = avail.shape
        for b in range(B):
            for i in range(N):
                best = -1.0
                arg = 0
                for a in range(A):
                    v = u[b, i, a] * (1.0 if avail[b, i, a] else 0.0)
                    if v > best:
                        best = v
                        arg = a
                out[b, i] = arg

    check_actions = _check_actions


def compile_report() -> dict[str, float]:
    """Seconds the first call of each compiled entry point took in this process
    (compilation, or loading numba's on-disk cache)."""
    return dict(_COMPILE_SECONDS)


def timed_first_call(name: str, fn, *args):
    """Calls ``fn`` and records the first call's wall time under ``name``."""
    if name in _COMPILE_SECONDS:
        return fn(*args)
    t0 = time.perf_counter()
    out = fn(*args)
    _COMPILE_SECONDS[name] = time.perf_counter() - t0
    return out


def set_threads(n: int) -> None:
    """Threads for the parallel step (at most the machine's cores)."""
    if numba is not None:
        limit = int(getattr(numba.config, "NUMBA_NUM_THREADS", 1))
        numba.set_num_threads(max(1, min(int(n), os.cpu_count() or 1, limit)))
