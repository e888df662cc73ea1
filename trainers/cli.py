"""The `shiftrl` command (also `python -m trainers`, which is what `ray job submit` runs)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from envs import EnvError
from envs.datasets import DatasetError
from trainers.config import ConfigError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shiftrl", description="ShiftRL: train, evaluate and compare robust RL agents")
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

    e = sub.add_parser("evaluate", help="evaluate saved policies over a grid of shifts (JSON out)")
    e.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    e.add_argument("--env", help="evaluate on another registered env id")
    e.add_argument("--shift", help="grid, e.g. q=0,0.5,1 or p_up=0.2:1.0:9")
    e.add_argument("--episodes", type=int, help="Monte-Carlo episodes per shift")
    e.add_argument("--exact", action="store_true", default=None, help="exact DP evaluation (finite MDPs)")
    e.add_argument("--workers", type=int, default=0, help="rollout actors (0 = in-process)")
    e.add_argument("--address", help="Ray cluster address when --workers > 0")
    e.add_argument("--out", help="also write the JSON here")

    c = sub.add_parser("compare", help="side-by-side table, PNG plot and TensorBoard scalars of runs")
    c.add_argument("runs", nargs="+", metavar="RUN_DIR")
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

    g = sub.add_parser("render", help="play one episode of a SMAC-like env and save it as a GIF")
    g.add_argument("env", metavar="ENV_ID", help="a SMAClike-*-v0 env id (shiftrl envs lists them)")
    g.add_argument(
        "--policy",
        default="focus_fire",
        help="scripted policy (focus_fire, random, stop) or an rllib_ppo RUN_DIR (its greedy policy)",
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", default="episode.gif", help="GIF path")
    g.add_argument("--fps", type=float, default=8.0)
    g.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE", help="env constructor kwarg")
    g.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE")

    k = sub.add_parser("collect", help="build an offline dataset by Ray rollouts of a behaviour policy")
    k.add_argument("--env", required=True, help="registered env id")
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
    try:
        if args.command == "train":
            from trainers.run import train

            dirs = train(args.config, args.overrides, seeds=args.seeds, address=args.address, resume=args.resume)
            from trainers.tools import summarize

            print(summarize([str(d) for d in dirs]))
            for d in dirs:
                print(f"shiftrl: results in {d / 'results.json'}; TensorBoard: tensorboard --logdir {d.parent}")
        elif args.command == "evaluate":
            from trainers.tools import evaluate, write_json

            res = evaluate(args.target, args.env, args.shift, args.episodes, args.exact, args.workers, args.address)
            print(write_json(res, args.out))
        elif args.command == "compare":
            from trainers.tools import compare

            print(compare(args.runs, args.out))
            print(f"shiftrl: wrote {args.out}/comparison.md, {args.out}/comparison.png and {args.out}/tb/")
        elif args.command == "envs":
            import envs
            from trainers.tools import list_envs

            envs.load_plugins(tuple(args.imports))
            if args.check:
                envs.check(args.check)
                print(f"{args.check}: API, determinism and pickling checks passed")
            else:
                print(list_envs())
        elif args.command == "render":
            import envs
            from trainers.tools import render_gif

            envs.load_plugins(tuple(args.imports))
            summary = render_gif(
                args.env, args.policy, args.seed, args.out, args.fps, _kv(args.env_kwarg, "--env-kwarg")
            )
            print(
                f"shiftrl: wrote {summary['path']} ({summary['steps']} steps, task {summary['task']}, "
                f"{'won' if summary['battle_won'] else 'lost'}, return {summary['return']:.2f})"
            )
        elif args.command == "collect":
            import envs
            from trainers.tools import collect

            envs.load_plugins(tuple(args.imports))
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
    except (ConfigError, EnvError, DatasetError) as exc:
        print(f"shiftrl: error: {exc}", file=sys.stderr)
        return 2
    return 0
