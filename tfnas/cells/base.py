"""`RecurrentCell`: what every tfnas cell shares (dropout masks, the Keras step, config).

Its math is `keras.ops` only, so the frozen cells run on any Keras backend (TensorFlow, JAX, PyTorch): on
TensorFlow the ops lower to the same TensorFlow ops as before. The search cells subclass it and stay TensorFlow.
"""
from __future__ import annotations

from typing import Any

import keras
from keras import ops
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from tfnas.cells.validation import check_rate, check_units

#: Half-width of the uniform initialisation of the DARTS cell (INITRANGE).
DARTS_INIT_RANGE = 0.04


class RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """Base class of the tfnas cells (one time step).

    A subclass creates its weights in ``build`` and implements the protocol
    of the fused loop `tfnas.cells.CellRNN`:

    * ``project_inputs(x)``: the input part of the step for any leading
      shape of ``x`` (the loop calls it once on the whole sequence);
    * ``prepare()``: tensors that do not change over time, computed once per
      sequence;
    * ``transition(x_proj_t, states, prepared, h_mask)``: one step, returning
      ``(output, new_states)``.

    This class supplies the variational dropout masks (Gal & Ghahramani):
    ``m_x`` on the input and ``m_h`` on the hidden state, drawn once per
    sequence (Keras' ``DropoutRNNCell``), the Keras RNN ``call`` built from the
    protocol, zero initial states, and the common configuration.

    Args:
        units: hidden size, a positive integer.
        dropout_x: rate of the mask on the input.
        dropout_h: rate of the mask on ``h`` (and on every node input of DAG cells).
        init_range: weights are drawn from ``U(-init_range, init_range)``.
        seed: seed of the dropout masks and of the initialisation.
    """

    def __init__(self, units: int, dropout_x: float = 0.0, dropout_h: float = 0.0,
                 init_range: float = DARTS_INIT_RANGE, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units = check_units("units", units)
        self.dropout = check_rate("dropout_x", dropout_x)
        self.recurrent_dropout = check_rate("dropout_h", dropout_h)
        if not isinstance(init_range, (int, float)) or not init_range > 0:
            raise ValueError(f"Argument `init_range` must be positive; received: init_range={init_range!r}")
        self.init_range = float(init_range)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.state_size = self.units
        self.output_size = self.units

    @property
    def dropout_x(self) -> float:
        return self.dropout

    @property
    def dropout_h(self) -> float:
        return self.recurrent_dropout

    def initializer(self, offset: int = 0) -> keras.initializers.Initializer:
        """``U(-init_range, init_range)``, seeded with ``seed + offset``."""
        seed = None if self.seed is None else self.seed + offset
        return keras.initializers.RandomUniform(-self.init_range, self.init_range, seed=seed)

    @staticmethod
    def project(x: Any, kernel: Any) -> Any:
        """``x @ kernel`` for any leading shape of ``x`` (`keras.ops.matmul`, which broadcasts ``kernel``)."""
        return ops.matmul(x, kernel)

    def call(self, inputs, states, training=False):
        states = states if isinstance(states, (list, tuple)) else [states]
        if training and self.dropout > 0:
            inputs = inputs * self.get_dropout_mask(inputs)
        h_mask = self.get_recurrent_dropout_mask(states[0]) if training and self.recurrent_dropout > 0 else None
        return self.transition(self.project_inputs(inputs), states, self.prepare(), h_mask)

    @classmethod
    def from_genotype(cls, genotype: Any, units: int, input_dim: int, **kwargs) -> "RecurrentCell":
        """The cell for ``genotype`` (a cell of a genotype takes it as its first argument), built for inputs of
        size ``input_dim``; ``kwargs`` are the other arguments of the cell."""
        cell = cls(genotype, units, **kwargs)
        cell.build((None, input_dim))
        return cell

    def get_initial_state(self, batch_size=None):
        sizes = self.state_size if isinstance(self.state_size, (list, tuple)) else [self.state_size]
        return [ops.zeros((batch_size, n), dtype=self.compute_dtype) for n in sizes]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "dropout_x": self.dropout,
                "dropout_h": self.recurrent_dropout, "init_range": self.init_range, "seed": self.seed}
