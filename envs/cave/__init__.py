"""Cave Escape (DRED's MiniGrid domain): levels as data, a numpy generator of layout
families, and a Gymnasium env with a vectorised batch over one core (envs/cave/env.py).

Level type ``"cave"``: ``reset(options={"level": params})`` with the JSON form of
:class:`envs.cave.levels.CaveLevel`.
"""

from envs.registry import register

register(
    "CaveEscape-v0",
    "envs.cave.env:CaveEscapeEnv",
    description="DRED's Cave Escape: 5x5 MiniGrid view, moss near the goal, lava far from it; levels from reset",
    max_episode_steps=None,
    level_type="cave",
    level_check="envs.cave.levels:check_level",
)
