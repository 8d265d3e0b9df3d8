"""Argument checks shared by the Keras layers, with errors that name the argument (`tfnas.settings.check_argument`)."""
from __future__ import annotations

from tfnas.settings import AT_LEAST_ONE, RATE, check_argument


def check_units(name: str, value: int) -> int:
    """A positive integer size."""
    return check_argument(name, value, int, AT_LEAST_ONE)


def check_rate(name: str, value: float) -> float:
    """A dropout rate in [0, 1)."""
    return float(check_argument(name, value, float, RATE))
