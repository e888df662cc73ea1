"""Cave Escape: a Gymnasium env and a numpy-vectorised batch of B envs over the same core.

Dynamics and observations follow MiniGrid (../shared/specs/cave-dred.md): the agent sees a
5x5 egocentric view (see-through walls) encoded as MiniGrid's (object, colour, state)
triples - itself at the bottom centre facing up, its own cell shown empty, cells outside
the grid as walls - plus its direction (0 right, 1 down, 2 left, 3 up). Of MiniGrid's 7
actions only left (0), right (1) and forward (2) act; 3-6 leave the state unchanged.
Stepping onto the goal ends the episode with reward 1 - 0.9 t / T; onto lava ends it with
0; walls block. T = 250 on 15x15 grids, scaled by area (2250 on 45x45); reaching T
truncates.

Encoding (MiniGrid's indices): empty (1, 0, 0), wall (2, grey 5, 0), goal (8, green 1, 0),
lava (9, red 0, 0). MiniGrid has no moss tile: moss is a **green floor**, (3, green 1, 0),
which MiniGrid decodes to ``Floor("green")`` (passable, no effect), so a level's full-grid
encoding round-trips through ``minigrid.core.grid.Grid.decode``/``encode``.

The Gymnasium env returns MiniGrid's observation dict ``{"image": (5, 5, 3) uint8,
"direction": int}``; the batch (what the runtime's rollout actors step) returns it flat:
(B, 1, 79) float32 = the 75 image codes then a one-hot direction. Levels come only from the
reset: ``reset(options={"level": params})`` (``envs.cave.levels``); a reset without a level
generates one of the env's ``families`` from the reset's seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np

from envs.cave.levels import (
    DIRS,
    EMPTY,
    LAVA,
    MOSS,
    TRAIN_FAMILIES,
    WALL,
    CaveLevel,
    CaveLevelError,
    generate,
    max_steps,
)

VIEW = 5
N_ACTIONS = 7
LEFT, RIGHT, FORWARD = 0, 1, 2
OBS_DIM = VIEW * VIEW * 3 + 4
GOAL = 4  # tile code used inside the core only (levels keep the goal as a position)
# MiniGrid (object, colour, state) per core tile code
ENCODING = np.array(
    [
        [1, 0, 0],  # empty
        [2, 5, 0],  # wall, grey
        [9, 0, 0],  # lava, red
        [3, 1, 0],  # moss: a green floor
        [8, 1, 0],  # goal, green
    ],
    np.uint8,
)
# view cell (i, j) (MiniGrid's image[i, j]: i across, j down the view) -> forward/lateral offsets
_VI, _VJ = np.meshgrid(np.arange(VIEW), np.arange(VIEW), indexing="ij")
FWD = (VIEW - 1 - _VJ).ravel()  # steps ahead of the agent
LAT = (_VI - VIEW // 2).ravel()  # steps to its right


def encode_grid(level: CaveLevel) -> np.ndarray:
    """The whole level in MiniGrid's ``Grid.encode()`` layout: (width, height, 3) uint8
    indexed [x = column, y = row], goal included, agent not drawn (MiniGrid keeps the agent
    out of the grid too). ``minigrid.core.grid.Grid.decode`` reads it back exactly."""
    tiles = level.tiles.copy()
    tiles[level.goal] = GOAL
    return ENCODING[tiles].transpose(1, 0, 2).copy()


def decode_grid(array: np.ndarray, start: tuple[int, int], direction: int = 0) -> CaveLevel:
    """The inverse of :func:`encode_grid` (MiniGrid's start position is not in its grid)."""
    a = np.asarray(array)
    if a.ndim != 3 or a.shape[2] != 3:
        raise CaveLevelError(f"a MiniGrid encoding is (width, height, 3), got shape {a.shape}")
    obj, colour = a[..., 0].T, a[..., 1].T  # to [row, col]
    tiles = np.full(obj.shape, -1, np.int8)
    tiles[obj == 1] = EMPTY
    tiles[obj == 2] = WALL
    tiles[obj == 9] = LAVA
    tiles[(obj == 3) & (colour == 1)] = MOSS
    goals = np.argwhere(obj == 8)
    if len(goals) != 1:
        raise CaveLevelError(f"a Cave Escape grid has one goal, this one has {len(goals)}")
    tiles[tuple(goals[0])] = EMPTY
    if (tiles < 0).any():
        r, c = np.argwhere(tiles < 0)[0]
        raise CaveLevelError(
            f"cell (row {r}, col {c}) holds MiniGrid object {int(obj[r, c])} colour {int(colour[r, c])}, "
            "not one of Cave Escape's tiles (empty, wall, lava, green floor = moss, goal)"
        )
    return CaveLevel(tiles, (int(goals[0][0]), int(goals[0][1])), start, direction)


def level_from(
    options: dict[str, Any] | None, size: int, families: Sequence[str], rng: np.random.Generator
) -> CaveLevel:
    """The level a reset asks for, or a generated one."""
    if options and "level" in options:
        level = options["level"]
        level = level if isinstance(level, CaveLevel) else CaveLevel.from_params(level)
        if level.size != size:
            raise CaveLevelError(f"level is {level.size}x{level.size}; this env was built with size={size}")
        return level
    family = families[int(rng.integers(len(families)))]
    return generate(family, int(rng.integers(2**31)), size)


class CaveCore:
    """B envs as arrays: tiles (B, H, W) with the goal marked, position (B, 2), direction
    (B,), step count (B,)."""

    def __init__(self, n: int, size: int) -> None:
        self.n, self.size, self.limit = n, size, max_steps(size)
        self.tiles = np.full((n, size, size), WALL, np.int8)
        self.pos = np.ones((n, 2), np.int64)
        self.dir = np.zeros(n, np.int64)
        self.t = np.zeros(n, np.int64)
        self.done = np.ones(n, bool)

    def load(self, b: int, level: CaveLevel) -> None:
        self.tiles[b] = level.tiles
        self.tiles[b][level.goal] = GOAL
        self.pos[b] = level.start
        self.dir[b] = level.direction
        self.t[b] = 0
        self.done[b] = False

    def images(self, ids: np.ndarray | None = None) -> np.ndarray:
        """(len(ids), 5, 5, 3) uint8 MiniGrid views."""
        ids = np.arange(self.n) if ids is None else ids
        d = self.dir[ids]
        fwd, right = DIRS[d], DIRS[(d + 1) % 4]  # (k, 2) row/col steps
        rows = self.pos[ids, 0, None] + FWD[None] * fwd[:, 0, None] + LAT[None] * right[:, 0, None]
        cols = self.pos[ids, 1, None] + FWD[None] * fwd[:, 1, None] + LAT[None] * right[:, 1, None]
        inside = (rows >= 0) & (rows < self.size) & (cols >= 0) & (cols < self.size)
        codes = np.full(rows.shape, WALL, np.int8)
        k = np.broadcast_to(np.arange(len(ids))[:, None], rows.shape)
        codes[inside] = self.tiles[ids[k[inside]], rows[inside], cols[inside]]
        codes[:, (VIEW - 1) * 1 + (VIEW // 2) * VIEW] = EMPTY  # the agent's own cell (i=2, j=4) shows empty
        return ENCODING[codes].reshape(len(ids), VIEW, VIEW, 3)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(reward, terminated, truncated) for every env; finished envs stay put."""
        live = ~self.done
        a = np.asarray(actions).reshape(self.n)
        self.t[live] += 1
        self.dir[live & (a == LEFT)] = (self.dir[live & (a == LEFT)] - 1) % 4
        self.dir[live & (a == RIGHT)] = (self.dir[live & (a == RIGHT)] + 1) % 4
        fw = np.flatnonzero(live & (a == FORWARD))
        target = self.pos[fw] + DIRS[self.dir[fw]]
        tile = self.tiles[fw, target[:, 0], target[:, 1]]
        move = tile != WALL
        self.pos[fw[move]] = target[move]
        reward = np.zeros(self.n)
        term = np.zeros(self.n, bool)
        here = self.tiles[np.arange(self.n), self.pos[:, 0], self.pos[:, 1]]
        won = live & (here == GOAL)
        term[won] = True
        reward[won] = 1.0 - 0.9 * self.t[won] / self.limit
        term[live & (here == LAVA)] = True
        trunc = live & ~term & (self.t >= self.limit)
        self.done |= term | trunc
        return reward, term, trunc


def flat_obs(images: np.ndarray, direction: np.ndarray) -> np.ndarray:
    out = np.zeros((len(images), OBS_DIM), np.float32)
    out[:, : VIEW * VIEW * 3] = images.reshape(len(images), -1)
    out[np.arange(len(images)), VIEW * VIEW * 3 + direction] = 1.0
    return out


class CaveEscapeEnv(gymnasium.Env):
    """One Cave Escape env (Gymnasium API, MiniGrid's observation dict).

    Args:
        size: grid side including the wall border (15; 45 for the large edge case).
        families: layout families a reset without a level generates from.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012 - gymnasium reads it

    def __init__(
        self, size: int = 15, families: Sequence[str] = TRAIN_FAMILIES, render_mode: str | None = None
    ) -> None:
        self.size, self.families, self.render_mode = int(size), tuple(families), render_mode
        self.core = CaveCore(1, self.size)
        self.observation_space = gymnasium.spaces.Dict(
            {
                "image": gymnasium.spaces.Box(0, 255, (VIEW, VIEW, 3), np.uint8),
                "direction": gymnasium.spaces.Discrete(4),
            }
        )
        self.action_space = gymnasium.spaces.Discrete(N_ACTIONS)
        self.level: CaveLevel | None = None

    def _obs(self) -> dict[str, Any]:
        return {"image": self.core.images()[0], "direction": int(self.core.dir[0])}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self.level = level_from(options, self.size, self.families, self.np_random)
        self.core.load(0, self.level)
        return self._obs(), {}

    def step(self, action: int) -> tuple[dict, float, bool, bool, dict]:
        if self.core.done[0]:
            raise RuntimeError("step() after the episode ended: call reset()")
        r, te, tr = self.core.step(np.array([int(action)]))
        return self._obs(), float(r[0]), bool(te[0]), bool(tr[0]), {"won": bool(r[0] > 0)}

    def render(self) -> Any:
        return render_rgb(self.core, 0) if self.render_mode == "rgb_array" else None

    @classmethod
    def batched(cls, n: int, size: int = 15, families: Sequence[str] = TRAIN_FAMILIES, **_: Any) -> CaveBatch:
        return CaveBatch(n, size, families)


COLOURS = {EMPTY: (0, 0, 0), WALL: (100, 100, 100), LAVA: (255, 128, 0), MOSS: (0, 110, 0), GOAL: (0, 255, 0)}


def render_rgb(core: CaveCore, b: int, tile: int = 12) -> np.ndarray:
    """An RGB image of env ``b``: tiles as colour blocks, the agent as a red triangle."""
    H = core.size
    img = np.zeros((H * tile, H * tile, 3), np.uint8)
    for code, colour in COLOURS.items():
        mask = np.kron(core.tiles[b] == code, np.ones((tile, tile), bool))
        img[mask] = colour
    r, c = core.pos[b]
    yy, xx = np.mgrid[0:tile, 0:tile] - (tile - 1) / 2
    d = DIRS[core.dir[b]]  # triangle pointing along the direction
    along = (xx * d[1] + yy * d[0]) / (tile / 2)
    across = np.abs(xx * d[0] - yy * d[1]) / (tile / 2)
    tri = (along > -0.8) & (across < (0.8 - along) / 2 + 0.05)
    img[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile][tri] = (255, 0, 0)
    return img


class CaveBatch:
    """B Cave Escape envs for the runtime (:class:`envs.vector.BatchEnv`): flat
    observations (79 = 75 view codes + one-hot direction), one agent, no masks."""

    def __init__(self, n: int, size: int = 15, families: Sequence[str] = TRAIN_FAMILIES) -> None:
        self.core = CaveCore(n, int(size))
        self.families = tuple(families)
        self.n_envs, self.n_agents = n, 1
        self.obs_shape: tuple[int, ...] = (OBS_DIM,)
        self.state_shape: tuple[int, ...] = (OBS_DIM,)
        self.n_actions, self.action_shape, self.action_low, self.action_high = N_ACTIONS, (), (), ()
        self.has_mask = False
        self.tasks: tuple[str, ...] = ()
        self.episode_limit = self.core.limit
        self.won = np.zeros(n, bool)
        self._mask = np.ones((n, 1, N_ACTIONS), bool)

    def reset(self, ids: Sequence[int], seeds: Sequence[int | None], options: Sequence[dict | None]) -> None:
        for b, s, o in zip(ids, seeds, options):
            self.core.load(b, level_from(o, self.core.size, self.families, np.random.default_rng(s)))
            self.won[b] = False

    def observe(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        obs = flat_obs(self.core.images(), self.core.dir)[:, None]
        return obs, obs[:, 0], self._mask, ~self.core.done[:, None]

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r, te, tr = self.core.step(np.asarray(actions).reshape(self.n_envs))
        self.won |= r > 0
        return r, te, tr

    def episode_info(self) -> dict[str, np.ndarray]:
        return {"task": np.full(self.n_envs, -1), "won": self.won.copy()}
