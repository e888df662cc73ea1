"""Scripted ally policies on the batched core: baselines, balance tests and GIF demos.

They read the core's arrays (positions, health, masks) directly and return (B, N) actions,
so they cost a few numpy calls per step at any batch size. Not learning code.
"""

from __future__ import annotations

import numpy as np

from envs.smaclike.core import N_FIXED_ACTIONS, SMACCore

POLICIES = ("random", "focus_fire", "stop")


def random_actions(core: SMACCore, rng: np.random.Generator) -> np.ndarray:
    """Uniform over each agent's available actions."""
    avail = core._avail
    return (rng.random(avail.shape) * avail).argmax(-1)


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
    avail = core._avail
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
    score = np.where(core._avail[:, :, 2:6], score, -np.inf)
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
