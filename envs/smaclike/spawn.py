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


def _layout(cx: float, cy: float, radii: list[float], mirror: bool = False) -> list[tuple[float, float]]:
    """Positions of a group on a ceil(sqrt(n)) square grid centred on (cx, cy) (SMAClite's
    spawn); ``mirror`` flips the grid in x (SMAClite lays the enemy side out mirrored).
    Plain Python: a few dozen units at most, where numpy's per-call overhead dominates."""
    n = len(radii)
    if n == 0:
        return []
    side = math.ceil(math.sqrt(n))
    rows = math.ceil(n / side)
    pitch = 2.0 * max(radii) + GRID_GAP
    sign = -1.0 if mirror else 1.0
    return [
        (cx + sign * ((k % side) - (side - 1) / 2.0) * pitch, cy + ((rows - 1) / 2.0 - k // side) * pitch)
        for k in range(n)
    ]


_DIAGONALS = ((-1.0, -1.0), (-1.0, 1.0), (1.0, 1.0), (1.0, -1.0))


def start_positions(sc: Scenario, mode: str, radii: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n_allies + n_enemies, 2) positions for one episode.

    Args:
        sc: the scenario (sizes, map, groups, geometry).
        mode: "map", "classic", "surrounded" or "reflect".
        radii: (U,) radii of this episode's units, allies first.
        rng: the env's generator.
    """
    n, m = sc.n_allies, len(radii) - sc.n_allies
    w, h = (float(v) for v in sc.map_size)
    cx, cy = w / 2.0, h / 2.0
    r = radii.tolist()
    ra, re = r[:n], r[n:]
    pos: list[tuple[float, float]] = []
    if mode == "map":
        for groups, rs, mirror, default in (
            (sc.ally_groups, ra, False, (9.0, cy)),
            (sc.enemy_groups, re, True, (w - 9.0, cy)),
        ):
            start = 0
            for gx, gy, count in groups or ((default[0], default[1], len(rs)),):
                pos += _layout(gx, gy, rs[start : start + int(count)], mirror)
                start += int(count)
    elif mode == "classic":  # SMAX: two random clumps at a quarter and three quarters of the width
        spread = max(2.0, 0.6 * math.sqrt(max(n, m)))
        offsets = rng.uniform(-spread, spread, (n + m, 2)).tolist()
        pos = [(w / 4 + dx, cy + dy) for dx, dy in offsets[:n]] + [(3 * w / 4 + dx, cy + dy) for dx, dy in offsets[n:]]
    elif mode == "surrounded":
        pos = _layout(cx, cy, ra)
        # 1-4 groups on distinct diagonals, sizes multinomial (a group may be empty)
        n_groups = int(rng.integers(1, 5))
        sizes = rng.multinomial(m, [1.0 / n_groups] * n_groups).tolist()
        t = rng.random(n_groups).tolist()
        diag = rng.permutation(4)[:n_groups].tolist()
        # outer points: TRAMA's centre +- a quarter of the map (dist_ratio 0.5), SMACv2's corners
        ox, oy = (w / 4, h / 4) if sc.geometry == "trama" else (cx, cy)
        start = 0
        for size, tk, d in zip(sizes, t, diag):
            sx, sy = _DIAGONALS[d]
            gx = (cx + 2.0 * sx) * tk + (cx + sx * ox) * (1.0 - tk)
            gy = (cy + 2.0 * sy) * tk + (cy + sy * oy) * (1.0 - tk)
            pos += _layout(gx, gy, re[start : start + size])
            start += size
    elif mode == "reflect":
        if sc.geometry == "trama":  # x in [w/4, w/2 - 1), y in [h/4, 3h/4)
            xs, ys = rng.uniform(w / 4, cx - 1, n).tolist(), rng.uniform(h / 4, 3 * h / 4, n).tolist()
        else:  # SMACv2: x in [0, w/2 - 1), y in [0, h)
            xs, ys = rng.uniform(0, cx - 1, n).tolist(), rng.uniform(0, h, n).tolist()
        allies = list(zip(xs, ys))
        extra = max(0, m - n)
        ex, ey = rng.uniform(cx, w, extra).tolist(), rng.uniform(0, h, extra).tolist()
        pos = allies + [(w - x, y) for x, y in allies[: min(n, m)]] + list(zip(ex, ey))
    else:
        raise ValueError(f"unknown start mode {mode!r}")
    x0, y0, x1, y1 = sc.bounds
    return np.array(
        [(min(max(x, x0 + 0.5), x1 - 0.5), min(max(y, y0 + 0.5), y1 - 0.5)) for x, y in pos], dtype=np.float64
    ).reshape(-1, 2)
