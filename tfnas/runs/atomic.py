"""Atomic file writes for run folders: a file is replaced whole or not at all.

Every writer puts its bytes into a hidden temporary file beside the target
(``.NAME.tmp``) and renames it over the target with `os.replace`, which is
atomic on POSIX and Windows: a run killed at any moment (even by SIGKILL)
leaves either the old file or the new one, never a torn one. The one
exception is `append_jsonl`, which appends a single line (a killed run can
at worst leave a last line cut short). A write that fails (a full disk, a
folder not writable) raises `tfnas.errors.PathAccessError` naming the file,
and on a full disk the disk and its free space (`tfnas.errors.writing`).

Pure Python: no TensorFlow.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from tfnas.errors import TfnasError, writing


class JsonFileError(TfnasError, ValueError):
    """A file that should hold JSON does not (not UTF-8 text, malformed, nested too deeply); the message names
    it."""


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path to write; when the block ends without error it replaces ``path`` atomically.

    If the block raises, ``path`` keeps its old content and the temporary
    file is removed; an `OSError` (a full disk) becomes a `PathAccessError`
    naming ``path``. Whatever is at the temporary path beforehand (a killed
    write's leftover, a symbolic link) is removed first, so the write never
    goes through a link.

    Example::

        with replacing(folder / "weights.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with writing(path):
        tmp.unlink(missing_ok=True)  # a killed write's leftover, or a link the write would go through
        try:
            yield tmp
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Replaces ``path`` with ``text`` (UTF-8), atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _json_line(record: Any) -> str:
    return json.dumps(record, default=float) + "\n"


def write_json(path: str | Path, payload: Any) -> None:
    """Replaces ``path`` with ``payload`` as indented JSON, atomically (NumPy scalars become floats)."""
    write_text(path, json.dumps(payload, indent=1, default=float) + "\n")


def write_jsonl(path: str | Path, records: Iterable[Any]) -> None:
    """Replaces ``path`` with one JSON line per record, atomically."""
    write_text(path, "".join(_json_line(r) for r in records))


def append_jsonl(path: str | Path, record: Any) -> None:
    """Appends ``record`` to ``path`` as one JSON line (the file is created if needed)."""
    with writing(path), open(path, "a", encoding="utf-8") as f:
        f.write(_json_line(record))


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``; a file that is not JSON (not UTF-8 text, malformed, nested too deeply for Python's
    parser) raises a one-line `JsonFileError` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise JsonFileError(f"{path} is not valid JSON: {err}") from None
    except RecursionError:
        raise JsonFileError(f"{path} is not valid JSON: nested too deeply") from None


def read_jsonl(path: str | Path) -> list[Any]:
    """The records of a JSON-lines file (blank lines skipped); a line that is not JSON raises a one-line
    `JsonFileError` naming the file and the line."""
    path = Path(path)
    records = []
    try:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                records.append(json.loads(line))
    except (json.JSONDecodeError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise JsonFileError(f"{path} is not valid JSON lines (line {number}: {reason})") from None
    except UnicodeDecodeError as err:
        raise JsonFileError(f"{path} is not valid JSON lines: {err}") from None
    return records
