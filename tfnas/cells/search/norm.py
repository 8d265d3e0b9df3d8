"""Search-mode node normalisation and the edge indexing of the complete DAG, shared by the search cells.

DARTS (appendix A.1.2) and WeNet normalise every node of the search cell
with a batch normalisation without affine parameters, computed from the
current batch in training and inference alike. `normalize` is that
operation (also over the units: ``"layer"``). The complete DAG of a cell
with ``steps`` nodes has an edge ``j -> i`` for ``1 <= i <= steps``,
``0 <= j < i``; `edge_index` numbers them row by row.
"""
from __future__ import annotations

import tensorflow as tf

#: Normalisations a search cell may apply to every node (no affine parameters in any case).
NORMS: tuple[str, ...] = ("batch", "layer", "none")
#: Epsilon of the batch and layer normalisations (PyTorch's default).
NORM_EPSILON = 1e-5


def normalize(s: tf.Tensor, norm: str, batch_axis: int) -> tf.Tensor:
    """Search-mode node normalisation without affine parameters.

    ``"batch"``: ``(s - mean) / sqrt(var + 1e-5)`` over ``batch_axis`` with
    the biased variance of the current batch (PyTorch ``BatchNorm1d(affine=False,
    track_running_stats=False)``, as `MixedCell`); ``"layer"``: the same over
    the last axis; ``"none"``: ``s``.
    """
    if norm == "none":
        return s
    axis = batch_axis if norm == "batch" else -1
    dtype = s.dtype
    if dtype in (tf.float16, tf.bfloat16):
        s = tf.cast(s, tf.float32)
    centred = s - tf.reduce_mean(s, axis=axis, keepdims=True)
    var = tf.reduce_mean(tf.square(centred), axis=axis, keepdims=True)
    return tf.cast(centred * tf.math.rsqrt(var + NORM_EPSILON), dtype)


def num_edges(steps: int) -> int:
    """Number of edges ``(i, j)``, ``1 <= i <= steps``, ``0 <= j < i``."""
    return steps * (steps + 1) // 2


def edge_index(node: int, pred: int) -> int:
    """Row of edge ``pred -> node`` in ``alpha`` (``node`` 1-based, ``0 <= pred < node``).

    Rows are node 1's edge (j=0), node 2's edges (j=0, 1), node 3's (j=0, 1,
    2), ...: row ``node*(node-1)/2 + pred``.
    """
    if not 0 <= pred < node:
        raise ValueError(f"node {node} can only read nodes 0..{node - 1}; received: pred={pred!r}")
    return node * (node - 1) // 2 + pred


def edges(steps: int) -> tuple[tuple[int, int], ...]:
    """``(node, pred)`` of every row of ``alpha``, in row order."""
    return tuple((i, j) for i in range(1, steps + 1) for j in range(i))


def edge_names(steps: int) -> tuple[str, ...]:
    """The name of every row of ``alpha``, in row order: ``node3<-1`` is edge ``1 -> 3``."""
    return tuple(f"node{i}<-{j}" for i, j in edges(steps))
