"""The surface every learning agent offers the runtime (no Ray, no env internals).

An agent is a config dataclass plus a learner. The runtime (trainers/) owns the loops, the
rollout actors and the files; it talks to agents only through what is declared here:

- :class:`EnvSpaces`: what an agent may know about an environment (built by the runtime
  from the env's spaces). Single-agent envs are the case ``n_agents == 1``: every array
  the runtime hands over has an agent axis, so one learner serves both kinds.
- :class:`Policy`: a picklable, CPU-only acting object. Rollout actors hold one each and
  receive new weights by object reference at a set interval.
- :class:`Learner`: owns networks, optimisers and targets; ``update(batch)`` returns its
  named loss terms (they reach TensorBoard as ``losses/<term>``).

Batches are dicts of numpy arrays. A *segment* batch (on-policy loops) holds ``T`` steps of
``B`` environments that reset themselves when an episode ends; an *episode* batch
(off-policy loops, evaluation) holds whole episodes padded to the longest. Keys (shapes for
segment batches; episode batches have the same keys with ``B`` = episodes):

==================  ==================  ==================================================
key                 shape               meaning
==================  ==================  ==================================================
obs                 (B, T, N, *obs)     each agent's observation before acting at step t
state               (B, T, *state)      global state (the observation when N == 1)
mask                (B, T, N, A) bool   allowed actions (all True without masks)
actions             (B, T, N, *act)     actions taken
rewards             (B, T)              team reward
terminated          (B, T) bool         the episode ended at step t (no bootstrap)
truncated           (B, T) bool         the episode was cut at step t (bootstrap)
first               (B, T) bool         step t is the first of an episode (reset hidden)
alive               (B, T, N) bool      agent n acts at step t (dead agents take no-op)
filled              (B, T) bool         step t holds data (episode batches are padded)
next_obs            (B, N, *obs)        observation after the last step (bootstrap)
next_state          (B, *state)         global state after the last step
next_mask           (B, N, A) bool      mask after the last step
final_obs           (B, T, N, *obs)     observation at truncated steps (zeros elsewhere)
final_state         (B, T, *state)      global state at truncated steps
task                (B, T) int          task or level index of the episode (-1 unknown)
h0                  (B, N, *hidden)     the policy's recurrent state before step 0
extra/<name>        (B, T, ...)         what the policy returned while acting (log-probs,
                                        values, ...)
==================  ==================  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

Batch = dict[str, np.ndarray]


@dataclass(frozen=True)
class EnvSpaces:
    """What an agent may know about an environment.

    Attributes:
        env_id: registered id (for messages only; agents never build envs).
        n_agents: agents acting each step (1 for Gymnasium envs).
        obs_shape: one agent's observation shape.
        state_shape: global-state shape (centralised critics, mixers).
        n_actions: number of discrete actions, or 0 for continuous actions.
        action_shape: shape of one agent's action (``()`` for discrete).
        action_low: lower bounds of continuous actions (empty for discrete).
        action_high: upper bounds of continuous actions.
        has_mask: the env restricts actions through masks (SMAC-style).
        tasks: names of the env's tasks or levels (multi-task envs), else empty.
        episode_limit: the env's episode limit, if it has a fixed one.
        state_agent_dim: width of each agent's feature block when the global state starts
            with one block per agent (SMAC's state does: QPLEX's attention keys read them);
            None when the state has no such layout.
    """

    env_id: str
    n_agents: int
    obs_shape: tuple[int, ...]
    state_shape: tuple[int, ...]
    n_actions: int
    action_shape: tuple[int, ...] = ()
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    has_mask: bool = False
    tasks: tuple[str, ...] = ()
    episode_limit: int | None = None
    state_agent_dim: int | None = None

    @property
    def discrete(self) -> bool:
        return self.n_actions > 0

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.obs_shape))

    @property
    def state_dim(self) -> int:
        return int(np.prod(self.state_shape))


@dataclass
class PolicyOutput:
    """What :meth:`Policy.act` returns.

    Attributes:
        actions: (B, N, *act) actions.
        hidden: the new recurrent state (B, N, *hidden); an empty array for stateless policies.
        extras: per-step values the learner wants back in the batch (``extra/<name>``).
    """

    actions: np.ndarray
    hidden: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)


@runtime_checkable
class Policy(Protocol):
    """A CPU copy of an agent's acting networks; picklable, shipped to rollout actors."""

    def initial_hidden(self, n_envs: int) -> np.ndarray:
        """Recurrent state at an episode start, (n_envs, N, *hidden) (empty if stateless)."""
        ...

    def act(
        self,
        obs: np.ndarray,
        mask: np.ndarray,
        hidden: np.ndarray,
        greedy: bool,
        rng: np.random.Generator,
        state: np.ndarray | None = None,
    ) -> PolicyOutput:
        """Actions for a batch: obs (B, N, *obs), mask (B, N, A) bool, hidden (B, N, ...).

        ``greedy`` selects the evaluation behaviour (argmax, no exploration); otherwise the
        policy samples (or explores) with ``rng``, the only randomness it may use, so a
        rollout is a function of its seeds.
        """
        ...

    def load_weights(self, weights: dict[str, Any]) -> None:
        """Replaces the acting weights with the learner's latest (:meth:`Learner.weights`)."""
        ...


@runtime_checkable
class Learner(Protocol):
    """An agent's trainable part. Built by its registered factory as
    ``factory(config, spaces, seed)``; the runtime calls nothing else."""

    def policy(self) -> Policy:
        """A fresh acting copy with the current weights."""
        ...

    def weights(self) -> dict[str, Any]:
        """The acting weights only (what rollout actors need), as CPU tensors or arrays."""
        ...

    def update(self, batch: Batch) -> dict[str, float]:
        """One learning step on a batch; returns named loss terms (finite floats)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: networks, optimisers, targets, RNG and
        counters. Tensors, arrays and plain Python values only (loadable with
        ``torch.load(weights_only=True)``)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class ReplayObserver(Protocol):
    """An optional capability of off-policy learners: seeing the replay buffer.

    The off-policy loop calls ``observe_replay`` after each rollout request with the
    buffer's episodes (oldest first; dicts of per-step arrays ``obs``, ``state``, ...,
    plus ``task``, the hidden task index for diagnostics) of which the last ``n_new``
    just arrived. The learner may write per-episode scalars into them (e.g. ``label``, a
    trajectory class); they travel with the episode and come back in sampled batches as
    (E,) arrays. Every episode must get the same keys. Returns diagnostics to log
    (name -> float).
    """

    def observe_replay(self, episodes: list[dict[str, Any]], n_new: int, env_steps: int) -> dict[str, float]: ...


@runtime_checkable
class DatasetLearner(Protocol):
    """The capability of offline learners (loop ``offline``): learning from a fixed dataset.

    The offline loop calls ``attach_dataset`` once, before any update (and again after a
    resume, with the same dataset), with the dataset's flat transitions::

        observations (N, *obs), actions (N, *act), rewards (N,), next_observations (N, *obs),
        terminals (N,) bool (no bootstrap), timeouts (N,) bool (cut by a time limit)

    The learner derives what it needs from the whole dataset there (state normalisation,
    PRDC's nearest-neighbour index) and keeps it on itself - never in a module or class
    global shared between learners. ``update`` then receives *transition batches*: the
    same keys with N = batch size, rows drawn by the loop's seeded generator.
    """

    def attach_dataset(self, transitions: dict[str, np.ndarray]) -> None: ...


@runtime_checkable
class LevelSampler(Protocol):
    """Chooses each environment's next task or level at reset (a level-replay curriculum).

    The runtime asks for the current distribution before each rollout, records the level
    index of every episode in the batch's ``task`` key, and sends per-episode scores back.
    An agent supplies one through ``learner.make_level_sampler(n_levels, seed)``; without
    it the runtime samples levels uniformly.
    """

    def probs(self) -> np.ndarray:
        """(n_levels,) probabilities of the next resets."""
        ...

    def update(self, levels: np.ndarray, scores: np.ndarray) -> None:
        """Per-episode results: the level index and the agent's score of each episode."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class UniformLevelSampler:
    """Every level equally often; remembers how often each was played and its mean score
    (reported in results), which is what a curriculum would act on."""

    def __init__(self, n_levels: int) -> None:
        self.n = n_levels
        self.counts = np.zeros(n_levels, np.int64)
        self.score_sum = np.zeros(n_levels)

    def probs(self) -> np.ndarray:
        return np.full(self.n, 1.0 / self.n)

    def update(self, levels: np.ndarray, scores: np.ndarray) -> None:
        np.add.at(self.counts, levels, 1)
        np.add.at(self.score_sum, levels, scores)

    def state_dict(self) -> dict[str, Any]:
        return {"counts": self.counts.tolist(), "score_sum": self.score_sum.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts = np.asarray(state["counts"], np.int64)
        self.score_sum = np.asarray(state["score_sum"], float)
