"""Models that propose genotypes: the LSTM controller and REINFORCE."""
from tfnas.policies.controller import Controller, Policy
from tfnas.policies.reinforce import REWARDS, Reinforce, perplexity_reward

__all__ = ["Controller", "Policy", "REWARDS", "Reinforce", "perplexity_reward"]
