"""`TfnasError`: the base of the errors a user can fix (bad input, missing data, a diverged run).

The ``tfnas`` command prints these (and `ValueError` / `OSError`, the
errors of bad arguments and files) on one line with exit status 2; any
other exception is a bug and keeps its traceback.
"""
from __future__ import annotations


class TfnasError(Exception):
    """An error whose message tells the user what is wrong and what to do."""


class MissingDependencyError(TfnasError, ImportError):
    """An optional package (``ray``, ``matplotlib``) that a requested feature needs is not installed."""
