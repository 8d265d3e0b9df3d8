"""Models that propose genotypes: the LSTM controller and REINFORCE, and NAO's encoder-predictor-decoder."""
from tfnas.policies.controller import Controller, ControllerConfig, Policy
from tfnas.policies.nao import EncoderPredictorDecoder, NaoTokens, NaoTrainer
from tfnas.policies.reinforce import REWARDS, Reinforce, perplexity_reward

__all__ = ["Controller", "ControllerConfig", "EncoderPredictorDecoder", "NaoTokens", "NaoTrainer", "Policy", "REWARDS",
           "Reinforce", "perplexity_reward"]
