"""Search spaces: what a strategy may propose (sampling, size, tokens, validity)."""
from tfnas.spaces.base import SearchSpace
from tfnas.spaces.dag import DagSpace
from tfnas.spaces.tree import TreeSpace

__all__ = ["DagSpace", "SearchSpace", "TreeSpace"]
