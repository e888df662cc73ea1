"""Observations and global state in SMAC's layouts: modes "smac_v1" and "smac_v2".

Sizes and layouts follow SMAC's code (oxwhirl/smac starcraft2.py get_obs_agent ~946-1125,
get_state ~1135-1258, the size formulas ~1260-1340) and SMACv2's (oxwhirl/smacv2
starcraft2.py ~1512-1686, ~1799-1995); facts with line numbers in the spec, "Fidelity to
SC2/SMAC".

Per agent, in order: move feasibility N/S/E/W (4); per enemy [attack available, distance,
dx, dy, health, (shield), (type one-hot)]; per other ally [visible, distance, dx, dy, health,
(shield), (type), (last action one-hot if obs_last_action)]; own [health, (shield), (x / map
width, y / map height: smac_v2), (type)]; (episode step / limit if obs_timestep_number).
Distances divide by the sight range: 9 for every unit in smac_v1, the unit's own (SMACv2's
table) in smac_v2. Units out of sight or dead, and everything of a dead agent, are zeros.

State: per ally [health, weapon cooldown / SMAC's max cooldown (healers: energy / 200),
(x - width / 2) / playable width, (y - height / 2) / playable height, (shield), (type)]; per
enemy [health, rel x, rel y, (shield), (type)]; (every ally's last action one-hot, if
state_last_action); (episode step / limit, if state_timestep_number). Dead units are zeros.

Shield slots exist for a side that can field shielded units (SMAC: protoss); the type
one-hot has ``Scenario.type_bits(mode)`` entries (smac_v1: 0 on single-type maps). Unlike
SMAC, allies and enemies share one type id table (SMAC numbers enemy types differently from
ally types on some maps, a known trap). SMAC v1's obs_timestep_number also reserves an
always-zero own slot (its observation is one longer than get_obs_size()); we do not copy that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from envs.smaclike.rules import GAME_LOOPS_PER_SECOND

if TYPE_CHECKING:
    from envs.smaclike.core import SMACCore

V1_SIGHT = 9.0  # smac starcraft2.py unit_sight_range
V1_SHOOT = 6.0  # smac starcraft2.py unit_shoot_range: the attack mask for every unit
V2_MIN_ATTACK_RANGE = 2.0  # smacv2 configs' min_attack_range (use_unit_ranges: True)


@dataclass(frozen=True)
class Layout:
    """Sizes of one observation/state configuration.

    Attributes:
        mode: "smac_v1" or "smac_v2".
        n_agents, n_enemies, n_actions: the scenario's.
        type_bits: type one-hot length (0 = none).
        shield_ally: allies have a shield slot.
        shield_enemy: enemies have a shield slot.
        own_pos: own x / width, y / height in the observation (smac_v2's obs_own_pos).
        obs_last_action: other allies' last actions in the observation.
        state_last_action: every ally's last action in the state.
        obs_timestep: the episode's step / limit appended to observations.
        state_timestep: the same appended to the state.
    """

    mode: str
    n_agents: int
    n_enemies: int
    n_actions: int
    type_bits: int
    shield_ally: bool
    shield_enemy: bool
    own_pos: bool
    obs_last_action: bool
    state_last_action: bool
    obs_timestep: bool
    state_timestep: bool

    @property
    def enemy_feats(self) -> int:
        return 5 + self.shield_enemy + self.type_bits

    @property
    def ally_feats(self) -> int:
        return 5 + self.shield_ally + self.type_bits + self.n_actions * self.obs_last_action

    @property
    def own_feats(self) -> int:
        return 1 + self.shield_ally + 2 * self.own_pos + self.type_bits

    @property
    def obs_dim(self) -> int:
        n, m = self.n_agents, self.n_enemies
        return 4 + m * self.enemy_feats + (n - 1) * self.ally_feats + self.own_feats + self.obs_timestep

    @property
    def state_ally_feats(self) -> int:
        return 4 + self.shield_ally + self.type_bits

    @property
    def state_enemy_feats(self) -> int:
        return 3 + self.shield_enemy + self.type_bits

    @property
    def state_dim(self) -> int:
        n, m = self.n_agents, self.n_enemies
        last = n * self.n_actions * self.state_last_action
        return n * self.state_ally_feats + m * self.state_enemy_feats + last + self.state_timestep

    def obs_feature_names(self) -> list[str]:
        """One name per observation entry (SMACv2's get_obs_feature_names, our spelling)."""
        types = [f"type_{k}" for k in range(self.type_bits)]
        names = [f"move_{d}" for d in "NSEW"]
        for e in range(self.n_enemies):
            feats = ["attackable", "distance", "rel_x", "rel_y", "health"] + ["shield"] * self.shield_enemy + types
            names += [f"enemy_{e}_{f}" for f in feats]
        for a in range(self.n_agents - 1):
            last = [f"last_action_{k}" for k in range(self.n_actions)] if self.obs_last_action else []
            feats = ["visible", "distance", "rel_x", "rel_y", "health"] + ["shield"] * self.shield_ally + types + last
            names += [f"ally_{a}_{f}" for f in feats]
        own = ["health"] + ["shield"] * self.shield_ally + ["pos_x", "pos_y"] * self.own_pos + types
        names += [f"own_{f}" for f in own] + ["timestep"] * self.obs_timestep
        return names

    def state_feature_names(self) -> list[str]:
        types = [f"type_{k}" for k in range(self.type_bits)]
        names = []
        for a in range(self.n_agents):
            feats = ["health", "energy/cooldown", "rel_x", "rel_y"] + ["shield"] * self.shield_ally + types
            names += [f"ally_{a}_{f}" for f in feats]
        for e in range(self.n_enemies):
            feats = ["health", "rel_x", "rel_y"] + ["shield"] * self.shield_enemy + types
            names += [f"enemy_{e}_{f}" for f in feats]
        if self.state_last_action:
            names += [f"ally_{a}_last_action_{k}" for a in range(self.n_agents) for k in range(self.n_actions)]
        return names + ["timestep"] * self.state_timestep


def observations(core: SMACCore) -> np.ndarray:
    """(B, N, obs_dim) float32 observations of every ally."""
    lay = core.layout
    B, N, M = core.B, core.N, core.M
    tb = lay.type_bits
    alive = core.alive
    health = core.hp_frac()  # (B, U) hp / max, 0 for the dead
    inv_s = core.obs_inv_sight[:, :, None]  # (B, N, 1)
    dist = core.dist[:, :N]  # (B, N, U)
    vis = (dist < core.obs_sight[:, :, None]) & alive[:, None, :] & alive[:, :N, None]
    rel = -core.dz[:, :N] * inv_s  # (z_j - z_i) / sight
    out = np.zeros((B, N, lay.obs_dim), np.float32)
    out[..., :4] = core.avail[:, :, 2:6]
    o = 4
    # enemies
    F = lay.enemy_feats
    en = out[..., o : o + M * F].reshape(B, N, M, F)
    en[..., 0] = core.avail[:, :, 6 : 6 + M]
    en[..., 1] = dist[:, :, N:] * inv_s
    en[..., 2] = rel[:, :, N:].real
    en[..., 3] = rel[:, :, N:].imag
    en[..., 4] = health[:, None, N:]
    k = 5
    if lay.shield_enemy:
        en[..., 5] = core.shield_frac()[:, None, N:]
        k = 6
    if tb:
        en[..., k : k + tb] = core.type_onehot[:, None, N:]
    en *= vis[:, :, N:, None]
    o += M * F
    # other allies
    if N > 1:
        F = lay.ally_feats
        al = np.zeros((B, N, N, F), np.float32)
        al[..., 0] = 1.0
        al[..., 1] = dist[:, :, :N] * inv_s
        al[..., 2] = rel[:, :, :N].real
        al[..., 3] = rel[:, :, :N].imag
        al[..., 4] = health[:, None, :N]
        k = 5
        if lay.shield_ally:
            al[..., 5] = core.shield_frac()[:, None, :N]
            k = 6
        if tb:
            al[..., k : k + tb] = core.type_onehot[:, None, :N]
            k += tb
        if lay.obs_last_action:
            al[..., k:] = core.last_action_onehot()[:, None, :, :]
        al *= vis[:, :, :N, None]
        others = al.reshape(B, N * N, F).take(core.others_flat, axis=1)
        out[..., o : o + (N - 1) * F] = others.reshape(B, N, (N - 1) * F)
        o += (N - 1) * F
    # own
    out[..., o] = health[:, :N]
    o += 1
    if lay.shield_ally:
        out[..., o] = core.shield_frac()[:, :N]
        o += 1
    if lay.own_pos:
        out[..., o] = core.pos[:, :N, 0] / core.map_w
        out[..., o + 1] = core.pos[:, :N, 1] / core.map_h
        o += 2
    if tb:
        out[..., o : o + tb] = core.type_onehot[:, :N]
        o += tb
    if lay.obs_timestep:
        out[..., o] = (core.steps / core.episode_limit)[:, None]
    out *= alive[:, :N, None]
    return out


def state(core: SMACCore) -> np.ndarray:
    """(B, state_dim) float32 global state; the task id is never part of it."""
    lay = core.layout
    B, N, M = core.B, core.N, core.M
    tb = lay.type_bits
    alive = core.alive
    health = core.hp_frac()
    x0, y0, x1, y1 = core.bounds
    relx = (core.pos[..., 0] - core.map_w / 2) / (x1 - x0)
    rely = (core.pos[..., 1] - core.map_h / 2) / (y1 - y0)
    out = np.zeros((B, lay.state_dim), np.float32)
    Fa = lay.state_ally_feats
    al = out[:, : N * Fa].reshape(B, N, Fa)
    al[..., 0] = health[:, :N]
    loops = np.maximum(core.wait[:, :N], 0.0) * (core.dt * GAME_LOOPS_PER_SECOND)
    cd = loops / core.stats["max_cooldown"][:, :N]
    if core.has_healers:
        cd = np.where(core.stats["healer"][:, :N] > 0, core.energy[:, :N] / core.stats["max_cooldown"][:, :N], cd)
    al[..., 1] = cd
    al[..., 2] = relx[:, :N]
    al[..., 3] = rely[:, :N]
    k = 4
    if lay.shield_ally:
        al[..., 4] = core.shield_frac()[:, :N]
        k = 5
    if tb:
        al[..., k:] = core.type_onehot[:, :N]
    al *= alive[:, :N, None]
    o = N * Fa
    Fe = lay.state_enemy_feats
    en = out[:, o : o + M * Fe].reshape(B, M, Fe)
    en[..., 0] = health[:, N:]
    en[..., 1] = relx[:, N:]
    en[..., 2] = rely[:, N:]
    k = 3
    if lay.shield_enemy:
        en[..., 3] = core.shield_frac()[:, N:]
        k = 4
    if tb:
        en[..., k:] = core.type_onehot[:, N:]
    en *= alive[:, N:, None]
    o += M * Fe
    if lay.state_last_action:
        out[:, o : o + N * lay.n_actions] = core.last_action_onehot().reshape(B, -1)
        o += N * lay.n_actions
    if lay.state_timestep:
        out[:, o] = core.steps / core.episode_limit
    return out
