"""DRED (Garcin et al. 2024, data-regularised environment design) and the UED baselines it
compares against (U, PLR, robust PLR, DR, ACCEL), sharing one recurrent PPO learner and
differing in the level curriculum (agents/dred/curriculum.py)."""

from agents.dred.config import DREDConfig
from agents.dred.learner import DREDLearner, DREDPolicy, make_learner

__all__ = ["DREDConfig", "DREDLearner", "DREDPolicy", "make_learner"]
