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

import os
import reprlib
from typing import Any


class TfnasError(Exception):
    """An error whose message tells the user what is wrong and what to do."""


class MissingDependencyError(TfnasError, ImportError):
    """An optional package (``ray``, ``matplotlib``) that a requested feature needs is not installed."""


class PathNotFoundError(TfnasError, FileNotFoundError):
    """A file or folder the user named (or one that it must hold) does not exist; the message names it."""


class PathAccessError(TfnasError, OSError):
    """A file or folder the user named exists but cannot be read or written (permission denied, a folder where
    a file is expected, an I/O error); the message names it."""


def access_error(action: str, path: str | os.PathLike[str], err: OSError) -> PathAccessError:
    """The one-line error of ``err``, raised doing ``action`` on ``path``: ``access_error("read vocabulary
    file", path, err)`` says ``cannot read vocabulary file 'x': Permission denied``."""
    return PathAccessError(f"cannot {action} {str(path)!r}: {err.strerror or err}")


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


_SHOWN = _Shown()
_SHOWN.maxstring = _SHOWN.maxother = 60


def shown(value: Any) -> str:
    """``repr(value)`` for a one-line message: long strings, containers and integers cut short, and an integer
    Python cannot turn into text (over 4,300 digits) named by its size (``an integer of 5001 digits``)."""
    return _SHOWN.repr(value)
