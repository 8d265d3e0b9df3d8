"""`SharedCell`: the weight-sharing cell of ENAS (one matrix per edge) and of RSWS (one per node), which runs any DAG
genotype of its space."""
from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnas.cells.activations import activation_fn
from tfnas.cells.base import RecurrentCell
from tfnas.cells.search.base import ArchitectureSplit
from tfnas.cells.search.norm import edge_index
from tfnas.cells.validation import check_units
from tfnas.genotypes.dag import ACTIVATIONS, Genotype

#: Half-width of the uniform initialisation of ENAS' shared weights (ENAS, section 3.1: U(-0.05, 0.05)).
ENAS_INIT_RANGE = 0.05
#: How the node matrices are shared: ``"edge"`` (ENAS: one per (node, predecessor) pair) or ``"node"`` (DARTS'
#: cell, as RSWS trains it: one per node, whatever its predecessor).
SHARINGS: tuple[str, ...] = ("edge", "node")


@keras.saving.register_keras_serializable(package="tfnas")
class SharedCell(ArchitectureSplit, RecurrentCell):
    """The recurrent cell with shared weights of ENAS (Pham et al., ICML 2018, section 2.1) and of RSWS (Li &
    Talwalkar, UAI 2019).

    The genotype is data, not structure: a non-trainable int32 variable
    ``arch = [act_0, pred_1, act_1, ..., pred_N, act_N]`` (activation indices
    in `tfnas.genotypes.ACTIVATIONS`) is read at every step, so one traced
    `tf.function` runs every sampled architecture; `set_genotype` assigns it
    (inside or outside a `tf.function`). With the masks of `GenotypeCell`::

        [c0, h0~] = [x*m_x, h*m_h] W0,   s0 = h + sigmoid(c0) * (act_0(h0~) - h)
        node i (pred j = arch[2i-1], act = arch[2i]):
        [c_i, h_i~] = (s_j*m_h) Ws[k(i, j)],   s_i = s_j + sigmoid(c_i) * (act(h_i~) - s_j)
        output = mean of the loose ends (nodes no other node reads) or of nodes 1..N

    ``sharing`` says which matrix node i applies to its predecessor j:

    * ``"edge"`` (ENAS, the default): one matrix per (node, predecessor)
      pair, ``Ws: [N(N+1)/2, units, 2*units]``, ``k(i, j) = e(i, j) =
      i(i-1)/2 + j``;
    * ``"node"`` (DARTS' cell, the weights RSWS trains: the authors'
      ``randomNAS_release`` sets the genotype of DARTS' ``DARTSCell``
      before each minibatch): one matrix per node, ``Ws: [N, units,
      2*units]``, ``k(i, j) = i - 1`` whichever predecessor is chosen. This
      is the frozen `GenotypeCell`'s layout.

    Differences from the frozen `GenotypeCell`: the matrices are chosen,
    and the activations and the output rule's mask are selected, at run
    time. With ``GenotypeCell.Ws[i-1] = SharedCell.Ws[k(i, pred_i)]`` and
    the same ``W0`` both compute the same function
    (`genotype_cell_weights`).

    Args:
        steps: nodes after node 0.
        units: hidden size.
        first_node: ``"enas"`` (node 0's activation is searched) or ``"darts"`` (tanh).
        output: ``"loose_ends"`` (ENAS) or ``"mean"``.
        sharing: ``"edge"`` (ENAS) or ``"node"`` (DARTS' cell, RSWS).
        dropout_x, dropout_h: variational dropout rates on ``x`` and on ``h``/node inputs.
        init_range: weights are drawn from ``U(-init_range, init_range)``.
        seed: seed of the dropout masks and of the initialisation.

    Call arguments:
        inputs: ``[batch, input_dim]``; states: ``[h]``; training: whether dropout applies.

    Example:

    >>> from tfnas.cells import CellRNN
    >>> cell = SharedCell(steps=3, units=8)
    >>> cell.build((None, 4))
    >>> cell.set_genotype(Genotype((("relu", 0), ("tanh", 1), ("identity", 1)), first_node="enas",
    ...                            output="loose_ends"))
    >>> out, _ = CellRNN(cell)(np.zeros((2, 5, 4), "float32"))
    """

    def __init__(self, steps: int, units: int, first_node: str = "enas", output: str = "loose_ends",
                 dropout_x: float = 0.0, dropout_h: float = 0.0, init_range: float = ENAS_INIT_RANGE,
                 seed: int | None = None, sharing: str = "edge", **kwargs):
        super().__init__(units, dropout_x, dropout_h, init_range, seed, **kwargs)
        self.steps = check_units("steps", steps)
        if first_node not in ("enas", "darts"):
            raise ValueError(f"Argument `first_node` must be 'enas' or 'darts'; received: first_node={first_node!r}")
        if output not in ("loose_ends", "mean"):
            raise ValueError(f"Argument `output` must be 'loose_ends' or 'mean'; received: output={output!r}")
        if sharing not in SHARINGS:
            raise ValueError(f"Argument `sharing` must be 'edge' or 'node'; received: sharing={sharing!r}")
        self.first_node = first_node
        self.output_rule = output
        self.sharing = sharing

    @property
    def num_edges(self) -> int:
        return self.steps * (self.steps + 1) // 2

    @property
    def num_matrices(self) -> int:
        """Rows of ``Ws``: one per edge (``"edge"``) or per node (``"node"``)."""
        return self.num_edges if self.sharing == "edge" else self.steps

    def matrix_index(self, node: int, pred: int) -> int:
        """The row of ``Ws`` that node ``node`` (1-based) applies to its predecessor ``pred``."""
        edge = edge_index(node, pred)      # refuses a predecessor node cannot read
        return edge if self.sharing == "edge" else node - 1

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.input_dim = int(input_shape[-1])
        init = self.initializer()
        self.W0 = self.add_weight(name="W0", shape=(self.input_dim + self.units, 2 * self.units), initializer=init)
        self.Ws = self.add_weight(name="Ws", shape=(self.num_matrices, self.units, 2 * self.units), initializer=init)
        default = self.encode(Genotype(tuple(("tanh", i) for i in range(self.steps)), first_node=self.first_node,
                                       output=self.output_rule))
        self.arch = self.add_weight(name="arch", shape=(1 + 2 * self.steps,), dtype="int32", trainable=False,
                                    initializer=keras.initializers.Constant(default))
        self.built = True

    # ------------------------------------------------------------ genotypes
    def encode(self, genotype: Genotype) -> np.ndarray:
        """The ``arch`` vector of ``genotype`` (which must fit this cell)."""
        if not isinstance(genotype, Genotype):
            raise ValueError(f"SharedCell runs DAG genotypes; received: {type(genotype).__name__}")
        if genotype.steps != self.steps:
            raise ValueError(f"genotype has {genotype.steps} steps; this SharedCell has steps={self.steps}")
        if genotype.first_node != self.first_node or genotype.output != self.output_rule:
            raise ValueError(f"genotype has first_node={genotype.first_node!r}, output={genotype.output!r}; this "
                             f"SharedCell has first_node={self.first_node!r}, output={self.output_rule!r}")
        arch = [ACTIVATIONS.index(genotype.first_activation)]
        for act, pred in genotype.nodes:
            arch += [pred, ACTIVATIONS.index(act)]
        return np.asarray(arch, np.int32)

    def set_genotype(self, genotype: Genotype | tf.Tensor | np.ndarray) -> None:
        """Makes the cell run ``genotype`` (a `Genotype` or its ``arch`` vector)."""
        arch = self.encode(genotype) if isinstance(genotype, Genotype) else genotype
        self.arch.assign(tf.cast(arch, tf.int32))

    @property
    def arch_variables(self) -> list:
        """An empty list: the architecture is the non-trainable ``arch`` set by `set_genotype`, not a parameter."""
        return []

    def derive(self) -> Genotype:
        """The genotype the cell currently runs (the last one given to `set_genotype`, or the default)."""
        arch = [int(v) for v in keras.ops.convert_to_numpy(self.arch)]
        nodes = tuple((ACTIVATIONS[act], pred) for pred, act in zip(arch[1::2], arch[2::2]))
        return Genotype(nodes, first_node=self.first_node, first_activation=ACTIVATIONS[arch[0]],
                        output=self.output_rule)

    def genotype_cell_weights(self, genotype: Genotype) -> dict[str, np.ndarray]:
        """``{"W0", "Ws"}`` of the `GenotypeCell` that computes what this cell computes for ``genotype``."""
        self.encode(genotype)
        ws = self.Ws.numpy()
        return {"W0": self.W0.numpy(),
                "Ws": np.stack([ws[self.matrix_index(i, pred)] for i, (_, pred) in enumerate(genotype.nodes, start=1)])}

    # ----------------------------------------------------- fused-loop pieces
    def project_inputs(self, x: tf.Tensor) -> tf.Tensor:
        return self.project(x, self.W0[: self.input_dim])

    def prepare(self) -> list[tf.Tensor]:
        """W0's recurrent rows, the node matrices of the current architecture and the output weights."""
        arch = tf.convert_to_tensor(self.arch)
        preds = arch[1::2]
        if self.sharing == "edge":
            weights = tf.gather(self.Ws, tf.range(1, self.steps + 1) * tf.range(0, self.steps) // 2 + preds)
        else:
            weights = tf.convert_to_tensor(self.Ws)
        if self.output_rule == "mean":
            out_w = tf.ones((self.steps,), self.compute_dtype)
        else:
            used = tf.reduce_any(tf.equal(preds[None, :], tf.range(1, self.steps + 1)[:, None]), axis=1)
            out_w = 1.0 - tf.cast(used, self.compute_dtype)
        return [self.W0[self.input_dim:], weights, arch, out_w / tf.reduce_sum(out_w)]

    @staticmethod
    def _activation(x: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        """``ACTIVATIONS[index](x)`` for a run-time ``index``."""
        branches = [lambda f=activation_fn(name): f(x) for name in ACTIVATIONS]
        return tf.switch_case(index, branches)

    def transition(self, x_proj: tf.Tensor, states: Sequence[tf.Tensor], prepared: Sequence[tf.Tensor],
                   h_mask: tf.Tensor | None = None) -> tuple[tf.Tensor, list[tf.Tensor]]:
        w0_h, weights, arch, out_w = prepared
        h_prev = states[0]
        masked = (lambda s: s * h_mask) if h_mask is not None else (lambda s: s)
        u = self.units
        ch = x_proj + tf.linalg.matmul(masked(h_prev), w0_h)
        first = self._activation(ch[:, u:], arch[0]) if self.first_node == "enas" else tf.tanh(ch[:, u:])
        nodes = [h_prev + tf.sigmoid(ch[:, :u]) * (first - h_prev)]
        for i in range(1, self.steps + 1):
            s_prev = tf.gather(tf.stack(nodes), arch[2 * i - 1])
            out = tf.linalg.matmul(masked(s_prev), weights[i - 1])
            h = self._activation(out[:, u:], arch[2 * i])
            nodes.append(s_prev + tf.sigmoid(out[:, :u]) * (h - s_prev))
        output = tf.tensordot(out_w, tf.stack(nodes[1:]), axes=1)
        return output, [output]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "steps": self.steps, "first_node": self.first_node,
                "output": self.output_rule, "sharing": self.sharing}
