"""Cave Escape levels as data, and their procedural generator (pure numpy).

A level is a square grid (a wall border around the interior) of tiles - empty, wall, lava,
moss - plus a goal cell, a start cell and a start direction. As JSON (``reset(options=
{"level": params})``, level-set files) it is::

    {"rows": ["###############", "#..M..#...L...#", ...], "goal": [row, col],
     "start": [row, col], "dir": 0}

with ``#`` wall, ``.`` empty, ``L`` lava, ``M`` moss; the goal and start cells are empty
tiles. Directions follow MiniGrid: 0 right, 1 down, 2 left, 3 up.

Generation (``generate(family, seed, ...)``) follows DRED's Cave Escape rules
(../shared/specs/cave-dred.md) on layouts from numpy families instead of Wave Function
Collapse presets (minigrid's wheel lacks WFC's pattern files):

- layouts: ``maze`` (recursive backtracker), ``rooms`` (a lattice of rooms joined by doors
  along a spanning tree, plus a few extra doors), ``caves`` (cellular automaton, largest
  open region kept), ``corridors`` (random straight corridor segments from a seed cell);
  the unseen families of the edge-case sets are ``pillars`` (an open room with isolated
  pillars) and ``open`` (an empty room). Every navigable cell is connected to every other.
- goal: uniform over navigable cells.
- moss: a fraction U(0.1, 0.25) of the navigable cells (goal excluded), drawn without
  replacement with weights linear in the rank of closeness to the goal (shortest path):
  the closest cell weighs N, the farthest 1 - moss is the cue near the goal.
- lava: a fraction U(0.1, 0.25) of the interior wall cells within 3 tiles (Chebyshev) of
  the navigable area, drawn with weights linear in the rank of Manhattan distance from the
  goal (farthest weighs most). Lava replaces walls, so the safe region stays connected.
- start: a navigable cell, not the goal, at the median shortest-path distance to the goal;
  a uniform direction.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

EMPTY, WALL, LAVA, MOSS = 0, 1, 2, 3
CHARS = {EMPTY: ".", WALL: "#", LAVA: "L", MOSS: "M"}
CODES = {c: k for k, c in CHARS.items()}
TRAIN_FAMILIES = ("maze", "rooms", "caves", "corridors")
UNSEEN_FAMILIES = ("pillars", "open")
FAMILIES = TRAIN_FAMILIES + UNSEEN_FAMILIES
DIRS = np.array([[0, 1], [1, 0], [0, -1], [-1, 0]])  # (drow, dcol) for MiniGrid's 0 right, 1 down, 2 left, 3 up


class CaveLevelError(ValueError):
    """A level dict or array that is not a valid Cave Escape level."""


@dataclass(frozen=True, eq=False)
class CaveLevel:
    """One level.

    Attributes:
        tiles: (size, size) int8 array of EMPTY/WALL/LAVA/MOSS; the border is wall.
        goal: (row, col) of the goal, an EMPTY tile.
        start: (row, col) of the agent's start, a navigable tile other than the goal.
        direction: the agent's start direction (0 right, 1 down, 2 left, 3 up).
    """

    tiles: np.ndarray
    goal: tuple[int, int]
    start: tuple[int, int]
    direction: int = 0

    def __post_init__(self) -> None:
        t = np.asarray(self.tiles)
        if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] < 5:
            raise CaveLevelError(f"tiles must be a square grid of side >= 5, got shape {t.shape}")
        if not np.isin(t, list(CHARS)).all():
            raise CaveLevelError(f"tiles hold codes {sorted(set(np.unique(t)) - set(CHARS))}; expected {sorted(CHARS)}")
        border = np.r_[t[0], t[-1], t[:, 0], t[:, -1]]
        if (border != WALL).any():
            raise CaveLevelError("the grid's border must be wall ('#')")
        for name in ("goal", "start"):
            r, c = getattr(self, name)
            if not (0 < r < t.shape[0] - 1 and 0 < c < t.shape[1] - 1):
                raise CaveLevelError(f"{name} {(r, c)} is outside the interior of a {t.shape[0]}x{t.shape[1]} grid")
        if t[self.goal] != EMPTY:
            raise CaveLevelError(f"goal {self.goal} is on a {CHARS[int(t[self.goal])]!r} tile; expected empty '.'")
        if t[self.start] not in (EMPTY, MOSS) or tuple(self.start) == tuple(self.goal):
            raise CaveLevelError(f"start {self.start} must be a navigable tile other than the goal")
        if self.direction not in (0, 1, 2, 3):
            raise CaveLevelError(f"dir must be 0, 1, 2 or 3, got {self.direction!r}")
        object.__setattr__(self, "tiles", t.astype(np.int8))
        object.__setattr__(self, "goal", (int(self.goal[0]), int(self.goal[1])))
        object.__setattr__(self, "start", (int(self.start[0]), int(self.start[1])))

    @property
    def size(self) -> int:
        return int(self.tiles.shape[0])

    def to_params(self) -> dict[str, Any]:
        """The JSON form (see the module docstring)."""
        rows = ["".join(CHARS[int(v)] for v in row) for row in self.tiles]
        return {"rows": rows, "goal": list(self.goal), "start": list(self.start), "dir": self.direction}

    @classmethod
    def from_params(cls, params: Any) -> CaveLevel:
        """Parses the JSON form, naming what is wrong."""
        if not isinstance(params, dict):
            raise CaveLevelError(
                f"a Cave Escape level is a dict with rows, goal, start, dir; got {type(params).__name__}"
            )
        missing = sorted({"rows", "goal", "start"} - set(params))
        extra = sorted(set(params) - {"rows", "goal", "start", "dir"})
        if missing or extra:
            raise CaveLevelError(f"level keys: missing {missing}, unknown {extra}; expected rows, goal, start, dir")
        rows = params["rows"]
        if not isinstance(rows, list) or not rows or not all(isinstance(r, str) for r in rows):
            raise CaveLevelError("level rows must be a non-empty list of strings")
        if len({len(r) for r in rows}) != 1:
            raise CaveLevelError(f"level rows have different lengths {sorted({len(r) for r in rows})}")
        bad = sorted({ch for r in rows for ch in r} - set(CODES))
        if bad:
            raise CaveLevelError(f"level rows hold characters {bad}; expected {sorted(CODES)}")
        tiles = np.array([[CODES[ch] for ch in r] for r in rows], np.int8)
        for key in ("goal", "start"):
            v = params[key]
            if not (isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(x, int) for x in v)):
                raise CaveLevelError(f"level {key} must be [row, col] integers, got {v!r}")
        direction = params.get("dir", 0)
        if isinstance(direction, bool) or not isinstance(direction, int):
            raise CaveLevelError(f"level dir must be an integer 0..3, got {direction!r}")
        return cls(tiles, tuple(params["goal"]), tuple(params["start"]), direction)

    def navigable(self) -> np.ndarray:
        """Cells the agent may stand on safely (empty or moss)."""
        return (self.tiles == EMPTY) | (self.tiles == MOSS)

    def distances(self) -> np.ndarray:
        """Shortest-path steps from every navigable cell to the goal (-1: unreachable)."""
        return bfs(self.navigable(), self.goal)

    def solvable(self) -> bool:
        """The goal is reachable from the start without crossing lava or walls."""
        return bool(self.distances()[self.start] >= 0)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CaveLevel) and self.to_params() == other.to_params()

    def __hash__(self) -> int:
        return hash((*tuple(self.to_params()["rows"]), self.goal, self.start, self.direction))


def check_level(params: Any, env_kwargs: dict[str, Any]) -> None:
    """The env's level check (``EnvSpec.level_check``): ``params`` parses as a level and
    fits the grid of an env built with ``env_kwargs`` (``size``, default 15); raises
    CaveLevelError naming the mismatch and the fix."""
    lv = CaveLevel.from_params(params)
    size = env_kwargs.get("size", 15)
    if isinstance(size, bool) or not isinstance(size, int):
        raise CaveLevelError(f"env kwargs size must be an integer grid side, got {size!r}")
    if lv.size != size:
        raise CaveLevelError(
            f"a {lv.size}x{lv.size} level, but the env is built with size={size}: set env.kwargs "
            f"{{size: {lv.size}}} (shiftrl evaluate: --env-kwarg size={lv.size})"
        )


def bfs(passable: np.ndarray, source: tuple[int, int]) -> np.ndarray:
    """4-neighbour shortest-path distances from ``source`` over ``passable`` (-1 elsewhere)."""
    dist = np.full(passable.shape, -1, np.int32)
    if not passable[source]:
        return dist
    dist[source] = 0
    queue = deque([source])
    H, W = passable.shape
    while queue:
        r, c = queue.popleft()
        d = dist[r, c] + 1
        for dr, dc in DIRS:
            nr, nc = r + dr, c + dc
            if 0 <= nr < H and 0 <= nc < W and passable[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = d
                queue.append((nr, nc))
    return dist


# -- layouts (True = open) ---------------------------------------------------------------------
def _maze(n: int, rng: np.random.Generator) -> np.ndarray:
    open_ = np.zeros((n, n), bool)
    cells = [(r, c) for r in range(1, n - 1, 2) for c in range(1, n - 1, 2)]
    start = cells[rng.integers(len(cells))]
    open_[start] = True
    stack = [start]
    while stack:
        r, c = stack[-1]
        nbrs = [(r + 2 * dr, c + 2 * dc) for dr, dc in DIRS]
        nbrs = [(a, b) for a, b in nbrs if 0 < a < n - 1 and 0 < b < n - 1 and not open_[a, b]]
        if not nbrs:
            stack.pop()
            continue
        a, b = nbrs[rng.integers(len(nbrs))]
        open_[(r + a) // 2, (c + b) // 2] = open_[a, b] = True
        stack.append((a, b))
    return open_


def _rooms(n: int, rng: np.random.Generator) -> np.ndarray:
    interior = n - 2
    k = max(2, round(interior / 4.5))  # rooms per side: 3 on 15x15, 10 on 45x45
    cuts = np.linspace(0, interior + 1, k + 1).round().astype(int)  # wall lines (interior coords + 1)
    open_ = np.zeros((n, n), bool)
    open_[1:-1, 1:-1] = True
    for x in cuts[1:-1]:
        open_[x, :] = False
        open_[:, x] = False
    # rooms (i, j) span rows cuts[i]+1 .. cuts[i+1]-1; a door joins neighbours through their shared wall
    edges = [((i, j), (i + di, j + dj)) for i in range(k) for j in range(k) for di, dj in ((0, 1), (1, 0))]
    edges = [e for e in edges if e[1][0] < k and e[1][1] < k]
    parent = {(i, j): (i, j) for i in range(k) for j in range(k)}

    def find(x: tuple[int, int]) -> tuple[int, int]:
        while parent[x] != x:
            x = parent[x]
        return x

    order = rng.permutation(len(edges))
    for idx in order:
        (i, j), (a, b) = edges[idx]
        tree = find((i, j)) != find((a, b))
        if tree or rng.random() < 0.25:  # a spanning tree plus extra doors (loops)
            parent[find((i, j))] = find((a, b))
            if a == i:  # door in the vertical wall at column cuts[j+1]
                r = rng.integers(cuts[i] + 1, cuts[i + 1])
                open_[r, cuts[j + 1]] = True
            else:  # door in the horizontal wall at row cuts[i+1]
                c = rng.integers(cuts[j] + 1, cuts[j + 1])
                open_[cuts[i + 1], c] = True
    return open_


def _largest_region(open_: np.ndarray) -> np.ndarray:
    best = np.zeros_like(open_)
    seen = np.zeros_like(open_)
    for r, c in zip(*np.nonzero(open_)):
        if seen[r, c]:
            continue
        region = bfs(open_, (int(r), int(c))) >= 0
        seen |= region
        if region.sum() > best.sum():
            best = region
    return best


def _caves(n: int, rng: np.random.Generator) -> np.ndarray:
    for _ in range(100):
        wall = rng.random((n, n)) < 0.45
        for _ in range(4):  # smoothing: a wall where >= 5 of the 8 neighbours are walls
            p = np.pad(wall, 1, constant_values=True)
            nb = sum(p[1 + dr : n + 1 + dr, 1 + dc : n + 1 + dc] for dr in (-1, 0, 1) for dc in (-1, 0, 1)) - wall
            wall = np.where(nb >= 5, True, np.where(nb <= 3, False, wall))
        open_ = ~wall
        open_[[0, -1], :] = open_[:, [0, -1]] = False
        open_ = _largest_region(open_)
        if open_.sum() >= 0.3 * (n - 2) ** 2:
            return open_
    raise RuntimeError("caves: no layout with 30% open cells in 100 draws")  # pragma: no cover


def _corridors(n: int, rng: np.random.Generator) -> np.ndarray:
    open_ = np.zeros((n, n), bool)
    r, c = n // 2, n // 2
    open_[r, c] = True
    target = 0.4 * (n - 2) ** 2
    while open_.sum() < target:
        d = DIRS[rng.integers(4)]
        for _ in range(rng.integers(2, 6)):
            nr, nc = r + d[0], c + d[1]
            if not (0 < nr < n - 1 and 0 < nc < n - 1):
                break
            r, c = nr, nc
            open_[r, c] = True
    return open_


def _pillars(n: int, rng: np.random.Generator) -> np.ndarray:
    open_ = np.zeros((n, n), bool)
    open_[1:-1, 1:-1] = True
    for r in range(2, n - 2, 2):
        for c in range(2, n - 2, 2):
            if rng.random() < 0.5:
                open_[r, c] = False  # isolated pillars never disconnect the room
    return open_


def _open(n: int, rng: np.random.Generator) -> np.ndarray:
    open_ = np.zeros((n, n), bool)
    open_[1:-1, 1:-1] = True
    return open_


LAYOUTS = {
    "maze": _maze,
    "rooms": _rooms,
    "caves": _caves,
    "corridors": _corridors,
    "pillars": _pillars,
    "open": _open,
}


def _rank_weights(keys: np.ndarray, descending: bool) -> np.ndarray:
    """Weights linear in rank: the best-ranked item weighs len(keys), the worst 1."""
    order = np.argsort(-keys if descending else keys, kind="stable")
    w = np.empty(len(keys))
    w[order] = np.arange(len(keys), 0, -1)
    return w / w.sum()


def generate(
    family: str,
    seed: int | np.random.SeedSequence,
    size: int = 15,
    moss: float | tuple[float, float] = (0.1, 0.25),
    lava: float | tuple[float, float] = (0.1, 0.25),
) -> CaveLevel:
    """One level of ``family`` (see the module docstring); deterministic in ``seed``.

    ``moss`` and ``lava`` are fixed fractions or (low, high) ranges drawn uniformly.
    """
    if family not in LAYOUTS:
        raise CaveLevelError(f"unknown layout family {family!r}; expected one of {list(LAYOUTS)}")
    if size < 7 or size % 2 == 0:
        raise CaveLevelError(f"size must be odd and >= 7 (a wall border around the interior), got {size}")
    rng = np.random.default_rng(seed)
    open_ = LAYOUTS[family](size, rng)
    tiles = np.where(open_, EMPTY, WALL).astype(np.int8)
    cells = np.argwhere(open_)
    goal = tuple(int(x) for x in cells[rng.integers(len(cells))])
    dist = bfs(open_, goal)  # type: ignore[arg-type]
    # moss near the goal
    f_moss = rng.uniform(*moss) if isinstance(moss, tuple) else float(moss)
    floor = np.array([c for c in cells if tuple(c) != goal])
    n_moss = round(f_moss * len(floor))
    if n_moss:
        w = _rank_weights(dist[floor[:, 0], floor[:, 1]].astype(float), descending=False)
        pick = rng.choice(len(floor), n_moss, replace=False, p=w)
        tiles[floor[pick, 0], floor[pick, 1]] = MOSS
    # lava on walls near the navigable area, far from the goal
    f_lava = rng.uniform(*lava) if isinstance(lava, tuple) else float(lava)
    p = np.pad(open_, 3)
    near = np.zeros_like(open_)
    for dr in range(-3, 4):
        for dc in range(-3, 4):
            near |= p[3 + dr : 3 + dr + size, 3 + dc : 3 + dc + size]
    interior = np.zeros_like(open_)
    interior[1:-1, 1:-1] = True
    cand = np.argwhere(near & ~open_ & interior)
    n_lava = round(f_lava * len(cand))
    if n_lava:
        manhattan = np.abs(cand - np.array(goal)).sum(1).astype(float)
        pick = rng.choice(len(cand), n_lava, replace=False, p=_rank_weights(manhattan, descending=True))
        tiles[cand[pick, 0], cand[pick, 1]] = LAVA
    # start at the median shortest-path distance to the goal
    d = dist[floor[:, 0], floor[:, 1]]
    median = np.sort(d)[(len(d) - 1) // 2]
    at = floor[d == median]
    start = tuple(int(x) for x in at[rng.integers(len(at))])
    return CaveLevel(tiles, goal, start, int(rng.integers(4)))  # type: ignore[arg-type]


def max_steps(size: int) -> int:
    """The episode limit: 250 on 15x15 grids, scaled by area (2250 on 45x45)."""
    return round(250 * size * size / 225)
