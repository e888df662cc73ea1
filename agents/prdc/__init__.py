"""PRDC (Ran et al. 2023) with TD3+BC, BC and online TD3 on one learner (agents/prdc/learner.py)."""
