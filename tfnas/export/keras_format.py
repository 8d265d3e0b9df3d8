"""``.keras`` export: the `LanguageModel` itself, plus its vocabulary and metadata.

The ``.keras`` file holds the architecture (``LanguageModel.get_config()``,
which includes the genotype) and the weights; loading it needs tfnas
installed (its layers are registered Keras serialisables), nothing else.
"""
from __future__ import annotations

from pathlib import Path

import keras

from tfnas.errors import PathNotFoundError, writing
from tfnas.export.layout import KERAS_FILE, metadata_path, staged_folder
from tfnas.export.metadata import VOCAB_FILE, metadata_for
from tfnas.export.run import LoadedRun


def export_keras(run: LoadedRun, out_dir: str | Path) -> Path:
    """Writes ``out_dir/model.keras``, ``vocab.txt`` and ``tfnas.json``; returns the model file.

    The folder is written whole under a temporary name, then renamed
    (`tfnas.export.layout.staged_folder`).

    Args:
        run: a `tfnas.export.LoadedRun` (see `tfnas.export.load_run`).
        out_dir: the export folder (replaced if it holds an earlier export).

    Raises:
        PathAccessError: a file cannot be written (named; a full disk with its free space).
    """
    with staged_folder(out_dir) as folder:
        with writing(folder / KERAS_FILE):
            run.model.save(folder / KERAS_FILE)
        run.vocab.save(folder / VOCAB_FILE)
        metadata_for(run, "keras").save(metadata_path("keras", folder))
    return Path(out_dir) / KERAS_FILE


def load_keras_model(path: str | Path) -> keras.Model:
    """The `LanguageModel` of a ``.keras`` export (a folder or the file)."""
    import tfnas.lm  # noqa: F401  (registers the tfnas layers with Keras)

    path = Path(path)
    if path.is_dir():
        path = path / KERAS_FILE
    if not path.exists():
        raise PathNotFoundError(f"Keras model {str(path)!r} does not exist")
    return keras.saving.load_model(path)
