"""Start positions: where a battle's units stand at reset, per start mode and geometry.

Sources (facts, no code): SMAClite's map files and spawn layout (smaclite.py ~549-594),
SMACv2's distributions.py (surrounded ~290-361, reflect ~226-287) and TRAMA's
distributions_multigoal.py (surrounded ~330-413, reflect ~261-320); spec "Fidelity to
SC2/SMAC". SC2 spreads units ordered onto one point; here a group stands on SMAClite's
square grid around its point, so no two units start on top of each other.
"""

from __future__ import annotations

import math

import numpy as np

from envs.smaclike.scenarios import Scenario

GRID_GAP = 0.05  # SMAClite's buffer between neighbouring units of a group


def group_layout(centre: tuple[float, float], radii: np.ndarray, mirror: bool = False) -> np.ndarray:
    """(n, 2) positions of a group on a ceil(sqrt(n)) square grid centred on ``centre``
    (SMAClite's spawn); ``mirror`` flips the grid in x (SMAClite lays the enemy side out
    mirrored)."""
    n = len(radii)
    if n == 0:
        return np.zeros((0, 2))
    side = math.ceil(math.sqrt(n))
    rows = math.ceil(n / side)
    pitch = 2.0 * float(max(radii)) + GRID_GAP
    sign = -1.0 if mirror else 1.0
    cx, cy = centre
    # a few dozen units at most: plain Python beats numpy's per-call overhead here
    return np.array(
        [
            (cx + sign * ((k % side) - (side - 1) / 2.0) * pitch, cy + ((rows - 1) / 2.0 - k // side) * pitch)
            for k in range(n)
        ]
    )


def _groups(centres: np.ndarray, sizes: np.ndarray, radii: np.ndarray, mirror: bool) -> np.ndarray:
    out, start = [], 0
    for c, n in zip(centres, sizes):
        out.append(group_layout((float(c[0]), float(c[1])), radii[start : start + n], mirror))
        start += n
    return np.concatenate(out) if out else np.zeros((0, 2))


def start_positions(sc: Scenario, mode: str, radii: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n_allies + n_enemies, 2) positions for one episode.

    Args:
        sc: the scenario (sizes, map, groups, geometry).
        mode: "map", "classic", "surrounded" or "reflect".
        radii: (U,) radii of this episode's units, allies first.
        rng: the env's generator.
    """
    n, m = sc.n_allies, len(radii) - sc.n_allies
    w, h = sc.map_size
    cx, cy = w / 2.0, h / 2.0
    ra, re = radii[:n], radii[n:]
    if mode == "map":
        ag = sc.ally_groups or ((9.0, cy, n),)
        eg = sc.enemy_groups or ((w - 9.0, cy, m),)
        allies = _groups(np.array([g[:2] for g in ag]), np.array([g[2] for g in ag], int), ra, False)
        enemies = _groups(np.array([g[:2] for g in eg]), np.array([g[2] for g in eg], int), re, True)
    elif mode == "classic":  # SMAX: two random clumps at a quarter and three quarters of the width
        spread = max(2.0, 0.6 * np.sqrt(max(n, m)))
        allies = np.array([w / 4, cy]) + rng.uniform(-spread, spread, (n, 2))
        enemies = np.array([3 * w / 4, cy]) + rng.uniform(-spread, spread, (m, 2))
    elif mode == "surrounded":
        allies = group_layout((cx, cy), ra)
        # 1-4 groups on distinct diagonals, sizes multinomial (a group may be empty)
        n_groups = int(rng.integers(1, 5))
        sizes = rng.multinomial(m, np.full(n_groups, 1.0 / n_groups))
        t = rng.uniform(0.0, 1.0, n_groups)
        diag = rng.choice(4, size=n_groups, replace=False)
        signs = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [1.0, -1.0]])[diag]
        inner = np.array([cx, cy]) + 2.0 * signs
        if sc.geometry == "trama":  # outer points at centre +- half the half-map (dist_ratio 0.5)
            outer = np.array([cx, cy]) + signs * np.array([w / 4, h / 4])
        else:  # SMACv2: the map corners
            outer = np.array([cx, cy]) + signs * np.array([cx, cy])
        centres = inner * t[:, None] + outer * (1.0 - t[:, None])
        enemies = _groups(centres, sizes, re, False)
    elif mode == "reflect":
        if sc.geometry == "trama":  # x in [w/4, w/2 - 1), y in [h/4, 3h/4)
            allies = np.column_stack([rng.uniform(w / 4, cx - 1, n), rng.uniform(h / 4, 3 * h / 4, n)])
        else:  # SMACv2: x in [0, w/2 - 1), y in [0, h)
            allies = np.column_stack([rng.uniform(0, cx - 1, n), rng.uniform(0, h, n)])
        mirrored = np.column_stack([w - allies[: min(n, m), 0], allies[: min(n, m), 1]])
        extra = np.column_stack([rng.uniform(cx, w, max(0, m - n)), rng.uniform(0, h, max(0, m - n))])
        enemies = np.concatenate([mirrored, extra])
    else:
        raise ValueError(f"unknown start mode {mode!r}")
    x0, y0, x1, y1 = sc.bounds
    pos = np.concatenate([allies, enemies])
    pos[:, 0] = np.clip(pos[:, 0], x0 + 0.5, x1 - 0.5)
    pos[:, 1] = np.clip(pos[:, 1], y0 + 0.5, y1 - 0.5)
    return pos
