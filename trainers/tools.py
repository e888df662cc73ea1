"""`shiftrl evaluate`, `shiftrl compare`, `shiftrl collect` and `shiftrl envs`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import envs
from agents.r2pvi import LinearVI
from envs import datasets
from trainers.config import ConfigError, ExperimentConfig, load_config, parse_behaviour
from trainers.io import atomic_write_json, atomic_write_text, load_npz


# -- evaluate ---------------------------------------------------------------------------------
def parse_shift_arg(text: str) -> tuple[str, list[float]]:
    """'q=0,0.5,1' -> ('q', [0, 0.5, 1]); 'q=0:1:11' -> 11 evenly spaced values."""
    name, sep, raw = text.partition("=")
    if not sep or not name or not raw:
        raise ConfigError(f"--shift {text!r}: expected NAME=v1,v2,... or NAME=start:stop:count")
    try:
        if raw.count(":") == 2:
            a, b, n = raw.split(":")
            return name, np.linspace(float(a), float(b), int(n)).round(10).tolist()
        return name, [float(v) for v in raw.split(",")]
    except ValueError as exc:
        raise ConfigError(f"--shift {text!r}: values must be numbers ({exc})") from exc


def load_learners(path: Path) -> tuple[ExperimentConfig, list[dict[str, LinearVI]]]:
    """Learners of a run directory (every replication) or of one checkpoint file."""
    if path.is_dir():
        run_dir, files = path, sorted((path / "checkpoints").glob("rep_*.npz"))
    elif path.suffix == ".npz" and path.parent.name == "checkpoints":
        run_dir, files = path.parent.parent, [path]
    else:
        raise ConfigError(f"{path}: expected a run directory or a checkpoints/rep_XXXX.npz file")
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: no config.yaml; not a shiftrl run directory")
    if not files:
        raise ConfigError(f"{run_dir}: no checkpoints yet (checkpoints/rep_*.npz)")
    cfg = load_config(run_dir / "config.yaml")
    reps = []
    for f in files:
        arrays = load_npz(f)
        learners = {}
        for m in cfg.agent_config.methods:
            learner = LinearVI(m, cfg.agent_config)
            try:
                learner.load_state_dict({k: arrays[f"{m.label}/{k}"] for k in ("w", "lambda_inv")})
            except KeyError as exc:
                raise ConfigError(f"checkpoint {f}: missing arrays for method {m.label!r}") from exc
            learners[m.label] = learner
        reps.append(learners)
    return cfg, reps


def evaluate(
    target: str,
    env_id: str | None = None,
    shift: str | None = None,
    episodes: int | None = None,
    exact: bool | None = None,
    num_workers: int = 0,
    address: str | None = None,
) -> dict[str, Any]:
    """Evaluates saved policies over a shift grid; returns the JSON-ready result."""
    import dataclasses

    from trainers.robust import evaluate_policies, shift_grid
    from trainers.rollout import RolloutPool

    cfg, reps = load_learners(Path(target))
    ev = cfg.eval
    if shift:
        shift_name, grid = parse_shift_arg(shift)
        ev = dataclasses.replace(ev, shifts={shift_name: grid})
    if episodes is not None:
        ev = dataclasses.replace(ev, episodes=episodes)
    if exact is not None:
        ev = dataclasses.replace(ev, exact=exact)
    new_env = dataclasses.replace(cfg.env, id=env_id) if env_id else cfg.env
    cfg = dataclasses.replace(cfg, eval=ev, env=new_env)
    from trainers.config import validate

    validate(cfg)
    spec = envs.spec(cfg.env.id)
    env = spec.make(**cfg.env.kwargs)
    structure = env.linear_structure()
    d = next(iter(reps[0].values())).feature_dim
    if structure.feature_dim != d:
        raise ConfigError(f"--env {cfg.env.id}: feature dimension {structure.feature_dim} != the policies' {d}")
    if num_workers:
        from trainers.runtime import init_ray

        init_ray(address)
    pool = RolloutPool(spec, cfg.env.kwargs, num_workers=num_workers, imports=cfg.imports)
    try:
        per_rep = [evaluate_policies(cfg, pool, learners, structure, rep) for rep, learners in enumerate(reps)]
    finally:
        pool.close()
    name, values = shift_grid(cfg)
    out: dict[str, Any] = {
        "target": str(target),
        "env": cfg.env.id,
        "shift_name": name,
        "shifts": values,
        "episodes": cfg.eval.episodes,
        "exact": cfg.eval.exact,
        "replications": len(reps),
        "methods": {},
    }
    for label in reps[0]:
        table = np.array([r[label] for r in per_rep])
        out["methods"][label] = {"mean": table.mean(0).tolist(), "std": table.std(0).tolist()}
    return out


# -- compare ----------------------------------------------------------------------------------
def _read_results(run_dir: Path) -> dict[str, Any]:
    f = run_dir / "results.json"
    if not f.is_file():
        raise ConfigError(f"{run_dir}: no results.json (has the run finished? resume it with --resume)")
    return json.loads(f.read_text())


def render_gif(
    env_id: str, policy: str, seed: int, out: str, fps: float = 8.0, env_kwargs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One episode of a SMAC-like env, saved as a GIF: a scripted policy by name, or the
    greedy shared policy of an rllib_ppo run directory."""
    from envs.smaclike import SMACLikeEnv
    from envs.smaclike.render import record_episode
    from envs.smaclike.scripted import POLICIES, scripted_actions

    env = envs.make(env_id, **(env_kwargs or {}))
    if not isinstance(env, SMACLikeEnv):
        raise ConfigError(f"render: {env_id!r} is not a SMAC-like env (GIFs are for SMAClike-*-v0 ids)")
    if policy in POLICIES:
        rng = np.random.default_rng(seed)
        return record_episode(env.core, lambda core: scripted_actions(policy, core, rng), out, seed=seed, fps=fps)
    if not Path(policy).is_dir():
        raise ConfigError(f"render: --policy {policy!r} is neither one of {list(POLICIES)} nor a run directory")
    from trainers.rllib import greedy_actions, load_policy

    module, cfg = load_policy(policy)
    trained = envs.make(cfg.env.id, **cfg.env.kwargs)
    if (trained.core.obs_dim, trained.core.n_actions) != (env.core.obs_dim, env.core.n_actions):
        raise ConfigError(
            f"render: the policy in {policy} was trained on {cfg.env.id} (obs {trained.core.obs_dim}, "
            f"actions {trained.core.n_actions}); {env_id} has obs {env.core.obs_dim}, actions {env.core.n_actions}"
        )

    def act(core: Any) -> np.ndarray:
        a = greedy_actions(module, core.obs()[0], core.avail_actions()[0])
        return np.where(core.alive[0, : core.N], a, 0)[None]

    return record_episode(env.core, act, out, seed=seed, fps=fps)


def summarize(run_dirs: list[str]) -> str:
    """The closing table of `shiftrl train`: the robust comparison, or the final
    training / greedy-evaluation numbers of learning runs."""
    results = [_read_results(Path(rd)) for rd in run_dirs]
    if all(r.get("kind") == "robust" for r in results):
        return compare(run_dirs, out_dir=str(Path(run_dirs[0]) / "comparison"))
    rows = [
        "| run | env steps | train return | train win rate | greedy win rate | greedy return |",
        "|---|---|---|---|---|---|",
    ]
    nan = float("nan")
    for rd, r in zip(run_dirs, results):
        f = r.get("final", {})
        rows.append(
            f"| {Path(rd).name} | {f.get('env_steps', 0)} | {f.get('episodic_return', nan):.3f} | "
            f"{f.get('win_rate', nan):.2f} | {f.get('eval_win_rate', nan):.2f} | {f.get('eval_return', nan):.3f} |"
        )
    return "\n".join(rows)


def compare(run_dirs: list[str], out_dir: str = "comparison") -> str:
    """Side-by-side table (returned, and written as markdown), a PNG plot, TB scalars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trainers.tb import TBLogger, shift_step

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, series = [], []
    shift_names = set()
    for rd in map(Path, run_dirs):
        res = _read_results(rd)
        if res.get("kind") != "robust":
            raise ConfigError(f"{rd}: results kind {res.get('kind')!r} is not comparable here (expected 'robust')")
        shift_names.add(res["shift_name"])
        for label, m in res["methods"].items():
            series.append((f"{rd.name}/{label}", res["shifts"], m["mean"], m["std"]))
    if len(shift_names) > 1:
        raise ConfigError(f"runs were evaluated over different shift parameters {sorted(shift_names)}")
    (shift_name,) = shift_names
    grid = sorted({v for _, xs, _, _ in series for v in xs if v is not None}) or [None]
    header = ["run/method"] + [f"{shift_name}={v:g}" if v is not None else "nominal" for v in grid]
    rows.append("| " + " | ".join(header) + " |")
    rows.append("|" + "---|" * len(header))
    for name, xs, means, stds in series:
        cells = {x: f"{m:.3f} ± {s:.3f}" for x, m, s in zip(xs, means, stds)}
        rows.append("| " + " | ".join([name] + [cells.get(v, "-") for v in grid]) + " |")
    table = "\n".join(rows)
    atomic_write_text(out / "comparison.md", table + "\n")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, xs, means, stds in series:
        x = np.array([0.0 if v is None else v for v in xs])
        ax.errorbar(x, means, yerr=stds, marker="o", capsize=3, label=name)  # std over replications
    ax.set_xlabel(shift_name)
    ax.set_ylabel("average return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "comparison.png", dpi=120)
    plt.close(fig)
    tb = TBLogger(out)
    for name, xs, means, stds in series:
        for x, m, s in zip(xs, means, stds):
            tb.scalars(
                name.replace("/", "__"),
                {"robust/return": m, "robust/return_std": s},
                shift_step(0.0 if x is None else x),
            )
    tb.close()
    return table


# -- collect ----------------------------------------------------------------------------------
def collect(
    env_id: str,
    out: str,
    episodes: int,
    policy: str = "random",
    seed: int = 0,
    shift: dict[str, float] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    num_workers: int | None = None,
    address: str | None = None,
    overwrite: bool = False,
    chunk: int = 50,
) -> Path:
    """Ray rollouts of a behaviour policy into a dataset directory (envs/datasets.py)."""
    from envs.episodes import Episodes
    from trainers.policies import behaviour_policy
    from trainers.robust import _seeds
    from trainers.rollout import Job, RolloutPool
    from trainers.runtime import init_ray, plan

    if episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {episodes}")
    try:
        spec = envs.spec(env_id)
        for name in shift or {}:
            spec.shift(name)
    except envs.EnvError as exc:
        raise ConfigError(str(exc)) from exc
    if Path(out).exists() and not overwrite:
        raise ConfigError(f"--out {out} exists; pass --overwrite to replace it")
    env = spec.make(**(env_kwargs or {}))
    kind, arg = parse_behaviour(policy)
    pol = behaviour_policy(kind, arg, env.action_space)
    init_ray(address)
    workers = plan(1, num_workers).cpus if num_workers is None else num_workers
    pool = RolloutPool(spec, env_kwargs or {}, num_workers=workers)
    sizes = [min(chunk, episodes - i) for i in range(0, episodes, chunk)]
    seeds = _seeds(seed, 0, 0, len(sizes))
    done = [0]

    def progress(i: int, ep: Any) -> None:
        done[0] += ep.n
        print(f"collect: {done[0]}/{episodes} episodes", flush=True)

    try:
        eps = Episodes.concat(pool.map([Job(pol, n, s, dict(shift or {})) for n, s in zip(sizes, seeds)], progress))
    finally:
        pool.close()
    meta = {
        "env_id": env_id,
        "env_kwargs": env_kwargs or {},
        "shift": shift or {},
        "behaviour": policy,
        "seed": seed,
        "chunk": chunk,
    }
    return datasets.save(datasets.Dataset(eps, meta), out, overwrite=overwrite)


# -- envs -------------------------------------------------------------------------------------
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
    return "\n".join(lines)


def write_json(obj: Any, out: str | None) -> str:
    text = json.dumps(obj, indent=2)
    if out:
        atomic_write_json(out, obj)
    return text
