"""Where each export format puts its files, and recognising an export folder.

``tfnas export RUN --format all --out DIR`` writes::

    DIR/keras/model.keras        DIR/keras/vocab.txt      DIR/keras/tfnas.json
    DIR/savedmodel/saved_model.pb, variables/, assets/vocab.txt, assets.extra/tfnas.json
    DIR/onnx/model.onnx          DIR/onnx/vocab.txt       DIR/onnx/tfnas.json
"""
from __future__ import annotations

import shutil
from pathlib import Path

from tfnas.errors import PathNotFoundError
from tfnas.export.errors import ExportError, UnknownFormatError
from tfnas.export.metadata import METADATA_FILE

#: The export formats, in the order ``--format all`` writes them.
FORMATS: tuple[str, ...] = ("keras", "savedmodel", "onnx")
KERAS_FILE = "model.keras"
ONNX_FILE = "model.onnx"
SAVED_MODEL_FILE = "saved_model.pb"


def parse_formats(spec: str) -> list[str]:
    """``"all"``, one format or a comma-separated list -> the formats, in `FORMATS` order."""
    names = [s.strip().lower() for s in str(spec).split(",") if s.strip()]
    if names == ["all"]:
        return list(FORMATS)
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise UnknownFormatError(f"unknown export format {spec!r}: choose one of {', '.join(FORMATS)} or all "
                                 "(or a comma-separated list)")
    return [f for f in FORMATS if f in names]


def metadata_path(fmt: str, folder: Path) -> Path:
    """Where the metadata of an export of format ``fmt`` in ``folder`` lives."""
    return folder / "assets.extra" / METADATA_FILE if fmt == "savedmodel" else folder / METADATA_FILE


def prepare_folder(folder: Path) -> Path:
    """Creates ``folder`` for an export; an earlier tfnas export there is replaced.

    Raises:
        ExportError: ``folder`` exists, is not empty and is not a tfnas export
            (nothing is deleted then).
    """
    folder = Path(folder)
    if folder.exists():
        if not folder.is_dir():
            raise ExportError(f"export folder {folder} is a file")
        is_export = (folder / METADATA_FILE).exists() or (folder / "assets.extra" / METADATA_FILE).exists()
        if any(folder.iterdir()):
            if not is_export:
                raise ExportError(f"export folder {folder} is not empty and holds no tfnas export; "
                                  "choose another --out folder")
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def detect_format(path: str | Path) -> tuple[str, Path]:
    """``(format, folder)`` of an export given its folder, its model file or the ``--out`` folder.

    Raises:
        PathNotFoundError: ``path`` does not exist.
        UnknownFormatError: ``path`` is no tfnas export, or an ``--out``
            folder holding several (the message lists them).
    """
    path = Path(path)
    if not path.exists():
        raise PathNotFoundError(f"export {str(path)!r} does not exist")
    if path.is_file():
        by_suffix = {".onnx": "onnx", ".keras": "keras", ".pb": "savedmodel"}
        fmt = by_suffix.get(path.suffix)
        if fmt is None:
            raise UnknownFormatError(f"{path} is not a tfnas export: expected a folder, a .onnx or a .keras file")
        return fmt, path.parent
    if (path / SAVED_MODEL_FILE).exists():
        return "savedmodel", path
    if (path / ONNX_FILE).exists():
        return "onnx", path
    if (path / KERAS_FILE).exists():
        return "keras", path
    found = [f for f in FORMATS if (path / f).is_dir() and _has_export(path / f)]
    if len(found) == 1:
        return detect_format(path / found[0])
    if found:
        choices = ", ".join(str(path / f) for f in found)
        raise UnknownFormatError(f"{path} holds several exports ({', '.join(found)}): pass one of {choices}")
    raise UnknownFormatError(f"{path} is not a tfnas export (no {SAVED_MODEL_FILE}, {ONNX_FILE} or {KERAS_FILE}); "
                             "make one with tfnas export RUN_DIR --out DIR")


def _has_export(folder: Path) -> bool:
    return any((folder / name).exists() for name in (SAVED_MODEL_FILE, ONNX_FILE, KERAS_FILE))
