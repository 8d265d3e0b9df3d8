"""`CellSearchLM`: the base of the search-time language models (supernets)."""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfnas.cells.rnn import CellRNN
from tfnas.lm.model import LanguageModel


class CellSearchLM(LanguageModel):
    """A `LanguageModel` whose recurrent cell is a search cell built by `make_cell`.

    Subclasses (`SupernetLM`, `SharedLM`, `WeightedLM`) implement
    ``make_cell()``; this class wires it into the fused loop, keeps the
    genotype out of the model (a search model has none), and separates the
    architecture parameters (``arch_variables`` of the cell and of the
    attention head, if any) from the weights.
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
        return list(getattr(self.cell, "arch_variables", [])) + head

    @property
    def weight_variables(self) -> list[tf.Variable]:
        """Every trainable variable that is not an architecture parameter."""
        arch = {id(v) for v in self.arch_variables}
        return [v for v in self.trainable_variables if id(v) not in arch]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("genotype")
        return config
