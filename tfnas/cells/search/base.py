"""`SearchCell`: what every search cell exposes to the strategies and to the supernet
(`tfnas.lm.LanguageModel` given the cell), and
`ArchitectureSplit`, the part of it that every search layer computes alike."""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import keras
import numpy as np


@runtime_checkable
class SearchCell(Protocol):
    """A supernet cell: its architecture parameters, its weights, and the discrete cell it points at.

    The two variable lists split the cell's trainable variables: every
    trainable variable is in exactly one of them, so a bilevel strategy
    (DARTS) updates each with its own optimizer and data, and a joint one
    (WeNet) trains both together. A cell whose architecture is not a
    trainable parameter (ENAS' `SharedCell`, which runs the genotype set
    by ``set_genotype``) has no architecture variables.

    ``isinstance(cell, SearchCell)`` checks that the three members exist,
    not their types.

    Example:

    >>> from tfnas.cells.search import MixedCell
    >>> cell = MixedCell(steps=2, units=4)
    >>> cell.build((None, 3))
    >>> isinstance(cell, SearchCell), [v.name for v in cell.arch_variables]
    (True, ['alpha_cell'])
    """

    @property
    def arch_variables(self) -> list:
        """The architecture parameters (trainable variables), possibly none."""

    @property
    def weight_variables(self) -> list:
        """Every other trainable variable of the cell: the network weights."""

    def derive(self) -> Any:
        """The discrete choice the architecture currently points at (a `Genotype` for a recurrent cell)."""


def non_architecture_variables(layer: Any) -> list:
    """Every trainable variable of ``layer`` that is not one of its ``arch_variables``, in the layer's order: the
    weights, for a search layer or a model around one."""
    arch = {id(v) for v in layer.arch_variables}
    return [v for v in layer.trainable_variables if id(v) not in arch]


class ArchitectureSplit:
    """What a search layer (a Keras layer with ``arch_variables``) needs no code of its own for.

    `weight_variables` is every trainable variable that is not an
    architecture parameter, in the layer's order, so the two lists split the
    trainable variables as `SearchCell` requires; `probabilities_numpy` is
    the layer's ``probabilities()`` (its architecture distribution) as a
    NumPy array, for logs and heatmaps.
    """

    @property
    def weight_variables(self) -> list:
        """Every trainable variable except the architecture parameters."""
        return non_architecture_variables(self)

    def probabilities_numpy(self) -> np.ndarray:
        """``probabilities()`` as a NumPy array."""
        return np.asarray(keras.ops.convert_to_numpy(self.probabilities()))
