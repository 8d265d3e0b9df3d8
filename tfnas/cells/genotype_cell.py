"""`GenotypeCell`: a frozen DAG recurrent cell built from a `Genotype` (`keras.ops` only: any Keras backend)."""
from __future__ import annotations

import functools
import operator
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
from keras import ops

from tfnas.cells.activations import activation_fn
from tfnas.cells.base import DARTS_INIT_RANGE, RecurrentCell
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import as_genotype_of


def as_genotype(genotype: Genotype | Mapping[str, Any] | str | Path) -> Genotype:
    """Accepts a `Genotype`, its JSON dict (as stored in a layer config), a JSON path or a known cell's name."""
    return as_genotype_of(Genotype, genotype)


def node_schedule(genotype: Genotype) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """Groups the nodes that read the same predecessor, in a valid order.

    Returns ``((pred, (node, ...)), ...)``: the nodes of one group share one
    matmul of ``s_pred`` with their ``W_i`` side by side. Groups are emitted
    wave by wave (a group appears once its predecessor is computed).
    """
    done = {0}
    pending = list(range(1, genotype.steps + 1))
    schedule = []
    while pending:
        ready = [i for i in pending if genotype.nodes[i - 1][1] in done]
        by_pred: dict[int, list[int]] = {}
        for i in ready:
            by_pred.setdefault(genotype.nodes[i - 1][1], []).append(i)
        schedule += [(pred, tuple(ids)) for pred, ids in sorted(by_pred.items())]
        done.update(ready)
        pending = [i for i in pending if i not in done]
    return tuple(schedule)


@keras.saving.register_keras_serializable(package="tfnas")
class GenotypeCell(RecurrentCell):
    """The DARTS evaluation cell for any DAG `Genotype` (one time step).

    With ``x`` the input, ``h`` the previous hidden state, ``m_x`` and ``m_h``
    variational dropout masks fixed for a whole sequence (Gal & Ghahramani)
    and ``d = input_dim``, node 0 is (DARTS, appendix A.1.2)::

        darts/enas: [c0, h0~] = [x*m_x, h*m_h] W0     W0: [d + units, 2*units]
                    c0 = sigmoid(.), h0~ = tanh(.) (enas: first_activation)
        wenet:      c0 = sigmoid((x*m_x) W0[:d]),  h0~ = tanh((h*m_h) W0[d:])
                                                   W0: [d + units, units]
        s0 = h + c0 * (h0~ - h)

    node ``i = 1..N`` with ``(act_i, j)`` from the genotype::

        [c_i, h_i~] = (s_j * m_h) Ws[i-1]              Ws: [N, units, 2*units]
        s_i = s_j + sigmoid(c_i) * (act_i(h_i~) - s_j)

    and the output, which is also the next hidden state, is the mean of the
    nodes in ``genotype.concat``. The parameter count is
    ``(d + units) * 2 * units + N * units * 2 * units`` (``(d + units) *
    units`` for W0 with the wenet first node); there are no biases.

    Args:
        genotype: a `Genotype`, its dict, a genotype JSON path or a known
            cell's name (``"darts_v2"``, `tfnas.genotypes.known_cells`).
        units: hidden size, a positive integer.
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

    >>> cell = GenotypeCell("darts_v2", units=32)
    >>> rnn = keras.layers.RNN(cell, return_sequences=True)
    >>> tuple(rnn(np.zeros((2, 5, 16), "float32")).shape)
    (2, 5, 32)
    """

    def __init__(self, genotype: Genotype | Mapping[str, Any] | str | Path, units: int,
                 dropout_x: float = 0.0, dropout_h: float = 0.0,
                 init_range: float = DARTS_INIT_RANGE, seed: int | None = None, **kwargs):
        super().__init__(units, dropout_x, dropout_h, init_range, seed, **kwargs)
        self.genotype = as_genotype(genotype)
        self._schedule = node_schedule(self.genotype)

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.input_dim = int(input_shape[-1])
        init = self.initializer()
        first_cols = self.units if self.genotype.first_node == "wenet" else 2 * self.units
        self.W0 = self.add_weight(name="W0", shape=(self.input_dim + self.units, first_cols), initializer=init)
        self.Ws = self.add_weight(name="Ws", shape=(self.genotype.steps, self.units, 2 * self.units),
                                  initializer=init)
        self.built = True

    # ----------------------------------------------------- fused-loop pieces
    def project_inputs(self, x: Any) -> Any:
        """The input part of node 0's matmul, for any leading shape of ``x``.

        A sequence layer calls this once on ``[batch, time, input_dim]``.
        """
        return self.project(x, self.W0[: self.input_dim])

    def prepare(self) -> list[Any]:
        """Per-sequence weights: W0's recurrent rows, then one matrix per group."""
        groups = [
            ops.concatenate([self.Ws[i - 1] for i in ids], axis=1) if len(ids) > 1 else self.Ws[ids[0] - 1]
            for _, ids in self._schedule
        ]
        return [self.W0[self.input_dim:]] + groups

    def transition(self, x_proj: Any, states: Sequence[Any], prepared: Sequence[Any],
                   h_mask: Any | None = None) -> tuple[Any, list[Any]]:
        """One step from the projected input; returns ``(output, [h_new])``."""
        h_prev = states[0]
        masked = (lambda s: s * h_mask) if h_mask is not None else (lambda s: s)
        recur = ops.matmul(masked(h_prev), prepared[0])
        if self.genotype.first_node == "wenet":
            c0, h0 = ops.sigmoid(x_proj), ops.tanh(recur)
        else:
            c0, h0 = ops.split(x_proj + recur, 2, axis=1)
            c0, h0 = ops.sigmoid(c0), activation_fn(self.genotype.first_activation)(h0)
        nodes = {0: h_prev + c0 * (h0 - h_prev)}
        for (pred, ids), weights in zip(self._schedule, prepared[1:]):
            s_prev = nodes[pred]
            # [c_i, h_i] blocks of every node of the group, side by side (split: no strided copies)
            parts = ops.split(ops.matmul(masked(s_prev), weights), 2 * len(ids), axis=1)
            for k, i in enumerate(ids):
                c = ops.sigmoid(parts[2 * k])
                h = activation_fn(self.genotype.nodes[i - 1][0])(parts[2 * k + 1])
                nodes[i] = s_prev + c * (h - s_prev)
        concat = self.genotype.concat
        # Summed left to right, as TensorFlow's AddN does: the same numbers as before on TensorFlow.
        output = functools.reduce(operator.add, [nodes[i] for i in concat]) / float(len(concat))
        return output, [output]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "genotype": self.genotype.to_dict()}
