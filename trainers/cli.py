"""The `shiftrl` command (also `python -m trainers`, which is what `ray job submit` runs)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from envs import EnvError
from envs.datasets import DatasetError
from envs.levels import LevelError
from trainers.config import ConfigError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="shiftrl",
        description="ShiftRL: train, evaluate and compare agents under shifted dynamics, tasks and levels",
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="run an experiment config through Ray Tune")
    t.add_argument("config", nargs="?", help="YAML config (configs/<agent>/<env>.yaml)")
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set replications=5 (repeatable)",
    )
    t.add_argument("--seeds", type=int, default=1, help="number of seeds (one Tune trial and run directory each)")
    t.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or an embedded local Ray)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    t.add_argument(
        "--force", action="store_true", help="with --resume: accept --set values that change the stored config"
    )

    e = sub.add_parser("evaluate", help="evaluate a run's policy over shifts, tasks or levels (JSON out)")
    e.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    e.add_argument("--env", help="evaluate on another registered env id")
    e.add_argument(
        "--env-kwarg",
        dest="env_kwargs",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an env constructor argument on top of the run's env.kwargs, e.g. size=45 (repeatable)",
    )
    e.add_argument("--shift", help="grid, e.g. q=0,0.5,1 or p_up=0.2:1.0:9")
    e.add_argument("--task", dest="tasks", action="append", default=[], help="a task of a multi-task env (repeatable)")
    e.add_argument("--levels", help="a level-set file (envs/levels.py format): one result per level")
    e.add_argument("--episodes", type=int, help="test episodes per grid point, task or level")
    e.add_argument("--exact", action="store_true", default=None, help="exact DP evaluation (finite MDPs, R2PVI)")
    e.add_argument("--workers", type=int, default=0, help="rollout actors (0 = in-process)")
    e.add_argument("--address", help="Ray cluster address when --workers > 0")
    e.add_argument("--out", help="also write the JSON here")

    c = sub.add_parser("compare", help="overlay runs and evaluations: markdown, PNG and TensorBoard")
    c.add_argument("runs", nargs="+", metavar="RUN_DIR_OR_EVAL_JSON")
    c.add_argument("--out", default="comparison", help="output directory (comparison.md/.png, tb/)")

    v = sub.add_parser("envs", help="list registered environments (or check one)")
    v.add_argument("--check", metavar="ENV_ID", help="run the API, determinism and pickling checks on ENV_ID")
    v.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module that registers environments first",
    )

    ag = sub.add_parser("agents", help="list registered agents with their loops, env kinds and config fields")
    ag.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE")

    g = sub.add_parser("render", help="play one episode of a SMAC-like env and save it as a GIF")
    g.add_argument("env", metavar="ENV_ID", help="a SMAClike-*-v0 env id (shiftrl envs lists them)")
    g.add_argument(
        "--policy",
        default="focus_fire",
        help="scripted policy (focus_fire, random, stop) or a RUN_DIR of any multi-agent run (its greedy policy)",
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", default="episode.gif", help="GIF path")
    g.add_argument("--fps", type=float, default=8.0)
    g.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE", help="env constructor kwarg")
    g.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE")

    k = sub.add_parser(
        "collect",
        help="build an offline dataset (Minari format) by Ray rollouts of a behaviour policy",
        description="Either --env with --policy (random/constant, --episodes), or --from-run RUN --quality Q: "
        "D4RL-style datasets (random, medium, medium-replay, expert, medium-expert) from a td3 behaviour run.",
    )
    k.add_argument("--env", help="registered env id (with --policy)")
    k.add_argument("--from-run", help="behaviour run directory (agent td3 with keep_snapshots)")
    k.add_argument("--quality", choices=["random", "medium", "medium-replay", "expert", "medium-expert"])
    k.add_argument("--transitions", type=int, default=200_000, help="with --from-run: about this many steps")
    k.add_argument("--noise", type=float, help="with --from-run: action noise (default 0.1 medium, 0 expert)")
    k.add_argument("--medium-fraction", type=float, default=1 / 3, help="medium = this far from random to best")
    k.add_argument("--out", required=True, help="dataset directory to write")
    k.add_argument("--episodes", type=int, default=100)
    k.add_argument("--policy", default="random", help="'random' or 'constant:<action>'")
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--shift", action="append", default=[], metavar="NAME=VALUE", help="collect under a shift")
    k.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE", help="env constructor kwarg")
    k.add_argument("--workers", type=int, help="rollout actors (default: all CPUs)")
    k.add_argument("--address", help="Ray cluster address")
    k.add_argument("--overwrite", action="store_true")
    k.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE")

    m = sub.add_parser("make-levels", help="generate a procedural env's level sets as level-set files")
    m.add_argument(
        "family",
        choices=["cave", "shift"],
        help="cave: DRED's Cave Escape sets (train, test, edge cases); shift: a grid of dynamics "
        "parameters of a shifted-dynamics env (--env, --grid) as one level-set file",
    )
    m.add_argument("--out", required=True, help="cave: directory for <set>.json files; shift: the file to write")
    m.add_argument("--env", help="shift: the env id, e.g. ShiftedCartPole-v0")
    m.add_argument(
        "--grid", action="append", default=[], help="shift: NAME=V1,V2,... (repeatable; the cartesian product)"
    )
    m.add_argument("--set", dest="sets", action="append", default=[], help="only this set (repeatable)")
    m.add_argument("--per-family", type=int, help="levels per layout family (default: each set's own size)")
    m.add_argument("--overwrite", action="store_true")

    v = sub.add_parser("convert-dataset", help="rewrite an old episodes.npz dataset in Minari's format")
    v.add_argument("old", help="directory with episodes.npz and metadata.json")
    v.add_argument("new", help="Minari dataset directory to write")
    v.add_argument("--overwrite", action="store_true")
    return p


def _kv(items: list[str], flag: str) -> dict[str, Any]:
    from trainers.config import parse_override

    out = {}
    for text in items:
        path, value = parse_override(text)
        if len(path) != 1:
            raise ConfigError(f"{flag} {text!r}: expected NAME=VALUE")
        out[path[0]] = value
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from trainers.agents import AgentError
    from trainers.runtime import ResourceError

    try:
        _dispatch(args)
    except (ConfigError, EnvError, DatasetError, LevelError, AgentError, ResourceError) as exc:
        print(f"shiftrl: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _dispatch(args: argparse.Namespace) -> None:
    from trainers.agents import load_plugins

    load_plugins(tuple(getattr(args, "imports", ())))
    if args.command == "train":
        from trainers.commands.compare import summarize
        from trainers.run import train

        dirs = train(
            args.config, args.overrides, seeds=args.seeds, address=args.address, resume=args.resume, force=args.force
        )
        print(summarize([str(d) for d in dirs]))
        for d in dirs:
            print(f"shiftrl: results in {d / 'results.json'}; TensorBoard: tensorboard --logdir {d.parent}")
    elif args.command == "evaluate":
        from trainers.commands import write_json
        from trainers.commands.evaluate import evaluate

        res = evaluate(
            args.target,
            args.env,
            args.shift,
            args.episodes,
            args.exact,
            args.workers,
            args.address,
            tasks=args.tasks,
            levels=args.levels,
            env_kwargs=args.env_kwargs,
        )
        print(write_json(res, args.out))
    elif args.command == "compare":
        from trainers.commands.compare import compare

        print(compare(args.runs, args.out))
        print(f"shiftrl: wrote {args.out}/comparison.md, its figures (*.png) and {args.out}/tb/")
    elif args.command == "envs":
        import envs
        from trainers.commands.listing import list_envs

        if args.check:
            envs.check(args.check)
            print(f"{args.check}: API, determinism and pickling checks passed")
        else:
            print(list_envs())
    elif args.command == "make-levels" and args.family == "shift":
        import envs
        from envs.levels import load_level_set, save_level_set, shift_levels

        if not args.env or not args.grid:
            raise ConfigError("make-levels shift needs --env ID and at least one --grid NAME=V1,V2,...")
        grid: dict[str, list[float]] = {}
        for text in args.grid:
            name, sep, values = text.partition("=")
            try:
                grid[name.strip()] = [float(v) for v in values.split(",")] if sep else []
            except ValueError:
                raise ConfigError(f"make-levels --grid {text!r}: expected NAME=V1,V2,... with numbers") from None
        try:
            out = save_level_set(shift_levels(envs.spec(args.env), grid), args.out, args.overwrite)
        except (LevelError, EnvError) as exc:
            raise ConfigError(f"make-levels shift: {exc}") from exc
        print(f"{out}: {len(load_level_set(out))} levels")
    elif args.command == "make-levels":
        from envs.cave.sets import SETS, build_sets

        unknown = sorted(set(args.sets) - set(SETS))
        if unknown:
            raise ConfigError(f"make-levels --set {unknown}: unknown set(s); expected among {list(SETS)}")
        if args.per_family is not None and args.per_family < 1:
            raise ConfigError(f"make-levels --per-family must be >= 1, got {args.per_family}")
        build_sets(args.out, args.sets or None, args.per_family, args.overwrite)
    elif args.command == "agents":
        from trainers.commands.listing import list_agents

        print(list_agents())
    elif args.command == "render":
        from trainers.commands.render import render_gif

        summary = render_gif(args.env, args.policy, args.seed, args.out, args.fps, _kv(args.env_kwarg, "--env-kwarg"))
        print(
            f"shiftrl: wrote {summary['path']} ({summary['steps']} steps, task {summary['task']}, "
            f"{'won' if summary['battle_won'] else 'lost'}, return {summary['return']:.2f})"
        )
    elif args.command == "collect" and args.from_run:
        from trainers.commands.collect import collect_quality

        if not args.quality:
            raise ConfigError(
                "collect --from-run needs --quality (random, medium, medium-replay, expert, medium-expert)"
            )
        path = collect_quality(
            args.from_run,
            args.quality,
            args.out,
            args.transitions,
            args.seed,
            args.noise,
            args.medium_fraction,
            args.workers,
            args.address,
            args.overwrite,
        )
        print(f"shiftrl: dataset written to {path}")
    elif args.command == "collect":
        from trainers.commands.collect import collect

        if not args.env:
            raise ConfigError("collect needs --env ID (with --policy) or --from-run RUN --quality Q")

        path = collect(
            args.env,
            args.out,
            args.episodes,
            args.policy,
            args.seed,
            _kv(args.shift, "--shift"),
            _kv(args.env_kwarg, "--env-kwarg"),
            args.workers,
            args.address,
            args.overwrite,
        )
        print(f"shiftrl: dataset written to {path}")
    elif args.command == "convert-dataset":
        from envs.datasets import convert_legacy

        print(f"shiftrl: dataset written to {convert_legacy(args.old, args.new, args.overwrite)}")
