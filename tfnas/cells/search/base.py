"""`SearchCell`: what every search cell exposes to the strategies and to `tfnas.lm.search_models`."""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


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
