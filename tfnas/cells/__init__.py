"""Keras layers: the frozen, exportable cells, the attention heads, the fused sequence loop and `FusedRNN`.

The frozen cells, heads and `FusedRNN` are written in `keras.ops`, so ``import tfnas.cells`` and these layers need no
TensorFlow and run on any Keras backend (`docs/guides/backends.md`). `CellRNN`, the fused loop the trainer
runs, is TensorFlow (``tf.while_loop``): it is imported on first use of the name. The search-only layers are in
`tfnas.cells.search` (TensorFlow).
"""
import importlib
from typing import Any

from tfnas.cells.attention import make_attention
from tfnas.cells.base import RecurrentCell
from tfnas.cells.genotype_cell import GenotypeCell, node_schedule
from tfnas.cells.layer import FusedRNN
from tfnas.cells.tree_cell import TreeCell

#: Names of this package defined in TensorFlow-only modules, imported when first asked for.
_TENSORFLOW_NAMES = {"CellRNN": "tfnas.cells.rnn"}

__all__ = ["CellRNN", "FusedRNN", "GenotypeCell", "RecurrentCell", "TreeCell", "make_attention", "node_schedule"]


def __getattr__(name: str) -> Any:
    if name in _TENSORFLOW_NAMES:
        return getattr(importlib.import_module(_TENSORFLOW_NAMES[name]), name)
    raise AttributeError(f"module 'tfnas.cells' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
