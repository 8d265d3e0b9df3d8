"""Keras finds tfnas' layers and models after ``import tfnas`` alone, without loading TensorFlow at that import.

Keras 3 resolves a saved object's ``registered_name`` (``"tfnas>GenotypeCell"``) in its global table of custom
objects (``keras.saving.get_custom_objects()``), which a class enters when the module defining it runs the
``register_keras_serializable`` decorator. It imports the ``module`` a config names only for its own packages
(``keras``, ``keras_hub``, ...), never for tfnas, so a ``.keras`` file holding a tfnas layer loads only once that
module was imported. `import tfnas` must not import them (``tfnas --help`` loads no TensorFlow); instead it puts a
stand-in (`LazyClass`) in that table for every name of `SERIALIZABLES`. Keras calls the stand-in's `from_config`,
which imports the defining module (whose decorator replaces the stand-in by the class) and returns the class's
instance. When Keras is not imported yet, an import hook on ``keras`` adds the stand-ins as soon as Keras has
loaded (`register_with_keras`). A stand-in never replaces a class already registered.

``tests/test_serializables.py`` checks that this table names exactly the classes tfnas registers.
"""
from __future__ import annotations

import importlib
import importlib.abc
import sys
from typing import Any

#: The package of every tfnas registered name (``register_keras_serializable(package="tfnas")``).
PACKAGE = "tfnas"
#: Class name -> the module that defines and registers it.
SERIALIZABLES: dict[str, str] = {
    "GenotypeCell": "tfnas.cells.genotype_cell",
    "TreeCell": "tfnas.cells.tree_cell",
    "CellRNN": "tfnas.cells.rnn",
    "FusedRNN": "tfnas.cells.layer",
    "NoAttention": "tfnas.cells.attention",
    "DotAttention": "tfnas.cells.attention",
    "GeneralAttention": "tfnas.cells.attention",
    "AdditiveAttention": "tfnas.cells.attention",
    "MultiHeadSelfAttention": "tfnas.cells.attention",
    "MixedCell": "tfnas.cells.search.mixed_cell",
    "MixedAttention": "tfnas.cells.search.mixed_attention",
    "SharedCell": "tfnas.cells.search.shared_cell",
    "WeightedCells": "tfnas.cells.search.weighted_cells",
    "BayesCell": "tfnas.cells.search.bayes_cell",
    "LanguageModel": "tfnas.lm.model",
    "LockedDropout": "tfnas.lm.regularizers",
    "DroppedEmbedding": "tfnas.lm.regularizers",
    "Controller": "tfnas.policies.controller",
    "EncoderPredictorDecoder": "tfnas.policies.nao",
}


class LazyClass:
    """Stands for the registered class ``module.name`` in Keras' table until that module is imported."""

    def __init__(self, name: str, module: str):
        self.name = name
        self.module = module

    def load(self) -> type:
        """The class itself (importing its module registers it with Keras in place of this stand-in)."""
        return getattr(importlib.import_module(self.module), self.name)

    def from_config(self, config: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """What Keras calls to rebuild a saved object: the class's own ``from_config``."""
        return self.load().from_config(config, *args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"LazyClass({self.module}.{self.name})"


def add_stand_ins(custom_objects: dict[str, Any]) -> None:
    """Puts a `LazyClass` in Keras' table of custom objects for every name not registered yet."""
    for name, module in SERIALIZABLES.items():
        custom_objects.setdefault(f"{PACKAGE}>{name}", LazyClass(name, module))


def _keras_loaded() -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and hasattr(getattr(keras, "saving", None), "get_custom_objects")


class _AfterKeras(importlib.abc.Loader):
    """Runs the ``keras`` package's own loader, then adds the stand-ins."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):  # noqa: ANN001 - importlib's signature
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: ANN001 - importlib's signature
        self.loader.exec_module(module)
        add_stand_ins(module.saving.get_custom_objects())

    def __getattr__(self, name: str) -> Any:  # resources and source of the package, as its own loader gives them
        return getattr(self.loader, name)


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Finds ``keras`` with the other finders and wraps its loader in `_AfterKeras`; removes itself at once."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):  # noqa: ANN201 - importlib's
        if fullname != "keras":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None and spec.loader is not None:
                spec.loader = _AfterKeras(spec.loader)
                return spec
        return None


def register_with_keras() -> None:
    """Makes Keras find tfnas' registered classes by name: at once if Keras is loaded, else when it loads."""
    if _keras_loaded():
        add_stand_ins(sys.modules["keras"].saving.get_custom_objects())
    elif "keras" not in sys.modules and not any(isinstance(f, _KerasImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasImportHook())
