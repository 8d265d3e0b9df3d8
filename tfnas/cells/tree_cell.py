"""`TreeCell`: a frozen Zoph & Le tree cell (states ``h`` and ``c``) built from a `TreeGenotype` (`keras.ops` only)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
from keras import ops

from tfnas.cells.activations import activation_fn
from tfnas.cells.base import RecurrentCell
from tfnas.genotypes.files import as_genotype_of
from tfnas.genotypes.tree import TreeGenotype

#: Half-width of the uniform initialisation (as `GenotypeCell`).
TREE_INIT_RANGE = 0.04


def as_tree_genotype(genotype: TreeGenotype | Mapping[str, Any] | str | Path) -> TreeGenotype:
    """Accepts a `TreeGenotype`, its JSON dict (as stored in a layer config), a JSON path or a known cell's name."""
    return as_genotype_of(TreeGenotype, genotype)


def _combine(name: str, a: Any, b: Any) -> Any:
    return a + b if name == "add" else a * b


@keras.saving.register_keras_serializable(package="tfnas")
class TreeCell(RecurrentCell):
    """The tree cell of Zoph & Le (ICLR 2017, section 3.2) for any `TreeGenotype` (one step).

    With ``N = genotype.base`` leaves, ``x`` the input, ``h``/``c`` the
    previous hidden and memory states and ``m_x``/``m_h`` variational
    dropout masks fixed over a sequence::

        [p_0 .. p_{N-1}] = (x*m_x) W_x               W_x: [input_dim, N*units]  ("kernel")
        [q_0 .. q_{N-1}] = (h*m_h) W_h (+ b)         W_h: [units, N*units]      ("recurrent_kernel")
        leaf k:      z_k = comb_k(p_k, q_k),          a_k = act_k(z_k)
        internal k:  z_k = comb_k(a_left, a_right),   a_k = act_k(z_k)
        inject node: a_k <- act_inj(comb_inj(a_k, c))  (before its parent reads it)
        c_new = z_{cell_node},  h_new = a_root

    The weight layout (``kernel``, ``recurrent_kernel`` and the optional
    bias on the recurrent part) is that of the reference ``NASCell``
    (``tf.contrib.rnn.NASCell``), so ``exported_cells/nascell.json`` with
    this class is that cell. The parameter count is
    ``(input_dim + units) * N * units`` (+ ``N * units`` with a bias).

    Args:
        genotype: a `TreeGenotype`, its dict, a genotype JSON path or a known
            cell's name (``"nascell"``).
        units: hidden size, a positive integer.
        dropout_x: rate of the variational dropout mask on the input.
        dropout_h: rate of the variational dropout mask on ``h``.
        use_bias: whether the recurrent projection has a bias (NASCell's ``use_bias``).
        init_range: weights are drawn from ``U(-init_range, init_range)``.
        seed: seed of the dropout masks and of the initialisation.

    Call arguments:
        inputs: ``[batch, input_dim]``.
        states: ``[h, c]``, each ``[batch, units]``.
        training: whether the dropout masks apply.

    Returns ``(h_new, [h_new, c_new])``.

    Example:

    >>> from tfnas.genotypes import load_genotype
    >>> cell = TreeCell(load_genotype("exported_cells/nascell.json"), units=32)
    >>> rnn = keras.layers.RNN(cell, return_sequences=True)
    >>> tuple(rnn(np.zeros((2, 5, 16), "float32")).shape)
    (2, 5, 32)
    """

    def __init__(self, genotype: TreeGenotype | Mapping[str, Any] | str | Path, units: int, dropout_x: float = 0.0,
                 dropout_h: float = 0.0, use_bias: bool = False, init_range: float = TREE_INIT_RANGE,
                 seed: int | None = None, **kwargs):
        super().__init__(units, dropout_x, dropout_h, init_range, seed, **kwargs)
        self.genotype = as_tree_genotype(genotype)
        if not isinstance(use_bias, bool):
            raise ValueError(f"Argument `use_bias` must be a bool; received: use_bias={use_bias!r}")
        self.use_bias = use_bias
        self.state_size = [self.units, self.units]
        self._children = self.genotype.children

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.input_dim = int(input_shape[-1])
        init = self.initializer()
        width = self.genotype.base * self.units
        self.kernel = self.add_weight(name="kernel", shape=(self.input_dim, width), initializer=init)
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(self.units, width),
                                                initializer=init)
        self.bias = self.add_weight(name="bias", shape=(width,), initializer="zeros") if self.use_bias else None
        self.built = True

    # ----------------------------------------------------- fused-loop pieces
    def project_inputs(self, x: Any) -> Any:
        """``x W_x`` for all leaves, for any leading shape of ``x``."""
        return self.project(x, self.kernel)

    def prepare(self) -> list[Any]:
        """Per-sequence weights: the recurrent kernel (and its bias)."""
        return [self.recurrent_kernel] + ([self.bias] if self.bias is not None else [])

    def transition(self, x_proj: Any, states: Sequence[Any], prepared: Sequence[Any],
                   h_mask: Any | None = None) -> tuple[Any, list[Any]]:
        """One step from the projected input; returns ``(h_new, [h_new, c_new])``."""
        h_prev, c_prev = states[0], states[1]
        g = self.genotype
        recur = ops.matmul(h_prev * h_mask if h_mask is not None else h_prev, prepared[0])
        if self.bias is not None:
            recur = recur + prepared[1]
        u = self.units
        pre: list[Any] = []
        out: list[Any] = []
        for k, ((comb, act), kids) in enumerate(zip(g.nodes, self._children)):
            if kids is None:
                z = _combine(comb, x_proj[:, k * u:(k + 1) * u], recur[:, k * u:(k + 1) * u])
            else:
                z = _combine(comb, out[kids[0]], out[kids[1]])
            a = activation_fn(act)(z)
            if k == g.inject_node:
                a = activation_fn(g.inject[1])(_combine(g.inject[0], a, c_prev))
            pre.append(z)
            out.append(a)
        h_new, c_new = out[g.root], pre[g.cell_node]
        return h_new, [h_new, c_new]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "genotype": self.genotype.to_dict(), "use_bias": self.use_bias}
