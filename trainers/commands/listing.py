"""`shiftrl envs` and `shiftrl agents`: what is registered, with spaces, shifts, tasks and
levels, or each agent's loop, env kinds and config fields."""

from __future__ import annotations

import envs


def list_envs() -> str:
    lines = []
    for spec in envs.registered().values():
        try:
            env = spec.make()
            if spec.kind == "gymnasium":
                spaces = f"obs {env.observation_space}, act {env.action_space}"
            else:
                a = env.possible_agents[0]
                spaces = f"{len(env.possible_agents)} agents, obs {env.observation_space(a)}, act {env.action_space(a)}"
        except Exception as exc:  # noqa: BLE001 - a broken user env must not hide the others
            spaces = f"cannot build: {exc}"
        shifts = ", ".join(
            f"{s.name} [{s.low:g}, {s.high:g}] nominal {'kernel' if s.nominal is None else f'{s.nominal:g}'}"
            for s in spec.shifts
        )
        lines.append(f"{spec.id}  ({spec.kind})  {spec.description}")
        lines.append(f"    {spaces}")
        if shifts:
            lines.append(f"    shifts: {shifts}")
        if spec.tasks:
            lines.append(f"    tasks: {', '.join(spec.tasks)}")
        if spec.level_type:
            lines.append(f"    levels: reset(options={{'level': ...}}) of type {spec.level_type!r}")
    return "\n".join(lines)


def list_agents() -> str:
    from trainers.agents import describe_agents

    return describe_agents()
