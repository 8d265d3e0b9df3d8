"""Executors: local isolation of failures, the Ray executor on a local 2-CPU instance, evaluators."""
import dataclasses
import json
import os
import pickle
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

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
    with pytest.raises(MissingDependencyError, match=r"pip install 'tfnas\[ray\]'"):
        import_ray()
    with pytest.raises(ImportError, match=r"pip install 'tfnas\[ray\]'"):
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
    evaluator = ShortTrainingEvaluator(child, corpus=corpus, workdir=tmp_path / "children", logdir=tmp_path / "tb")
    (ppl,) = evaluator.evaluate([g])
    run = tmp_path / "children" / genotype_key(g)
    result = json.loads((run / "result.json").read_text())
    assert ppl == result["best_valid_ppl"] and result["steps"] == 3 and 1.0 < ppl < 60.0
    # Issue 28 item 4: the child's curves are TensorBoard runs of their own, its validation ones its history's.
    curves = {run: EventAccumulator(str(tmp_path / "tb" / genotype_key(g) / run)).Reload()
              for run in ("train", "validation")}
    assert [e.step for e in curves["train"].Tensors("epoch_loss")] == [1, 2, 3]          # every log_interval
    assert [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in curves["validation"].Tensors("epoch_ppl")] == [
        (h["step"], pytest.approx(h["valid_ppl"], rel=1e-6)) for h in result["history"]]
    # A repeated genotype reuses its finished run folder: same score, no more steps.
    assert evaluator.evaluate([g]) == [ppl]
    assert json.loads((run / "result.json").read_text())["steps"] == 3
    # Pickled (as for Ray), the evaluator ships the corpus location, not its arrays.
    clone = pickle.loads(pickle.dumps(evaluator))
    assert clone.corpus is None and clone.evaluate([g]) == [ppl]


# ------------------------------------------------------------------ one evaluation at a time (ASHA)
def test_local_submissions_are_evaluated_at_once_and_reported_in_order():
    space = DagSpace(3)
    genotypes = space.sample_unique(3, np.random.default_rng(1))
    expected = synthetic(space).evaluate(genotypes)
    executor = LocalExecutor()
    tickets = [executor.submit(FailingEvaluator(synthetic(space), failures=1) if i == 1 else synthetic(space), g)
               for i, g in enumerate(genotypes)]
    done = [executor.next_done() for _ in genotypes]
    assert [ticket for ticket, _ in done] == tickets and len(set(tickets)) == 3
    assert done[0][1] == expected[0] and done[2][1] == expected[2]
    assert isinstance(done[1][1], RuntimeError) and "simulated evaluation failure" in str(done[1][1])
    with pytest.raises(ValueError, match="none was submitted"):
        executor.next_done()


class FakeRay:
    """A stand-in for the few calls of Ray's API that `RayExecutor` makes: tasks run when submitted, and
    ``wait`` reports them in the order ``finish`` gives (positions in submission order), as tasks of different
    lengths would finish."""

    class Ref:
        def __init__(self, position, value, error):
            self.position, self.value, self.error = position, value, error

    def __init__(self, finish):
        self.finish, self.started, self.refs, self.cancelled = list(finish), False, [], []

    def is_initialized(self):
        return self.started

    def init(self, **kwargs):
        self.started, self.init_kwargs = True, kwargs

    def shutdown(self):
        self.started = False

    def remote(self, **options):
        def task(fn):
            class Task:
                @staticmethod
                def remote(*args):
                    try:
                        value, error = fn(*args), None
                    except Exception as err:  # noqa: BLE001 - as a RayTaskError would carry it
                        value, error = None, err
                    self.refs.append(FakeRay.Ref(len(self.refs), value, error))
                    return self.refs[-1]
            return Task
        return task

    def put(self, value):
        return value

    def wait(self, refs, num_returns=1):
        assert num_returns == 1
        first = min(refs, key=lambda ref: self.finish.index(ref.position))
        return [first], [r for r in refs if r is not first]

    def get(self, ref):
        if ref.error is not None:
            raise ref.error
        return ref.value

    def cancel(self, ref, force=False):
        self.cancelled.append((ref.position, force))


def test_ray_submissions_come_back_as_they_finish_and_close_cancels_the_rest(monkeypatch):
    from tfnas.evaluation import RayExecutor

    ray = FakeRay(finish=[2, 0, 3, 1, 4])
    monkeypatch.setitem(sys.modules, "ray", ray)
    space = DagSpace(3)
    genotypes = space.sample_unique(5, np.random.default_rng(1))
    expected = synthetic(space).evaluate(genotypes)
    executor = RayExecutor("local", num_cpus=2)
    tickets = [executor.submit(FailingEvaluator(synthetic(space), failures=1) if i == 3 else synthetic(space), g)
               for i, g in enumerate(genotypes[:4])]
    assert ray.init_kwargs["num_cpus"] == 2
    first, second = executor.next_done(), executor.next_done()
    assert first == (tickets[2], expected[2]) and second == (tickets[0], expected[0])
    ticket, outcome = executor.next_done()                       # task 3 raised: its error is its outcome
    assert ticket == tickets[3] and isinstance(outcome, RuntimeError)
    executor.submit(synthetic(space), genotypes[4])
    executor.close()                                             # tasks 1 and 4 still run: cancelled
    assert sorted(ray.cancelled) == [(1, True), (4, True)] and not ray.started


def test_ray_asha_submissions_on_a_local_two_cpu_instance():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install tfnas[ray])")
    space = TreeSpace(2)
    genotypes = space.sample_unique(4, np.random.default_rng(2))
    evaluator = PidEvaluator(space, space.encode(genotypes[0]))
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(sys.modules["support"])
    executor = make_executor("ray", "local", num_cpus=2)
    try:
        tickets = {executor.submit(evaluator, g): i for i, g in enumerate(genotypes)}
        done = dict(executor.next_done() for _ in genotypes)
    finally:
        executor.close()                                             # it started this instance: shut down
    assert set(done) == set(tickets) and not ray.is_initialized()
    scores = {tickets[t]: v % 1e6 for t, v in done.items()}
    np.testing.assert_allclose([scores[i] for i in range(4)],
                               SyntheticEvaluator(space, space.encode(genotypes[0])).evaluate(genotypes))
    assert os.getpid() not in {int(v // 1e6) for v in done.values()}


def test_a_child_continues_to_each_rung_and_a_rung_run_again_gives_its_own_score(tmp_path, tiny_corpus):
    from support import assert_same_checkpoints
    from tfnas.evaluation import RungEvaluator
    from tfnas.lm.trainer import Trainer

    corpus = load_corpus(tiny_corpus)
    child = TrainConfig(batch_size=4, eval_batch_size=4, test_batch_size=4, bptt=6, max_steps=100, log_interval=1,
                        checkpoint_interval=2, max_eval_batches=3, seed=2,
                        model=ModelConfig(emsize=8, nhid=8, dropout=0.1, dropouth=0.1, dropoutx=0.0, dropouti=0.0,
                                          dropoute=0.0))
    g = DagSpace(2).sample(np.random.default_rng(4))
    evaluator = ShortTrainingEvaluator(child, corpus=corpus, workdir=tmp_path / "children")
    run = tmp_path / "children" / genotype_key(g)
    low = RungEvaluator(evaluator, 3).evaluate([g])[0]
    high = pickle.loads(pickle.dumps(RungEvaluator(evaluator, 6))).evaluate([g])[0]   # shipped as to Ray
    result = json.loads((run / "result.json").read_text())
    assert result["steps"] == 6 and [e["step"] for e in result["history"]] == [3, 6]
    # The same as one run of 6 steps evaluated at 3 and 6: the promotion continued, it did not start again.
    straight = Trainer(dataclasses.replace(child, max_steps=6, eval_interval=3), g, tmp_path / "straight",
                       corpus=corpus).fit(evaluate_test=False)
    assert_same_checkpoints(run, tmp_path / "straight")
    assert [low, high] == [straight.history[0]["best_valid_ppl"], straight.best_valid_ppl]
    assert evaluator.evaluate_at([g], 3) == [low]                  # a rung run again: its score, nothing trained
    assert json.loads((run / "result.json").read_text())["steps"] == 6
    assert_same_checkpoints(run, tmp_path / "straight")
