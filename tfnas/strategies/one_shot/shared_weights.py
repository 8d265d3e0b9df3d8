"""ENAS' weight sharing (Pham et al., ICML 2018, sections 2.1 and 3.1): what ENAS, NAO-WS and RSWS have in common.

A supernet (`tfnas.lm.supernet`) around a `SharedCell` holds one set of shared weights ``omega`` for every
cell of the DAG space (`SharedCell`: one matrix per (node, predecessor) pair for ENAS and NAO-WS, one per node
for RSWS: `build_shared_weights`' ``sharing``).
Every training batch runs one cell, chosen by the method
(`SharedWeightsSearch.training_arch`: a controller sample for ENAS, a pool
cell for NAO-WS, a uniform draw for RSWS), and takes a clipped SGD step on ``omega`` (AWD
regularisers optional) with ENAS' learning-rate decay (``lr_decay`` 1: none); a method that learns a
distribution over cells names the setting of its interval (``interval_setting``), and every that many steps its
`architecture_phase` moves the distribution, scoring cells by their validation loss with the
shared weights (`architecture_loss`, from zero states, on windows of the
validation data taken from a running cursor, `reward_windows`); a method without one (RSWS, ``interval_setting``
None) only trains the shared weights. The cell of
the search (`derive`) is the best of the method's `derive_candidates` by its `candidate_loss` (by default the
`architecture_loss` on the first ``derive_batches`` validation windows).

Some cells of the space (identity activations along long paths, in node 0
too) make the hidden state grow without bound, and one such cell can blow
up the shared weights. A training loss above ``max_loss`` (a safeguard, not
in the paper) is handled as a non-finite loss (`divergence`): the last
checkpoint is restored and the learning rate halved once more
(`OneShotSearch`'s recovery), and the steps from there on draw other cells
(`training_seed`). The search folder's ``model.json`` (the supernet's
config) and its checkpoints are what
`tfnas.evaluation.WeightSharingEvaluator.from_search` reads to score other
cells with the shared weights.
"""
from __future__ import annotations

import abc
import math
from dataclasses import field
from typing import Any, Callable, Iterable

import numpy as np
import tensorflow as tf

from tfnas.cells.search.shared_cell import SharedCell
from tfnas.config import ModelConfig
from tfnas.genotypes.dag import Genotype
from tfnas.lm.objective import clipped_sgd_update, cross_entropy, regularized_loss
from tfnas.lm.model import cell_arguments, supernet
from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Bound, SettingsError, setting, settings
from tfnas.spaces.dag import DagSpace
from tfnas.strategies.base import STEPS
from tfnas.strategies.one_shot.loop import Batch, OneShotConfig, OneShotSearch


def enas_model() -> ModelConfig:
    """ENAS' PTB search model (section 3.1): 1000 units, shared weights in U(-0.05, 0.05); see
    `SharedWeightsConfig`."""
    return ModelConfig(emsize=1000, nhid=1000, dropout=0.4, dropouth=0.25, dropoutx=0.25, dropouti=0.2,
                       dropoute=0.1, cell_init_range=0.05, recompute=True)


@settings
class SharedWeightsConfig(OneShotConfig):
    """ENAS' training of the shared weights (Pham et al., ICML 2018, section 3.1, PTB).

    12 nodes over tanh, relu, sigmoid, identity with the output the mean of
    the loose ends; shared weights by SGD (lr 20, clip 0.25), batch 64, BPTT
    35, 150 epochs. Not pinned by the paper (tfnas choices): the hidden size
    during search (1000), weight decay 1e-7, the dropouts, and
    ``max_loss``. As in the paper: a fixed BPTT length of 35
    (``full_bptt_prob`` 1, no jitter), no slowness term, and the learning
    rate of the shared weights multiplied by 0.96 every epoch after epoch 15
    (`SharedWeightsSearch.epoch_lr`).
    """

    model: ModelConfig = field(default_factory=enas_model)
    batch_size: int = 64
    full_bptt_prob: float = 1.0
    wdecay: float = 1e-7
    beta: float = 0.0
    epochs: int = 150
    seed: int = 0
    space: str = setting("dag", help="the search space (ENAS shares weights over the DAG space only)")
    steps: int = setting(12, help="nodes of the cell after node 0", check=STEPS)
    first_node: str = setting("enas", help="node 0: enas (its activation is searched) or darts")
    output: str = setting("loose_ends", help="output rule: loose_ends (ENAS) or mean")
    derive_batches: int = setting(1, help="validation minibatches that score each candidate for the final cell",
                                  check=AT_LEAST_ONE)
    lr_decay: float = setting(0.96, help="factor of the shared weights' learning rate per epoch after "
                                         "lr_decay_start (ENAS section 3.1: 0.96; 1: none)",
                              check=Bound(0, 1, open_low=True))
    lr_decay_start: int = setting(15, help="the last epoch at the initial learning rate (ENAS section 3.1: 15)",
                                  check=NON_NEGATIVE)
    max_loss: float | None = setting(100.0, help="a training loss above this is handled as a non-finite one "
                                                 "(a tfnas safeguard), or null", check=POSITIVE)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.space != "dag":
            raise SettingsError(f"ENAS shares weights over the DAG space; space must be 'dag', "
                                f"received: {self.space!r}")


class SharedWeightsSearch(OneShotSearch):
    """The shared weights and their training; a method adds `training_arch`, `derive_candidates` and, if it learns
    a distribution over cells, `architecture_phase` and the setting of its phases' interval (see the module
    docstring)."""

    #: The setting that holds the training steps between two `architecture_phase` calls; None: the method has no
    #: architecture phase (a class that names one must define `architecture_phase`).
    interval_setting: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.interval_setting is not None and cls.architecture_phase is SharedWeightsSearch.architecture_phase:
            raise TypeError(f"{cls.__name__} names interval_setting {cls.interval_setting!r} but defines no "
                            "architecture_phase")

    def build_shared_weights(self, vocab_size: int, sharing: str = "edge") -> None:
        """The space, the shared-weights model (a `SharedCell` supernet with ``sharing``: ``"edge"``, ENAS' one
        matrix per (node, predecessor) pair, or ``"node"``, DARTS' one per node) and its compiled training and
        validation steps."""
        c, m = self.config, self.config.model
        self.space = DagSpace(c.steps, first_node=c.first_node, output=c.output)
        cell = SharedCell(c.steps, first_node=c.first_node, output=c.output, sharing=sharing, name="shared_cell",
                          **cell_arguments(m, c.seed))
        self.model = supernet(vocab_size, cell, m, c.seed, attention=m.attention)
        self.reward_position = 0
        self.phase_logs: dict[str, float] = {}
        self._derived: tuple[Any, Genotype, float] | None = None     # (derive_key, cell, loss)
        model = self.model
        n_states = len(model.initial_state(1))
        weights = model.trainable_variables

        def train_step(arch, inputs, targets, states, lr):
            model.cell.set_genotype(arch)
            with tf.GradientTape() as tape:
                out = model.forward(inputs, states, training=True)
                loss, raw = regularized_loss(out, targets, c.alpha, c.beta)
            norm = clipped_sgd_update(weights, tape.gradient(loss, weights), lr, c.clip, c.wdecay)
            return raw, out.states, norm

        spec = [tf.TensorSpec((1 + 2 * c.steps,), tf.int32), tf.TensorSpec((c.batch_size, None), tf.int32),
                tf.TensorSpec((c.batch_size, None), tf.int32),
                [tf.TensorSpec((c.batch_size, m.nhid), tf.float32)] * n_states, tf.TensorSpec((), tf.float32)]
        self._train = tf.function(train_step, input_signature=spec, jit_compile=c.jit_compile or None,
                                  autograph=False)

        def valid_loss(arch, inputs, targets):
            model.cell.set_genotype(arch)
            out = model.forward(inputs, model.initial_state(tf.shape(inputs)[0]), training=False)
            return cross_entropy(out.logits, targets)

        self._valid_loss = tf.function(valid_loss, reduce_retracing=True, autograph=False)

    # -------------------------------------------------------------- scoring
    def reward_windows(self, count: int, start: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """``count`` validation windows from the running cursor (or from ``start``)."""
        data, bptt = self.search_data, self.config.bptt
        span = data.shape[1] - 1
        position = self.reward_position if start is None else start
        windows = []
        for _ in range(count):
            if position >= span:
                position = 0
            length = min(bptt, span - position)
            windows.append((data[:, position:position + length], data[:, position + 1:position + 1 + length]))
            position += length
        if start is None:
            self.reward_position = position
        return windows

    def encoded(self, genotype: Genotype) -> tf.Tensor:
        """``genotype`` as the `SharedCell` input of the compiled steps."""
        return tf.constant(self.model.cell.encode(genotype))

    def architecture_loss(self, genotype: Genotype, windows) -> float:
        """Mean validation cross-entropy of one cell with the shared weights."""
        arch = self.encoded(genotype)
        losses = [float(self._valid_loss(arch, tf.constant(x, tf.int32), tf.constant(y, tf.int32)))
                  for x, y in windows]
        return float(np.mean(losses))

    def candidate_loss(self) -> Callable[[Genotype], float]:
        """How `derive` scores a candidate: its `architecture_loss` on the first ``derive_batches`` validation
        windows."""
        windows = self.reward_windows(self.config.derive_batches, start=0)
        return lambda genotype: self.architecture_loss(genotype, windows)

    def derive_key(self) -> Any:
        """What the cell `derive` chose depends on besides the weights: the step."""
        return self.step

    def derive(self) -> Genotype:
        """The `derive_candidates` cell of lowest `candidate_loss` (the first one of equals), computed once per
        `derive_key`."""
        key = self.derive_key()
        if self._derived is not None and self._derived[0] == key:
            return self._derived[1]
        loss_of = self.candidate_loss()
        best, best_loss = None, math.inf
        for genotype in self.derive_candidates():
            loss = loss_of(genotype)
            if best is None or loss < best_loss:
                best, best_loss = genotype, loss
        self._derived = (key, best, best_loss)
        return best

    # --------------------------------------------------------- one-shot API
    def epoch_lr(self) -> float:
        """ENAS section 3.1: ``lr * lr_decay ** max(0, epoch - lr_decay_start)`` (epochs counted from 1)."""
        c = self.config
        return c.lr * c.lr_decay ** max(0, self.epoch - c.lr_decay_start)

    def training_seed(self) -> list[int]:
        """The seed (an int32 pair) of this step's training cell: ``(seed + 1 + recoveries * 2**20, step)``, so
        that a step retried after a blow-up draws another cell (the blow-up is the cell's: a smaller learning
        rate rarely helps it)."""
        return [self.config.seed + 1 + self.recoveries * 2**20, self.step]

    @abc.abstractmethod
    def training_arch(self) -> tf.Tensor:
        """The encoded cell the shared weights train on at this step."""

    def architecture_phase(self) -> dict[str, float]:
        """What moves the method's distribution over cells, every ``interval_setting`` steps; returns its logs
        (``phase_logs``, reported with every step until the next phase; the method's `extra_state` saves them).

        A method that names an ``interval_setting`` defines it (`__init_subclass__` refuses one that does not);
        a method without a distribution over cells (RSWS, ``interval_setting = None``) has no phase, and this one,
        never called, moves nothing.
        """
        return {}

    @abc.abstractmethod
    def derive_candidates(self) -> Iterable[Genotype]:
        """The cells the final cell is chosen among (`derive`), in order of preference among equals."""

    def search_step(self, train: Batch, lr: float, update_arch: bool):
        inputs, targets, states = train
        loss, new_states, norm = self._train(self.training_arch(), inputs, targets, list(states),
                                             tf.constant(lr, tf.float32))
        logs = {"loss": float(loss), "grad_norm": float(norm)}
        if self.divergence(logs["loss"]) is not None:     # the loop restores the last checkpoint
            return logs, list(states)
        if (self.interval_setting is not None and update_arch
                and (self.step + 1) % getattr(self.config, self.interval_setting) == 0):
            self.phase_logs = self.architecture_phase()
        self._derived = None
        return {**logs, **self.phase_logs}, list(new_states)

    def divergence(self, loss: float) -> str | None:
        """Non-finite, or above ``max_loss``: a cell blew the shared weights up (e.g. identity activations
        along a long path)."""
        limit = self.config.max_loss
        if limit is not None and math.isfinite(loss) and loss > limit:
            return f"above max_loss {limit:g}"
        return super().divergence(loss)

    def evaluate(self, data: np.ndarray) -> float:
        """Validation loss of the derived cell with the shared weights."""
        self.model.cell.set_genotype(self.derive())
        return super().evaluate(data)

    def epoch_logs(self) -> dict[str, Any]:
        logs = dict(self.phase_logs)
        if self._derived is not None:
            logs["derived_loss"] = self._derived[2]
        return logs
