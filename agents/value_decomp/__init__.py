"""Value decomposition with recurrent Q-learning (PyMARL's QLearner): VDN (Sunehag et al.
2018), QMIX (Rashid et al. 2018) and QPLEX (Wang et al. 2021), the baselines and backbone of
TRAMA (Na et al. 2025). One learner; the mixer is a config field."""

from agents.value_decomp.config import ValueDecompConfig
from agents.value_decomp.learner import ValueDecompLearner, ValueDecompPolicy, make_learner
from agents.value_decomp.mixers import QMixer, QPLEXMixer, VDNMixer

__all__ = [
    "QMixer",
    "QPLEXMixer",
    "VDNMixer",
    "ValueDecompConfig",
    "ValueDecompLearner",
    "ValueDecompPolicy",
    "make_learner",
]
