"""BayesNAS for recurrent cells (M. Li, MSc thesis, TU Delft 2019, chapters 3-5; Algorithm 2).

A supernet (`tfnas.lm.supernet` around a `tfnas.cells.search.bayes_cell.BayesCell`: one
scalar ``w`` per edge and op, one dummy scalar ``d`` per edge) is trained
on the training data alone (single level, as WeNet). Each step is one
clipped SGD step of the weights ``W`` on ``l_pred`` with AR/TAR and weight
decay ``lambda ||W||^2``, and one step of the scalars on Eq. 3.15::

    L = l_pred + lambda ||W||^2 + lambda_w sum |omega * w| + lambda_d sum |omega_d * d|

(an SGD with momentum of its own, ``arch_lr``, outside the weights' clip;
the L1 subgradient from autodiff). At the end of every epoch
(`on_epoch_end`, ``T_max = epochs``; the thesis trains one epoch) the
scalars are frozen, the diagonal Hessian ``H`` of every scalar is computed
(`tfnas.strategies.one_shot.bayes_hessian`, chapter 4) on
``hessian_batches`` training windows, divided by ``lambda_w``
(``hessian_scale: inv_lambda``, the BayesNAS code's ``hessian / lambda``),
and every scalar's prior is updated from its own ``gamma(t-1)``
(Eqs. 3.16-3.18), then every gamma from the switches (Eq. 3.19 with
dummies; `tfnas.strategies.one_shot.bayes_update`). The genotype is the
cell left after pruning every op edge with ``gamma <= prune_threshold``
(0.0585, §5.3) and removing the nodes that lost every incoming edge
(`derive_pruned`); it may have fewer nodes than the search.

gamma, omega, s, C and H are variables of the search (tables ``[edges,
ops + 1]``, the dummies in the last column) and checkpointed with it, so a
killed search resumes exactly. Each epoch logs the gamma table as a
heatmap (``gamma``, divided by its largest value), the surviving op edges
and nodes, every node's ``||w||`` over its incoming op scalars (a
non-affine batch norm after a node makes the loss invariant to rescaling
them, so the L1 term can shrink them freely: thesis §5.4, the spec's
note) and the Hessian's cost in seconds. The result's provenance holds the
gamma table.
"""
from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfnas.callbacks import LabelledMatrix
from tfnas.cells.search.bayes_cell import BayesCell
from tfnas.cells.search.norm import NORMS, edge_names, edges
from tfnas.data import BPTTIterator
from tfnas.genotypes.dag import ACTIVATIONS, Genotype
from tfnas.lm.objective import clipped_sgd_update, regularized_loss
from tfnas.lm.model import cell_arguments, supernet
from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, RATE, SettingsError, setting, settings
from tfnas.strategies.base import STEPS
from tfnas.strategies.one_shot.bayes_hessian import HESSIANS, scalar_hessian
from tfnas.strategies.one_shot.bayes_update import (PRUNE_THRESHOLD, alive_nodes, dependency_gamma, derive_pruned,
                                                    laplace_update)
from tfnas.strategies.one_shot.loop import Batch, OneShotConfig, OneShotSearch

#: How the Hessian is scaled before the Laplace step: ``inv_lambda`` (divided by the L1 weight) or ``none``.
HESSIAN_SCALES: tuple[str, ...] = ("inv_lambda", "none")
#: The Bayesian state of every scalar, saved with the search.
STATE_TABLES: tuple[str, ...] = ("gamma", "omega", "s", "C", "H")


@settings
class BayesNasConfig(OneShotConfig):
    """BayesNAS search settings; the defaults are the thesis' search setting (§5.2-5.3) with the spec's choices.

    From the thesis: 12 intermediate nodes over tanh, relu, sigmoid and
    identity (§5.2, no ``none``), a non-affine batch norm after every node
    (§5.2), emsize = nhid = 300 and dropouts 0.2 (embeddings, ``dropouti``)
    / 0.75 (cell input) / 0.25 (hidden nodes) (§5.2), one epoch (§3.3,
    "training the overparameterized network for only one epoch"),
    ``lambda_w`` = 0.17 (the best of {0.1, 0.13, 0.15, 0.17, 0.2}, Table
    5.2) and the pruning threshold 0.0585 (§5.3). The thesis gives
    everything else "as AWD-LSTM"; tfnas takes DARTS' search recipe for the
    weights (`OneShotConfig`: batch 256, BPTT 35, SGD lr 20, clip 0.25,
    weight decay 5e-7, TAR 1e-3) and, as tfnas choices: the scalars' SGD
    (lr 0.1, momentum 0.9, the BayesNAS code's switch optimiser), the
    dummies' L1 weight equal to ``lambda_w``, the ``recursive`` Hessian on
    10 training windows divided by ``lambda_w``.
    """

    epochs: int = setting(1, help="epochs; one prior update at the end of each (thesis §3.3: one epoch)",
                          resumable=True)
    steps: int = setting(12, help="nodes of the cell after node 0 (thesis §5.2: 12; the published 23M / 20M "
                                  "cells have 8 / 6 nodes)", check=STEPS)
    ops: tuple[str, ...] = setting(ACTIVATIONS, help="candidate ops of every edge, no none (thesis §5.2)")
    norm: str = setting("batch", help="search-mode normalisation of every node: batch, layer or none "
                                      "(thesis §5.2: non-affine batch norm)")
    lambda_w: float = setting(0.17, help="L1 weight of the op scalars, Eq. 3.15 (thesis Table 5.2: 0.17; "
                                         "searched over 0.1, 0.13, 0.15, 0.17, 0.2)", check=POSITIVE)
    lambda_dummy: float | None = setting(None, help="L1 weight of the dummy scalars (null: lambda_w; tfnas)",
                                         check=POSITIVE)
    arch_lr: float = setting(0.1, help="SGD learning rate of the scalars (tfnas; the BayesNAS code's switch "
                                       "optimiser)", check=POSITIVE)
    arch_momentum: float = setting(0.9, help="SGD momentum of the scalars (tfnas)", check=RATE)
    hessian: str = setting("recursive", help="diagonal Hessian estimator: recursive (thesis ch. 4) or exact_ggn "
                                             "(one JVP per scalar: small cells only)")
    hessian_batches: int = setting(10, help="training windows of bptt tokens the Hessian is averaged over (tfnas)",
                                   check=AT_LEAST_ONE)
    hessian_scale: str = setting("inv_lambda", help="inv_lambda: H / lambda_w (the BayesNAS code); none: the "
                                                    "literal Eq. 3.16")
    prune_threshold: float = setting(PRUNE_THRESHOLD, help="an op edge is pruned when gamma <= this (thesis §5.3: "
                                                           "0.0585 = 1/(2 pi e) rounded)", check=NON_NEGATIVE)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ops = tuple(self.ops)
        if "none" in self.ops or not self.ops:
            raise SettingsError(f"bayesnas config: `ops` must be non-empty and without 'none'; received {self.ops!r}")
        if self.norm not in NORMS:
            raise SettingsError(f"bayesnas config: `norm` must be one of {list(NORMS)}; received {self.norm!r}")
        if self.hessian not in HESSIANS:
            raise SettingsError(f"bayesnas config: `hessian` must be one of {list(HESSIANS)}; "
                                f"received {self.hessian!r}")
        if self.hessian_scale not in HESSIAN_SCALES:
            raise SettingsError(f"bayesnas config: `hessian_scale` must be one of {list(HESSIAN_SCALES)}; "
                                f"received {self.hessian_scale!r}")

    @property
    def dummy_weight(self) -> float:
        """The L1 weight of the dummies: ``lambda_dummy``, or ``lambda_w`` when null."""
        return self.lambda_w if self.lambda_dummy is None else self.lambda_dummy


class BayesNasSearch(OneShotSearch):
    """BayesNAS (Algorithm 2); see the module docstring.

    Attributes:
        tables: after `build`, the non-trainable float64 variables ``gamma``,
            ``omega``, ``s``, ``C`` and ``H``, each ``[edges, ops + 1]``.
        hessian_seconds: the wall time of the latest Hessian pass.
    """

    name = "bayesnas"

    def build(self, vocab_size: int) -> None:
        c = self.config
        m = c.model
        cell = BayesCell(c.steps, ops=c.ops, norm=c.norm, name="bayes_cell", **cell_arguments(m, c.seed))
        self.model = supernet(vocab_size, cell, m, c.seed)
        model = self.model
        shape = (model.cell.num_edges, len(c.ops) + 1)
        # gamma(0) = omega(0) = 1 (Algorithm 2); s = 1 (the switches start ON, §3.2); C and H before any update.
        start = {"gamma": 1.0, "omega": 1.0, "s": 1.0, "C": 0.0, "H": 0.0}
        self.tables = {k: tf.Variable(np.full(shape, start[k]), trainable=False, name=f"bayes_{k}", dtype=tf.float64)
                       for k in STATE_TABLES}
        self.hessian_seconds = 0.0
        self.arch_optimizer = keras.optimizers.SGD(c.arch_lr, momentum=c.arch_momentum)
        self.arch_optimizer.build(model.arch_variables)
        spec = [(tf.TensorSpec((c.batch_size, None), tf.int32), tf.TensorSpec((c.batch_size, None), tf.int32),
                 [tf.TensorSpec((c.batch_size, m.nhid), tf.float32)]),
                tf.TensorSpec((), tf.float32)]
        self.compiled_step = tf.function(self._train_step, input_signature=spec,
                                         jit_compile=c.jit_compile or None)

    def state_variables(self) -> list[tf.Variable]:
        return list(self.model.variables) + list(self.arch_optimizer.variables) + list(self.tables.values())

    def penalty(self) -> tf.Tensor:
        """The L1 term of Eq. 3.15: ``lambda_w sum omega |w| + lambda_d sum omega_d |d|`` (the latest omega)."""
        cell, c = self.model.cell, self.config
        omega = tf.cast(self.tables["omega"], cell.bayes_w.dtype)
        return (c.lambda_w * tf.reduce_sum(omega[:, :-1] * tf.abs(cell.bayes_w))
                + c.dummy_weight * tf.reduce_sum(omega[:, -1] * tf.abs(cell.bayes_d)))

    def _train_step(self, train: Batch, lr):
        c, model = self.config, self.model
        inputs, targets, states = train
        weights, scalars = model.weight_variables, model.arch_variables
        with tf.GradientTape() as tape:
            out = model.forward(inputs, states, training=True)
            loss, raw = regularized_loss(out, targets, c.alpha, c.beta)
            penalty = self.penalty()
            total = loss + penalty
        grads = tape.gradient(total, weights + scalars)
        norm = clipped_sgd_update(weights, grads[:len(weights)], lr, c.clip, c.wdecay)
        self.arch_optimizer.apply(grads[len(weights):], scalars)
        return {"loss": raw, "penalty": penalty, "grad_norm": norm}, out.states

    def search_step(self, train: Batch, lr: float, update_arch: bool):
        del update_arch  # single level: the scalars move with the weights from the first step
        logs, states = self.compiled_step(train, tf.constant(lr, tf.float32))
        return {k: float(v) for k, v in logs.items()}, list(states)

    # ------------------------------------------------------ Bayesian update
    def hessian_windows(self) -> list[tf.Tensor]:
        """The first ``hessian_batches`` training windows of ``bptt`` tokens (fixed, so a resume recomputes them)."""
        c = self.config
        windows = []
        for inputs, _, _, _ in BPTTIterator(self.train_data, c.bptt, variable=False):
            if len(windows) == c.hessian_batches:
                break
            windows.append(tf.constant(inputs, tf.int32))
        return windows

    def scalar_hessian(self) -> np.ndarray:
        """The scaled diagonal Hessian ``[edges, ops + 1]`` of every scalar (the ``hessian`` estimator)."""
        c = self.config
        h = scalar_hessian(self.model, self.hessian_windows(), c.hessian)
        if c.hessian_scale == "inv_lambda":
            h[:, :-1] /= c.lambda_w
            h[:, -1] /= c.dummy_weight
        return h

    def on_epoch_end(self) -> None:
        """Steps 2-3 of Algorithm 2: the Hessian with everything frozen, Eqs. 3.16-3.18, then Eq. 3.19."""
        start = time.perf_counter()
        h = self.scalar_hessian()
        self.hessian_seconds = time.perf_counter() - start
        cell = self.model.cell
        scalars = np.concatenate([cell.bayes_w.numpy(), cell.bayes_d.numpy()[:, None]], axis=1)
        c_new, omega, s = laplace_update(scalars, self.tables["gamma"].numpy(), h)
        for key, value in (("H", h), ("C", c_new), ("omega", omega), ("s", s),
                           ("gamma", dependency_gamma(s, cell.steps))):
            self.tables[key].assign(value)

    # ----------------------------------------------------------- results
    def gamma(self) -> np.ndarray:
        """The prior variances ``[edges, ops + 1]`` (the dummies' in the last column)."""
        return self.tables["gamma"].numpy()

    def derive(self) -> Genotype:
        return derive_pruned(self.gamma(), self.config.ops, self.config.prune_threshold)

    def gamma_record(self) -> dict[str, Any]:
        """The gamma table as JSON: its columns, its rows ``[node, predecessor]`` and the values."""
        return {"columns": [*self.config.ops, "dummy"], "edges": [list(e) for e in edges(self.config.steps)],
                "gamma": np.round(self.gamma(), 8).tolist()}

    def architecture_snapshot(self) -> dict[str, Any]:
        alive = alive_nodes(self.gamma(), self.config.steps, self.config.prune_threshold)
        return {**self.gamma_record(), "alive_nodes": alive}

    def epoch_logs(self) -> dict[str, Any]:
        c, cell = self.config, self.model.cell
        gamma = self.gamma()
        alive = alive_nodes(gamma, c.steps, c.prune_threshold)
        surviving = sum(int((gamma[j * (j - 1) // 2 + i, :-1] > c.prune_threshold).sum())
                        for j in alive[1:] for i in alive if i < j)
        logs: dict[str, Any] = {"gamma": LabelledMatrix(gamma / max(float(gamma.max()), 1e-300),  # a heatmap
                                                        edge_names(c.steps), (*c.ops, "dummy")),
                                "surviving_edges": surviving, "surviving_nodes": len(alive) - 1,
                                "hessian_seconds": self.hessian_seconds}
        w = cell.bayes_w.numpy()
        for j in range(1, c.steps + 1):
            logs[f"w_norm_node{j}"] = float(np.linalg.norm(w[j * (j - 1) // 2: j * (j + 1) // 2]))
        return logs

    def provenance(self) -> dict[str, Any]:
        """The gamma table (``provenance.gamma``), from which the pruned cell was derived."""
        return {"gamma": self.gamma_record()}
