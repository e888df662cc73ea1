"""Gymnasium's MuJoCo v5 locomotion envs with shifted physics (RRLS-style parameters).

Nominal dynamics are Gymnasium's Hopper-v5, HalfCheetah-v5 and Walker2d-v5 unchanged (the
data are collected there); evaluation moves, as scales of the nominal values:

- ``friction``: every geom's sliding friction (the floor-foot contact the gaits rely on);
- ``gravity``: the z-gravity;
- ``<body>_mass``: one body's mass (torso and each limb segment, the env's body names).

Scales rather than RRLS's absolute values, so one range reads the same on every body:
masses and friction in [0.1, 3.0], gravity in [0.5, 1.5] (RRLS's uncertainty sets span
roughly 0.1x-3x of the nominal masses and frictions). A shift is a constructor kwarg, a
``reset(options={name: value})`` entry or a level (``{"level": {...}}``), validated before
anything changes. The episode limit (1000) is the env's own, no hidden TimeLimit.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from envs.robust.base import shift_from_options, validate_shift

MASS_RANGE = (0.1, 3.0)
FRICTION_RANGE = (0.1, 3.0)
GRAVITY_RANGE = (0.5, 1.5)
BODIES = {
    "Hopper": ("torso", "thigh", "leg", "foot"),
    "HalfCheetah": ("torso", "bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"),
    "Walker2d": ("torso", "thigh", "leg", "foot", "thigh_left", "leg_left", "foot_left"),
}


def shift_names(robot: str) -> tuple[str, ...]:
    return ("friction", "gravity", *(f"{b}_mass" for b in BODIES[robot]))


def shift_range(name: str) -> tuple[float, float]:
    return GRAVITY_RANGE if name == "gravity" else FRICTION_RANGE if name == "friction" else MASS_RANGE


class ShiftedMujoco(gymnasium.Env):
    """One Gymnasium MuJoCo v5 robot whose model constants follow the shift scales."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 125}  # noqa: RUF012 - gymnasium reads it
    robot = ""

    def __init__(self, max_episode_steps: int = 1000, render_mode: str | None = None, **shift: float) -> None:
        from gymnasium.envs.mujoco import half_cheetah_v5, hopper_v5, walker2d_v5

        cls = {
            "Hopper": hopper_v5.HopperEnv,
            "HalfCheetah": half_cheetah_v5.HalfCheetahEnv,
            "Walker2d": walker2d_v5.Walker2dEnv,
        }[self.robot]
        self.inner: Any = cls(render_mode=render_mode)
        self.render_mode = render_mode
        self.max_episode_steps = int(max_episode_steps)
        self.observation_space = self.inner.observation_space
        self.action_space = self.inner.action_space
        m = self.inner.model
        self._names = shift_names(self.robot)
        self._body_ids = {f"{b}_mass": m.body(b).id for b in BODIES[self.robot]}
        self._nominal_mass = m.body_mass.copy()
        self._nominal_friction = m.geom_friction[:, 0].copy()
        self._nominal_gravity = m.opt.gravity.copy()
        self.shift = {k: 1.0 for k in self._names}
        self._set_shift(shift)
        self._t = 0

    def _set_shift(self, shift: dict[str, Any]) -> None:
        scales = validate_shift(type(self).__name__, shift, {n: shift_range(n) for n in self._names})
        self.shift.update(scales)
        m = self.inner.model
        m.geom_friction[:, 0] = self._nominal_friction * self.shift["friction"]
        m.opt.gravity[:] = self._nominal_gravity * self.shift["gravity"]
        for name, body in self._body_ids.items():
            m.body_mass[body] = self._nominal_mass[body] * self.shift[name]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        shift = shift_from_options(options, type(self).__name__)
        if shift:
            self._set_shift(shift)
        self._t = 0
        obs, _ = self.inner.reset(seed=int(self.np_random.integers(2**31 - 1)))
        return obs, {"shift": dict(self.shift)}

    def step(self, action):
        obs, reward, terminated, _, _ = self.inner.step(np.asarray(action, dtype=np.float32))
        self._t += 1
        truncated = self._t >= self.max_episode_steps and not terminated
        return obs, float(reward), bool(terminated), truncated, {"shift": dict(self.shift)}

    def render(self):
        return self.inner.render()

    def close(self) -> None:
        self.inner.close()


class ShiftedHopper(ShiftedMujoco):
    robot = "Hopper"


class ShiftedHalfCheetah(ShiftedMujoco):
    robot = "HalfCheetah"


class ShiftedWalker2d(ShiftedMujoco):
    robot = "Walker2d"
