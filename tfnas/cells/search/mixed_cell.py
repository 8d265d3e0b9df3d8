"""`MixedCell`: the DARTS continuous relaxation of the recurrent DAG space."""
from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnas.cells.activations import activation_fn
from tfnas.cells.base import DARTS_INIT_RANGE, RecurrentCell
from tfnas.cells.search.base import ArchitectureSplit
from tfnas.cells.search.norm import NORMS, edge_index, edges, normalize, num_edges
from tfnas.cells.validation import check_units
from tfnas.genotypes.dag import Genotype

#: Candidate operations of the DARTS recurrent search space (``"none"`` first).
DARTS_OPS: tuple[str, ...] = ("none", "tanh", "relu", "sigmoid", "identity")
#: Standard deviation of the initial architecture parameters (DARTS: 1e-3 * randn).
ALPHA_INIT_STD = 1e-3
#: Default logit gap of `MixedCell.set_one_hot`: ``exp(-1000)`` is exactly 0
#: in float32 and float64, so the softmax is exactly one-hot.
ONE_HOT_SCALE = 1000.0


def derive_genotype(probs: np.ndarray, ops: Sequence[str], attention: str | None = None) -> Genotype:
    """DARTS derivation of a discrete genotype from edge probabilities.

    For node ``i`` the predecessor ``j`` whose strongest non-``none`` op has
    the largest probability wins, then that op (never ``none``). Ties go to
    the smaller ``j`` and the earlier op, as in the reference code.

    Args:
        probs: ``[num_edges(steps), len(ops)]`` in `edge_index` row order.
        ops: the candidate op names, one per column.
        attention: attention head of the returned genotype.
    """
    probs = np.asarray(probs, dtype=np.float64)
    ops = tuple(ops)
    if probs.ndim != 2 or probs.shape[1] != len(ops):
        raise ValueError(f"Argument `probs` must have shape [num_edges, {len(ops)}]; received: {probs.shape}")
    steps = int(round((np.sqrt(8 * probs.shape[0] + 1) - 1) / 2))
    if num_edges(steps) != probs.shape[0]:
        raise ValueError(f"Argument `probs` has {probs.shape[0]} rows, not steps*(steps+1)/2 for any steps")
    active = [k for k, op in enumerate(ops) if op != "none"]
    if not active:
        raise ValueError(f"Argument `ops` needs an op other than 'none'; received: ops={list(ops)}")
    nodes = []
    for i in range(1, steps + 1):
        block = probs[edge_index(i, 0): edge_index(i, 0) + i][:, active]
        j = int(np.argmax(block.max(axis=1)))
        nodes.append((ops[active[int(np.argmax(block[j]))]], j))
    return Genotype(tuple(nodes), first_node="darts", output="mean", attention=attention,
                    provenance={"derived_by": "DARTS argmax (tfnas.cells.search.mixed_cell.derive_genotype)"})


def _check_ops(ops: Any) -> tuple[str, ...]:
    if isinstance(ops, (str, bytes)) or not isinstance(ops, Sequence) or not ops:
        raise ValueError(f"Argument `ops` must be a non-empty list of op names; received: ops={ops!r}")
    ops = tuple(ops)
    for op in ops:
        try:
            activation_fn(op)
        except (ValueError, TypeError):
            raise ValueError(f"Argument `ops` has an unknown op {op!r}; received: ops={list(ops)}") from None
    if len(set(ops)) != len(ops):
        raise ValueError(f"Argument `ops` must not repeat an op; received: ops={list(ops)}")
    if "none" in ops[1:]:
        raise ValueError(f"Argument `ops`: 'none' must come first when present; received: ops={list(ops)}")
    if all(op == "none" for op in ops):
        raise ValueError(f"Argument `ops` needs an op other than 'none'; received: ops={list(ops)}")
    return ops


@keras.saving.register_keras_serializable(package="tfnas")
class MixedCell(ArchitectureSplit, RecurrentCell):
    """The DARTS search cell over the recurrent DAG space (one time step).

    Every edge ``j -> i`` of the complete DAG carries all candidate ops, mixed
    by ``p = softmax(alpha, axis=-1)`` (Liu et al., ICLR 2019, eq. 2; NASABN
    eq. 5-6). With ``x`` the input, ``h`` the previous hidden state and the
    variational dropout masks ``m_x``, ``m_h`` fixed for a whole sequence,
    node 0 is GenotypeCell's ``"darts"`` node, normalised::

        [c0, h0~] = [x*m_x, h*m_h] W0                  W0: [d + units, 2*units]
        s0 = norm(h + sigmoid(c0) * (tanh(h0~) - h))

    node ``i = 1..steps`` reads every ``s_j`` (``j < i``) through its one
    matrix ``Ws[i-1]`` (all predecessors in one matmul)::

        [c_ij, h_ij~] = (s_j * m_h) Ws[i-1]            Ws: [steps, units, 2*units]
        s_i = norm( sum_j sum_{o != none} p[e(i,j), o] *
                    (s_j + sigmoid(c_ij) * (o(h_ij~) - s_j)) )

    where ``e(i, j) = i*(i-1)/2 + j`` is the row of edge ``j -> i`` in
    ``alpha`` (node 1's edge, then node 2's two edges, ...; see `edges`).
    ``none`` contributes zero. The output, also the next hidden state, is
    the mean of ``s_1..s_steps``. ``W0`` and ``Ws`` have GenotypeCell's names,
    shapes and initialisation, so weights copy between the two; with a
    one-hot ``p`` on a genotype (`set_one_hot`) and ``norm="none"`` this cell
    computes exactly that genotype's `GenotypeCell`.

    ``norm`` (no affine parameters in any case):

    * ``"batch"``: ``(s - mean_b(s)) / sqrt(var_b(s) + 1e-5)`` with the mean
      and biased variance over the batch of the current step, in training
      and at inference alike. This is PyTorch's ``BatchNorm1d(units,
      affine=False, track_running_stats=False)``: the reference search code
      uses batch statistics in training (where all architecture and weight
      gradients are taken) and running averages only to report validation
      perplexity; updating moving averages ``(steps + 1) * time`` times from
      inside the time loop is not worth its cost and fragility, so this cell
      keeps no moving statistics. Consequences: outputs depend on the other
      sequences of the batch, and a batch of one sequence normalises every
      node to zero; evaluate with batches of several sequences (DARTS uses
      10) or use ``"layer"``.
    * ``"layer"``: the same over the ``units`` axis of each example.
    * ``"none"``: no normalisation.

    The architecture parameters ``alpha`` (variable ``"alpha_cell"``, shape
    ``[steps*(steps+1)/2, len(ops)]``, initialised ``1e-3 * N(0, 1)``) are
    trainable like the weights; a bilevel strategy updates `arch_variables`
    and `weight_variables` with separate optimizers.

    Args:
        steps: number of nodes after node 0 (DARTS: 8).
        units: hidden size, a positive integer.
        ops: candidate op names from `tfnas.cells.activations`; ``"none"``
            (zero) must be first when present.
        norm: ``"batch"``, ``"layer"`` or ``"none"`` (see above).
        dropout_x: rate of the variational dropout mask on the input.
        dropout_h: rate of the variational dropout mask on ``h`` and on every
            node input.
        init_range: weights are drawn from ``U(-init_range, init_range)``.
        seed: seed of the dropout masks and of the initialisation.

    Call arguments:
        inputs: ``[batch, input_dim]``.
        states: list with one ``[batch, units]`` tensor.
        training: whether the dropout masks apply.

    Example:

    >>> cell = MixedCell(steps=3, units=8)
    >>> outputs, states = CellRNN(cell)(np.zeros((2, 5, 4), "float32"))
    >>> outputs.shape, tuple(cell.alpha.shape)
    (TensorShape([2, 5, 8]), (6, 5))
    >>> cell.derive().steps
    3
    """

    def __init__(self, steps: int, units: int, ops: Sequence[str] = DARTS_OPS, norm: str = "batch",
                 dropout_x: float = 0.0, dropout_h: float = 0.0, init_range: float = DARTS_INIT_RANGE,
                 seed: int | None = None, **kwargs):
        super().__init__(units, dropout_x, dropout_h, init_range, seed, **kwargs)
        self.steps = check_units("steps", steps)
        self.ops = _check_ops(ops)
        if norm not in NORMS:
            raise ValueError(f"Argument `norm` must be one of {list(NORMS)}; received: norm={norm!r}")
        self.norm = norm
        self._active = tuple(k for k, op in enumerate(self.ops) if op != "none")

    @classmethod
    def from_genotype(cls, genotype: Genotype, units: int, input_dim: int, scale: float = ONE_HOT_SCALE,
                      **kwargs) -> "MixedCell":
        """A built cell with ``steps = genotype.steps`` whose ``alpha`` is one-hot on ``genotype``."""
        cell = cls(genotype.steps, units, **kwargs)
        cell.build((None, input_dim))
        cell.set_one_hot(genotype, scale)
        return cell

    @property
    def num_edges(self) -> int:
        return num_edges(self.steps)

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """``(node, pred)`` of every row of ``alpha``."""
        return edges(self.steps)

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.input_dim = int(input_shape[-1])
        init = self.initializer()
        self.W0 = self.add_weight(name="W0", shape=(self.input_dim + self.units, 2 * self.units), initializer=init)
        self.Ws = self.add_weight(name="Ws", shape=(self.steps, self.units, 2 * self.units), initializer=init)
        alpha_seed = None if self.seed is None else self.seed + 1
        self.alpha = self.add_weight(
            name="alpha_cell", shape=(self.num_edges, len(self.ops)),
            initializer=keras.initializers.RandomNormal(stddev=ALPHA_INIT_STD, seed=alpha_seed))
        self.built = True

    @property
    def arch_variables(self) -> list:
        """The architecture parameters: ``[alpha]``."""
        return [self.alpha]

    # ---------------------------------------------------- architecture
    def probabilities(self) -> tf.Tensor:
        """``softmax(alpha, axis=-1)``: one row of op probabilities per edge."""
        return tf.nn.softmax(self.alpha, axis=-1)

    def alphas_numpy(self) -> np.ndarray:
        """``alpha`` as a NumPy array ``[num_edges, len(ops)]``."""
        return np.asarray(keras.ops.convert_to_numpy(self.alpha))

    def derive(self, attention: str | None = None) -> Genotype:
        """The DARTS genotype of the current ``alpha`` (see `derive_genotype`)."""
        return derive_genotype(self.probabilities_numpy(), self.ops, attention=attention)

    def one_hot_alpha(self, genotype: Genotype, scale: float = ONE_HOT_SCALE) -> np.ndarray:
        """``alpha`` whose softmax selects ``genotype``: each node's chosen edge puts
        ``scale`` on its activation, every other edge puts ``scale`` on ``none``.

        With the default scale the softmax is exactly one-hot (``exp(-1000) == 0``).
        """
        if genotype.steps != self.steps:
            raise ValueError(f"Argument `genotype` has {genotype.steps} nodes; this cell has steps={self.steps}")
        if genotype.first_node != "darts" or genotype.output != "mean":
            raise ValueError("Argument `genotype`: a MixedCell has first_node 'darts' and output 'mean'; "
                             f"received: first_node={genotype.first_node!r}, output={genotype.output!r}")
        if self.steps > 1 and "none" not in self.ops:
            raise ValueError(f"a one-hot genotype needs 'none' among the ops to switch edges off; ops={list(self.ops)}")
        alpha = np.zeros((self.num_edges, len(self.ops)))
        for i, (act, pred) in enumerate(genotype.nodes, start=1):
            if act not in self.ops:
                raise ValueError(f"Argument `genotype`: node {i} uses {act!r}, not among ops={list(self.ops)}")
            for j in range(i):
                alpha[edge_index(i, j), self.ops.index(act if j == pred else "none")] = scale
        return alpha

    def set_one_hot(self, genotype: Genotype, scale: float = ONE_HOT_SCALE) -> None:
        """Assigns `one_hot_alpha` to ``alpha`` (the cell must be built)."""
        self.alpha.assign(self.one_hot_alpha(genotype, scale).astype(self.alpha.dtype))

    # ----------------------------------------------------- fused-loop pieces
    def project_inputs(self, x: tf.Tensor) -> tf.Tensor:
        """The input part of node 0's matmul, for any leading shape of ``x``."""
        return self.project(tf.convert_to_tensor(x), self.W0[: self.input_dim])

    def prepare(self, probs: tf.Tensor | np.ndarray | None = None) -> list[tf.Tensor]:
        """Per-sequence tensors: W0's recurrent rows, ``Ws[0..steps-1]``, then
        per node ``i`` its op weights ``[n_ops_without_none, i, 1, 1]`` and
        their sum per edge ``[i, 1, 1]``.

        Args:
            probs: edge probabilities ``[num_edges, len(ops)]`` to use instead
                of ``softmax(alpha)`` (e.g. exact one-hot rows).
        """
        probs = self.probabilities() if probs is None else tf.convert_to_tensor(probs)
        probs = tf.cast(probs, self.compute_dtype)
        op_weights, totals = [], []
        for i in range(1, self.steps + 1):
            block = probs[edge_index(i, 0): edge_index(i, 0) + i]
            active = tf.gather(block, self._active, axis=1)                # [i, n_active]
            op_weights.append(tf.transpose(active)[:, :, None, None])        # [n_active, i, 1, 1]
            totals.append(tf.reduce_sum(active, axis=1)[:, None, None])     # [i, 1, 1]
        return [self.W0[self.input_dim:]] + [self.Ws[i] for i in range(self.steps)] + op_weights + totals

    def normalize(self, s: tf.Tensor) -> tf.Tensor:
        """The node normalisation ``norm`` of ``[batch, units]`` (`tfnas.cells.search.norm.normalize`)."""
        return normalize(s, self.norm, batch_axis=0)

    def transition(self, x_proj: tf.Tensor, states: Sequence[tf.Tensor], prepared: Sequence[tf.Tensor],
                   h_mask: tf.Tensor | None = None) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """One step from the projected input; returns ``(output, [h_new])``."""
        n, u = self.steps, self.units
        w_rec, ws = prepared[0], prepared[1: 1 + n]
        op_weights, totals = prepared[1 + n: 1 + 2 * n], prepared[1 + 2 * n: 1 + 3 * n]
        masked = (lambda s: s * h_mask) if h_mask is not None else (lambda s: s)
        h_prev = states[0]
        ch = x_proj + tf.linalg.matmul(masked(h_prev), w_rec)
        c0, h0 = tf.split(ch, 2, axis=1)
        s0 = h_prev + tf.sigmoid(c0) * (tf.tanh(h0) - h_prev)
        stacked = self.normalize(s0)[None]                                   # [1, batch, units]
        fns = [activation_fn(self.ops[k]) for k in self._active]
        for i in range(1, n + 1):
            # All i predecessors in one matmul: [i*batch, units] @ [units, 2*units].
            ch = tf.reshape(tf.linalg.matmul(tf.reshape(masked(stacked), [-1, u]), ws[i - 1]),
                            tf.concat([tf.shape(stacked)[:2], [2 * u]], axis=0))
            c, h = tf.split(ch, 2, axis=-1)
            c = tf.sigmoid(c)
            w = op_weights[i - 1]
            # sum_o p_o (s_j + c (o(h) - s_j)) = P s_j + c (sum_o p_o o(h) - P s_j), P = sum_o p_o
            mixed = tf.add_n([w[k] * fn(h) for k, fn in enumerate(fns)])
            base = totals[i - 1] * stacked
            s_i = self.normalize(tf.reduce_sum(base + c * (mixed - base), axis=0))
            stacked = tf.concat([stacked, s_i[None]], axis=0)
        output = tf.reduce_mean(stacked[1:], axis=0)
        return output, [output]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "steps": self.steps, "ops": list(self.ops), "norm": self.norm}
