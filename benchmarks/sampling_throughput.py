"""Sampling throughput of ShiftRL's env runners against RLlib's, same machine, same run.

    python benchmarks/sampling_throughput.py [--quick] [--envs 3m,3s5z] [--out benchmarks/results]
        [--modes in-process,ours,rllib] [--runners 1,2] [--batches 1,8,32] [--resume]

Three samplers on the SMAC-like maps (SMAClike-<map>-v0), each at B envs per runner:

- in-process: one :class:`trainers.sampling.EnvRunner` in this process (no Ray) stepping the
  batched core with PPO's GRU policy (``PPOConfig(recurrent="gru", hidden=64)``);
- ours: :class:`trainers.sampling.RunnerGroup` with 1 or 2 Ray actors, each call
  ``group.set_weights(learner.weights())`` then a synchronous ``group.sample(T)``, as the
  on-policy loop does (so weight publication, the batch's trip back and the concatenation
  are timed too);
- RLlib: RLlib's EnvRunners (new API stack) built by our adapter
  (trainers/loops/rllib.py ``build_ppo``: the same env as a PettingZoo env behind
  ``ParallelPettingZooEnv``, RLlib's action-masking MLP module with the adapter's default
  hidden sizes), 1 or 2 remote runners, timed on ``runner.sample(num_timesteps=...)``
  alone through ``env_runner_group.foreach_env_runner`` (episodes returned to the driver,
  no weight sync, no learner).

One env step = one battle step (every living agent of a battle acts once). Ours counts
T x B x runners per call (envs that finish reset inside the call, so every step is a real
battle step); RLlib's count is read back from the episodes it returns
(``MultiAgentEpisode.env_steps()``; RLlib's own ``count_steps_by="env_steps"`` counts the
same and excludes its auto-reset steps); agent steps are never used.

Method: torch one thread in this process, Ray embedded once with 2 CPUs
(``init_ray(num_cpus=2)``). The samplers of one cell (map, runners, B) are built together
and their windows interleaved (in-process, ours, RLlib, then rotated), so a neighbour's load
hits all of them alike (other jobs share this machine; a sequential sweep saw the load
average swing from 1 to 2.7 mid-run). RLlib's runners reserve 0 logical CPUs so both groups fit
in the 2-CPU cluster at once (only one samples at any time; a logical reservation changes no
speed). Per sampler, warm-up calls size T so one call takes about ``--call-seconds``, then
``--windows`` windows of at least ``--window-seconds`` each; the median window rate is
reported, with the median of the per-window (paired) ratios as a check. Only ratios within
one run are meaningful.

Writes <out>/sampling_throughput.{json,md} (atomically, after every cell, so a run cut short
keeps what it measured; ``--resume`` then measures only the missing cells) and prints
progress lines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

MODES = ("in-process", "ours", "rllib")
RUNNERS = (1, 2)
BATCHES = (1, 8, 32)
TARGET_RLLIB = 5.0  # issue target: ours >= 5x RLlib env steps/s at every (runners, B)
TARGET_IN_PROCESS = 0.5  # issue target: ours (1 runner) >= half the in-process rate at B = 32


@dataclass(frozen=True)
class Timing:
    """How long to measure each config.

    Attributes:
        windows: timed windows per config (the median is reported).
        window_s: minimum length of one window in seconds (whole sample calls).
        call_s: wanted duration of one sample call; T is sized from a warm-up call.
    """

    windows: int
    window_s: float
    call_s: float


FULL = Timing(windows=5, window_s=2.0, call_s=0.5)
QUICK = Timing(windows=2, window_s=0.4, call_s=0.2)


@dataclass
class Sampler:
    """One config under test: ``call(T)`` samples T steps of each of the B envs of every
    runner and returns the battle steps taken; ``close`` frees its actors."""

    call: Callable[[int], int]
    close: Callable[[], None]
    info: dict[str, Any] = field(default_factory=dict)


def _ppo_learner(env_id: str) -> Any:
    from agents.ppo import PPOConfig, make_learner
    from trainers.sampling import env_spaces

    return make_learner(PPOConfig(recurrent="gru", hidden=64), env_spaces(env_id), 0)


def in_process(env_id: str, runners: int, B: int) -> Sampler:
    from trainers.sampling import EnvRunner

    runner = EnvRunner(env_id, {}, B, 0, 0, _ppo_learner(env_id).policy())

    def call(T: int) -> int:
        runner.sample(T)
        return T * B

    return Sampler(call, lambda: None)


def ours(env_id: str, runners: int, B: int) -> Sampler:
    from trainers.sampling import RunnerGroup

    learner = _ppo_learner(env_id)
    group = RunnerGroup(env_id, {}, learner.policy(), 0, runners, B)

    def call(T: int) -> int:
        group.set_weights(learner.weights())
        batch, _ = group.sample(T)
        assert batch["rewards"].shape == (runners * B, T), batch["rewards"].shape
        return T * B * runners

    return Sampler(call, group.close)


def rllib(env_id: str, runners: int, B: int) -> Sampler:
    from trainers.config import load_config
    from trainers.loops.rllib import build_ppo

    cfg = load_config(
        None, ["agent=rllib_ppo", f"env.id={env_id}", f"ray.num_workers={runners}", f"ray.envs_per_worker={B}"]
    )
    # 0 logical CPUs per runner: ours and RLlib's groups of a cell are alive together (see the docstring)
    algo = build_ppo(cfg, cfg.seed).env_runners(num_cpus_per_env_runner=0).build_algo()
    group = algo.env_runner_group
    if group.num_healthy_remote_workers() != runners:
        algo.stop()
        raise RuntimeError(f"RLlib built {group.num_healthy_remote_workers()} remote env runners, wanted {runners}")
    threads = group.foreach_env_runner(lambda r: __import__("torch").get_num_threads(), local_env_runner=False)

    def call(T: int) -> int:
        n = T * B  # num_timesteps counts env steps summed over the runner's B envs
        per_runner = group.foreach_env_runner(
            lambda r: sum(ep.env_steps() for ep in r.sample(num_timesteps=n)), local_env_runner=False
        )
        # measured from the returned episodes: RLlib may overshoot n by up to B - 1
        assert len(per_runner) == runners, per_runner
        return int(sum(per_runner))

    return Sampler(call, algo.stop, {"runner_torch_threads": threads})


BUILDERS: dict[str, Callable[[str, int, int], Sampler]] = {"in-process": in_process, "ours": ours, "rllib": rllib}


def _wait_for_cpus(cpus: float, timeout: float = 60.0) -> None:
    """Killed actors free their CPUs asynchronously; a new group that asks for them before
    that would wait (a silent hang on a 2-CPU node, ray-runtime.md)."""
    import ray

    t0 = time.perf_counter()
    while ray.available_resources().get("CPU", 0.0) < cpus:
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"Ray CPUs not freed after {timeout:.0f} s: {ray.available_resources()}")
        time.sleep(0.2)


def calibrate(sampler: Sampler, call_s: float) -> int:
    """Warm-up calls; returns T (steps per env per call) so that one call takes about ``call_s``."""
    T = 8
    sampler.call(T)  # first call: actor start, env resets, lazy imports
    t0 = time.perf_counter()
    sampler.call(T)
    per_T = (time.perf_counter() - t0) / T
    for _ in range(2):  # size T, then re-size it from a call at that size (less start-up noise)
        T = max(1, min(10_000, round(call_s / max(per_T, 1e-9))))
        t0 = time.perf_counter()
        sampler.call(T)
        per_T = (time.perf_counter() - t0) / T
    return T


def window(sampler: Sampler, T: int, seconds: float) -> dict[str, Any]:
    """Whole calls until at least ``seconds`` have passed."""
    steps, calls, t0 = 0, 0, time.perf_counter()
    while True:
        steps += sampler.call(T)
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return {"env_steps": steps, "seconds": elapsed, "calls": calls, "env_steps_per_s": steps / elapsed}


def run_cell(env: str, runners: int, B: int, modes: tuple[str, ...], timing: Timing) -> list[dict[str, Any]]:
    """Builds this cell's samplers, then interleaves their windows (rotating the order)."""
    env_id = f"SMAClike-{env}-v0"
    here = [m for m in modes if m != "in-process" or runners == 1]
    if not here:
        return []
    print(f"[{time.strftime('%H:%M:%S')}] {env:>5} runners {runners} B {B:>2}: starting {', '.join(here)}", flush=True)
    if "ours" in here:
        _wait_for_cpus(runners)
    samplers: dict[str, Sampler] = {}
    build_s: dict[str, float] = {}
    wins: dict[str, list[dict[str, Any]]] = {m: [] for m in here}
    try:
        for m in here:
            t0 = time.perf_counter()
            samplers[m] = BUILDERS[m](env_id, runners, B)
            build_s[m] = time.perf_counter() - t0
        T = {m: calibrate(samplers[m], timing.call_s) for m in here}
        for w in range(timing.windows):
            k = w % len(here)
            for m in here[k:] + here[:k]:
                wins[m].append(window(samplers[m], T[m], timing.window_s))
    finally:
        for sampler in samplers.values():
            sampler.close()
    rows = []
    for m in here:
        rates = [x["env_steps_per_s"] for x in wins[m]]
        med = statistics.median(rates)
        row = {
            "env": env,
            "env_id": env_id,
            "mode": m,
            "runners": runners,
            "B": B,
            "build_s": build_s[m],
            "steps_per_env_per_call": T[m],
            "env_steps_per_call": sum(x["env_steps"] for x in wins[m]) / sum(x["calls"] for x in wins[m]),
            "seconds_per_call": statistics.median(x["seconds"] / x["calls"] for x in wins[m]),
            "windows": wins[m],
            "env_steps_per_s": med,
            "spread": (max(rates) - min(rates)) / med,
            **samplers[m].info,
        }
        rows.append(row)
        print(
            f"[{time.strftime('%H:%M:%S')}] {env:>5} runners {runners} B {B:>2}: {m:<10} {med:>8.0f} env steps/s "
            f"(median of {len(rates)}, spread {100 * row['spread']:.0f} %, T={T[m]}, "
            f"{row['seconds_per_call']:.2f} s/call)",
            flush=True,
        )
    return rows


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ours / RLlib at each (env, runners, B); ours (1 runner) / in-process at each B."""
    by = {(r["env"], r["mode"], r["runners"], r["B"]): r for r in rows}

    def paired(a: dict[str, Any], b: dict[str, Any] | None) -> float | None:
        """Median over window pairs measured back to back (same neighbours' load)."""
        if b is None:
            return None
        return statistics.median(
            x["env_steps_per_s"] / y["env_steps_per_s"] for x, y in zip(a["windows"], b["windows"], strict=True)
        )

    out = []
    for (env, mode, runners, B), o in by.items():
        if mode != "ours":
            continue
        rl = by.get((env, "rllib", runners, B))
        ip = by.get((env, "in-process", 1, B)) if runners == 1 else None
        out.append(
            {
                "env": env,
                "runners": runners,
                "B": B,
                "ours": o["env_steps_per_s"],
                "rllib": rl["env_steps_per_s"] if rl else None,
                "in_process": ip["env_steps_per_s"] if ip else None,
                "ours_over_rllib": o["env_steps_per_s"] / rl["env_steps_per_s"] if rl else None,
                "ours_over_rllib_paired": paired(o, rl),
                "ours_over_in_process": o["env_steps_per_s"] / ip["env_steps_per_s"] if ip else None,
                "ours_over_in_process_paired": paired(o, ip),
            }
        )
    return out


def targets(rat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rat:
        where = f"{r['env']}, {r['runners']} runner(s), B={r['B']}"
        if r["ours_over_rllib"] is not None:
            out.append(
                {
                    "target": f"ours >= {TARGET_RLLIB:g}x RLlib",
                    "where": where,
                    "value": r["ours_over_rllib"],
                    "paired": r["ours_over_rllib_paired"],
                    "met": r["ours_over_rllib"] >= TARGET_RLLIB,
                    "numbers": f"{r['ours']:.0f} vs {r['rllib']:.0f} env steps/s",
                }
            )
        if r["ours_over_in_process"] is not None and r["B"] == 32:
            out.append(
                {
                    "target": f"ours >= {TARGET_IN_PROCESS:g}x in-process at B=32",
                    "where": where,
                    "value": r["ours_over_in_process"],
                    "paired": r["ours_over_in_process_paired"],
                    "met": r["ours_over_in_process"] >= TARGET_IN_PROCESS,
                    "numbers": f"{r['ours']:.0f} vs {r['in_process']:.0f} env steps/s",
                }
            )
    return out


def _fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]], rat: list[dict[str, Any]], tg: list[dict]) -> str:
    t = meta["timing"]
    lines = [
        "# Sampling throughput: ShiftRL env runners vs RLlib (same run)",
        "",
        f"{meta['date']}, {meta['cpu_count']} CPUs ({meta['machine']}), Python {meta['python']}, "
        f"ray {meta['versions']['ray']}, torch {meta['versions']['torch']}, numpy {meta['versions']['numpy']}; "
        f"load average {meta['load_before']} before, {meta['load_after']} after"
        + (" (**--quick smoke run, not a measurement**)" if meta["quick"] else "")
        + ("" if meta["complete"] else " (**partial: the run stopped early or is still going**)")
        + "."
        + (
            f" Resumed at {', '.join(meta['resumed'])} after Ray was killed under the run: cells were measured by "
            "different processes, but every ratio is taken within one cell."
            if meta.get("resumed")
            else ""
        ),
        "",
        (
            f"Median of {t['windows']} windows of >= {t['window_s']:g} s; T (steps per env per call) sized so one "
            f"call takes about {t['call_s']:g} s. The samplers of one (env, runners, B) cell are built together "
            'and their windows interleaved, so neighbours\' load hits them alike; "paired" = median over the '
            "windows of the back-to-back ratio. Ray embedded with 2 CPUs (RLlib runners reserve 0 logical CPUs so "
            "both groups of a cell fit; only one samples at a time), torch 1 thread in the driver and every runner "
            f"(RLlib runners report {meta['rllib_runner_torch_threads'] or 'n/a'}). The machine is shared and noisy: "
            "compare ratios, not absolutes."
        ),
        "",
        (
            "**How env steps are counted.** One env step = one battle step (every living agent acts once). "
            "in-process and ours: T x B x runners per call (finished battles reset inside the call, so every "
            "counted step is a real battle step). RLlib: the sum of `MultiAgentEpisode.env_steps()` over the "
            "episodes each runner's `sample(num_timesteps=T*B)` returns (RLlib's `count_steps_by=\"env_steps\"`; "
            "its auto-reset steps are not counted). Agent steps (env steps x allies: 3 on 3m, 8 on 3s5z) are not used."
        ),
        "",
        (
            "**What is timed.** in-process: `EnvRunner.sample(T)` (batched core + PPO GRU policy, hidden 64, actor "
            "and critic forward per step). ours: `group.set_weights(learner.weights())` + `group.sample(T)` on Ray "
            "actors (weights published, batches returned and concatenated). RLlib: "
            "`env_runner_group.foreach_env_runner(lambda r: r.sample(num_timesteps=...))` on remote runners built by "
            "`build_ppo` (PettingZoo env per battle via `ParallelPettingZooEnv`, RLlib's action-masking MLP "
            f"{meta['rllib_hidden']}, no recurrence; episodes returned to the driver; no weight sync)."
        ),
        "",
        "| env | mode | runners | B | env steps/s | spread | T | s/call |",
        "|---|---|---|---|---|---|---|---|",
    ]
    envs = list(dict.fromkeys(r["env"] for r in rows))
    for r in sorted(rows, key=lambda r: (envs.index(r["env"]), MODES.index(r["mode"]), r["runners"], r["B"])):
        lines.append(
            f"| {r['env']} | {r['mode']} | {r['runners']} | {r['B']} | {r['env_steps_per_s']:.0f} | "
            f"{100 * r['spread']:.0f} % | {r['steps_per_env_per_call']} | {r['seconds_per_call']:.2f} |"
        )
    lines += [
        "",
        "spread = (max - min) / median over the windows.",
        "",
        "## Ratios",
        "",
        "| env | runners | B | ours | RLlib | ours / RLlib (paired) | in-process | ours / in-process (paired) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rat:
        lines.append(
            f"| {r['env']} | {r['runners']} | {r['B']} | {r['ours']:.0f} | {_fmt(r['rllib'], '.0f')} | "
            f"{_fmt(r['ours_over_rllib'], '.1f')} ({_fmt(r['ours_over_rllib_paired'], '.1f')}) | "
            f"{_fmt(r['in_process'], '.0f')} | {_fmt(r['ours_over_in_process'], '.2f')} "
            f"({_fmt(r['ours_over_in_process_paired'], '.2f')}) |"
        )
    lines += ["", "## Targets (from the issue)", ""]
    for target in dict.fromkeys(x["target"] for x in tg):
        these = [x for x in tg if x["target"] == target]
        n_met = sum(x["met"] for x in these)
        lines.append(f"- **{target}**: {'met' if n_met == len(these) else 'missed'} ({n_met} of {len(these)} met)")
        for x in these:
            lines.append(
                f"  - {x['where']}: {x['value']:.2f}, paired {x['paired']:.2f} ({x['numbers']}): "
                f"{'met' if x['met'] else 'missed'}"
            )
    if not tg:
        lines.append("- not evaluated (a mode was skipped)")
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv(kind: Callable[[str], Any]) -> Callable[[str], tuple]:
    return lambda s: tuple(kind(x) for x in s.split(",") if x)


def _resumable(out: Path, meta: dict[str, Any], cells: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """Rows of the cells an interrupted run measured with the same timing (a cell's rows are
    written together, and every ratio is taken within one cell, so kept cells stay comparable)."""
    path = out / "sampling_throughput.json"
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    if old["meta"]["timing"] != meta["timing"] or old["meta"]["quick"] != meta["quick"]:
        print(f"not resuming: {path} was measured with other timing", flush=True)
        return []
    meta["resumed"] = [*old["meta"].get("resumed", []), meta["date"]]
    meta["date"], meta["load_before"] = old["meta"]["date"], old["meta"]["load_before"]
    return [r for r in old["rows"] if (r["env"], r["runners"], r["B"]) in set(cells)]


def write(out: Path, meta: dict[str, Any], rows: list[dict[str, Any]], seconds: float) -> str:
    """Writes the JSON and the markdown atomically; returns the markdown."""
    meta = {
        **meta,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "total_s": seconds,
        "rllib_runner_torch_threads": sorted({t for r in rows for t in r.get("runner_torch_threads", [])}),
    }
    rat = ratios(rows)
    tg = targets(rat)
    data = {"meta": meta, "rows": rows, "ratios": rat, "targets": tg}
    _atomic_write(out / "sampling_throughput.json", json.dumps(data, indent=2) + "\n")
    md = markdown(meta, rows, rat, tg)
    _atomic_write(out / "sampling_throughput.md", md)
    return md


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short windows: a smoke test, not a measurement")
    p.add_argument("--envs", type=_csv(str), default=("3m", "3s5z"), help="SMAC-like maps, comma-separated")
    p.add_argument("--out", default=str(HERE / "results"), help="directory for the .json and .md")
    p.add_argument("--modes", type=_csv(str), default=MODES, help=f"subset of {','.join(MODES)}")
    p.add_argument("--runners", type=_csv(int), default=RUNNERS, help="Ray runners for ours and RLlib")
    p.add_argument("--batches", type=_csv(int), default=BATCHES, help="envs per runner B")
    p.add_argument("--windows", type=int, help="override the number of windows")
    p.add_argument("--window-seconds", type=float, help="override the window length")
    p.add_argument("--call-seconds", type=float, help="override the wanted duration of one call")
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the cells an interrupted run (same timing) wrote to --out and measure only the rest",
    )
    args = p.parse_args()
    unknown = set(args.modes) - set(MODES)
    if unknown:
        p.error(f"unknown modes {sorted(unknown)}; choose from {MODES}")
    base = QUICK if args.quick else FULL
    timing = Timing(
        windows=args.windows or base.windows,
        window_s=args.window_seconds or base.window_s,
        call_s=args.call_seconds or base.call_s,
    )

    import numpy as np
    import ray
    import torch

    from trainers.loops.rllib import RLlibPPOConfig
    from trainers.runtime import init_ray

    torch.set_num_threads(1)
    if {"ours", "rllib"} & set(args.modes):
        t0 = time.perf_counter()
        init_ray(num_cpus=2)
        print(f"Ray up in {time.perf_counter() - t0:.1f} s: {ray.cluster_resources().get('CPU')} CPUs", flush=True)

    runner_counts = sorted(set(args.runners) | ({1} if "in-process" in args.modes else set()))
    cells = [(env, n, B) for env in args.envs for n in runner_counts for B in args.batches]
    print(f"{len(cells)} cells x {', '.join(args.modes)}, {timing}", flush=True)
    t_start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    md = ""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {"ray": ray.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "ray_num_cpus": 2,
        "rllib_hidden": "x".join(str(h) for h in RLlibPPOConfig().hidden),
        "torch_threads_driver": torch.get_num_threads(),
        "quick": args.quick,
        "timing": {"windows": timing.windows, "window_s": timing.window_s, "call_s": timing.call_s},
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "counting": "env steps = battle steps; ours: T*B*runners per call; RLlib: sum of episode.env_steps()",
        "command": " ".join(sys.argv),
    }
    if args.resume:
        rows = _resumable(out, meta, cells)
    done = {(r["env"], r["runners"], r["B"]) for r in rows}
    for i, (env, n, B) in enumerate(cells):
        if (env, n, B) in done:
            print(f"{env:>5} runners {n} B {B:>2}: kept from the interrupted run", flush=True)
            continue
        rows += run_cell(env, n, B, tuple(m for m in args.modes if m == "in-process" or n in args.runners), timing)
        # rewritten after every cell: a run cut short (say, Ray killed by a neighbour) keeps what it measured
        meta["complete"] = i + 1 == len(cells)
        md = write(out, meta, rows, time.perf_counter() - t_start)
    print(md)
    print(
        f"done in {time.perf_counter() - t_start:.0f} s; wrote {out / 'sampling_throughput.json'} and .md", flush=True
    )


if __name__ == "__main__":
    main()
