"""RLlib's own offline algorithms (CQL, IQL, BC) on ShiftRL's Minari datasets.

The RLlib side of the offline comparison: agents ``rllib_cql``, ``rllib_iql`` and
``rllib_bc`` train RLlib's algorithms, through RLlib's offline API (``.offline_data``,
Ray Data reading parquet, its OfflinePreLearner and Learner), on the same datasets as
``prdc``/``td3bc``/``bc``, and are evaluated by ShiftRL's own evaluator over the same shift
grid with the same tags, so the runs sit side by side in TensorBoard and in ``shiftrl
compare``. Like trainers/loops/rllib.py (RLlib's PPO), this module keeps RLlib's churning
API (../shared/STYLE.md) in one place; nothing else imports ray.rllib.

The dataset is converted once per run into RLlib's columnar format (one row per
transition: ``obs``, ``new_obs``, ``actions``, ``rewards``, ``terminateds``, ``truncateds``,
``eps_id``; RLlib's ``Columns`` names) as parquet in ``<run_dir>/rllib_data/parquet`` (written to a
temporary directory and renamed). Actions are rescaled to [-1, 1]: RLlib's offline path
does not normalise them (``actions_in_input_normalized`` is an old-stack flag) while its
CQL/IQL policies are tanh-squashed Gaussians whose log-likelihood of an action outside
[-1, 1] is undefined; the greedy policy maps its action back to the env's bounds.

TensorBoard's x-axis is gradient steps, as for the suite's offline loop: ``losses/<term>``
(RLlib's own loss names), ``charts/SPS`` (gradient steps per second),
``eval/greedy/return``, ``eval/<shift>/return``, ``eval/greedy/normalized_score`` and
``eval/<shift>/normalized_score`` (results.json's ``normalized_score`` is on the nominal dynamics).

Resuming restores RLlib's algorithm checkpoint (learner, optimisers, targets) and the
loop's history; RLlib's data iterator restarts, so a resumed run continues but is not
bit-identical to an uninterrupted one. RLlib's restore unpickles files of the run
directory: only resume run directories you created (README, "Trust boundary").

On a small machine RLlib's data pipeline needs care (measured on 2 cores, Ray 2.60): its
Ray Data tasks need a CPU of their own, or the pipeline waits for one forever; the trial
therefore reserves one extra CPU (``num_workers``) and the pipeline runs one map actor
(``map_batches_kwargs``).
"""

from __future__ import annotations

import importlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs import datasets
from trainers.config import ConfigError, ExperimentConfig
from trainers.loops import RunContext
from trainers.loops.offline import ProgressTicker, evaluate_into, load_dataset, write_results

EVAL_FIELDS = frozenset({"shifts", "episodes", "every"})
RAY_FIELDS = frozenset({"address", "include_dashboard"})  # num_workers is fixed (see num_workers)
MODULE_ID = "default_policy"  # RLlib's single-agent module id
RLLIB_OFFLINE_ENV = "shiftrl_unit_action_env"
ALGORITHMS = {
    "cql": ("ray.rllib.algorithms.cql", "CQLConfig"),
    "iql": ("ray.rllib.algorithms.iql", "IQLConfig"),
    "bc": ("ray.rllib.algorithms.bc", "BCConfig"),
}
COLUMNS = ("obs", "new_obs", "actions", "rewards", "terminateds", "truncateds", "eps_id")


@dataclass(frozen=True)
class RLlibOfflineConfig:
    """RLlib's offline algorithms on a Minari dataset (RLlib's defaults unless set).

    Attributes:
        dataset: Minari dataset directory (``shiftrl collect`` writes one); converted to
            RLlib's parquet columns inside the run directory.
        algorithm: ``"cql"``, ``"iql"`` or ``"bc"`` (set by the agent name).
        gradient_steps: learner updates in total (TensorBoard's x-axis).
        updates_per_iteration: learner updates per RLlib training iteration
            (``dataset_num_iters_per_learner``); losses are logged per iteration.
        batch_size: transitions per update (``train_batch_size_per_learner``).
        gamma: discount.
        hidden: MLP layer sizes of every network (RLlib's ``fcnet_hiddens``).
        checkpoint_every: gradient steps between checkpoints, rounded up to whole
            iterations (the last one is always saved).
        iteration_timeout: seconds one training iteration may take before the run stops
            with an error instead of waiting forever (a stalled Ray Data pipeline never
            returns); 0 waits forever. Resume the run afterwards.
        training: further keyword arguments for the algorithm config's ``training()``,
            passed as is under RLlib's names (e.g. CQL ``min_q_weight``, ``bc_iters``,
            ``actor_lr``; IQL ``expectile``, ``beta``, ``tau``; BC ``lr``).
    """

    dataset: str = ""
    algorithm: str = "cql"
    gradient_steps: int = 100_000
    updates_per_iteration: int = 500
    batch_size: int = 256
    gamma: float = 0.99
    hidden: tuple[int, ...] = (256, 256)
    checkpoint_every: int = 5000
    iteration_timeout: float = 3600.0
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {self.algorithm!r}")
        for name in ("gradient_steps", "updates_per_iteration", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.iteration_timeout < 0:
            raise ValueError(f"iteration_timeout must be >= 0 seconds (0: no deadline), got {self.iteration_timeout}")
        if self.gradient_steps % self.updates_per_iteration:
            raise ValueError(
                f"gradient_steps={self.gradient_steps} must be a multiple of updates_per_iteration="
                f"{self.updates_per_iteration} (RLlib runs whole iterations; the budget would be overshot)"
            )
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        bad = sorted({"gamma", "train_batch_size_per_learner"} & set(self.training))
        if bad:
            raise ValueError(f"training: {bad} have their own fields here (gamma, batch_size)")


def validate(cfg: ExperimentConfig, env_spec: Any) -> None:
    from trainers.loops.offline import validate as validate_offline

    validate_offline(cfg, env_spec)


def num_workers(cfg: ExperimentConfig) -> int:
    """One extra CPU for RLlib's data pipeline (Ray Data tasks wait forever without one);
    evaluation runs in the trial's own process."""
    return 1


# -- dataset conversion -----------------------------------------------------------------------
def action_bounds(cfg: ExperimentConfig) -> tuple[np.ndarray, np.ndarray]:
    from trainers.sampling import env_spaces

    s = env_spaces(cfg.env.id, cfg.env.kwargs)
    if s.discrete or s.n_agents != 1:
        raise ConfigError(f"agent {cfg.agent!r}: RLlib's CQL/IQL/BC adapter here needs one agent with Box actions")
    return np.asarray(s.action_low, np.float64), np.asarray(s.action_high, np.float64)


def write_columns(ds: datasets.Dataset, out: Path, low: np.ndarray, high: np.ndarray, source: str) -> Path:
    """The dataset as RLlib's columnar parquet in ``out/parquet`` (atomic: temp dir, then
    rename; ``out/source.json`` records ``source``, the dataset's fingerprint); reused when
    ``out`` already holds the conversion of the same dataset. Returns the parquet directory
    (RLlib's input)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    marker = out / "source.json"
    if marker.is_file() and json.loads(marker.read_text()).get("source") == source:
        return out / "parquet"
    tr = ds.transitions()
    centre, half = (high + low) / 2, (high - low) / 2
    n = len(tr["rewards"])
    obs = tr["observations"].reshape(n, -1).astype(np.float32)
    table = pa.table(
        {
            "obs": list(obs),
            "new_obs": list(tr["next_observations"].reshape(n, -1).astype(np.float32)),
            "actions": list(((tr["actions"].reshape(n, -1) - centre) / half).astype(np.float32)),
            "rewards": tr["rewards"].astype(np.float32),
            "terminateds": tr["terminals"].astype(bool),
            "truncateds": tr["timeouts"].astype(bool),
            "eps_id": np.repeat(np.arange(ds.n_episodes), ds.lengths).astype(np.int64),
        }
    )
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "parquet").mkdir(parents=True)
    pq.write_table(table, tmp / "parquet" / "part-0.parquet")
    (tmp / "source.json").write_text(json.dumps({"source": source, "transitions": n, "columns": list(COLUMNS)}))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out / "parquet"


# -- RLlib objects ----------------------------------------------------------------------------
def algorithm_config(cfg: ExperimentConfig, data_dir: Path | None, seed: int) -> Any:
    """RLlib's AlgorithmConfig for a run (``data_dir`` None: for building modules only)."""
    import torch

    a: RLlibOfflineConfig = cfg.agent_config
    module_name, cls_name = ALGORITHMS[a.algorithm]
    cls = getattr(importlib.import_module(module_name), cls_name)
    env_config = {"id": cfg.env.id, "kwargs": dict(cfg.env.kwargs), "imports": list(cfg.imports)}
    probe = make_unit_action_env(env_config)
    obs_space, act_space = probe.observation_space, probe.action_space
    probe.close()
    # CQLConfig sets lr = 3e-4 yet its SAC validation demands None (actor_lr/critic_lr rule)
    defaults: dict[str, Any] = {"lr": None} if a.algorithm == "cql" else {}
    env: dict[str, Any] = {}
    if a.algorithm == "cql":
        # RLlib's CQL (SAC's algorithm class) builds a local EnvRunner even offline; it
        # never samples here (evaluation is ShiftRL's), but it needs an env to build
        from ray.tune.registry import register_env

        register_env(RLLIB_OFFLINE_ENV, make_unit_action_env)
        env = {"env": RLLIB_OFFLINE_ENV, "env_config": env_config}
    c = (
        cls()
        .environment(observation_space=obs_space, action_space=act_space, **env)
        .framework("torch")
        .env_runners(num_env_runners=0)
        .learners(num_learners=0)
        .rl_module(model_config={"fcnet_hiddens": list(a.hidden)})
        .training(train_batch_size_per_learner=a.batch_size, gamma=a.gamma, **{**defaults, **a.training})
        .evaluation(evaluation_num_env_runners=0)
        .reporting(min_time_s_per_iteration=None, min_train_timesteps_per_iteration=0)
        .debugging(seed=seed)
    )
    if data_dir is not None:
        c = c.offline_data(
            input_=[str(data_dir)],
            dataset_num_iters_per_learner=a.updates_per_iteration,
            map_batches_kwargs={"concurrency": 1, "num_cpus": 0},
        )
    torch.set_num_threads(1)
    return c


def make_unit_action_env(env_config: dict[str, Any]) -> Any:
    """A registered Gymnasium env with its Box actions rescaled to [-1, 1] (the space of
    the converted dataset) and its observations flattened."""
    from gymnasium.wrappers import FlattenObservation, RescaleAction

    import envs

    envs.load_plugins(tuple(env_config.get("imports", ())))
    env = envs.spec(env_config["id"]).make(**env_config.get("kwargs", {}))
    if len(env.observation_space.shape or ()) != 1:
        env = FlattenObservation(env)
    return RescaleAction(env, np.float32(-1.0), np.float32(1.0))


def build_module(cfg: ExperimentConfig) -> Any:
    """The algorithm's RLModule for the config's spaces, without Ray (evaluation, render)."""
    c = algorithm_config(cfg, None, cfg.seed)
    return c.get_rl_module_spec().build()


class RLlibOfflinePolicy:
    """RLlib's module behind the agents' Policy protocol: the deterministic action of its
    inference distribution (the mean, squashed for CQL/IQL), clipped to [-1, 1] and mapped
    to the env's bounds. Offline agents are evaluated greedily; ``greedy=False`` acts the
    same."""

    def __init__(self, module: Any, low: np.ndarray, high: np.ndarray) -> None:
        import torch

        torch.set_num_threads(1)
        self.module = module
        self.centre, self.half = (high + low) / 2, (high - low) / 2

    def initial_hidden(self, n_envs: int) -> np.ndarray:
        return np.zeros((n_envs, 1, 0), np.float32)

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.module.set_state(weights)

    def act(
        self,
        obs: np.ndarray,
        mask: np.ndarray,
        hidden: np.ndarray,
        greedy: bool,
        rng: np.random.Generator,
        state: np.ndarray | None = None,
    ) -> Any:
        import torch

        from agents.protocols import PolicyOutput

        B, N = obs.shape[:2]
        x = torch.as_tensor(np.asarray(obs, np.float32).reshape(B * N, -1))
        with torch.no_grad():
            out = self.module.forward_inference({"obs": x})
            dist = self.module.get_inference_action_dist_cls().from_logits(out["action_dist_inputs"])
            a = dist.to_deterministic().sample().numpy()
        a = self.centre + self.half * np.clip(a, -1.0, 1.0)
        return PolicyOutput(a.reshape(B, N, -1).astype(np.float32), hidden)


def module_weights(algo: Any) -> dict[str, Any]:
    return algo.learner_group.get_weights()[MODULE_ID]


def load_policy(run_dir: str | Path, cfg: ExperimentConfig) -> RLlibOfflinePolicy:
    """The greedy policy of a run, from ``checkpoints/policy.pt`` (torch.load with
    weights_only=True: no pickle)."""
    import torch

    weights = Path(run_dir) / "checkpoints" / "policy.pt"
    if not weights.is_file():
        raise ConfigError(f"{run_dir}: no checkpoints/policy.pt yet (has the run reached a checkpoint?)")
    low, high = action_bounds(cfg)
    policy = RLlibOfflinePolicy(build_module(cfg), low, high)
    try:
        policy.load_weights(torch.load(weights, weights_only=True))
    except Exception as exc:
        raise ConfigError(f"checkpoint {weights}: unreadable or does not fit the config ({exc})") from exc
    return policy


def evaluate_run(run_dir: Path, cfg: ExperimentConfig, ctx: Any, checkpoint_path: Path | None = None) -> Any:
    from trainers.evaluation import evaluate_run_with

    return evaluate_run_with(load_policy(run_dir, cfg), run_dir, cfg, 0)


def _save(algo: Any, ckpt: Path, state_file: Path, loop: dict[str, Any]) -> None:
    """RLlib's checkpoint into a fresh directory swapped in (a crash leaves the old one),
    the module's weights as ``policy.pt`` (read back with weights_only=True), then the
    loop's state: a state file always points at a complete checkpoint."""
    import torch

    from trainers.io import atomic_write_json
    from trainers.loops.rllib import save_algo

    save_algo(algo, ckpt, {k: torch.as_tensor(np.asarray(v)) for k, v in module_weights(algo).items()})
    atomic_write_json(state_file, loop)


def _data_in_trial_bundles() -> None:
    """Ray Data schedules its tasks outside the trial's placement group by default, where a
    busy cluster (every CPU reserved by trials) has no CPU for them and the pipeline waits
    forever; inside a Tune trial they are sent into the trial's own bundles instead (the
    extra CPU that ``num_workers`` reserves)."""
    import ray
    import ray.data
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    pg = ray.util.get_current_placement_group() if ray.is_initialized() else None
    if pg is not None:
        ctx = ray.data.DataContext.get_current()
        strategy = PlacementGroupSchedulingStrategy(pg, placement_group_capture_child_tasks=True)
        ctx.scheduling_strategy = ctx.scheduling_strategy_large_args = strategy


def _losses(res: dict[str, Any]) -> dict[str, float]:
    learner = res.get("learners", {}).get(MODULE_ID, {})
    return {k: float(v) for k, v in learner.items() if "loss" in k and isinstance(v, int | float | np.floating)}


def run(cfg: ExperimentConfig, run_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Trains (or resumes) the RLlib algorithm in ``run_dir``; returns the results dict."""
    from trainers.config import to_dict
    from trainers.loops.rllib import train_iteration
    from trainers.runtime import StalledError, init_ray
    from trainers.sampling import RunnerGroup
    from trainers.tb import TBLogger

    # Outside a Tune trial (a run executed in-process), RLlib would start Ray by a plain
    # ray.init(), which attaches to whatever cluster the machine last recorded: ours first.
    init_ray(cfg.ray.address)
    a: RLlibOfflineConfig = cfg.agent_config
    t0 = time.time()
    ds = load_dataset(cfg)
    low, high = action_bounds(cfg)
    data_dir = write_columns(ds, run_dir / "rllib_data", low, high, datasets.fingerprint(a.dataset))
    _data_in_trial_bundles()
    algo = algorithm_config(cfg, data_dir, cfg.seed).build_algo()
    ctx.progress(
        f"{cfg.agent} (RLlib {a.algorithm.upper()}) on {a.dataset}: {ds.n_steps} transitions as parquet, "
        f"algorithm built in {time.time() - t0:.1f}s"
    )
    ckpt, state_file = run_dir / "checkpoints" / "rllib", run_dir / "checkpoints" / "rllib_state.json"
    loop: dict[str, Any] = {"steps": 0, "history": [], "evals": [], "next_eval": cfg.eval.every}
    if state_file.exists() and ckpt.exists():
        loop = json.loads(state_file.read_text())
        # the learner group only: Algorithm.restore_from_path syncs weights to env runners,
        # which an offline algorithm here does not have (AttributeError in RLlib 2.60)
        algo.learner_group.restore_from_path(str(ckpt / "learner_group"))
        ctx.progress(f"resuming {run_dir.name} from {loop['steps']} gradient steps")
    tb = TBLogger(run_dir)
    if not loop["steps"]:
        tb.config(to_dict(cfg))
    # the evaluation copy of the module from the algorithm's own config (no second probe env)
    policy = RLlibOfflinePolicy(algo.config.get_rl_module_spec().build(), low, high)
    group = RunnerGroup(cfg.env.id, cfg.env.kwargs, policy, cfg.seed, 0, 1, cfg.imports)
    every_it = -(-a.checkpoint_every // a.updates_per_iteration)
    ticker = ProgressTicker(ctx, tb, a.gradient_steps, loop["steps"])
    stalled = False
    try:
        while loop["steps"] < a.gradient_steps:
            try:
                res = train_iteration(algo, a.iteration_timeout, f"{loop['steps']} gradient steps", run_dir)
            except StalledError:
                stalled = True
                raise
            loop["steps"] += a.updates_per_iteration
            steps, done = loop["steps"], loop["steps"] >= a.gradient_steps
            losses = _losses(res)
            tb.scalars("main", {f"losses/{k}": v for k, v in losses.items()}, steps)
            evaluating = bool(loop["next_eval"] and steps >= loop["next_eval"]) or done
            ticker.tick(  # the evaluation closure runs within tick, in this iteration
                steps,
                losses,
                evaluating,
                lambda: evaluate_into(loop, group, module_weights(algo), cfg, ds.metadata, tb, steps, losses),  # noqa: B023
            )
            if (steps // a.updates_per_iteration) % every_it == 0 or done:
                _save(algo, ckpt, state_file, loop)
    finally:
        tb.close()
        group.close()
        if not stalled:  # stopping a stalled algorithm can block too; the trial's end frees it
            algo.stop()
    return write_results(cfg, run_dir, loop, ds)
