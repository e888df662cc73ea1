"""Robust MDPs with shifted dynamics: nominal kernel for data, a shift for evaluation.

Every family declares level type ``"shift"``: a level is the env's dict of shift parameters,
so ``reset(options={"level": {"q": 0.3}})`` is ``reset(options={"q": 0.3})`` and a level-set
file (:mod:`envs.levels`) can drive any of them.
"""

from envs.registry import ShiftParam, register
from envs.robust.mujoco import BODIES, shift_names, shift_range

register(
    "RobustLinearMDP-v0",
    "envs.robust.linear_mdp:RobustLinearMDP",
    shifts=(ShiftParam("q", None, 0.0, 1.0, "first-step failure mass: x4 w.p. q*phi_4 (None = nominal kernel)"),),
    description="Liu & Xu (2024) simulated linear MDP, H=3, 16 actions, d=4 (R2PVI fig. 1a-c)",
    max_episode_steps=3,
    level_type="shift",
)
register(
    "AmericanPutOption-v0",
    "envs.robust.american_put:AmericanPutOption",
    shifts=(ShiftParam("p_up", 0.5, 0.0, 1.0, "probability the price moves up by 2% per step"),),
    description="American put, K=100, H=20, d=30 hat features; exercise payoff as a known value (R2PVI fig. 1d)",
    max_episode_steps=20,
    level_type="shift",
)
register(
    "ShiftedCartPole-v0",
    "envs.robust.classic:ShiftedCartPole",
    shifts=tuple(
        ShiftParam(name, 1.0, 0.2, 5.0, f"scale of the nominal {name}")
        for name in ("gravity", "masscart", "masspole", "length", "force_mag")
    ),
    description="CartPole-v1 with scaled physics; simplex RBF features (d = 2 x 81)",
    max_episode_steps=500,
    level_type="shift",
)
register(
    "ShiftedPendulum-v0",
    "envs.robust.classic:ShiftedPendulum",
    shifts=tuple(ShiftParam(name, 1.0, 0.2, 5.0, f"scale of the nominal {name}") for name in ("g", "m", "l")),
    description="Pendulum-v1, 5 discrete torques, scaled g/m/l; simplex RBF features (d = 5 x 27)",
    max_episode_steps=200,
    level_type="shift",
)
register(
    "ShiftedPendulumContinuous-v0",
    "envs.robust.classic:ShiftedPendulumContinuous",
    shifts=tuple(ShiftParam(name, 1.0, 0.2, 5.0, f"scale of the nominal {name}") for name in ("g", "m", "l")),
    description="Pendulum-v1, continuous torque in [-2, 2], scaled g/m/l (offline RL's small case)",
    max_episode_steps=200,
    level_type="shift",
)
for _robot in BODIES:
    register(
        f"Shifted{_robot}-v0",
        f"envs.robust.mujoco:Shifted{_robot}",
        shifts=tuple(
            ShiftParam(n, 1.0, *shift_range(n), f"scale of the nominal {n.replace('_', ' ')}")
            for n in shift_names(_robot)
        ),
        description=f"Gymnasium {_robot}-v5 (MuJoCo) with scaled friction, gravity and body masses",
        max_episode_steps=1000,
        level_type="shift",
    )
