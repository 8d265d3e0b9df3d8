"""`BayesCell`: the BayesNAS supernet of the recurrent DAG space (M. Li's thesis, §3.1-3.2, §5.2)."""
from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnas.cells.activations import activation_fn
from tfnas.cells.base import DARTS_INIT_RANGE
from tfnas.cells.search.mixed_cell import MixedCell
from tfnas.cells.search.norm import NORM_EPSILON, edge_index
from tfnas.genotypes.dag import ACTIVATIONS, Genotype


@keras.saving.register_keras_serializable(package="tfnas")
class BayesCell(MixedCell):
    """The BayesNAS search cell: one scalar per (edge, op) and one dummy-node scalar per edge.

    Thesis §3.1 (Eq. 3.1, with the highway ops of Eqs. 3.3-3.4) and §3.2:
    there is no ``none`` op; every edge ``i -> j`` has a dummy node with one
    identity op whose scalar ``d_ij`` switches the whole edge off. Node 0 is
    DARTS' (as `MixedCell`) and node ``j = 1..steps`` is::

        [c_ij, h_ij~] = (s_i * m_h) Ws[j-1]
        y_ij^o = s_i + sigmoid(c_ij) * (o(h_ij~) - s_i)
        a_j = sum_{i<j} d_ij sum_o w_ij^o y_ij^o,        s_j = norm(a_j)

    the dummy scaling the edge's *output* (scaling its input would leak:
    ``sigmoid(0) = 0.5`` and the highway bypass would still pass ``s_i``; a
    tfnas choice where the thesis does not say). This is `MixedCell`'s step
    with the edge weights ``p[e, o] = d_e * w_e^o`` (`probabilities`) in
    place of a softmax. The weights keep `MixedCell`'s DARTS layout (one
    ``Ws[j-1]`` per node, which the thesis' parameter counts match); the
    scalars are ``bayes_w`` ``[edges, ops]`` and ``bayes_d`` ``[edges]``, both
    initialised to 1 (Algorithm 2). With a one-hot ``w`` on a genotype
    (`set_one_hot`), ``d = 1`` and ``norm="none"`` the cell computes that
    genotype's `GenotypeCell`.

    The discrete cell comes from the prior variances of the scalars, which
    the strategy holds (`tfnas.strategies.one_shot.bayes_update.derive_pruned`),
    not from the scalars: `derive` refuses.

    Args:
        steps: nodes after node 0 (the thesis: 12).
        units: hidden size.
        ops: candidate ops, without ``none`` (the thesis: tanh, relu, sigmoid, identity).
        norm: ``"batch"`` (the thesis' search), ``"layer"`` or ``"none"``; no affine parameters.
        dropout_x, dropout_h, init_range, seed: as `MixedCell`.

    Example:

    >>> cell = BayesCell(steps=3, units=8)
    >>> outputs, states = CellRNN(cell)(np.zeros((2, 5, 4), "float32"))
    >>> tuple(cell.bayes_w.shape), tuple(cell.bayes_d.shape)
    ((6, 4), (6,))
    """

    def __init__(self, steps: int, units: int, ops: Sequence[str] = ACTIVATIONS, norm: str = "batch",
                 dropout_x: float = 0.0, dropout_h: float = 0.0, init_range: float = DARTS_INIT_RANGE,
                 seed: int | None = None, **kwargs):
        super().__init__(steps, units, ops=ops, norm=norm, dropout_x=dropout_x, dropout_h=dropout_h,
                         init_range=init_range, seed=seed, **kwargs)
        if "none" in self.ops:
            raise ValueError(f"Argument `ops`: a BayesCell has no 'none' op (its dummy nodes switch edges off); "
                             f"received: ops={list(self.ops)}")

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.input_dim = int(input_shape[-1])
        init = self.initializer()
        self.W0 = self.add_weight(name="W0", shape=(self.input_dim + self.units, 2 * self.units), initializer=init)
        self.Ws = self.add_weight(name="Ws", shape=(self.steps, self.units, 2 * self.units), initializer=init)
        self.bayes_w = self.add_weight(name="bayes_w", shape=(self.num_edges, len(self.ops)), initializer="ones")
        self.bayes_d = self.add_weight(name="bayes_d", shape=(self.num_edges,), initializer="ones")
        self.built = True

    @property
    def arch_variables(self) -> list:
        """The architecture scalars: ``[bayes_w, bayes_d]``."""
        return [self.bayes_w, self.bayes_d]

    def probabilities(self) -> tf.Tensor:
        """The edge weights of `MixedCell`'s step: ``d[:, None] * w``, ``[edges, ops]``."""
        return self.bayes_d[:, None] * self.bayes_w

    def derive(self, attention: str | None = None) -> Genotype:
        """Refuses: the genotype is pruned from the prior variances, which the strategy holds."""
        raise TypeError("a BayesCell's genotype is derived from the prior variances of its scalars: use "
                        "tfnas.strategies.one_shot.bayes_update.derive_pruned (BayesNasSearch.derive)")

    def set_one_hot(self, genotype: Genotype, scale: float = 1.0) -> None:
        """``w = scale`` on each node's chosen (predecessor, op) and 0 elsewhere, ``d = 1`` (the cell must be built)."""
        if genotype.steps != self.steps or genotype.first_node != "darts" or genotype.output != "mean":
            raise ValueError(f"Argument `genotype` must have {self.steps} nodes, first_node 'darts' and output "
                             f"'mean'; received: {genotype!r}")
        w = np.zeros((self.num_edges, len(self.ops)))
        for i, (act, pred) in enumerate(genotype.nodes, start=1):
            if act not in self.ops:
                raise ValueError(f"Argument `genotype`: node {i} uses {act!r}, not among ops={list(self.ops)}")
            w[edge_index(i, pred), self.ops.index(act)] = scale
        self.bayes_w.assign(w.astype(self.bayes_w.dtype))
        self.bayes_d.assign(np.ones(self.num_edges, self.bayes_d.dtype))

    def _norm_and_variance(self, a: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(norm(a), sigma^2)`` for ``a`` of shape ``[time, batch, units]``; ``sigma^2 = var + 1e-5`` over the
        batch (``"batch"``), the units (``"layer"``), or 1 (``"none"``), broadcastable to ``a``."""
        if self.norm == "none":
            return a, tf.ones((1, 1, 1), a.dtype)
        axis = 1 if self.norm == "batch" else 2
        centred = a - tf.reduce_mean(a, axis=axis, keepdims=True)
        variance = tf.reduce_mean(tf.square(centred), axis=axis, keepdims=True) + NORM_EPSILON
        return centred * tf.math.rsqrt(variance), variance

    def trace(self, x_proj: tf.Tensor, h_prev: tf.Tensor) -> dict[str, Any]:
        """The intermediates of every time step at once, in inference mode (no dropout), for the Hessian.

        Given the projected inputs and the state each step read (known after
        a forward pass), the steps are independent, so they are computed
        together with time as the leading axis.

        Args:
            x_proj: ``[time, batch, 2*units]``, `project_inputs` of the inputs.
            h_prev: ``[time, batch, units]``, the state read at each step.

        Returns:
            ``c0`` (``sigmoid(c0)``) and ``h0`` (``h0~`` before tanh) of node
            0, ``[time, batch, units]``; ``var``: the ``sigma^2`` of nodes
            0..steps; ``s``: the normalised nodes ``[steps + 1, time, batch,
            units]``; ``c`` and ``h``: per node ``j = 1..steps``, the gates
            ``sigmoid(c_ij)`` and the pre-activations ``h_ij~`` of its
            ``j`` incoming edges, ``[j, time, batch, units]``; ``output``:
            the mean of nodes ``1..steps``, ``[time, batch, units]``.
        """
        u = self.units
        probs = self.probabilities()
        c0, h0 = tf.split(x_proj + tf.linalg.matmul(h_prev, self.W0[self.input_dim:]), 2, axis=-1)
        c0 = tf.sigmoid(c0)
        s0, var0 = self._norm_and_variance(h_prev + c0 * (tf.tanh(h0) - h_prev))
        stacked, variances, gates, pre = s0[None], [var0], [], []
        fns = [activation_fn(op) for op in self.ops]
        for j in range(1, self.steps + 1):
            ch = tf.linalg.matmul(stacked, self.Ws[j - 1])                       # [j, time, batch, 2u]
            c, h = ch[..., :u], ch[..., u:]
            c = tf.sigmoid(c)
            p = probs[edge_index(j, 0): edge_index(j, 0) + j]                    # [j, ops]
            mixed = tf.add_n([p[:, k, None, None, None] * fn(h) for k, fn in enumerate(fns)])
            base = tf.reduce_sum(p, axis=1)[:, None, None, None] * stacked
            s_j, var_j = self._norm_and_variance(tf.reduce_sum(base + c * (mixed - base), axis=0))
            gates.append(c)
            pre.append(h)
            variances.append(var_j)
            stacked = tf.concat([stacked, s_j[None]], axis=0)
        return {"c0": c0, "h0": h0, "var": variances, "s": stacked, "c": gates, "h": pre,
                "output": tf.reduce_mean(stacked[1:], axis=0)}
