"""R2PVI (Tang, Liu & Xu, ICML 2025) with PEVI and DRPVI: linear robust offline RL."""

from agents.r2pvi.config import ALGOS, DataConfig, MethodConfig, R2PVIConfig
from agents.r2pvi.learner import LinearBatch, LinearVI, R2PVILearner, make_learner, make_linear_batch

__all__ = [
    "ALGOS",
    "DataConfig",
    "LinearBatch",
    "LinearVI",
    "MethodConfig",
    "R2PVIConfig",
    "R2PVILearner",
    "make_learner",
    "make_linear_batch",
]
