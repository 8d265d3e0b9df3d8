"""Where each export format puts its files, writing a format's folder whole, and recognising an export folder.

``tfnas export RUN --format all --out DIR`` writes::

    DIR/keras/model.keras        DIR/keras/vocab.txt      DIR/keras/tfnas.json
    DIR/savedmodel/saved_model.pb, variables/, assets/vocab.txt, assets.extra/tfnas.json
    DIR/onnx/model.onnx, model_int32.onnx, model.onnx.data, vocab.txt, tfnas.json
    DIR/tflite/model.tflite      DIR/tflite/vocab.txt     DIR/tflite/tfnas.json

Each format's folder is written under a temporary name beside it
(`staged_folder`: ``DIR/.onnx.tmp``) and renamed into place once complete,
so a failed or killed export leaves no file cut short under an export's
name, and the export it replaces stays whole until then.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from tfnas.errors import PathNotFoundError, access_error, writing
from tfnas.export.errors import ExportError, UnknownFormatError
from tfnas.export.metadata import METADATA_FILE

#: The export formats, in the order ``--format all`` writes them.
FORMATS: tuple[str, ...] = ("keras", "savedmodel", "onnx", "tflite")
KERAS_FILE = "model.keras"
ONNX_FILE = "model.onnx"
#: The ONNX graph with int32 ``ids`` (`ONNX_FILE`'s are int64); both read their weights from `ONNX_DATA_FILE`.
ONNX_INT32_FILE = "model_int32.onnx"
ONNX_DATA_FILE = "model.onnx.data"
TFLITE_FILE = "model.tflite"
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


def is_export(folder: Path) -> bool:
    """Whether ``folder`` holds a tfnas export of one format: its model file or its metadata (one cut short)."""
    return _has_export(folder) or any(metadata_path(fmt, folder).exists() for fmt in ("keras", "savedmodel"))


def remove(path: Path) -> None:
    """Removes a file, a link (not what it points to) or a folder, if there is one at ``path``."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


@contextlib.contextmanager
def staged_folder(folder: str | Path) -> Iterator[Path]:
    """Yields an empty temporary folder beside ``folder`` (``.NAME.tmp``) to write a format's export into.

    When the block ends without error the temporary folder takes ``folder``'s
    place whole (an earlier tfnas export there is replaced); otherwise it is
    removed and ``folder`` stays as it was. An `OSError` of the block (a full
    disk) becomes a `tfnas.errors.PathAccessError` naming the file under
    ``folder`` that was being written (the one an inner `tfnas.errors.writing`
    names, else ``folder``), and on a full disk the disk and its free space.

    Raises:
        ExportError: ``folder`` is a file, or is not empty and holds no tfnas
            export (nothing is deleted then).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"export folder {folder} is a file")
    if folder.is_dir() and any(folder.iterdir()) and not is_export(folder):
        raise ExportError(f"export folder {folder} is not empty and holds no tfnas export; choose another --out "
                          "folder")
    tmp, old = folder.with_name(f".{folder.name}.tmp"), folder.with_name(f".{folder.name}.old")
    try:
        with writing(tmp):
            remove(tmp)  # a killed export's leftovers
            remove(old)
            tmp.mkdir(parents=True)
        yield tmp
        if folder.exists():
            os.replace(folder, old)
        try:
            os.replace(tmp, folder)
        except OSError:
            if old.exists():
                os.replace(old, folder)
            raise
    except OSError as err:
        raise access_error("write", _under(folder, tmp, err), err) from err
    finally:
        for path in (tmp, old):
            with contextlib.suppress(OSError):
                remove(path)


def _under(folder: Path, tmp: Path, err: OSError) -> Path:
    """The path under ``folder`` of the file that ``err`` names in ``tmp`` (``folder`` if it names none there)."""
    named = Path(err.filename) if isinstance(err.filename, (str, os.PathLike)) else None
    return folder / named.relative_to(tmp) if named is not None and named.is_relative_to(tmp) else folder


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
        by_suffix = {".onnx": "onnx", ".keras": "keras", ".pb": "savedmodel", ".tflite": "tflite"}
        fmt = by_suffix.get(path.suffix)
        if fmt is None:
            raise UnknownFormatError(f"{path} is not a tfnas export: expected a folder, a .onnx, .tflite or .keras "
                                     "file")
        return fmt, path.parent
    if (path / SAVED_MODEL_FILE).exists():
        return "savedmodel", path
    if (path / ONNX_FILE).exists():
        return "onnx", path
    if (path / KERAS_FILE).exists():
        return "keras", path
    if (path / TFLITE_FILE).exists():
        return "tflite", path
    found = [f for f in FORMATS if (path / f).is_dir() and _has_export(path / f)]
    if len(found) == 1:
        return detect_format(path / found[0])
    if found:
        choices = ", ".join(str(path / f) for f in found)
        raise UnknownFormatError(f"{path} holds several exports ({', '.join(found)}): pass one of {choices}")
    raise UnknownFormatError(f"{path} is not a tfnas export (no {SAVED_MODEL_FILE}, {ONNX_FILE}, {KERAS_FILE} or "
                             f"{TFLITE_FILE}); "
                             "make one with tfnas export RUN_DIR --out DIR")


def _has_export(folder: Path) -> bool:
    return any((folder / name).exists() for name in (SAVED_MODEL_FILE, ONNX_FILE, KERAS_FILE, TFLITE_FILE))
