"""rgb_array frames of a battle and episode GIFs (Pillow), for seeing what a policy does.

Allies are blue, enemies red; the letter is the unit type's code (m marine, M marauder,
v medivac, s stalker, z zealot, c colossus, g zergling, h hydralisk, b baneling); the bar under a unit
is its health (green) and shield (cyan); a line joins a unit to the target it was ordered
to attack (yellow) or heal (green) in the last step; dead units are grey crosses.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.smaclike.core import SMACCore

ALLY, ENEMY = (60, 120, 230), (220, 60, 60)
BACKGROUND, GRID = (28, 30, 34), (45, 48, 54)


def render_frame(core: SMACCore, b: int = 0, scale: int = 12) -> np.ndarray:
    """One (H, W, 3) uint8 frame of environment ``b`` of a core."""
    from PIL import Image, ImageDraw

    width, height = core.map_w, core.map_h
    size = int(max(width, height) * scale)
    header = 18
    img = Image.new("RGB", (size, size + header), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for g in range(0, int(max(width, height)) + 1, 4):
        draw.line([(g * scale, header), (g * scale, size + header)], fill=GRID)
        draw.line([(0, header + g * scale), (size, header + g * scale)], fill=GRID)

    def px(x: float, y: float) -> tuple[float, float]:  # map y grows north, image y grows down
        return x * scale, header + (height - y) * scale

    pos, alive, N = core.pos[b], core.alive[b], core.N
    names = core.scenario.unit_types
    for u in range(core.U):
        t = int(core.last_target[b, u])
        if alive[u] and t >= 0 and alive[t]:
            healer = core.stats["healer"][b, u] > 0
            draw.line([px(*pos[u]), px(*pos[t])], fill=(90, 200, 90) if healer else (230, 200, 60), width=1)
    for u in range(core.U):
        x, y = px(*pos[u])
        r = max(3.0, float(core.stats["radius"][b, u]) * scale)
        if not alive[u]:
            draw.line([(x - r / 2, y - r / 2), (x + r / 2, y + r / 2)], fill=(110, 110, 110), width=2)
            draw.line([(x - r / 2, y + r / 2), (x + r / 2, y - r / 2)], fill=(110, 110, 110), width=2)
            continue
        colour = ALLY if u < N else ENEMY
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=(240, 240, 240))
        draw.text((x - 3, y - 6), names[int(core.type[b, u])].short, fill=(255, 255, 255))
        hp = max(0.0, float(core.hp[b, u] / core.stats["hp"][b, u]))
        w = 2 * r
        draw.rectangle([x - r, y + r + 2, x - r + w * hp, y + r + 4], fill=(70, 210, 90))
        if core.stats["shield"][b, u] > 0:
            sh = float(core.shield[b, u] / core.stats["shield"][b, u])
            draw.rectangle([x - r, y + r + 5, x - r + w * sh, y + r + 6], fill=(80, 200, 230))
    status = "won" if core.won[b] else ""
    title = (
        f"{core.scenario.name} | task {core.task_name(b)} ({core.start_name(b)}) | step {int(core.steps[b])} {status}"
    )
    draw.text((4, 3), title, fill=(230, 230, 230))
    return np.asarray(img)


def save_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 8.0) -> Path:
    """Writes frames as a looping GIF, atomically (temp file + rename)."""
    from PIL import Image

    if not frames:
        raise ValueError("save_gif: no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    fd, tmp = tempfile.mkstemp(suffix=".gif", dir=path.parent)
    os.close(fd)
    try:
        images[0].save(tmp, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def record_episode(
    core: SMACCore,
    act: Callable[[SMACCore], np.ndarray],
    path: str | Path,
    seed: int = 0,
    fps: float = 8.0,
    scale: int = 12,
) -> dict[str, Any]:
    """Plays one episode of env 0 of a B=1 core with ``act(core) -> (1, N) actions``,
    saves it as a GIF and returns the episode's summary."""
    if core.B != 1:
        raise ValueError("record_episode needs a core with batch_size 1")
    core.reset(seeds=[seed])
    frames = [render_frame(core, 0, scale)]
    ret = 0.0
    while not core.done[0]:
        reward, _, _ = core.step(act(core))
        ret += float(reward[0])
        frames.append(render_frame(core, 0, scale))
    frames.extend([frames[-1]] * int(fps))  # hold the last frame for a second
    save_gif(frames, path, fps)
    info = core.info()
    return {
        "path": str(path),
        "return": ret,
        "battle_won": bool(info["battle_won"][0]),
        "dead_allies": int(info["dead_allies"][0]),
        "dead_enemies": int(info["dead_enemies"][0]),
        "steps": int(info["episode_step"][0]),
        "task": core.task_name(0),
        "start": core.start_name(0),
    }


class HumanWindow:
    """render_mode="human": shows frames in a matplotlib window, reusing it between calls
    (with a non-interactive backend, e.g. on a headless machine, the frame is only drawn)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._figure: Any = None
        self._image: Any = None

    def show(self, frame: np.ndarray) -> None:
        import matplotlib
        import matplotlib.pyplot as plt

        if self._figure is None:
            self._figure = plt.figure(self.title)
            self._image = self._figure.add_subplot().imshow(frame)
            self._figure.axes[0].set_axis_off()
        else:
            self._image.set_data(frame)
        if matplotlib.get_backend().lower() != "agg":
            plt.pause(0.001)
        else:
            self._figure.canvas.draw()

    def close(self) -> None:
        if self._figure is not None:
            import matplotlib.pyplot as plt

            plt.close(self._figure)
            self._figure = self._image = None
