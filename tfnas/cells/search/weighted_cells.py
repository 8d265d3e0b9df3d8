"""`WeightedCells`: WeNet's weighted networks, M DAG cells run as one vectorised cell.

WeNet (Huang & Xiang, "WeNet: Weighted Networks for Recurrent Network
Architecture Search") trains ``M`` candidate networks ``N_1..N_M``, each with
its own parameters, as one recurrent cell whose state is the weighted sum of
theirs (eq. 4)::

    h_t = sum_{i=1..M} softmax(w)_i N_i(x_t, h_{t-1})

The combined ``h_t`` is fed back to every network at the next step. The
architecture weights ``w`` are trained with the parameters; networks with
large weights are the good ones.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnas.cells.activations import activation_fn
from tfnas.cells.base import DARTS_INIT_RANGE, RecurrentCell
from tfnas.cells.genotype_cell import GenotypeCell, as_genotype
from tfnas.cells.search.base import ArchitectureSplit
from tfnas.cells.search.norm import NORMS, normalize
from tfnas.genotypes.dag import ACTIVATIONS, Genotype

#: Logit gap of `WeightedCells.set_one_hot`: ``exp(-1000) == 0`` in float32, so the softmax is exactly one-hot.
ONE_HOT_SCALE = 1000.0


def _check_genotypes(genotypes: Any) -> tuple[Genotype, ...]:
    if isinstance(genotypes, (str, bytes, Mapping, Genotype)) or not isinstance(genotypes, Sequence):
        raise ValueError(f"Argument `genotypes` must be a non-empty list of genotypes; received: {genotypes!r}")
    out = tuple(as_genotype(g) for g in genotypes)
    if not out:
        raise ValueError("Argument `genotypes` must be a non-empty list of genotypes; received: []")
    steps = {g.steps for g in out}
    if len(steps) != 1:
        raise ValueError(f"Argument `genotypes`: every network needs the same number of steps; "
                         f"received steps {sorted(steps)}")
    first = {g.first_node for g in out}
    if len(first) != 1:
        raise ValueError(f"Argument `genotypes`: every network needs the same first_node; received {sorted(first)}")
    return out


@tf.custom_gradient
def batched_matmul(a: tf.Tensor, w: tf.Tensor):
    """``a @ w`` for ``[M, n, k] @ [M, k, m]``, with a faster weight gradient on CPU.

    The default gradient ``matmul(a, g, adjoint_a=True)`` of a batched
    matmul takes the slow transposed path of the CPU kernel (about 4x at
    M=100, n=20, k=200, m=400); transposing ``a`` first gives the same
    numbers with the fast path.
    """
    def grad(g):
        return tf.linalg.matmul(g, w, transpose_b=True), tf.linalg.matmul(tf.transpose(a, [0, 2, 1]), g)

    return tf.linalg.matmul(a, w), grad


@keras.saving.register_keras_serializable(package="tfnas")
class WeightedCells(ArchitectureSplit, RecurrentCell):
    """M DAG networks with separate parameters, mixed by softmax weights (WeNet eq. 4).

    Network ``k`` is the `GenotypeCell` of ``genotypes[k]`` with its own
    ``W0[k]`` and ``Ws[k]``. With ``x`` the input, ``h`` the previous
    combined state and the variational dropout masks ``m_x``, ``m_h`` fixed
    for a whole sequence (shared by all networks), network ``k`` computes
    (``"darts"`` first node, DARTS' ``_compute_init_state``, which WeNet
    uses; ``"enas"`` as in `GenotypeCell`)::

        [c0, h0~] = [x*m_x, h*m_h] W0[k]
        s0 = norm(h + sigmoid(c0) * (tanh(h0~) - h))
        [c_i, h_i~] = (s_j * m_h) Ws[k][i-1]             j = pred_k(i)
        s_i = norm(s_j + sigmoid(c_i) * (act_k,i(h_i~) - s_j))
        N_k(x, h) = mean of s_i over i in concat_k

    and the cell outputs, and feeds back to every network, (eq. 4)::

        h_t = sum_k softmax(w)_k N_k(x_t, h_{t-1})

    With the ``"wenet"`` first node (the literal formula of WeNet §3.1, an
    option of `tfnas.strategies.one_shot.wenet`) node 0 is instead
    ``c0 = sigmoid((x*m_x) W0[k][:d])``, ``h0~ = tanh((h*m_h) W0[k][d:])``,
    ``s0 = norm(h + c0 * (h0~ - h))``: from ``h = 0`` it gives ``s0 = 0``
    whatever ``x``.

    The computation is vectorised over networks: the input and recurrent
    parts of node 0 are one matmul each against the networks' matrices side
    by side, node ``i`` of all networks is one batched matmul
    ``[M, batch, units] @ [M, units, 2*units]`` whose left side is one gather
    of each network's predecessor ``s_j`` from the nodes computed so far,
    and the output of eq. 4 is accumulated node by node with one
    ``[M] x [M, batch, units]`` contraction. The rows of node ``i`` are
    the networks sorted by their activation at ``i`` (the matrices are
    permuted once per sequence, the gather indices account for it), so
    each activation applies to one contiguous slice. The genotypes are the
    index arrays `predecessors`, `activation_ids` and `concat_mask`, fixed
    when the layer is created; nodes ``i`` of different networks are
    computed together, which is valid because every node reads an earlier
    one.

    ``norm`` normalises every node of every network separately (WeNet
    searches with batch norm on each node, as DARTS): ``"batch"`` uses the
    statistics of the current batch at training and inference (see
    `MixedCell`), ``"layer"`` those of each example, ``"none"`` nothing. With
    ``norm="none"`` and a one-hot ``softmax(w)`` on network ``k``
    (`set_one_hot`) the cell computes exactly `get_network` ``(k)``.

    Weights: ``W0`` ``[M, d + units, 2*units]`` (``units`` columns for the
    wenet first node), ``Ws`` ``[M, steps, units, 2*units]`` (network
    ``k``'s slices have GenotypeCell's layout) and the architecture weights
    ``network_logits`` ``[M]`` (``w``, initialised to zero: all networks
    equal), a separate variable listed by `arch_variables`.

    Args:
        genotypes: the ``M`` networks (`Genotype` or dict), all with the same
            ``steps`` and ``first_node``; output rules may differ.
        units: hidden size, a positive integer.
        norm: ``"batch"``, ``"layer"`` or ``"none"`` (see above).
        dropout_x: rate of the variational dropout mask on the input.
        dropout_h: rate of the variational dropout mask on ``h`` and on every node input.
        init_range: weights are drawn from ``U(-init_range, init_range)``.
        seed: seed of the dropout masks and of the initialisation.
        init_noise: standard deviation of the initial state (`get_initial_state`):
            0 gives zeros (as every cell); ``> 0`` gives ``init_noise * N(0, 1)``,
            a fixed draw (stateless, key ``[state_seed, 7]``), so every sequence
            start sees the same one (see `tfnas.strategies.one_shot.wenet` for
            why batch norm needs it with the ``first_node="wenet"`` option).
        state_seed: seed of that draw (None: 0).

    Call arguments:
        inputs: ``[batch, input_dim]``.
        states: list with one ``[batch, units]`` tensor (the combined state).
        training: whether the dropout masks apply.

    Example:

    >>> from tfnas.spaces import DagSpace
    >>> space = DagSpace(steps=3)
    >>> cells = WeightedCells(space.sample_unique(4, rng=0), units=8, norm="none")
    >>> outputs, states = CellRNN(cells)(np.zeros((2, 5, 6), "float32"))
    >>> outputs.shape, tuple(cells.W0.shape), tuple(cells.network_logits.shape)
    (TensorShape([2, 5, 8]), (4, 14, 16), (4,))
    """

    def __init__(self, genotypes: Sequence[Genotype | Mapping[str, Any]], units: int, norm: str = "batch",
                 dropout_x: float = 0.0, dropout_h: float = 0.0, init_range: float = DARTS_INIT_RANGE,
                 seed: int | None = None, init_noise: float = 0.0, state_seed: int | None = None, **kwargs):
        super().__init__(units, dropout_x, dropout_h, init_range, seed, **kwargs)
        if not init_noise >= 0:
            raise ValueError(f"Argument `init_noise` must be >= 0; received: init_noise={init_noise!r}")
        self.init_noise = float(init_noise)
        self.state_seed = state_seed
        self.genotypes = _check_genotypes(genotypes)
        if norm not in NORMS:
            raise ValueError(f"Argument `norm` must be one of {list(NORMS)}; received: norm={norm!r}")
        self.norm = norm
        g0 = self.genotypes[0]
        self.steps = g0.steps
        self.first_node = g0.first_node
        # The genotypes as index arrays (the vectorised computation reads only these).
        self.predecessors = np.array([[p for _, p in g.nodes] for g in self.genotypes], np.int64)
        self.activation_ids = np.array([[ACTIVATIONS.index(a) for a, _ in g.nodes] for g in self.genotypes],
                                       np.int64)
        self.first_activation_ids = np.array([ACTIVATIONS.index(g.first_activation) for g in self.genotypes],
                                             np.int64)
        self.concat_mask = np.array([[i in g.concat for i in range(1, self.steps + 1)] for g in self.genotypes])
        self._layout = self._node_layout()

    def _node_layout(self) -> list[dict[str, Any]]:
        """How node ``i`` of all networks is computed from the index arrays (static).

        Node ``i``'s tensor holds the networks in the order ``perm`` that
        sorts them by their activation at ``i``, so each activation applies
        to one contiguous slice (``groups``). ``sources`` are the nodes read
        and ``rows`` the row of ``[s_source_0; s_source_1; ...]`` each row of
        node ``i`` reads (its network's predecessor, in that node's order).
        """
        m = self.num_networks
        position = {0: np.arange(m)}      # position[j][k]: row of network k in node j's tensor
        layout = []
        for i in range(1, self.steps + 1):
            acts = self.activation_ids[:, i - 1]
            perm = np.argsort(acts, kind="stable")
            preds = self.predecessors[perm, i - 1]
            sources = sorted(set(int(j) for j in preds))
            rows = np.array([sources.index(int(j)) * m + position[int(j)][k] for j, k in zip(preds, perm)])
            bounds = np.flatnonzero(np.diff(acts[perm])) + 1
            groups = [(ACTIVATIONS[int(acts[perm[a]])], int(a), int(b))
                      for a, b in zip(np.r_[0, bounds], np.r_[bounds, m])]
            position[i] = np.argsort(perm)
            layout.append({"perm": perm, "sources": sources, "rows": rows, "groups": groups,
                           "identity": bool((perm == np.arange(m)).all())})
        return layout

    @classmethod
    def from_genotypes(cls, genotypes: Sequence[Genotype], units: int, input_dim: int, **kwargs) -> "WeightedCells":
        """The cells for ``genotypes``, built for inputs of size ``input_dim``."""
        cells = cls(genotypes, units, **kwargs)
        cells.build((None, input_dim))
        return cells

    @property
    def num_networks(self) -> int:
        """``M``."""
        return len(self.genotypes)

    @property
    def _first_cols(self) -> int:
        return self.units if self.first_node == "wenet" else 2 * self.units

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.input_dim = int(input_shape[-1])
        m, u = self.num_networks, self.units
        init = self.initializer()
        self.W0 = self.add_weight(name="W0", shape=(m, self.input_dim + u, self._first_cols), initializer=init)
        self.Ws = self.add_weight(name="Ws", shape=(m, self.steps, u, 2 * u), initializer=init)
        self.network_logits = self.add_weight(name="network_logits", shape=(m,), initializer="zeros")
        self.built = True

    @property
    def arch_variables(self) -> list:
        """The architecture weights: ``[network_logits]`` (``w`` of eq. 4)."""
        return [self.network_logits]

    # ------------------------------------------------------------- weights w
    def probabilities(self) -> tf.Tensor:
        """``softmax(w)``: the weight of every network, ``[M]``."""
        return tf.nn.softmax(self.network_logits)

    def ranking(self) -> np.ndarray:
        """Network indices by decreasing weight (ties keep the network order)."""
        return np.argsort(-self.probabilities_numpy(), kind="stable")

    def derive(self) -> Genotype:
        """The genotype of the network with the largest weight."""
        return self.genotypes[int(self.ranking()[0])]

    def set_one_hot(self, k: int, scale: float = ONE_HOT_SCALE) -> None:
        """Logits whose softmax is exactly one-hot on network ``k``."""
        self._check_index(k)
        logits = np.zeros(self.num_networks)
        logits[k] = scale
        self.network_logits.assign(logits.astype(self.network_logits.dtype))

    # ------------------------------------------------ network k <-> GenotypeCell
    def _check_index(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < self.num_networks:
            raise ValueError(f"Argument `k` must be a network index in 0..{self.num_networks - 1}; received: k={k!r}")
        return int(k)

    def get_network(self, k: int, **kwargs) -> GenotypeCell:
        """A built `GenotypeCell` of network ``k`` holding a copy of its parameters.

        ``kwargs`` override the cell settings (dropout rates, seed, name).
        """
        k = self._check_index(k)
        settings = {"dropout_x": self.dropout, "dropout_h": self.recurrent_dropout,
                    "init_range": self.init_range, "seed": self.seed, **kwargs}
        cell = GenotypeCell.from_genotype(self.genotypes[k], self.units, self.input_dim, **settings)
        cell.W0.assign(self.W0[k])
        cell.Ws.assign(self.Ws[k])
        return cell

    def set_network(self, k: int, cell: GenotypeCell) -> None:
        """Copies a built `GenotypeCell`'s parameters into network ``k``.

        The cell must have network ``k``'s genotype (nodes and first node),
        ``units`` and input size.
        """
        k = self._check_index(k)
        g = self.genotypes[k]
        if (cell.genotype.nodes, cell.genotype.first_node, cell.genotype.first_activation) != \
                (g.nodes, g.first_node, g.first_activation):
            raise ValueError(f"Argument `cell` has genotype {cell.genotype.nodes}; network {k} is {g.nodes}")
        if tuple(cell.W0.shape) != tuple(self.W0.shape[1:]) or tuple(cell.Ws.shape) != tuple(self.Ws.shape[1:]):
            raise ValueError(f"Argument `cell` has weights {tuple(cell.W0.shape)}, {tuple(cell.Ws.shape)}; "
                             f"network {k} has {tuple(self.W0.shape[1:])}, {tuple(self.Ws.shape[1:])}")
        for stacked, value in ((self.W0, cell.W0), (self.Ws, cell.Ws)):
            stacked.assign(tf.tensor_scatter_nd_update(stacked, [[k]], tf.convert_to_tensor(value)[None]))

    # ----------------------------------------------------- fused-loop pieces
    def project_inputs(self, x: tf.Tensor) -> tf.Tensor:
        """Node 0's input part for all networks: ``[..., M * first_cols]`` (network-major).

        A sequence layer calls this once on ``[batch, time, input_dim]``.
        """
        w = tf.reshape(tf.transpose(self.W0[:, : self.input_dim], [1, 0, 2]), [self.input_dim, -1])
        return self.project(tf.convert_to_tensor(x), w)

    def prepare(self) -> list[tf.Tensor]:
        """Per-sequence tensors: the recurrent rows of every W0 side by side
        ``[units, M * first_cols]``, then per node ``i`` its matrices
        ``Ws[perm_i, i]`` ``[M, units, 2*units]`` and its output weights
        ``q_i = (softmax(w) * concat_mask[:, i] / |concat|)[perm_i]`` ``[M]``."""
        w_rec = tf.reshape(tf.transpose(self.W0[:, self.input_dim:], [1, 0, 2]), [self.units, -1])
        probs = tf.cast(self.probabilities(), self.compute_dtype)
        share = self.concat_mask / self.concat_mask.sum(axis=1, keepdims=True)        # [M, steps]
        ws = tf.unstack(tf.transpose(self.Ws, [1, 0, 2, 3]), num=self.steps)
        mats, weights = [], []
        for i, node in enumerate(self._layout, start=1):
            q = probs * tf.constant(share[:, i - 1], probs.dtype)
            if node["identity"]:
                mats.append(ws[i - 1])
                weights.append(q)
            else:
                perm = tf.constant(node["perm"])
                mats.append(tf.gather(ws[i - 1], perm))
                weights.append(tf.gather(q, perm))
        return [w_rec] + mats + weights

    def _by_network(self, t: tf.Tensor) -> tf.Tensor:
        """``[batch, M * n]`` -> ``[M, batch, n]``."""
        return tf.transpose(tf.reshape(t, [tf.shape(t)[0], self.num_networks, -1]), [1, 0, 2])

    @staticmethod
    def _activate(v: tf.Tensor, ids: np.ndarray) -> tf.Tensor:
        """``act_{ids[k]}(v[k])`` for every network ``k`` (exact selection, no mixing)."""
        used = sorted(set(int(i) for i in ids))
        out = activation_fn(ACTIVATIONS[used[0]])(v)
        for op in used[1:]:
            out = tf.where(tf.constant((ids == op)[:, None, None]), activation_fn(ACTIVATIONS[op])(v), out)
        return out

    def _read(self, nodes: list[tf.Tensor], node: dict[str, Any]) -> tf.Tensor:
        """The predecessor of every row of a node: ``[M, batch, units]`` (one gather)."""
        sources = node["sources"]
        if len(sources) == 1 and (node["rows"] == np.arange(self.num_networks)).all():
            return nodes[sources[0]]
        stacked = nodes[sources[0]] if len(sources) == 1 else tf.concat([nodes[j] for j in sources], axis=0)
        return tf.gather(stacked, tf.constant(node["rows"]))

    def transition(self, x_proj: tf.Tensor, states: Sequence[tf.Tensor], prepared: Sequence[tf.Tensor],
                   h_mask: tf.Tensor | None = None) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """One step of eq. 4 from the projected input; returns ``(h_t, [h_t])``."""
        w_rec, mats, weights = prepared[0], prepared[1: 1 + self.steps], prepared[1 + self.steps:]
        masked = (lambda s: s * h_mask) if h_mask is not None else (lambda s: s)
        h_prev = states[0]
        recur = self._by_network(tf.linalg.matmul(masked(h_prev), w_rec))
        if self.first_node == "wenet":
            c0, h0 = tf.sigmoid(self._by_network(x_proj)), tf.tanh(recur)
        else:
            c0, h0 = tf.split(self._by_network(x_proj) + recur, 2, axis=-1)
            c0, h0 = tf.sigmoid(c0), self._activate(h0, self.first_activation_ids)
        nodes = [normalize(h_prev[None] + c0 * (h0 - h_prev[None]), self.norm, batch_axis=1)]
        combined = None
        for i, node in enumerate(self._layout, start=1):
            s_prev = self._read(nodes, node)                                  # rows in node i's order
            ch = batched_matmul(masked(s_prev), mats[i - 1])                  # [M, batch, 2*units]
            c, h = tf.split(ch, 2, axis=-1)       # split, not slices: its gradient is one concat
            c = tf.sigmoid(c)
            if len(node["groups"]) == 1:
                h = activation_fn(node["groups"][0][0])(h)
            else:
                pieces = tf.split(h, [b - a for _, a, b in node["groups"]], axis=0)
                h = tf.concat([activation_fn(act)(v) for (act, _, _), v in zip(node["groups"], pieces)], axis=0)
            nodes.append(normalize(s_prev + c * (h - s_prev), self.norm, batch_axis=1))
            # eq. 4 node by node: sum_k p_k mean_{i in concat_k} s_i^(k) = sum_i sum_rows q_i * s_i
            term = tf.tensordot(weights[i - 1], nodes[i], axes=1)
            combined = term if combined is None else combined + term
        return combined, [combined]

    def get_initial_state(self, batch_size=None) -> list[tf.Tensor]:
        """Zeros, or ``init_noise * N(0, 1)`` (the same draw on every call) if ``init_noise > 0``."""
        if not self.init_noise:
            return super().get_initial_state(batch_size)
        key = tf.constant([0 if self.state_seed is None else self.state_seed, 7], tf.int32)
        noise = tf.random.stateless_normal((batch_size, self.units), key, dtype=self.compute_dtype)
        return [self.init_noise * noise]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "genotypes": [g.to_dict() for g in self.genotypes], "norm": self.norm,
                "init_noise": self.init_noise, "state_seed": self.state_seed}
