"""The offline loop, shared by every agent registered with ``loop="offline"`` (PRDC, TD3+BC,
BC): gradient steps on batches drawn from a fixed Minari dataset, greedy evaluation of the
policy on Ray actors over the config's shift grid (in parallel, one point per actor), and
checkpoints that a resumed run continues from exactly.

The learner must be an :class:`agents.protocols.DatasetLearner`; its config must have
``dataset``, ``gradient_steps``, ``batch_size`` and ``checkpoint_every``. TensorBoard's
x-axis is **gradient steps** here (no env steps are taken while learning): ``losses/<term>``
every ``log_every`` steps, ``eval/greedy/return`` pooled over the eval set and
``eval/<shift>=<v>/return`` per shift at every evaluation, ``charts/SPS`` in gradient steps
per second, and ``eval/greedy/normalized_score`` (100 x (R - random) / (best - random),
D4RL's convention, pooled like ``eval/greedy/return``) and ``eval/<shift>=<v>/normalized_score``
when the dataset stores reference returns. results.json's ``normalized_score`` is D4RL's
number: the score on the nominal dynamics the data came from (``normalized_score_at`` names
that point; ``normalized_score_pooled`` is the pool over the grid).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import envs
from envs import datasets
from trainers import checkpoint
from trainers.config import ConfigError, ExperimentConfig
from trainers.io import atomic_write_json
from trainers.loops import RunContext, build_learner
from trainers.loops import evaluate_run as evaluate_run  # the loop surface (shiftrl evaluate)
from trainers.loops import load_policy as load_policy  # the loop surface (shiftrl render)
from trainers.tb import TBLogger

EVAL_FIELDS = frozenset({"shifts", "episodes", "every"})
RAY_FIELDS = frozenset({"address", "num_workers", "include_dashboard"})
REQUIRED = ("dataset", "gradient_steps", "batch_size", "checkpoint_every")
LOG_ROWS = 200  # loss rows per run (TensorBoard)
PROGRESS_SECONDS = 15.0  # a progress line at least this often (and at every evaluation)


class ProgressTicker:
    """Progress lines of the gradient-step loops (offline, rllib_offline): by time, not by
    steps (each Tune report costs a round trip), and at every evaluation; charts/SPS too."""

    def __init__(self, ctx: RunContext, tb: Any, total: int, steps: int) -> None:
        self.ctx, self.tb, self.total = ctx, tb, total
        self.t_last, self.steps_last = time.time(), steps

    def tick(self, steps: int, losses: dict[str, float], evaluating: bool, evaluate: Callable[[], str]) -> None:
        if not (evaluating or time.time() - self.t_last >= PROGRESS_SECONDS):
            return
        sps = (steps - self.steps_last) / max(time.time() - self.t_last, 1e-9)
        self.t_last, self.steps_last = time.time(), steps
        self.tb.scalars("main", {"charts/SPS": sps}, steps)
        msg = f"gradient steps {steps}/{self.total}, {sps:.3g}/s, " + ", ".join(
            f"{k} {v:.3g}" for k, v in sorted(losses.items())
        )
        if evaluating:
            msg += evaluate()
        self.ctx.progress(msg)
        if self.ctx.report:
            self.ctx.report({"gradient_steps": steps})


def validate(cfg: ExperimentConfig, env_spec: envs.EnvSpec) -> None:
    a = cfg.agent_config
    missing = [k for k in REQUIRED if not hasattr(a, k)]
    if missing:
        raise ConfigError(f"agent {cfg.agent!r}: an offline agent's config needs fields {missing}")
    if not a.dataset:
        raise ConfigError(
            "agent_config.dataset: required - a Minari dataset directory (build one with `shiftrl collect`)"
        )
    if not Path(a.dataset).is_dir():
        raise ConfigError(
            f"agent_config.dataset: {a.dataset} is not a dataset directory (`shiftrl collect` writes one)"
        )
    if env_spec.kind != "gymnasium":
        raise ConfigError(f"agent {cfg.agent!r} learns single-agent (Gymnasium) envs; {env_spec.id} is {env_spec.kind}")


def num_workers(cfg: ExperimentConfig) -> int | None:
    return cfg.ray.num_workers


def load_dataset(cfg: ExperimentConfig) -> datasets.Dataset:
    """The config's dataset, checked against the config's env."""
    ds = datasets.load(cfg.agent_config.dataset)
    env_id = ds.metadata.get("env_id")
    if env_id not in (None, cfg.env.id):
        raise datasets.DatasetError(
            f"dataset {cfg.agent_config.dataset} was collected on {env_id!r}, config env.id is {cfg.env.id!r}"
        )
    return ds


def transitions_digest(tr: dict[str, np.ndarray]) -> str:
    """sha256 (16 hex digits) over the transition arrays a learner trains on."""
    h = hashlib.sha256()
    for k in sorted(tr):
        v = np.ascontiguousarray(tr[k])
        h.update(f"{k}{v.dtype}{v.shape}".encode())
        h.update(v.tobytes())
    return h.hexdigest()[:16]


def check_shapes(tr: dict[str, np.ndarray], spaces: Any, where: str) -> None:
    """The dataset's observation and action shapes are the env's (a dataset of another env
    version or of other env kwargs would otherwise fail deep inside the learner)."""
    for key, want in (("observations", tuple(spaces.obs_shape)), ("actions", tuple(spaces.action_shape))):
        got = tuple(tr[key].shape[1:])
        if got != want:
            raise datasets.DatasetError(
                f"dataset {where}: {key} have shape {got} per step, the env {spaces.env_id} (with the config's "
                f"env.kwargs) has {want}"
            )


def normalized_score(ret: float, meta: dict[str, Any]) -> float | None:
    lo, hi = meta.get("ref_min_score"), meta.get("ref_max_score")
    if lo is None or hi is None or hi == lo:
        return None
    return 100.0 * (ret - lo) / (hi - lo)


def run(cfg: ExperimentConfig, run_dir: Path, ctx: RunContext) -> dict[str, Any]:
    from trainers.sampling import RunnerGroup

    a = cfg.agent_config
    t0 = time.time()
    ds = load_dataset(cfg)
    tr = ds.transitions()
    learner, spaces = build_learner(cfg)
    check_shapes(tr, spaces, a.dataset)
    if not hasattr(learner, "attach_dataset"):
        raise ConfigError(f"agent {cfg.agent!r}: its learner has no attach_dataset (not an offline learner)")
    learner.attach_dataset(tr)
    ctx.progress(
        f"{cfg.agent} on {a.dataset}: {ds.n_steps} transitions in {ds.n_episodes} episodes, "
        f"dataset and index ready in {time.time() - t0:.1f}s"
    )
    ckpt = run_dir / "checkpoints" / "state.pt"
    digest = transitions_digest(tr)
    loop: dict[str, Any] = {"steps": 0, "history": [], "evals": [], "next_eval": cfg.eval.every, "rng": None}
    loop["dataset_digest"] = digest
    if ckpt.exists():
        state, loop = checkpoint.load(ckpt)
        if loop.setdefault("dataset_digest", digest) != digest:  # checkpoints before 2026-12-03 lack it
            raise datasets.DatasetError(
                f"dataset {a.dataset}: its transitions differ from those {run_dir.name} was trained on "
                f"(digest {digest}, the checkpoint's {loop['dataset_digest']}); a resumed run must see the same "
                "data - start a new run for the new dataset"
            )
        learner.load_state_dict(state)
        ctx.progress(f"resuming {run_dir.name} from {loop['steps']} gradient steps")
    rng = np.random.default_rng([cfg.seed, 41])
    if loop["rng"] is not None:
        rng.bit_generator.state = loop["rng"]
    tb = TBLogger(run_dir)
    if not loop["steps"]:
        tb.config(_config_dict(cfg))
    group = RunnerGroup(cfg.env.id, cfg.env.kwargs, learner.policy(), cfg.seed, ctx.num_workers, 1, cfg.imports)
    N, log_every = len(tr["rewards"]), max(a.gradient_steps // LOG_ROWS, 1)
    ticker = ProgressTicker(ctx, tb, a.gradient_steps, loop["steps"])
    losses: dict[str, float] = {}

    def evaluate(steps: int) -> str:
        return evaluate_into(loop, group, learner.weights(), cfg, ds.metadata, tb, steps, losses)

    try:
        while loop["steps"] < a.gradient_steps:
            idx = rng.integers(0, N, size=a.batch_size)
            losses = learner.update({k: v[idx] for k, v in tr.items()})
            loop["steps"] += 1
            steps = loop["steps"]
            done = steps >= a.gradient_steps
            if steps % log_every == 0 or done:
                tb.scalars("main", {f"losses/{k}": v for k, v in losses.items()}, steps)
            evaluating = bool(loop["next_eval"] and steps >= loop["next_eval"]) or done
            ticker.tick(steps, losses, evaluating, lambda: evaluate(steps))  # noqa: B023 - called within tick
            if steps % a.checkpoint_every == 0 or done:
                loop["rng"] = rng.bit_generator.state
                checkpoint.save(ckpt, learner.state_dict(), loop)
    finally:
        tb.close()
        group.close()
    return write_results(cfg, run_dir, loop, ds)


def evaluate_into(
    loop: dict[str, Any],
    group: Any,
    weights: dict[str, Any] | None,
    cfg: ExperimentConfig,
    metadata: dict[str, Any],
    tb: TBLogger,
    steps: int,
    losses: dict[str, float],
) -> str:
    """One greedy evaluation over the config's eval set at ``steps`` gradient steps: its
    tags (pooled and per shift, normalised score), a row in ``loop["history"]`` and
    ``loop["evals"]``, the next evaluation's step; returns the progress text. Shared by
    every loop that learns from a fixed dataset (offline, rllib_offline)."""
    from trainers.evaluation import MAX_POINT_TAGS, eval_scalars, evaluate_policy, nominal_point

    result = evaluate_policy(group, weights, cfg, seed=cfg.seed + 10_000)
    tags = {k: v for k, v in eval_scalars(result).items() if not k.endswith("win_rate")}
    ret = result["overall"]["return"]["mean"]
    per = result["points"]
    # D4RL's normalised score is of the dynamics the data came from (the reference returns
    # were measured there): the nominal point, not the pool over a shift grid.
    nominal = nominal_point(cfg)
    score = normalized_score(per[nominal]["return"]["mean"], metadata) if nominal in per else None
    pooled = normalized_score(ret, metadata)
    if pooled is not None:
        tags["eval/greedy/normalized_score"] = pooled
        if 1 < len(per) <= MAX_POINT_TAGS:
            for label, p in per.items():
                if (at := normalized_score(p["return"]["mean"], metadata)) is not None:
                    tags[f"eval/{label}/normalized_score"] = at
    tb.scalars("main", tags, steps)
    loop["evals"].append(
        {
            "gradient_steps": steps,
            **result,
            "normalized_score": score,
            "normalized_score_at": nominal if score is not None else None,
            "normalized_score_pooled": pooled,
        }
    )
    loop["history"].append({"gradient_steps": steps, "episodic_return": ret, "eval_return": ret, **losses})
    loop["next_eval"] = steps + cfg.eval.every if cfg.eval.every else None
    text = f" | greedy return {ret:.1f}"
    if score is not None and len(per) > 1:
        text += f" (score {score:.1f} at {nominal}, {pooled:.1f} pooled)"
    elif pooled is not None:
        text += f" (score {pooled:.1f})"
    if len(per) > 1:
        text += " | " + ", ".join(f"{k} {p['return']['mean']:.1f}" for k, p in per.items())
    return text


def _config_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    from trainers.config import to_dict

    return to_dict(cfg)


def write_results(cfg: ExperimentConfig, run_dir: Path, loop: dict[str, Any], ds: datasets.Dataset) -> dict[str, Any]:
    h, evals = loop["history"], loop["evals"]
    results = {
        "kind": "learning_curve",
        "x_axis": "gradient_steps",
        "agent": cfg.agent,
        "env": cfg.env.id,
        "seed": cfg.seed,
        "dataset": {
            "path": str(cfg.agent_config.dataset),
            "transitions": ds.n_steps,
            "episodes": ds.n_episodes,
            "mean_episode_return": float(ds.episode_returns().mean()),
            **{k: ds.metadata.get(k) for k in ("quality", "behaviour", "ref_min_score", "ref_max_score")},
        },
        "history": h,
        "final": h[-1] if h else {},
        "eval": evals[-1] if evals else None,
        "evals": evals,
    }
    atomic_write_json(run_dir / "results.json", results)
    return results
