"""TRAMA (Na, Lee, Lee & Moon, "Trajectory-Class-Aware Multi-Agent Reinforcement Learning",
ICLR 2025): value decomposition (QPLEX by default) whose agents also predict the class of
the trajectory they are in and condition their Q-values on it. Classes come from k-means
over VQ-VAE embeddings of the global-state trajectories in the replay buffer."""

from agents.trama.clustering import kmeans, nmi, purity
from agents.trama.config import TRAMAConfig
from agents.trama.learner import TRAMALearner, TRAMAPolicy, make_learner

__all__ = ["TRAMAConfig", "TRAMALearner", "TRAMAPolicy", "kmeans", "make_learner", "nmi", "purity"]
