"""tfnas: neural architecture search for recurrent language-model cells in TensorFlow 2 / Keras 3.

``import tfnas`` loads no TensorFlow. It makes Keras find tfnas' layers and
models by name (`tfnas.serializables`), so ``keras.saving.load_model`` loads
any ``.keras`` file holding them, and it gives the Python API of
`tfnas.api` (`search`, `train`, `load_run`, `export`, `SearchRun`,
`TrainRun`), imported on first use.
"""
import importlib
from typing import Any

from tfnas._version import __version__
from tfnas.genotypes import Genotype, GenotypeError, TreeGenotype, load_genotype, resolve_genotype
from tfnas.serializables import register_with_keras

#: The names of `tfnas.api` found here; ``export`` is the `tfnas.export` package, which is callable
#: (``tfnas.export(run, out)`` is `tfnas.api.export`).
API = ("search", "train", "load_run", "SearchRun", "TrainRun")
__all__ = ["Genotype", "GenotypeError", "TreeGenotype", "__version__", "load_genotype", "resolve_genotype",
           "export", *API]

register_with_keras()


def __getattr__(name: str) -> Any:
    if name in API:
        return getattr(importlib.import_module("tfnas.api"), name)
    if name == "export":
        return importlib.import_module("tfnas.export")
    raise AttributeError(f"module 'tfnas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
