"""Language models around any cell, their regularisers and the trainer."""
from tfnas.lm.model import LanguageModel, LMOutput, attention_seed, cell_arguments, supernet
from tfnas.lm.regularizers import (DroppedEmbedding, LockedDropout, activation_regularization,
                                   temporal_activation_regularization)

__all__ = ["DroppedEmbedding", "LMOutput", "LanguageModel", "LockedDropout", "activation_regularization",
           "attention_seed", "cell_arguments", "supernet", "temporal_activation_regularization"]
