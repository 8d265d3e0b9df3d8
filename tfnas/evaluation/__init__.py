"""How black-box strategies score genotypes (evaluators) and where that runs (executors)."""
from tfnas.evaluation.evaluators import Evaluator, ShortTrainingEvaluator, WeightSharingEvaluator, genotype_key
from tfnas.evaluation.executors import EXECUTORS, Executor, LocalExecutor, RayExecutor, import_ray, make_executor

__all__ = ["EXECUTORS", "Evaluator", "Executor", "LocalExecutor", "RayExecutor",
           "ShortTrainingEvaluator", "WeightSharingEvaluator", "genotype_key", "import_ray",
           "make_executor"]
