"""Matplotlib figures without pyplot: created on their own Agg canvas (no global backend, no GUI), turned into RGB
arrays for TensorBoard or saved to a file. Matplotlib is the optional extra ``compare``."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from tfnas.errors import MissingDependencyError

#: What to install for the drawings that need matplotlib.
INSTALL_HINT = "pip install tfnas[compare] (or pip install matplotlib)"


def has_matplotlib() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def new_figure(width: float, height: float, what: str) -> Any:
    """A ``matplotlib.figure.Figure`` of ``width`` x ``height`` inches on an Agg canvas.

    Raises:
        MissingDependencyError: matplotlib is not installed (the message says that ``what`` needs it).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(f"{what} needs matplotlib: {INSTALL_HINT}") from None
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def figure_rgb(fig: Any) -> np.ndarray:
    """The ``[height, width, 3]`` uint8 pixels of ``fig`` as drawn on its Agg canvas."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def warn_without_matplotlib(what: str) -> None:
    """The one line (a `UserWarning`, which Python shows once per place) that says what is drawn otherwise, or
    left out, for want of matplotlib."""
    warnings.warn(f"matplotlib is not installed: {what}; {INSTALL_HINT}", stacklevel=3)
