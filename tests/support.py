"""Helpers shared by the tests: NumPy references of the cell equations, a crash simulator, checkpoint reading.

Importable as ``support`` because pytest puts ``tests/`` (the folder of the
root conftest.py) on ``sys.path``.
"""
from pathlib import Path

import numpy as np

from tfnas.callbacks import Callback

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
