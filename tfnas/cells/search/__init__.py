"""Search-only layers: the supernet cells of each one-shot strategy and NASABN's attention mixture."""
from tfnas.cells.search.base import SearchCell
from tfnas.cells.search.bayes_cell import BayesCell
from tfnas.cells.search.mixed_attention import MixedAttention
from tfnas.cells.search.mixed_cell import MixedCell
from tfnas.cells.search.shared_cell import SharedCell
from tfnas.cells.search.weighted_cells import WeightedCells

__all__ = ["BayesCell", "MixedAttention", "MixedCell", "SearchCell", "SharedCell", "WeightedCells"]
