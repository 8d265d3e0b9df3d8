"""How black-box strategies score genotypes (evaluators) and where that runs (executors)."""
from tfnas.evaluation.evaluators import (ContinuingEvaluator, Evaluator, RungEvaluator, ShortTrainingEvaluator,
                                         WeightSharingEvaluator, genotype_key)
from tfnas.evaluation.executors import EXECUTORS, Executor, LocalExecutor, RayExecutor, import_ray, make_executor

__all__ = ["EXECUTORS", "ContinuingEvaluator", "Evaluator", "Executor", "LocalExecutor", "RayExecutor",
           "RungEvaluator", "ShortTrainingEvaluator", "WeightSharingEvaluator", "genotype_key", "import_ray",
           "make_executor"]
