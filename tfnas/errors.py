"""`TfnasError`: the base of the errors a user can fix (bad input, missing data, a diverged run).

The ``tfnas`` command prints a `TfnasError` on one line with exit status
2; any other exception, a `ValueError` or an `OSError` included, is a bug
and keeps its traceback. So a user-caused error is a `TfnasError` where it
is raised: its class also derives from the built-in class it is a kind of
(`GenotypeError` is a `ValueError`, `PathNotFoundError` a
`FileNotFoundError`), which keeps ``except ValueError`` callers working.
Argument checks of public functions and Keras layers (``Argument `x` must
be ...``) stay plain `ValueError`: the command checks its values earlier.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import os
import reprlib
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator


class TfnasError(Exception):
    """An error whose message tells the user what is wrong and what to do."""


class MissingDependencyError(TfnasError, ImportError):
    """An optional package (``ray``, ``matplotlib``) that a requested feature needs is not installed."""


def import_optional(module: str, extra: str, feature: str) -> ModuleType:
    """The optional package ``module``, imported, or a `MissingDependencyError` whose one line names it and the
    extra of tfnas that installs it: ``--plot needs matplotlib: pip install 'tfnas[compare]'``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(f"{feature} needs {module}: pip install 'tfnas[{extra}]'") from None


class PathNotFoundError(TfnasError, FileNotFoundError):
    """A file or folder the user named (or one that it must hold) does not exist; the message names it."""


class PathAccessError(TfnasError, OSError):
    """A file or folder that cannot be read or written (permission denied, a folder where a file is expected, an
    I/O error, a full disk); the message names it. Made by `access_error`, it keeps the ``errno`` and
    ``strerror`` of the error it reports, and ``filename`` is the path it names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # the message, whatever errno and filename are set to


#: The errors of a full disk (ENOSPC) or of an exhausted quota (EDQUOT).
DISK_FULL = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)


def _disk_space(path: str | os.PathLike[str]) -> str:
    """``12.3 MB free on the disk holding '/runs/x'``: the free space of the nearest existing folder of ``path``."""
    folder = Path(os.path.abspath(path)).parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:.1f} MB free "
    except OSError:
        free = ""
    return f"{free}on the disk holding {str(folder)!r}"


def access_error(action: str, path: str | os.PathLike[str], err: OSError) -> PathAccessError:
    """The one-line error of ``err``, raised doing ``action`` on ``path``: ``access_error("read vocabulary
    file", path, err)`` says ``cannot read vocabulary file 'x': Permission denied``.

    A full disk (`DISK_FULL`) also names the disk and its free space: ``cannot write 'x': No space left on
    device (0.0 MB free on the disk holding '/runs'); free space on that disk and run again``. An ``err`` that is
    itself an `access_error` (an inner write named) is reported by the error it was made from.
    """
    while isinstance(err, PathAccessError) and isinstance(err.__cause__, OSError):
        err = err.__cause__
    message = f"cannot {action} {str(path)!r}: {err.strerror or err}"
    if err.errno in DISK_FULL:
        message += f" ({_disk_space(path)}); free space on that disk and run again"
    error = PathAccessError(message)
    error.errno, error.strerror, error.filename = err.errno, err.strerror, str(path)
    return error


#: The codes of TensorFlow's errors (``tf.errors.OpError.error_code``: RESOURCE_EXHAUSTED, PERMISSION_DENIED) that
#: its file system raises for a full disk and a file not writable, and their errno; read without importing TensorFlow.
_TENSORFLOW_FILE_ERRORS = {8: errno.ENOSPC, 7: errno.EACCES}


def _reported(err: Exception) -> OSError | None:
    """The `OSError` that ``err`` reports: ``err`` itself, or the errno of a TensorFlow file-system error (whose
    RESOURCE_EXHAUSTED counts only when it says the disk is full); None for any other error."""
    if isinstance(err, OSError):
        return err
    code = _TENSORFLOW_FILE_ERRORS.get(getattr(err, "error_code", None))
    if code is None or (code == errno.ENOSPC and os.strerror(errno.ENOSPC) not in str(err)):
        return None
    return OSError(code, os.strerror(code))


@contextlib.contextmanager
def writing(path: str | os.PathLike[str], action: str = "write") -> Iterator[None]:
    """Turns an `OSError` raised in the block (or TensorFlow's error of a full disk or of a file not writable) into
    `access_error` ``(action, path, err)``: one line naming the file being written (on a full disk, the disk and
    its free space too) instead of ``[Errno 28] No space left on device``.

    Example::

        with writing(path):
            vocab.save(path)
    """
    try:
        yield
    except Exception as err:
        reported = _reported(err)
        if reported is None:
            raise
        raise access_error(action, path, reported) from err


def _digits(number: int) -> int:
    """How many decimal digits ``number`` has, without turning it into text (Python refuses that past 4,300)."""
    number = abs(number)
    count = int(number.bit_length() * 0.30102999566398120) + 1  # log10(2): at most one too many
    return count - 1 if count > 1 and number < 10 ** (count - 1) else count


class _Shown(reprlib.Repr):
    """`reprlib.Repr` whose integers too long for Python's ``repr`` are named by their number of digits."""

    def repr_int(self, x: int, level: int) -> str:
        try:
            return super().repr_int(x, level)
        except ValueError:  # more digits than sys.get_int_max_str_digits() allows
            return f"{'a negative' if x < 0 else 'an'} integer of {_digits(x)} digits"


@functools.lru_cache(maxsize=None)
def _shown_within(width: int) -> _Shown:
    """The `_Shown` that cuts strings and other values at ``width`` characters (configured once, read only)."""
    repr_ = _Shown()
    repr_.maxstring = repr_.maxother = width
    return repr_


def shown(value: Any, width: int = 60) -> str:
    """``repr(value)`` for a one-line message: long strings, containers and integers cut short (strings and other
    values at ``width`` characters), and an integer Python cannot turn into text (over 4,300 digits) named by its
    size (``an integer of 5001 digits``)."""
    return _shown_within(width).repr(value)
