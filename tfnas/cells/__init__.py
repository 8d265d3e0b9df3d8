"""Keras layers: the frozen, exportable cells, the attention heads, the fused sequence loop and `FusedRNN`.

The search-only layers are in `tfnas.cells.search`.
"""
from tfnas.cells.attention import make_attention
from tfnas.cells.base import RecurrentCell
from tfnas.cells.genotype_cell import GenotypeCell, node_schedule
from tfnas.cells.layer import FusedRNN
from tfnas.cells.rnn import CellRNN
from tfnas.cells.tree_cell import TreeCell

__all__ = ["CellRNN", "FusedRNN", "GenotypeCell", "RecurrentCell", "TreeCell", "make_attention", "node_schedule"]
