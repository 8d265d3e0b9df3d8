"""`keras.saving.load_model` finds tfnas' layers after ``import tfnas`` alone, in a fresh process (`tfnas.serializables`).

Each model is saved here and loaded in a new Python process that imports
nothing of tfnas but the package; the reloaded model's outputs must equal
the saved model's. One process first fails to load without tfnas (what the
issue reported), then imports tfnas after Keras and loads.
"""
from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from tfnas.serializables import PACKAGE, SERIALIZABLES, LazyClass

ROOT = Path(__file__).resolve().parents[1]


def _registering_modules() -> set[str]:
    """The tfnas modules whose source decorates a class with ``register_keras_serializable`` (read with ast)."""
    found = set()
    for path in (ROOT / "tfnas").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any("register_keras_serializable" in ast.unparse(d)
                                                      for d in node.decorator_list):
                found.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


def test_the_table_names_every_registered_class_and_its_module():
    modules = _registering_modules()
    for module in modules:
        importlib.import_module(module)
    registered = {name: cls.__module__ for name, cls in keras.saving.get_custom_objects().items()
                  if name.startswith(f"{PACKAGE}>") and not isinstance(cls, LazyClass)}
    assert registered == {f"{PACKAGE}>{name}": module for name, module in SERIALIZABLES.items()}
    assert set(SERIALIZABLES.values()) == modules


def _first(outputs):
    """The output array (a language model's logits, without its states)."""
    return np.asarray(outputs[0] if isinstance(outputs, (list, tuple)) else outputs)


def _save(model: keras.Model, inputs: np.ndarray, folder: Path) -> tuple[Path, Path]:
    path = folder / "model.keras"
    model.save(path)
    arrays = folder / "io.npz"
    np.savez(arrays, inputs=inputs, outputs=_first(model(inputs)))
    return path, arrays


def _load_in_fresh_process(path: Path, arrays: Path, before: str) -> str:
    """Runs ``before``, then loads ``path`` and prints the largest output difference; returns stdout."""
    code = textwrap.dedent(before) + textwrap.dedent(f"""
        import numpy as np
        import keras
        io = np.load({str(arrays)!r})
        model = keras.saving.load_model({str(path)!r})
        out = model(io["inputs"])
        out = out[0] if isinstance(out, (list, tuple)) else out
        print("max diff", float(np.max(np.abs(np.asarray(out) - io["outputs"]))))
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=path.parent,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _rnn_model(cell: keras.layers.Layer) -> keras.Model:
    return keras.Sequential([keras.Input((5, 4)), keras.layers.RNN(cell, return_sequences=True)])


def _genotype_cell_model() -> keras.Model:
    from tfnas.cells import GenotypeCell

    return _rnn_model(GenotypeCell("darts_v2", 6, seed=1))


def _tree_cell_model() -> keras.Model:
    from tfnas.cells import TreeCell

    return _rnn_model(TreeCell("nascell", 6, seed=2))


def _cell_rnn_attention_model() -> keras.Model:
    from tfnas.cells import CellRNN, GenotypeCell, make_attention

    inputs = keras.Input((5, 4))
    hidden = CellRNN(GenotypeCell("darts_v1", 6, seed=3))(inputs)[0]  # the outputs; [1] is the last states
    return keras.Model(inputs, make_attention("dot", 6)(hidden))


def _language_model() -> keras.Model:
    from tfnas.config import ModelConfig
    from tfnas.genotypes import resolve_genotype
    from tfnas.lm import LanguageModel

    model = ModelConfig(emsize=6, nhid=6)
    return LanguageModel.from_config_objects(11, resolve_genotype("darts_v2"), model, seed=4)


CASES = {
    # model, inputs, what runs before loading
    "GenotypeCell in keras.layers.RNN": (_genotype_cell_model, "float", "import tfnas"),
    "TreeCell in keras.layers.RNN": (_tree_cell_model, "float", "import keras\nimport tfnas"),
    "CellRNN and an attention head": (_cell_rnn_attention_model, "float", "import tfnas"),
    "exported LanguageModel": (_language_model, "ids", "import tfnas"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_loads_after_import_tfnas_in_a_fresh_process(case, tmp_path):
    build, kind, before = CASES[case]
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 11, (2, 5)).astype("int32") if kind == "ids" else rng.normal(size=(2, 5, 4)).astype(
        "float32")
    path, arrays = _save(build(), inputs, tmp_path)
    out = _load_in_fresh_process(path, arrays, before)
    assert "max diff 0.0" in out, out


def test_without_tfnas_keras_cannot_load_and_after_import_tfnas_it_can(tmp_path):
    path, arrays = _save(_genotype_cell_model(), np.ones((1, 5, 4), "float32"), tmp_path)
    before = textwrap.dedent(f"""
        import keras
        try:
            keras.saving.load_model({str(path)!r})
        except TypeError as err:
            print("refused:", "Could not locate class 'GenotypeCell'" in str(err))
        import tfnas
    """)
    out = _load_in_fresh_process(path, arrays, before)
    assert "refused: True" in out and "max diff 0.0" in out, out


def test_a_stand_in_never_replaces_a_registered_class():
    from tfnas.cells import GenotypeCell
    from tfnas.serializables import add_stand_ins

    objects = {f"{PACKAGE}>GenotypeCell": GenotypeCell}
    add_stand_ins(objects)
    assert objects[f"{PACKAGE}>GenotypeCell"] is GenotypeCell
    assert isinstance(objects[f"{PACKAGE}>TreeCell"], LazyClass)
    assert objects[f"{PACKAGE}>TreeCell"].load().__name__ == "TreeCell"
