"""Helpers shared by the tests: NumPy references of the cell equations, a crash simulator, checkpoint reading.

Importable as ``support`` because pytest puts ``tests/`` (the folder of the
root conftest.py) on ``sys.path``.
"""
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from tfnas.callbacks import Callback
from tfnas.evaluation.evaluators import Evaluator
from tfnas.genotypes.files import AnyGenotype
from tfnas.policies.controller import Policy

#: The activations of the DAG space (and ``none``) in NumPy.
ACT = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
       "identity": lambda v: v, "none": np.zeros_like}


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def log_softmax(logits):
    """``log softmax`` over the last axis, in float64 (the reference of the scoring heads)."""
    x = np.asarray(logits, np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def picked_log_probs(logits, targets):
    """``log_softmax(logits)[b, t, targets[b, t]]`` in float64."""
    return np.take_along_axis(log_softmax(logits), np.asarray(targets)[..., None].astype(np.int64), -1)[..., 0]


def numpy_norm(s, norm, eps=1e-5):
    """BatchNorm1d(affine=False) with batch statistics, LayerNorm without affine, or nothing."""
    if norm == "none":
        return s
    axis = 0 if norm == "batch" else 1
    mean = s.mean(axis=axis, keepdims=True)
    var = ((s - mean) ** 2).mean(axis=axis, keepdims=True)  # biased, as used for normalising
    return (s - mean) / np.sqrt(var + eps)


class Kill(Callback):
    """Simulates a killed process: raises on the first ``kind`` event whose logs match ``match``."""

    def __init__(self, kind, **match):
        self.kind, self.match = kind, match

    def on_event(self, kind, logs):
        if kind == self.kind and all(logs.get(k) == v for k, v in self.match.items()):
            raise KeyboardInterrupt(f"killed at {kind} {self.match}")


def latest_checkpoint_arrays(out: Path) -> dict:
    """The arrays of the newest checkpoint of a run or search folder (variable names left out:
    Keras gives them per-process suffixes)."""
    latest = (Path(out) / "checkpoints" / "latest").read_text().strip()
    data = np.load(Path(out) / "checkpoints" / latest / "variables.npz")
    return {k: data[k] for k in data.files if k != "__names__"}


class SyntheticEvaluator:
    """A cheap, deterministic stand-in objective for tests and benchmarks of search strategies.

    The "perplexity" of a genotype is ``floor * scale^(mismatches)``, where
    ``mismatches`` counts the choice positions of ``space.encode(genotype)``
    that differ from ``target``: one best architecture, a smooth landscape.

    Args:
        space: the search space (`DagSpace` or `TreeSpace`).
        target: the choice indices of the best architecture.
        floor: its perplexity.
        scale: factor per wrong choice.
    """

    def __init__(self, space: Any, target: Sequence[int], floor: float = 60.0, scale: float = 1.1):
        self.space = space
        self.target = [int(t) for t in target]
        self.floor = float(floor)
        self.scale = float(scale)

    def evaluate(self, genotypes: Sequence[AnyGenotype]) -> list[float]:
        out = []
        for g in genotypes:
            tokens = self.space.encode(g)
            wrong = sum(int(a != b) for a, b in zip(tokens, self.target))
            out.append(self.floor * self.scale ** wrong)
        return out


class FailingEvaluator:
    """Wraps an evaluator and raises on the first ``failures`` calls (tests of retries)."""

    def __init__(self, inner: Evaluator, failures: int = 1):
        self.inner = inner
        self.failures = failures

    def evaluate(self, genotypes: Sequence[AnyGenotype]) -> list[float]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("simulated evaluation failure")
        return self.inner.evaluate(genotypes)


class CategoricalPolicy(Policy):
    """Independent categorical choices: ``p(a) = prod_p softmax(theta_p)[a_p]`` (a tiny policy).

    The reference for tests of the REINFORCE estimator, and an ablation of
    the LSTM controller.
    """

    def build(self, input_shape=None):
        self.logits = self.add_weight(name="logits", shape=(self.total_choices,), initializer=self._init(0))
        self.built = True

    def _start(self, n):
        return n

    def _step(self, p, n):
        off, k = self.offsets[p], self.token_choices[p]
        return tf.tile(self.logits[None, off:off + k], tf.stack([n, 1])), n

    def _feed(self, p, a, n):
        return n
