"""TRAMA's learner and acting copy on top of the value-decomposition learner.

Per update: the TD loss of the class-aware agents through the mixer (QPLEX by default),
plus predictor_weight x the predictor's cross-entropy against the trajectories' classes
(one RMSprop, as in the release); then, on schedule, one Adam step of the state VQ-VAE.
Through :meth:`TRAMALearner.observe_replay` (the off-policy loop calls it after each
request) it labels arriving trajectories with the label classifier and re-clusters the
buffer with k-means on schedule, warm-started from the last centroids.

Which class the agents condition on: the class each agent drew from its predictor while
acting (sampled in training episodes, argmax in greedy ones), recorded in the batch as
``extra/class`` and replayed in the update, as the release does. The step after an
episode's last (the TD target's bootstrap) takes the predictor's argmax.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from agents.protocols import Batch, EnvSpaces
from agents.trama.clustering import kmeans, nmi, purity
from agents.trama.config import TRAMAConfig
from agents.trama.losses import coverage_codes, predictor_loss, vq_losses
from agents.trama.networks import LabelClassifier, StateVQVAE, TRAMAAgent
from agents.value_decomp.learner import ValueDecompLearner, ValueDecompPolicy

_CHUNK = 65_536  # states per VQ-VAE forward when embedding the buffer
# the schedule's counters, checkpointed in this order; the seed keys the k-means and
# classifier draws, so it is part of continuing exactly
_COUNTERS = (
    "clusterings",
    "attempts",
    "last_cluster_steps",
    "last_cluster_episodes",
    "episodes_seen",
    "last_vq_episodes",
    "seed",
)


class TRAMAPolicy(ValueDecompPolicy):
    """Epsilon-greedy class-aware agents: each step every agent's predictor proposes a
    class (sampled from its softmax with ``rng``, argmax when greedy), g of that class
    joins the agent's input, and the class is recorded (``extras["class"]``)."""

    agent: TRAMAAgent

    def _step(
        self, x: torch.Tensor, h: torch.Tensor, greedy: bool, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, np.ndarray]]:
        a = self.agent
        hq, hp = h[:, : a.q_hidden], h[:, a.q_hidden :]
        logits, hp_new = a.predictor(x, hp)
        if greedy:
            classes = logits.argmax(-1).numpy()
        else:
            p = torch.softmax(logits.double(), -1).numpy()
            cdf = np.cumsum(p, -1)
            # inverse CDF; the last bin takes any rounding shortfall of the cumulative sum
            classes = (rng.random((len(cdf), 1)) * cdf[:, -1:] >= cdf[:, :-1]).sum(-1)
        q, hq_new = a.q(a.class_input(x, torch.as_tensor(classes), detach=False), hq)
        return q, torch.cat([hq_new, hp_new], -1), {"class": classes.astype(np.int64)}


class TRAMALearner(ValueDecompLearner):
    """See the module docstring. State beyond the value-decomposition learner's: the VQ-VAE
    and its Adam, the label classifier and its Adam, the centroids and the clustering
    schedule's counters (all in :meth:`state_dict`)."""

    cfg: TRAMAConfig
    agent: TRAMAAgent
    policy_class = TRAMAPolicy

    def __init__(self, cfg: TRAMAConfig, spaces: EnvSpaces, seed: int) -> None:
        super().__init__(cfg, spaces, seed)
        self.seed = seed
        self.vq = StateVQVAE(spaces.state_dim, cfg.vq_hidden, cfg.vq_latent, cfg.vq_codes)
        self.vq_opt = torch.optim.Adam(self.vq.parameters(), lr=cfg.vq_lr)
        self.classifier = LabelClassifier(cfg.vq_latent, cfg.n_classes)
        self.cls_opt = torch.optim.Adam(self.classifier.parameters(), lr=cfg.classifier_lr)
        self.centroids: np.ndarray | None = None
        self.embed_stats = np.zeros((2, cfg.vq_latent))
        self.embed_stats[1] = 1.0
        self.clusterings = 0  # accepted clusterings
        self.attempts = 0
        self.last_cluster_steps = 0
        self.last_cluster_episodes = 0
        self.episodes_seen = 0
        self.last_vq_episodes = 0
        self._vq_terms: dict[str, float] = {}
        self.gen = torch.Generator().manual_seed(seed)  # the learner's own draws (never the global RNG)

    def _make_agent(self) -> TRAMAAgent:
        c = self.cfg
        return TRAMAAgent(
            self.inputs.size, c.rnn_hidden, self.spaces.n_actions, c.n_classes, c.class_embed_dim, c.predictor_hidden
        )

    # -- the class-aware unroll -------------------------------------------------------------
    def _agent_qs(
        self, agent: TRAMAAgent, x: torch.Tensor, tb: dict[str, torch.Tensor], online: bool
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        E, T1, N = x.shape[:3]
        aux: dict[str, torch.Tensor] = {}
        if online:
            if "extra/class" not in tb:
                raise KeyError("trama update needs the classes the agents acted on (batch key 'extra/class')")
            logits = self._unroll(agent.predictor, x)  # (E, T + 1, N, k)
            classes = torch.zeros(E, T1, N, dtype=torch.long)
            classes[:, :-1] = tb["extra/class"].long()
            rows = torch.arange(E)
            classes[rows, tb["lengths"]] = logits[rows, tb["lengths"]].detach().argmax(-1)
            tb["classes1"] = classes
            aux["logits"] = logits
        detach = self.cfg.class_repr == "detached"
        return self._unroll(agent.q, agent.class_input(x, tb["classes1"], detach)), aux

    def _aux_loss(self, aux: dict[str, torch.Tensor], tb: dict[str, torch.Tensor]) -> tuple[torch.Tensor | None, dict]:
        if "label" not in tb:
            return None, {}
        T = tb["filled"].shape[1]
        ce, terms = predictor_loss(aux["logits"][:, :T], tb["label"].long(), tb["filled"].bool())
        return self.cfg.predictor_weight * ce, terms

    def update(self, batch: Batch) -> dict[str, float]:
        out = super().update(batch)
        c = self.cfg
        # the release: the VQ-VAE trains at every learner step until buffer_update_time env
        # steps, then once every vqvae_update_interval collected episodes
        if (
            self.env_steps <= c.vq_dense_until_steps
            or self.episodes_seen - self.last_vq_episodes >= c.vq_interval_episodes
        ):
            self._vq_terms = self._vq_update(batch)
            self.last_vq_episodes = self.episodes_seen
        out.update(self._vq_terms)
        return out

    # -- the state VQ-VAE ---------------------------------------------------------------------
    def _vq_update(self, batch: Batch) -> dict[str, float]:
        c = self.cfg
        states = torch.as_tensor(batch["state"], dtype=torch.float32)
        E, T = states.shape[:2]
        filled = torch.as_tensor(batch["filled"])
        labels = torch.as_tensor(batch["label"]).long() if "label" in batch else torch.full((E,), -1)
        # trajectories without a class yet cover a random class's codes, redrawn at every
        # step as the release does
        random = torch.randint(c.n_classes, (E, T), generator=self.gen)
        classes = torch.where(labels[:, None] >= 0, labels[:, None], random)
        limit = self.spaces.episode_limit
        horizon = T if c.coverage_time == "batch" or not limit else limit
        index, valid = coverage_codes(classes, T, horizon, c.vq_codes, c.n_classes)
        z_e, _, e, recon = self.vq(states)
        loss, terms = vq_losses(
            states,
            z_e,
            e,
            recon,
            self.vq.codebook,
            index,
            valid,
            filled,
            (c.vq_coef, c.commit_coef, c.coverage_coef),
        )
        self.vq_opt.zero_grad()
        loss.backward()
        self.vq_opt.step()
        return {k: float(v.detach()) for k, v in terms.items()}

    def embed(self, episodes: list[dict[str, Any]]) -> np.ndarray:
        """(n, latent) trajectory embeddings: the sum (paper) or mean (release) of the
        quantised vectors of each episode's global states."""
        lengths = np.array([len(ep["state"]) for ep in episodes])
        states = np.concatenate([np.asarray(ep["state"], np.float32).reshape(len(ep["state"]), -1) for ep in episodes])
        with torch.no_grad():
            parts = []
            for s in range(0, len(states), _CHUNK):
                z_e = self.vq.encoder(torch.as_tensor(states[s : s + _CHUNK]))
                parts.append(self.vq.codebook[self.vq.quantise(z_e)])
            e = torch.cat(parts).double().numpy()
        sums = np.add.reduceat(e, np.concatenate([[0], np.cumsum(lengths)[:-1]]), axis=0)
        return sums / lengths[:, None] if self.cfg.embedding == "mean" else sums

    # -- trajectory classes over the replay buffer ----------------------------------------------
    def observe_replay(self, episodes: list[dict[str, Any]], n_new: int, env_steps: int) -> dict[str, float]:
        """Labels the ``n_new`` newest episodes (the classifier's class once a clustering was
        accepted, else -1) and re-clusters on schedule; returns cluster diagnostics when a
        clustering ran (NMI and purity against the hidden task, and NMI of a random
        relabelling with the same cluster sizes)."""
        c = self.cfg
        self.episodes_seen += n_new
        new = episodes[len(episodes) - n_new :] if n_new else []
        if new:
            labels = self.classify(new) if self.clusterings else np.full(len(new), -1)
            for ep, lab in zip(new, labels):
                ep["label"] = np.int64(lab)
        due = env_steps >= c.cluster_start_steps and (
            not self.clusterings
            or env_steps - self.last_cluster_steps >= c.cluster_interval_steps
            or self.episodes_seen - self.last_cluster_episodes >= c.cluster_interval_episodes
        )
        if not due or len(episodes) < c.cluster_min_trajectories:
            return {}
        out = self.cluster(episodes[-c.cluster_max_trajectories :], env_steps)
        # episodes older than the clustered window and still unlabelled get the classifier's
        # class (they would otherwise never have one)
        older = [ep for ep in episodes[: -c.cluster_max_trajectories] if int(ep.get("label", -1)) < 0]
        if older and self.clusterings:
            for ep, lab in zip(older, self.classify(older)):
                ep["label"] = np.int64(lab)
        return out

    def _scaled(self, x: np.ndarray) -> torch.Tensor:
        """The classifier's input: embeddings standardised with the last accepted
        clustering's statistics (codes are small, ~1e-2: raw inputs barely train in the
        release's N / 32 passes; k-means itself sees the raw embeddings)."""
        return torch.as_tensor((x - self.embed_stats[0]) / self.embed_stats[1], dtype=torch.float32)

    def classify(self, episodes: list[dict[str, Any]]) -> np.ndarray:
        """The label classifier's class of each episode (valid once a clustering was accepted)."""
        with torch.no_grad():
            logits = self.classifier(self._scaled(self.embed(episodes)))
        return logits.argmax(-1).numpy()

    def cluster(self, episodes: list[dict[str, Any]], env_steps: int) -> dict[str, float]:
        """One k-means of the episodes' embeddings (warm-started from the last accepted
        centroids); accepted with at least cluster_min_nonempty non-empty clusters, which
        relabels the episodes and retrains the label classifier."""
        c = self.cfg
        self.attempts += 1
        self.last_cluster_steps, self.last_cluster_episodes = env_steps, self.episodes_seen
        x = self.embed(episodes)
        rng = np.random.default_rng([self.seed, 71, self.attempts])
        centroids, labels = kmeans(x, c.n_classes, rng, init=self.centroids, iters=c.kmeans_iters)
        nonempty = len(np.unique(labels))
        out: dict[str, float] = {"clusters_nonempty": float(nonempty), "clustering_attempts": float(self.attempts)}
        if nonempty < c.cluster_min_nonempty:
            return out
        self.centroids = centroids
        self.clusterings += 1
        for ep, lab in zip(episodes, labels):
            ep["label"] = np.int64(lab)
        out["classifier_acc"] = self._fit_classifier(x, labels)
        out["clusterings"] = float(self.clusterings)
        tasks = np.array([int(ep.get("task", -1)) for ep in episodes])
        if (tasks >= 0).all() and len(np.unique(tasks)) > 1:
            out["cluster_nmi"] = nmi(labels, tasks)
            out["cluster_purity"] = purity(labels, tasks)
            out["cluster_nmi_random"] = nmi(rng.permutation(labels), tasks)
        return out

    def _fit_classifier(self, x: np.ndarray, labels: np.ndarray) -> float:
        """Minibatch-32 Adam passes of the label classifier over (embedding, label); returns
        its training accuracy after."""
        n = len(x)
        epochs = self.cfg.classifier_epochs or max(1, n // 32)
        self.embed_stats = np.stack([x.mean(0), x.std(0) + 1e-8])
        xt = self._scaled(x)
        yt = torch.as_tensor(labels, dtype=torch.long)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.clusterings)
        for _ in range(epochs):
            for idx in torch.randperm(n, generator=g).split(32):
                loss = F.cross_entropy(self.classifier(xt[idx]), yt[idx])
                self.cls_opt.zero_grad()
                loss.backward()
                self.cls_opt.step()
        with torch.no_grad():
            return float((self.classifier(xt).argmax(-1) == yt).float().mean())

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["trama"] = {
            "vq": self.vq.state_dict(),
            "vq_opt": self.vq_opt.state_dict(),
            "classifier": self.classifier.state_dict(),
            "cls_opt": self.cls_opt.state_dict(),
            "centroids": torch.as_tensor(self.centroids) if self.centroids is not None else torch.empty(0),
            "embed_stats": torch.as_tensor(self.embed_stats),
            "counters": [getattr(self, name) for name in _COUNTERS],
            "vq_terms": dict(self._vq_terms),
            "gen": self.gen.get_state(),
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        t = state["trama"]
        self.vq.load_state_dict(t["vq"])
        self.vq_opt.load_state_dict(t["vq_opt"])
        self.classifier.load_state_dict(t["classifier"])
        self.cls_opt.load_state_dict(t["cls_opt"])
        cent = t["centroids"]
        self.centroids = cent.numpy().astype(np.float64) if cent.numel() else None
        self.embed_stats = t["embed_stats"].numpy().astype(np.float64)
        for name, value in zip(_COUNTERS, t["counters"], strict=True):
            setattr(self, name, int(value))
        self._vq_terms = {k: float(v) for k, v in t["vq_terms"].items()}
        self.gen.set_state(t["gen"])


def make_learner(cfg: TRAMAConfig, spaces: EnvSpaces, seed: int) -> TRAMALearner:
    """The registry's factory (agent name "trama")."""
    if not isinstance(cfg, TRAMAConfig):
        raise TypeError(f"trama needs a TRAMAConfig, got {type(cfg).__name__}")
    return TRAMALearner(cfg, spaces, seed)
