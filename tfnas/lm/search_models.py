"""The search-time language models: `SearchLM` and one subclass per search cell.

Each pairs a search cell of `tfnas.cells.search` with the language model
of `tfnas.lm.model`: `MixedLM` (`MixedCell`, and a `MixedAttention` head:
DARTS, NASABN), `SharedLM` (`SharedCell`: ENAS), `WeightedLM`
(`WeightedCells`: WeNet) and `BayesLM` (`BayesCell`: BayesNAS). They
hand on the cell's `arch_variables`, `weight_variables` and `derive` (the
`SearchCell` protocol).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras
import tensorflow as tf

from tfnas.cells.rnn import CellRNN
from tfnas.cells.search.bayes_cell import BayesCell
from tfnas.cells.search.mixed_attention import MixedAttention
from tfnas.cells.search.mixed_cell import DARTS_OPS, MixedCell
from tfnas.cells.search.shared_cell import ENAS_INIT_RANGE, SharedCell
from tfnas.cells.search.weighted_cells import WeightedCells
from tfnas.cells.attention import ATTENTION_HEADS
from tfnas.genotypes.dag import ACTIVATIONS, Genotype
from tfnas.lm.model import LanguageModel


class SearchLM(LanguageModel):
    """A `LanguageModel` whose recurrent cell is a search cell built by `make_cell`.

    Subclasses (`MixedLM`, `SharedLM`, `WeightedLM`) implement
    ``make_cell()``; this class wires it into the fused loop, keeps the
    genotype out of the model (a search model has none), separates the
    architecture parameters (``arch_variables`` of the cell and of the
    attention head, if any) from the weights, and derives the cell's
    genotype (a `SearchCell` exposes all three).
    """

    def __init__(self, vocab_size: int, **kwargs):
        kwargs.pop("genotype", None)
        super().__init__(vocab_size, None, **kwargs)

    @property
    def is_lstm(self) -> bool:
        return False

    @property
    def cell_seed(self) -> int | None:
        return None if self.seed is None else self.seed + 2

    def make_cell(self) -> keras.layers.Layer:
        """The search cell (called once, while the model is constructed)."""
        raise TypeError(f"{type(self).__name__} must define make_cell()")

    def _make_rnn(self) -> keras.layers.Layer:
        return CellRNN(self.make_cell(), recompute=self.hparams.recompute, name="rnn")

    @property
    def cell(self) -> keras.layers.Layer:
        return self.rnn.cell

    @property
    def arch_variables(self) -> list[tf.Variable]:
        """The architecture parameters of the cell, then of the attention head (if it has any)."""
        head = list(getattr(self.attention, "arch_variables", [])) if self.attention is not None else []
        return list(self.cell.arch_variables) + head

    @property
    def weight_variables(self) -> list[tf.Variable]:
        """Every trainable variable that is not an architecture parameter."""
        arch = {id(v) for v in self.arch_variables}
        return [v for v in self.trainable_variables if id(v) not in arch]

    def derive(self) -> Genotype:
        """The genotype the cell currently points at (its `SearchCell.derive`)."""
        return self.cell.derive()

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("genotype")
        return config


@keras.saving.register_keras_serializable(package="tfnas")
class MixedLM(SearchLM):
    """`LanguageModel` whose RNN is a `MixedCell` and, optionally, whose head is a `MixedAttention`.

    Architecture parameters (the cell's ``alpha`` and the attention's
    ``alpha``) are kept apart from the weights: `arch_variables` and
    `weight_variables` are what a bilevel optimiser updates on validation
    and training data respectively. `derive` returns the discrete genotype
    (DARTS derivation; NASABN eq. 4 for the attention).

    Args:
        vocab_size: number of words.
        steps: nodes of the searched cell after node 0.
        ops: candidate ops of every edge.
        norm: search-mode normalisation of the nodes (``"batch"``, ``"layer"``, ``"none"``).
        search_attention: whether a `MixedAttention` head is searched too.
        attention_candidates: its candidates.
        **kwargs: `LanguageModel` settings (emsize, nhid, dropouts, seed...).
    """

    def __init__(self, vocab_size: int, steps: int = 8, ops: Sequence[str] = DARTS_OPS, norm: str = "batch",
                 search_attention: bool = False, attention_candidates: Sequence[str] = ATTENTION_HEADS,
                 **kwargs):
        self.steps = steps
        self.ops = tuple(ops)
        self.norm = norm
        self.search_attention = bool(search_attention)
        self.attention_candidates = tuple(attention_candidates)
        kwargs.pop("attention", None)
        super().__init__(vocab_size, **kwargs)

    def make_cell(self) -> MixedCell:
        h = self.hparams
        return MixedCell(self.steps, h.nhid, ops=self.ops, norm=self.norm, dropout_x=h.dropoutx,
                         dropout_h=h.dropouth, init_range=h.cell_init_range, seed=self.cell_seed,
                         name="mixed_cell")

    def _make_attention(self) -> keras.layers.Layer | None:
        if not self.search_attention:
            return None
        return MixedAttention(self.hparams.nhid, candidates=self.attention_candidates,
                              seed=None if self.seed is None else self.seed + 4, name="mixed_attention")

    def derive(self) -> Genotype:
        """The discrete genotype of the current architecture parameters."""
        attention = self.attention.derive() if self.attention is not None else None
        return self.cell.derive(attention=attention)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("attention")
        return {**config, "steps": self.steps, "ops": list(self.ops), "norm": self.norm,
                "search_attention": self.search_attention,
                "attention_candidates": list(self.attention_candidates)}


@keras.saving.register_keras_serializable(package="tfnas")
class SharedLM(SearchLM):
    """`LanguageModel` whose RNN runs any DAG genotype with ENAS' shared weights.

    `set_genotype` chooses the architecture of the next forward passes
    without retracing (it assigns the cell's ``arch`` variable); `derive`
    returns it.

    Args:
        vocab_size: number of words.
        steps: nodes of the cell after node 0.
        first_node: ``"enas"`` or ``"darts"``.
        output: ``"loose_ends"`` or ``"mean"``.
        **kwargs: `LanguageModel` settings (emsize, nhid, dropouts, seed...);
            ``cell_init_range`` defaults to ENAS' 0.05.
    """

    def __init__(self, vocab_size: int, steps: int = 12, first_node: str = "enas", output: str = "loose_ends",
                 **kwargs):
        self.steps = steps
        self.first_node = first_node
        self.output_rule = output
        kwargs.setdefault("cell_init_range", ENAS_INIT_RANGE)
        super().__init__(vocab_size, **kwargs)

    def make_cell(self) -> SharedCell:
        h = self.hparams
        return SharedCell(self.steps, h.nhid, first_node=self.first_node, output=self.output_rule,
                          dropout_x=h.dropoutx, dropout_h=h.dropouth, init_range=h.cell_init_range,
                          seed=self.cell_seed, name="shared_cell")

    def set_genotype(self, genotype: Genotype) -> None:
        self.cell.set_genotype(genotype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        return {**config, "steps": self.steps, "first_node": self.first_node, "output": self.output_rule}


@keras.saving.register_keras_serializable(package="tfnas")
class WeightedLM(SearchLM):
    """`LanguageModel` whose RNN is a `WeightedCells` over ``genotypes``.

    The embedding, the tied decoder and the regularisers are shared; each
    network has its own cell parameters, and the cell's output is
    ``h_t = sum_i softmax(w)_i N_i(x_t, h_{t-1})`` (WeNet eq. 4).
    `arch_variables` is ``[w]`` (``network_logits``) and `weight_variables`
    everything else; WeNet trains both together on the training data.

    Args:
        vocab_size: number of words.
        genotypes: the candidate networks (same steps and first node).
        norm: search-mode normalisation of every node (``"batch"``, ``"layer"``, ``"none"``).
        init_noise: standard deviation of the initial recurrent state (0: zeros, as
            `LanguageModel`). The state is a fixed draw (stateless, seeded by
            ``seed``), so every sequence start sees the same one. See
            `tfnas.strategies.one_shot.wenet` for why batch norm needs it
            with the ``first_node="wenet"`` option (WeNet §3.1 read
            literally).
        **kwargs: `LanguageModel` settings (emsize, nhid, dropouts, seed...).
    """

    def __init__(self, vocab_size: int, genotypes: Sequence[Genotype | Mapping[str, Any]] = (),
                 norm: str = "batch", init_noise: float = 0.0, **kwargs):
        if not init_noise >= 0:
            raise ValueError(f"Argument `init_noise` must be >= 0; received: init_noise={init_noise!r}")
        self.init_noise = float(init_noise)
        self.genotypes = tuple(Genotype.from_dict(g) if isinstance(g, Mapping) else g for g in genotypes)
        self.norm = norm
        kwargs.pop("attention", None)
        super().__init__(vocab_size, **kwargs)

    def make_cell(self) -> WeightedCells:
        h = self.hparams
        return WeightedCells(self.genotypes, h.nhid, norm=self.norm, dropout_x=h.dropoutx, dropout_h=h.dropouth,
                             init_range=h.cell_init_range, seed=self.cell_seed, name="weighted_cells")

    def initial_state(self, batch_size) -> list[tf.Tensor]:
        """Zeros, or ``init_noise * N(0, 1)`` (the same draw on every call) if ``init_noise > 0``."""
        if not self.init_noise:
            return super().initial_state(batch_size)
        seed = tf.constant([0 if self.seed is None else self.seed, 7], tf.int32)
        noise = tf.random.stateless_normal((batch_size, self.hparams.nhid), seed, dtype=self.compute_dtype)
        return [self.init_noise * noise]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("attention")
        return {**config, "genotypes": [g.to_dict() for g in self.genotypes], "norm": self.norm,
                "init_noise": self.init_noise}


@keras.saving.register_keras_serializable(package="tfnas")
class BayesLM(SearchLM):
    """`LanguageModel` whose RNN is a `BayesCell` (BayesNAS for recurrent cells, M. Li's thesis §3.1, §5.2).

    `arch_variables` are the cell's scalars ``[bayes_w, bayes_d]``, trained
    jointly with the weights on the training data (Eq. 3.15); the genotype
    is pruned from their prior variances by the strategy
    (`tfnas.strategies.one_shot.bayesnas`), so `derive` is the cell's refusal.

    Args:
        vocab_size: number of words.
        steps: nodes of the searched cell after node 0.
        ops: candidate ops of every edge (no ``none``).
        norm: search-mode normalisation of the nodes (``"batch"``, ``"layer"``, ``"none"``).
        **kwargs: `LanguageModel` settings (emsize, nhid, dropouts, seed...).
    """

    def __init__(self, vocab_size: int, steps: int = 12, ops: Sequence[str] = ACTIVATIONS, norm: str = "batch",
                 **kwargs):
        self.steps = steps
        self.ops = tuple(ops)
        self.norm = norm
        kwargs.pop("attention", None)
        super().__init__(vocab_size, **kwargs)

    def make_cell(self) -> BayesCell:
        h = self.hparams
        return BayesCell(self.steps, h.nhid, ops=self.ops, norm=self.norm, dropout_x=h.dropoutx,
                         dropout_h=h.dropouth, init_range=h.cell_init_range, seed=self.cell_seed, name="bayes_cell")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("attention")
        return {**config, "steps": self.steps, "ops": list(self.ops), "norm": self.norm}
