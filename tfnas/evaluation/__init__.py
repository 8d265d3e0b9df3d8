"""How black-box strategies score genotypes (evaluators), where that runs (executors), and training-free scores
of untrained cells (proxies)."""
from tfnas.evaluation.evaluators import (ContinuingEvaluator, Evaluator, RungEvaluator, ShortTrainingEvaluator,
                                         WeightSharingEvaluator, genotype_key)
from tfnas.evaluation.executors import EXECUTORS, Executor, LocalExecutor, RayExecutor, import_ray, make_executor
from tfnas.evaluation.proxies import ProxyError, covariance_score, hidden_covariance, hidden_states, text_windows

__all__ = ["EXECUTORS", "ContinuingEvaluator", "Evaluator", "Executor", "LocalExecutor", "ProxyError", "RayExecutor",
           "RungEvaluator", "ShortTrainingEvaluator", "WeightSharingEvaluator", "covariance_score", "genotype_key",
           "hidden_covariance", "hidden_states", "import_ray", "make_executor", "text_windows"]
