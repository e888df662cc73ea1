"""Env steps/s of ShiftRL's Cave Escape against Farama's minigrid on the same levels, in one run.

    python benchmarks/cave_speed.py [--seconds 5] [--batch 1,32,256]

The anchor is minigrid 3.2's own MiniGridEnv stepping the same levels (each level's grid
built through ``Grid.decode`` of our encoding, agent_view_size 5, see-through walls, the
same 250-step limit), one env in one process. Ours: :class:`envs.cave.env.CaveBatch`
with B envs in one process (one core), uniform random actions among left/right/forward,
finished envs reset to the next level of the set (no generation during the timing). Both
count env steps (a batch step of B envs is B env steps) and include observation encoding
and resets. Target: at least 20x minigrid's steps/s per core. Writes <out>/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def minigrid_env(levels: list[dict[str, Any]]) -> Any:
    from minigrid.core.grid import Grid
    from minigrid.core.mission import MissionSpace
    from minigrid.minigrid_env import MiniGridEnv

    from envs.cave.env import encode_grid
    from envs.cave.levels import CaveLevel, max_steps

    parsed = [CaveLevel.from_params(p) for p in levels]

    class CaveMiniGrid(MiniGridEnv):
        def __init__(self) -> None:
            self.i = 0
            size = parsed[0].size
            super().__init__(
                mission_space=MissionSpace(mission_func=lambda: "escape the cave"),
                grid_size=size,
                max_steps=max_steps(size),
                agent_view_size=5,
                see_through_walls=True,
            )

        def _gen_grid(self, width: int, height: int) -> None:
            lvl = parsed[self.i % len(parsed)]
            self.i += 1
            self.grid, _ = Grid.decode(encode_grid(lvl))
            self.agent_pos = (lvl.start[1], lvl.start[0])  # MiniGrid: (x = column, y = row)
            self.agent_dir = lvl.direction

    return CaveMiniGrid()


def time_minigrid(levels: list[dict[str, Any]], seconds: float) -> float:
    env = minigrid_env(levels)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, _, term, trunc, _ = env.step(int(rng.integers(3)))
        n += 1
        if term or trunc:
            env.reset()
    return n / (time.perf_counter() - t0)


def time_ours(levels: list[dict[str, Any]], batch: int, seconds: float) -> float:
    from envs.cave.env import CaveBatch

    env = CaveBatch(batch)
    rng = np.random.default_rng(0)
    nxt = 0

    def reset(ids: np.ndarray) -> None:
        nonlocal nxt
        opts = [{"level": levels[(nxt + k) % len(levels)]} for k in range(len(ids))]
        nxt += len(ids)
        env.reset(ids, [None] * len(ids), opts)

    reset(np.arange(batch))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        env.observe()
        _, term, trunc = env.step(rng.integers(0, 3, (batch, 1)))
        n += batch
        done = np.flatnonzero(term | trunc)
        if len(done):
            reset(done)
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--batch", default="1,32,256")
    ap.add_argument("--levels", type=int, default=16, help="levels per training family in the timed set")
    ap.add_argument("--name", default="cave_speed")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    from envs.cave.sets import level_set
    from trainers.io import atomic_write_json, atomic_write_text

    levels = list(level_set("train", args.levels).levels)
    load_before = os.getloadavg()[0]
    # the anchor is timed before and after ours: the ratios use the mean, and the two say how
    # much the machine's load moved under the measurement
    before = time_minigrid(levels, args.seconds)
    ours = [(b, time_ours(levels, b, args.seconds)) for b in (int(x) for x in args.batch.split(","))]
    after = time_minigrid(levels, args.seconds)
    anchor = (before + after) / 2
    load_after = os.getloadavg()[0]
    rows = [{"impl": "minigrid 3.2 MiniGridEnv", "envs": 1, "steps_per_s": anchor, "ratio": 1.0}]
    for b, sps in ours:
        rows.append({"impl": "ShiftRL CaveBatch", "envs": b, "steps_per_s": sps, "ratio": sps / anchor})
        print(f"B={b}: {sps:,.0f} steps/s, {sps / anchor:.1f}x minigrid", flush=True)
    result = {
        "name": args.name,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "seconds_per_point": args.seconds,
        "levels": len(levels),
        "target": "ShiftRL >= 20x minigrid per core",
        "anchor_before_after": [before, after],
        "load_1min_before_after": [load_before, load_after],
        "rows": rows,
    }
    md = [
        f"# {args.name}: Cave Escape env steps/s, ShiftRL vs Farama's minigrid (same levels, one process each)",
        "",
        f"Measured {result['date']} on {result['machine']}; {args.seconds:g} s per point, {len(levels)} training "
        "levels, random left/right/forward actions, resets included. Ratios are to minigrid in the same run "
        f"(timed before and after ours: {before:,.0f} and {after:,.0f} steps/s, their mean is the anchor). "
        f"Load average (1 min) {load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} cores.",
        "",
        "| implementation | envs per process | env steps/s | x minigrid |",
        "|---|---|---|---|",
    ]
    md += [f"| {r['impl']} | {r['envs']} | {r['steps_per_s']:,.0f} | {r['ratio']:.1f} |" for r in rows]
    best = max(r["ratio"] for r in rows[1:])
    md += ["", f"Target (>= 20x per core): {'met' if best >= 20 else 'missed'} (best {best:.1f}x)."]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{args.name}.json", result)
    atomic_write_text(out / f"{args.name}.md", "\n".join(md) + "\n")
    print("\n".join(md))
    print(json.dumps({"best_ratio": best}))


if __name__ == "__main__":
    main()
