"""Scripted ally policies on the batched core: baselines, balance tests and GIF demos.

They read the core's arrays (positions, health, masks) directly and return (B, N) actions,
so they cost a few numpy calls per step at any batch size. Not learning code.
"""

from __future__ import annotations

import numpy as np

from envs.smaclike import kernel
from envs.smaclike.core import N_FIXED_ACTIONS, SMACCore

POLICIES = ("random", "focus_fire", "stop")


def random_actions(core: SMACCore, rng: np.random.Generator) -> np.ndarray:
    """Uniform over each agent's available actions (the same actions with either backend:
    the argmax of uniforms times the mask, compiled when the core is)."""
    avail = core.avail
    u = rng.random(avail.shape)
    if core.backend == "numba":
        out = np.empty(avail.shape[:2], np.int64)
        kernel.first_max_of_product(u, avail, out)
        return out
    return (u * avail).argmax(-1)


def stop_actions(core: SMACCore, rng: np.random.Generator | None = None) -> np.ndarray:
    """Every living agent holds position (1), dead ones no-op (0)."""
    return core.alive[:, : core.N].astype(np.int64)


def focus_fire_actions(
    core: SMACCore, rng: np.random.Generator | None = None, retreat: float = 0.0, stutter: bool = True
) -> np.ndarray:
    """Classic focus fire: every agent shoots the weakest (hp + shield) enemy it can reach,
    preferring the team's common target; out of range it closes in on the closest living
    enemy. Healers heal the most damaged ally in range, else follow the team's centre."""
    N, M, B = core.N, core.M, core.B
    avail = core.avail
    shoot = avail[:, :, N_FIXED_ACTIONS : N_FIXED_ACTIONS + M]
    health = core.hp[:, N:] + core.shield[:, N:]
    health = np.where(core.alive[:, N:], health, np.inf)
    # the weakest enemy anyone can shoot is the team's target; ties break to lower index
    reachable = shoot.any(1)
    team_target = np.where(reachable, health, np.inf).argmin(1)
    own = np.where(shoot, health[:, None, :], np.inf)
    own_best = own.argmin(2)
    can_team = np.take_along_axis(shoot, team_target[:, None, None].repeat(N, 1), 2)[..., 0]
    target = np.where(can_team, team_target[:, None], own_best)
    # melee units (reach under 1) take the closest enemy they may attack: crowding one
    # target wastes them
    melee = core.stats["range"][:, :N] < 1.0
    near = np.where(shoot, core.dist[:, :N, N:], np.inf).argmin(2)
    target = np.where(melee, near, target)
    actions = np.where(shoot.any(2), N_FIXED_ACTIONS + target, 0)
    # otherwise close in on the closest living enemy
    d = core.dist[:, :N, N:]
    closest = np.where(core.alive[:, None, N:], d, np.inf).argmin(2)
    goal = np.take_along_axis(core.z[:, N:], closest, 1)
    moves = _toward(core, goal)
    actions = np.where(actions > 0, actions, moves)
    if stutter:
        # stutter-step: a hunted unit whose weapon stays cooling down for the whole next
        # step loses nothing by stepping back out of its hunter's range meanwhile
        hunted = (core.enemy_target[:, :, None] == np.arange(N)).any(1)
        cooling = core.wait[:, :N] > core.ticks
        away = _toward(core, 2 * core.z[:, :N] - goal)
        actions = np.where(hunted & cooling & (away > 1), away, actions)
    if retreat > 0:
        # a unit that an enemy is shooting and that is below `retreat` of its health steps
        # away, so the enemy (who keeps its target while shootable) loses volleys
        hunted = (core.enemy_target[:, :, None] == np.arange(N)).any(1)
        frac = (core.hp[:, :N] + core.shield[:, :N]) / (core.stats["hp"][:, :N] + core.stats["shield"][:, :N])
        away = _toward(core, 2 * core.z[:, :N] - goal)
        actions = np.where(hunted & (frac < retreat) & (away > 1), away, actions)
    if core.ally_healer:
        healer = core.stats["healer"][:, :N] > 0
        heal = avail[:, :, N_FIXED_ACTIONS : N_FIXED_ACTIONS + N]
        missing = (core.stats["hp"][:, :N] - core.hp[:, :N]) * core.alive[:, :N]
        score = np.where(heal, missing[:, None, :], -1.0)
        best = score.argmax(2)
        has = np.take_along_axis(score, best[..., None], 2)[..., 0] > 0
        centre = (core.z[:, :N] * core.alive[:, :N]).sum(1) / np.maximum(core.alive[:, :N].sum(1), 1)
        follow = _toward(core, np.broadcast_to(centre[:, None], (B, N)))
        actions = np.where(healer, np.where(has, N_FIXED_ACTIONS + best, follow), actions)
    return np.where(core.alive[:, :N], actions, 0)


def _toward(core: SMACCore, goal: np.ndarray) -> np.ndarray:
    """(B, N) move action toward goal: the available cardinal move best aligned, else stop."""
    N = core.N
    delta = goal - core.z[:, :N]
    # score of N, S, E, W = projection of the goal direction on each
    score = np.stack([delta.imag, -delta.imag, delta.real, -delta.real], -1)
    score = np.where(core.avail[:, :, 2:6], score, -np.inf)
    best = score.argmax(-1)
    ok = np.take_along_axis(score, best[..., None], -1)[..., 0] > 1e-9
    return np.where(ok, 2 + best, 1)


def scripted_actions(name: str, core: SMACCore, rng: np.random.Generator) -> np.ndarray:
    """Dispatches on a policy name from POLICIES."""
    if name == "random":
        return random_actions(core, rng)
    if name == "focus_fire":
        return focus_fire_actions(core, rng)
    if name == "stop":
        return stop_actions(core, rng)
    raise ValueError(f"unknown scripted policy {name!r}; expected one of {POLICIES}")


def smac_heuristic_actions(
    core: SMACCore, rng: np.random.Generator | None = None, targets: np.ndarray | None = None
) -> np.ndarray:
    """SMAC's ``heuristic_ai`` (smac starcraft2.py get_agent_action_heuristic), batched.

    Each living agent keeps its target while the target lives, else takes the closest
    living enemy its weapon can hit (SMAC: marauders skip medivacs); a healer keeps its
    target while it lives and is damaged, else takes the closest damaged living non-healer
    teammate (ties go to the lower index, as SMAC's strict ``<`` scan). The agent attacks
    (heals) the target when the mask allows it, else steps toward it along the axis of the
    larger offset (SMAC's heuristic_rest move; stop when that move is blocked). With no
    target a living agent stops (SMAC sends no command); dead agents no-op. Deterministic:
    ``rng`` is unused, kept for the scripted-policy signature.

    Args:
        core: the batched simulator.
        rng: unused.
        targets: (B, N) int array of kept targets (enemy index, or ally index for healers;
            -1 none), updated in place; None retargets every step.

    Returns:
        (B, N) int64 actions.
    """
    N = core.N
    alive = core.alive[:, :N]
    avail = core.avail_actions()
    unit_types = core.scenario.unit_types
    can_hit = np.array([[a.hit_damage(b) > 0 for b in unit_types] for a in unit_types])
    healer = np.array([u.is_healer for u in unit_types])[core.type[:, :N]]
    kept = np.full((core.B, N), -1, np.int64) if targets is None else targets
    # attackers: enemies alive and hittable
    hittable = core.alive[:, None, N:] & can_hit[core.type[:, :N, None], core.type[:, None, N:]]
    keep = (kept >= 0) & np.take_along_axis(core.alive[:, N:], np.maximum(kept, 0), 1)
    d_enemy = np.where(hittable, core.dist[:, :N, N:], np.inf)
    closest = np.where(hittable.any(2), d_enemy.argmin(2), -1)
    attack_t = np.where(keep & ~healer, kept, closest)
    # healers: living, damaged, non-healer teammates
    damaged = core.alive[:, :N] & (core.hp[:, :N] < core.stats["hp"][:, :N]) & ~healer
    keep_h = (kept >= 0) & np.take_along_axis(damaged, np.maximum(kept, 0), 1)
    mate = damaged[:, None, :] & ~np.eye(N, dtype=bool)
    closest_h = np.where(mate.any(2), np.where(mate, core.dist[:, :N, :N], np.inf).argmin(2), -1)
    heal_t = np.where(keep_h, kept, closest_h)
    target = np.where(healer, heal_t, attack_t)
    target = np.where(alive, target, -1)
    kept[...] = target
    has = target >= 0
    slot = N_FIXED_ACTIONS + np.maximum(target, 0)
    can_act = np.take_along_axis(avail, slot[..., None], 2)[..., 0] & has
    unit = np.where(healer, 0, N) + np.maximum(target, 0)
    delta = np.take_along_axis(core.z, unit, 1) - core.z[:, :N]
    east_west = np.abs(delta.real) > np.abs(delta.imag)
    move = np.where(east_west, np.where(delta.real > 0, 4, 5), np.where(delta.imag > 0, 2, 3))
    move = np.where(np.take_along_axis(avail, move[..., None], 2)[..., 0], move, 1)
    actions = np.where(can_act, slot, np.where(has, move, 1))
    return np.where(alive, actions, 0).astype(np.int64)
