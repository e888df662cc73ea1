"""R2PVI (Tang, Liu & Xu, ICML 2025) with PEVI and DRPVI: linear robust offline RL."""

from agents.r2pvi.config import ALGOS, MethodConfig, R2PVIConfig
from agents.r2pvi.learner import LinearBatch, LinearVI, make_linear_batch

__all__ = ["ALGOS", "LinearBatch", "LinearVI", "MethodConfig", "R2PVIConfig", "make_linear_batch"]
