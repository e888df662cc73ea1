"""RLlib's own PPO on ShiftRL's PettingZoo envs: one shared, action-masked policy.

This module and trainers/loops/rllib_offline.py (RLlib's CQL, IQL and BC on our datasets)
are the only places that touch RLlib's new API stack (RLModule / Learner / EnvRunner),
whose API churns between minor releases (../shared/STYLE.md). The env goes
through RLlib's ``ParallelPettingZooEnv`` wrapper; the only change is renaming the
observation key "observation" to "observations", which RLlib's ActionMaskingTorchRLModule
(ray.rllib.examples.rl_modules.classes.action_masking_rlm) expects. Masked logits mean PPO
never samples an action the simulator forbids.

Logged under the common tag scheme with env steps on the x-axis: charts/episodic_return
and charts/win_rate (the team's return and wins of training episodes, sampled actions;
RLlib's own episode_return_mean sums every agent's rewards and is not used), charts/SPS,
losses/<term>, and eval/greedy/<metric> (our own greedy evaluation on fresh seeds: win
rate, return), so training and greedy test numbers are never confused.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import envs

RLLIB_ENV = "shiftrl_pettingzoo"
EVAL_FIELDS = frozenset({"shifts", "tasks", "levels", "episodes"})
RAY_FIELDS = frozenset({"address", "num_workers", "envs_per_worker", "include_dashboard"})
DEFAULT_ENVS_PER_WORKER = 8


def validate(cfg: Any, env_spec: Any) -> None:
    """Nothing beyond the config class's own checks (RLlib validates the rest on build)."""


def num_workers(cfg: Any) -> int:
    return 0 if cfg.ray.num_workers is None else cfg.ray.num_workers


@dataclass(frozen=True)
class RLlibPPOConfig:
    """RLlib PPO options (defaults: RLlib's PPO defaults where they suit a small CPU).

    Attributes:
        iterations: training iterations (each samples ``train_batch_size`` env steps).
        train_batch_size: agent-env steps per iteration (RLlib's train_batch_size_per_learner).
        minibatch_size: SGD minibatch size.
        num_epochs: SGD passes over each batch.
        lr: learning rate.
        gamma: discount.
        lambda_: GAE lambda.
        clip_param: PPO clip.
        entropy_coeff: entropy bonus.
        hidden: MLP layer sizes of the shared policy and value nets.
        checkpoint_every: iterations between checkpoints (the last one is always saved);
            the greedy policy is evaluated at each (``eval`` section).
        invalid_action: the env's handling of a masked-out action ("raise" or "stop").
        iteration_timeout: seconds one training iteration may take before the run stops
            with an error instead of waiting forever (an EnvRunner or learner that never
            answers); 0 waits forever. Resume the run afterwards.
        extra: further keyword arguments for RLlib's ``PPOConfig.training`` (passed as is).

    EnvRunners are ``ray.num_workers`` (default 0: sample inside the trial process) with
    ``ray.envs_per_worker`` envs each (default 8: one batched forward for 8 battles, about
    3x the sampling speed of 1; RLlib's per-step overhead dominates sampling).
    """

    iterations: int = 50
    train_batch_size: int = 4000
    minibatch_size: int = 500
    num_epochs: int = 10
    lr: float = 5e-4
    gamma: float = 0.99
    lambda_: float = 0.95
    clip_param: float = 0.2
    entropy_coeff: float = 0.01
    hidden: tuple[int, ...] = (128, 128)
    checkpoint_every: int = 10
    invalid_action: str = "raise"
    iteration_timeout: float = 3600.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("iterations", "train_batch_size", "minibatch_size", "num_epochs", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.minibatch_size > self.train_batch_size:
            raise ValueError(f"minibatch_size {self.minibatch_size} > train_batch_size {self.train_batch_size}")
        if self.invalid_action not in ("raise", "stop"):
            raise ValueError(f"invalid_action must be 'raise' or 'stop', got {self.invalid_action!r}")
        if self.iteration_timeout < 0:
            raise ValueError(f"iteration_timeout must be >= 0 seconds (0: no deadline), got {self.iteration_timeout}")


def make_rllib_env(env_config: dict[str, Any]) -> Any:
    """RLlib env creator: a registered PettingZoo env behind ParallelPettingZooEnv."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    envs.load_plugins(tuple(env_config.get("imports", ())))
    spec = envs.spec(env_config["id"])
    if spec.kind != "pettingzoo":
        raise envs.EnvError(f"env {spec.id!r} is a {spec.kind} env; rllib_ppo here runs PettingZoo envs")
    return _renamed_env_class()(ParallelPettingZooEnv(spec.make(**env_config.get("kwargs", {}))))


@functools.cache
def _renamed_env_class() -> type:
    """A MultiAgentEnv over RLlib's ParallelPettingZooEnv that renames obs["observation"]
    to obs["observations"] (RLlib's masking module's key). Built on first use so that
    importing this module (configs do) does not import RLlib."""
    import gymnasium
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    class Renamed(MultiAgentEnv):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner
            self.agents = list(inner.agents)
            self.possible_agents = list(inner.possible_agents)
            spaces: dict[str, Any] = {}
            for aid, sp in inner.observation_space.spaces.items():
                spaces[aid] = gymnasium.spaces.Dict(
                    {"observations": sp["observation"], "action_mask": sp["action_mask"]}
                )
            self.observation_space = gymnasium.spaces.Dict(spaces)
            self.action_space = inner.action_space

        def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
            obs, info = self.inner.reset(seed=seed, options=options)
            self.agents = list(self.inner.par_env.agents)
            return _rename(obs), info

        def step(self, actions: dict) -> tuple[dict, dict, dict, dict, dict]:  # type: ignore[override]
            obs, rew, term, trunc, info = self.inner.step(actions)
            self.agents = list(self.inner.par_env.agents)
            return _rename(obs), rew, term, trunc, info

    return Renamed


def _team_metrics_callback() -> type:
    """An RLlib callback class logging the team's return and win flag of every finished
    training episode (from the env's info), so charts/episodic_return means the same for
    RLlib runs as for every other agent: RLlib's own episode_return_mean sums the rewards
    of all agents while they are alive."""
    from ray.rllib.callbacks.callbacks import RLlibCallback

    class TeamMetrics(RLlibCallback):
        def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
            infos = episode.get_infos(-1)
            info = next((i for i in infos.values() if isinstance(i, dict) and "episode_return" in i), None)
            if info is not None and metrics_logger is not None:
                metrics_logger.log_value("team_return", float(info["episode_return"]), window=100)
                metrics_logger.log_value("battle_won", float(info["battle_won"]), window=100)

    return TeamMetrics


def _rename(obs: dict[str, Any]) -> dict[str, Any]:
    return {a: {"observations": o["observation"], "action_mask": o["action_mask"]} for a, o in obs.items()}


def _module_spec(a: RLlibPPOConfig, observation_space: Any = None, action_space: Any = None) -> Any:
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule

    return RLModuleSpec(
        module_class=ActionMaskingTorchRLModule,
        observation_space=observation_space,
        action_space=action_space,
        model_config={"fcnet_hiddens": list(a.hidden), "head_fcnet_hiddens": [], "vf_share_layers": False},
    )


def build_ppo(cfg: Any, seed: int) -> Any:
    """An RLlib PPOConfig for an ExperimentConfig with agent rllib_ppo."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.tune.registry import register_env

    register_env(RLLIB_ENV, make_rllib_env)
    a: RLlibPPOConfig = cfg.agent_config
    kwargs = {"invalid_action": a.invalid_action, **cfg.env.kwargs}
    env_config = {"id": cfg.env.id, "kwargs": kwargs, "imports": list(cfg.imports)}
    module = _module_spec(a)
    return (
        PPOConfig()
        .environment(RLLIB_ENV, env_config=env_config, disable_env_checking=True)  # its check ignores masks
        .framework("torch")
        .env_runners(
            num_env_runners=num_workers(cfg),
            num_envs_per_env_runner=cfg.ray.envs_per_worker or DEFAULT_ENVS_PER_WORKER,
            num_cpus_per_env_runner=1,
        )
        .learners(num_learners=0)
        .callbacks(_team_metrics_callback())
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, episode, **kw: "shared")
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={"shared": module}))
        .training(
            train_batch_size_per_learner=a.train_batch_size,
            minibatch_size=a.minibatch_size,
            num_epochs=a.num_epochs,
            lr=a.lr,
            gamma=a.gamma,
            lambda_=a.lambda_,
            clip_param=a.clip_param,
            entropy_coeff=a.entropy_coeff,
            **a.extra,
        )
        .debugging(seed=seed)
    )


class RLlibPolicy:
    """The shared RLModule behind the agents' Policy protocol, so ShiftRL's evaluator and
    ``shiftrl render`` play RLlib runs like any other: masked argmax (greedy) or a sample
    from the masked logits drawn with the rng passed in."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def initial_hidden(self, n_envs: int) -> np.ndarray:
        return np.zeros((n_envs, 0), np.float32)

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.module.load_state_dict(weights)

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
        batch = {
            "obs": {
                "observations": torch.as_tensor(np.asarray(obs, np.float32).reshape(B * N, -1)),
                "action_mask": torch.as_tensor(np.asarray(mask).reshape(B * N, -1), dtype=torch.float32),
            }
        }
        with torch.no_grad():
            logits = self.module.forward_inference(batch)["action_dist_inputs"].numpy()
        if not greedy:
            logits = logits + rng.gumbel(size=logits.shape)
        return PolicyOutput(logits.argmax(-1).reshape(B, N), hidden)


def load_policy(run_dir: str | Path, cfg: Any) -> RLlibPolicy:
    """The greedy shared policy of an rllib_ppo run. Weights come from
    ``checkpoints/policy.pt`` through ``torch.load(weights_only=True)`` (no pickle)."""
    import torch

    from trainers.config import ConfigError

    weights = Path(run_dir) / "checkpoints" / "policy.pt"
    if not weights.is_file():
        raise ConfigError(f"{run_dir}: no checkpoints/policy.pt yet (has the run reached a checkpoint?)")
    env = make_rllib_env({"id": cfg.env.id, "kwargs": dict(cfg.env.kwargs), "imports": list(cfg.imports)})
    aid = env.possible_agents[0]
    module = _module_spec(cfg.agent_config, env.observation_space[aid], env.action_space[aid]).build()
    try:
        module.load_state_dict(torch.load(weights, weights_only=True))
    except Exception as exc:
        raise ConfigError(f"checkpoint {weights}: unreadable or does not fit the config ({exc})") from exc
    module.eval()
    return RLlibPolicy(module)


def evaluate_run(run_dir: Path, cfg: Any, ctx: Any, checkpoint_path: Path | None = None) -> dict[str, Any]:
    from trainers.evaluation import evaluate_run_with

    return evaluate_run_with(load_policy(run_dir, cfg), run_dir, cfg, ctx.num_workers)


def run(cfg: Any, run_dir: Path, ctx: Any) -> dict[str, Any]:
    """Trains (or resumes) RLlib PPO in ``run_dir``; returns the results dict.

    Resuming uses RLlib's own restore, which unpickles files of the run directory: only
    resume run directories you created (README, "Trust boundary"). Evaluation and
    rendering read ``policy.pt`` with weights_only instead.
    """
    import torch

    from trainers.evaluation import eval_scalars, evaluate_policy
    from trainers.io import atomic_write_json
    from trainers.runtime import StalledError, init_ray
    from trainers.sampling import RunnerGroup
    from trainers.tb import TBLogger

    # Outside a Tune trial, RLlib would start Ray by a plain ray.init(), which attaches to
    # whatever cluster the machine last recorded: ours first (trainers.runtime.init_ray).
    init_ray(cfg.ray.address)
    torch.set_num_threads(1)  # the trial shares cores with env runners / other trials
    a: RLlibPPOConfig = cfg.agent_config
    algo = build_ppo(cfg, cfg.seed).build_algo()
    ckpt = run_dir / "checkpoints" / "rllib"
    state_file = run_dir / "checkpoints" / "rllib_state.json"
    start_it, history = 0, []
    if state_file.exists() and ckpt.exists():
        state = json.loads(state_file.read_text())
        algo.restore_from_path(str(ckpt))
        start_it, history = state["iteration"], state["history"]
        ctx.progress(f"resuming {run_dir.name} from iteration {start_it}")
    tb = TBLogger(run_dir)
    if start_it == 0:
        from trainers.config import to_dict

        tb.config(to_dict(cfg))
    t_start = time.time()
    last_eval = None
    stalled = False
    try:
        for it in range(start_it, a.iterations):
            t0 = time.time()
            try:
                res = train_iteration(algo, a.iteration_timeout, f"iteration {it + 1}", run_dir)
            except StalledError:
                stalled = True
                raise
            runners = res.get("env_runners", {})
            steps = int(res.get("num_env_steps_sampled_lifetime", runners.get("num_env_steps_sampled_lifetime", 0)))
            ret = float(runners.get("team_return", float("nan")))  # mean team return, last 100 episodes
            won = float(runners.get("battle_won", float("nan")))  # training win rate (sampled actions)
            row = {"iteration": it + 1, "env_steps": steps, "episodic_return": ret, "win_rate": won, "sps": 0.0}
            row["sps"] = float(runners.get("num_env_steps_sampled", 0)) / max(time.time() - t0, 1e-9)
            charts = {"charts/episodic_return": ret, "charts/win_rate": won, "charts/SPS": row["sps"]}
            tb.scalars("main", charts, steps)
            learner = res.get("learners", {}).get("shared", {})
            losses = {f"losses/{k}": v for k, v in learner.items() if isinstance(v, int | float) and "loss" in k}
            tb.scalars("main", losses, steps)
            last = it + 1 == a.iterations
            if (it + 1) % a.checkpoint_every == 0 or last:
                _save(algo, ckpt)
                policy = RLlibPolicy(algo.get_module("shared"))
                group = RunnerGroup(cfg.env.id, cfg.env.kwargs, policy, cfg.seed, 0, 1, cfg.imports)
                last_eval = evaluate_policy(group, None, cfg, seed=cfg.seed + 10_000)
                tags = eval_scalars(last_eval)
                row.update({"eval_return": tags["eval/greedy/return"], "eval_win_rate": tags["eval/greedy/win_rate"]})
                tb.scalars("main", tags, steps)
                history.append(row)
                atomic_write_json(state_file, {"iteration": it + 1, "history": history})
            else:
                history.append(row)
            msg = (
                f"iter {it + 1}/{a.iterations}: env steps {steps}, train return {ret:.3f}, "
                f"train win rate {won:.2f}, {row['sps']:.0f} steps/s"
            )
            if "eval_win_rate" in row:
                msg += f", greedy win rate {row['eval_win_rate']:.2f} (return {row['eval_return']:.2f})"
            ctx.progress(msg)
            if ctx.report is not None:
                ctx.report({"iteration": it + 1, "env_steps": steps, "episodic_return": ret})
    finally:
        tb.close()
        if not stalled:  # stopping a stalled algorithm can block too; the trial's end frees it
            algo.stop()
    results = {
        "kind": "learning_curve",
        "agent": cfg.agent,
        "env": cfg.env.id,
        "seed": cfg.seed,
        "iterations": a.iterations,
        "history": history,
        "final": history[-1] if history else {},
        "eval": last_eval,
        "seconds": time.time() - t_start,
    }
    atomic_write_json(run_dir / "results.json", results)
    return results


def _save(algo: Any, path: Path) -> None:
    save_algo(algo, path, algo.get_module("shared").state_dict())


def train_iteration(algo: Any, timeout: float, where: str, run_dir: Path) -> dict[str, Any]:
    """``algo.train()`` under the config's ``iteration_timeout``: a stall (a Ray Data pipeline
    or an EnvRunner that never answers) raises StalledError naming the resume command."""
    from trainers.runtime import StalledError, with_deadline

    try:
        return with_deadline(algo.train, timeout, "RLlib's training iteration")
    except StalledError as e:
        raise StalledError(
            f"{e} at {where} (agent_config.iteration_timeout={timeout:g}); resume from the last checkpoint "
            f"with `shiftrl train --resume {run_dir}`"
        ) from None


def save_algo(algo: Any, path: Path, weights: dict[str, Any]) -> None:
    """Checkpoint into a fresh directory, then swap it in: a crash leaves the old one. The
    acting weights also go to ``policy.pt`` (torch.save of a state dict), which
    ``load_policy`` reads with weights_only=True. Both RLlib loops save this way."""
    import io

    import torch

    from trainers.io import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(weights, buf)
    atomic_write_bytes(path.parent / "policy.pt", buf.getvalue())
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp))
    old = path.with_name(path.name + ".old")
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)
