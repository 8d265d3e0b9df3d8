"""``.keras`` export: the `LanguageModel` itself, plus its vocabulary and metadata.

The ``.keras`` file holds the architecture (``LanguageModel.get_config()``,
which includes the genotype) and the weights; loading it needs tfnas
installed (its layers are registered Keras serialisables), nothing else.
"""
from __future__ import annotations

from pathlib import Path

import keras

from tfnas.errors import PathNotFoundError
from tfnas.export.layout import KERAS_FILE, metadata_path, prepare_folder
from tfnas.export.metadata import VOCAB_FILE, metadata_for


def export_keras(run, out_dir: str | Path) -> Path:
    """Writes ``out_dir/model.keras``, ``vocab.txt`` and ``tfnas.json``; returns the model file.

    Args:
        run: a `tfnas.export.LoadedRun` (see `tfnas.export.load_run`).
        out_dir: the export folder (replaced if it holds an earlier export).
    """
    folder = prepare_folder(Path(out_dir))
    path = folder / KERAS_FILE
    run.model.save(path)
    run.vocab.save(folder / VOCAB_FILE)
    metadata_for(run, "keras").save(metadata_path("keras", folder))
    return path


def load_keras_model(path: str | Path) -> keras.Model:
    """The `LanguageModel` of a ``.keras`` export (a folder or the file)."""
    import tfnas.lm  # noqa: F401  (registers the tfnas layers with Keras)

    path = Path(path)
    if path.is_dir():
        path = path / KERAS_FILE
    if not path.exists():
        raise PathNotFoundError(f"Keras model {str(path)!r} does not exist")
    return keras.saving.load_model(path)
