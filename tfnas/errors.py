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
