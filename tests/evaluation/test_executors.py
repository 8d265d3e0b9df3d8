"""Executors: local isolation of failures, the Ray executor on a local 2-CPU instance, evaluators."""
import json
import os
import pickle
import sys

import numpy as np
import pytest

from tfnas.config import ModelConfig, TrainConfig
from tfnas.data import load_corpus
from support import FailingEvaluator, SyntheticEvaluator
from tfnas.errors import MissingDependencyError
from tfnas.evaluation import LocalExecutor, ShortTrainingEvaluator, genotype_key, import_ray, make_executor
from tfnas.spaces.dag import DagSpace
from tfnas.spaces.tree import TreeSpace


class PidEvaluator(SyntheticEvaluator):
    """Synthetic scores plus the id of the process that computed them (to see the Ray workers)."""

    def evaluate(self, genotypes):
        return [s + os.getpid() * 1e6 for s in super().evaluate(genotypes)]


def synthetic(space):
    return SyntheticEvaluator(space, space.encode(space.sample(np.random.default_rng(0))))


def test_local_executor_isolates_the_failing_genotype():
    space = DagSpace(3)
    genotypes = space.sample_unique(3, np.random.default_rng(1))
    expected = synthetic(space).evaluate(genotypes)
    assert LocalExecutor().map(synthetic(space), genotypes) == expected
    # The batch call fails once; the executor then evaluates one by one: only the first raises.
    out = LocalExecutor().map(FailingEvaluator(synthetic(space), failures=2), genotypes)
    assert isinstance(out[0], RuntimeError) and out[1:] == expected[1:]


def test_missing_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"pip install tfnas\[ray\]"):
        import_ray()
    with pytest.raises(ImportError, match=r"pip install tfnas\[ray\]"):
        make_executor("ray", "local")
    with pytest.raises(ValueError, match="known executors"):
        make_executor("slurm")


def test_ray_executor_on_a_local_two_cpu_instance():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install tfnas[ray])")
    space = TreeSpace(2)
    genotypes = space.sample_unique(6, np.random.default_rng(2))
    evaluator = PidEvaluator(space, space.encode(genotypes[0]))
    # Workers cannot import this test module: ship PidEvaluator's class by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(sys.modules["support"])  # nor the test doubles
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert ray.cluster_resources()["CPU"] == 2
        executor = make_executor("ray", "local")
        out = executor.map(evaluator, genotypes)
        failing = executor.map(FailingEvaluator(evaluator, failures=1), genotypes[:1])
        executor.close()  # it joined an instance it did not start: that instance keeps running
        assert ray.is_initialized()
    finally:
        ray.shutdown()
    assert not any(isinstance(v, Exception) for v in out), out
    scores = [v % 1e6 for v in out]
    np.testing.assert_allclose(scores, SyntheticEvaluator(space, space.encode(genotypes[0])).evaluate(genotypes))
    assert scores[0] == pytest.approx(60.0) and min(scores[1:]) > 60.0
    pids = {int(v // 1e6) for v in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # evaluated in Ray worker processes
    assert isinstance(failing[0], Exception) and "simulated evaluation failure" in str(failing[0])


def test_short_training_evaluator_reports_the_child_best_perplexity(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    child = TrainConfig(batch_size=4, eval_batch_size=4, test_batch_size=4, bptt=6, max_steps=3, log_interval=1,
                        checkpoint_interval=3, max_eval_batches=3, seed=2,
                        model=ModelConfig(emsize=8, nhid=8, dropout=0.0, dropouth=0.0, dropoutx=0.0, dropouti=0.0,
                                          dropoute=0.0))
    g = TreeSpace(2).sample(np.random.default_rng(4))
    evaluator = ShortTrainingEvaluator(child, corpus=corpus, workdir=tmp_path / "children")
    (ppl,) = evaluator.evaluate([g])
    run = tmp_path / "children" / genotype_key(g)
    result = json.loads((run / "result.json").read_text())
    assert ppl == result["best_valid_ppl"] and result["steps"] == 3 and 1.0 < ppl < 60.0
    # A repeated genotype reuses its finished run folder: same score, no more steps.
    assert evaluator.evaluate([g]) == [ppl]
    assert json.loads((run / "result.json").read_text())["steps"] == 3
    # Pickled (as for Ray), the evaluator ships the corpus location, not its arrays.
    clone = pickle.loads(pickle.dumps(evaluator))
    assert clone.corpus is None and clone.evaluate([g]) == [ppl]
