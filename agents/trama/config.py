"""TRAMA's options. Defaults are TRAMA's released settings (aailab-kaist/TRAMA,
``TRAMA_release_pymarl/src/config/algs/trama_gc_qplex.yaml``) on top of the value-
decomposition defaults (PyMARL's, with the QPLEX mixer). Where the release deviates from
the paper, the paper's behaviour is the default and the release's a named option."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agents.value_decomp.config import ValueDecompConfig


@dataclass(frozen=True)
class TRAMAConfig(ValueDecompConfig):
    """TRAMA: the value-decomposition fields plus the trajectory-class modules.

    Attributes:
        mixer: the backbone's mixer; TRAMA's release uses QPLEX ("qplex").
        n_classes: trajectory classes k, the k of k-means (n_cluster: 4).
        class_embed_dim: width of the class representation g = MLP(one-hot(class)),
            k -> 32 -> 32, concatenated to each agent's input (goal_repr_dim: 32).
        class_repr: "joint": g trains with the Q loss (the paper); "detached": g's input to
            the agent is detached, so g stays a fixed random projection (the release).
        predictor_hidden: width of the agent-wise class predictor (fc -> GRU -> k logits,
            from the agent's own input: 64).
        predictor_weight: weight of the predictor's cross-entropy against the trajectory's
            class in the loss (lambda_gp_loss: 0.1).
        vq_codes: VQ-VAE codebook size, split into n_classes blocks for the coverage loss
            (n_codes: 256).
        vq_latent: latent (code) width (latent_dim: 4).
        vq_hidden: VQ-VAE encoder/decoder width, state -> 64 -> 64 -> 4 (vae_hidden_dim: 64).
        vq_lr: the VQ-VAE's Adam learning rate (the release uses lr, 5e-4).
        vq_coef: weight of ||e - sg(z_e)||^2, which moves codes (vq_coef: 0.25).
        commit_coef: weight of ||sg(e) - z_e||^2, which commits the encoder (0.125).
        coverage_coef: weight of the coverage loss pulling each class's time-indexed codes
            toward sg(z_e) (coverage_coef: 0.125).
        coverage_time: the T of the coverage schedule dn = (codes per class) / T: "batch"
            (the sampled batch's longest episode, the release's ref_max_time: 1) or
            "episode_limit" (one time-to-code map for every batch).
        vq_dense_until_steps: the VQ-VAE trains at every update until this many env steps
            (buffer_update_time: 50000) ...
        vq_interval_episodes: ... and after that once every this many collected episodes
            (vqvae_update_interval: 10).
        embedding: trajectory embedding over its steps' quantised states: "sum" (the paper)
            or "mean" (the release's meanVq).
        cluster_start_steps: env steps before the first k-means (T_cluster_start: 100000).
        cluster_interval_steps: env steps between re-clusterings (50000) ...
        cluster_interval_episodes: ... or this many episodes, whichever comes first (500).
        cluster_min_trajectories: no clustering with fewer buffer trajectories (1000).
        cluster_max_trajectories: cluster at most this many, the newest (5000).
        cluster_min_nonempty: accept a clustering only with this many non-empty clusters
            (n_min_cluster: 3).
        kmeans_iters: Lloyd iterations at most per clustering (scikit-learn's max_iter).
        classifier_lr: Adam learning rate of the label classifier, embedding -> 64 -> 32 ->
            k, which labels trajectories that arrive after a clustering (1e-3).
        classifier_epochs: passes over the clustered set per accepted clustering (minibatch
            32); 0 = the release's N / 32 passes for N trajectories.
    """

    mixer: Literal["vdn", "qmix", "qplex"] = "qplex"
    n_classes: int = 4
    class_embed_dim: int = 32
    class_repr: Literal["joint", "detached"] = "joint"
    predictor_hidden: int = 64
    predictor_weight: float = 0.1
    vq_codes: int = 256
    vq_latent: int = 4
    vq_hidden: int = 64
    vq_lr: float = 5e-4
    vq_coef: float = 0.25
    commit_coef: float = 0.125
    coverage_coef: float = 0.125
    coverage_time: Literal["batch", "episode_limit"] = "batch"
    vq_dense_until_steps: int = 50_000
    vq_interval_episodes: int = 10
    embedding: Literal["sum", "mean"] = "sum"
    cluster_start_steps: int = 100_000
    cluster_interval_steps: int = 50_000
    cluster_interval_episodes: int = 500
    cluster_min_trajectories: int = 1000
    cluster_max_trajectories: int = 5000
    cluster_min_nonempty: int = 3
    kmeans_iters: int = 300
    classifier_lr: float = 1e-3
    classifier_epochs: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        choices = {
            "class_repr": ("joint", "detached"),
            "coverage_time": ("batch", "episode_limit"),
            "embedding": ("sum", "mean"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        for name in (
            "n_classes",
            "class_embed_dim",
            "predictor_hidden",
            "vq_codes",
            "vq_latent",
            "vq_hidden",
            "vq_interval_episodes",
            "cluster_interval_steps",
            "cluster_interval_episodes",
            "cluster_min_trajectories",
            "cluster_min_nonempty",
            "kmeans_iters",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2 (classes of trajectories), got {self.n_classes}")
        if self.vq_codes % self.n_classes:
            raise ValueError(f"vq_codes ({self.vq_codes}) must split evenly into n_classes ({self.n_classes}) blocks")
        if self.cluster_min_nonempty > self.n_classes:
            raise ValueError(
                f"cluster_min_nonempty ({self.cluster_min_nonempty}) must be <= n_classes ({self.n_classes})"
            )
        if self.cluster_max_trajectories < self.cluster_min_trajectories:
            raise ValueError(
                f"cluster_max_trajectories ({self.cluster_max_trajectories}) must be >= cluster_min_trajectories "
                f"({self.cluster_min_trajectories})"
            )
        if self.cluster_max_trajectories > self.buffer_episodes:
            raise ValueError(
                f"cluster_max_trajectories ({self.cluster_max_trajectories}) must be <= buffer_episodes "
                f"({self.buffer_episodes}): clusters are drawn from the replay buffer"
            )
        for name in ("predictor_weight", "vq_coef", "commit_coef", "coverage_coef", "classifier_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("vq_lr", "classifier_lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("cluster_start_steps", "vq_dense_until_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
