"""Recurrent PPO with one shared, action-masked policy: IPPO (de Witt et al. 2020) for teams,
MAPPO (Yu et al. 2022) with a centralised state critic, plain PPO for one agent."""

from agents.ppo.config import PPOConfig
from agents.ppo.learner import PPOLearner, PPOPolicy, make_learner

__all__ = ["PPOConfig", "PPOLearner", "PPOPolicy", "make_learner"]
