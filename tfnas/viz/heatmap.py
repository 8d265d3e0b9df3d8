"""Architecture-weight heatmaps as RGB arrays (for TensorBoard images)."""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from tfnas.viz.figures import figure_rgb, has_matplotlib, new_figure, warn_without_matplotlib

#: The colours of probability 0 and 1.
LOW_RGB, HIGH_RGB = np.array([255.0, 255.0, 255.0]), np.array([8.0, 48.0, 107.0])


def alpha_heatmap(probs: np.ndarray, cell_px: int = 12) -> np.ndarray:
    """``[rows * cell_px, cols * cell_px, 3]`` uint8 image of a probability matrix.

    Rows are edges (in the order of ``MixedCell.edges``), columns ops; white
    is 0 and dark blue is the row's largest possible value, 1.
    """
    probs = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    if probs.ndim != 2:
        raise ValueError(f"alpha_heatmap needs a 2-D matrix; received shape {probs.shape}")
    rgb = LOW_RGB + probs[..., None] * (HIGH_RGB - LOW_RGB)
    return np.kron(rgb, np.ones((cell_px, cell_px, 1))).astype(np.uint8)


def labelled_heatmap(probs: np.ndarray, rows: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    """``[height, width, 3]`` uint8 image of a probability matrix with its labels.

    Rows (e.g. a cell's edges ``node3<-1``) are labelled on the left, columns (its operations) at the top, in the
    colours of `alpha_heatmap` (white 0, dark blue 1). Matplotlib draws the labelled frame once per set of labels
    (`_labelled_frame`); each call fills its box with the matrix's colours, so drawing at every log interval costs
    next to nothing.

    Raises:
        MissingDependencyError: matplotlib is not installed.
        ValueError: the labels do not match the matrix's shape.
    """
    probs = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    if probs.ndim != 2 or probs.shape != (len(rows), len(columns)):
        raise ValueError(f"labelled_heatmap needs a [{len(rows)}, {len(columns)}] matrix for its labels; "
                         f"received shape {probs.shape}")
    frame, (top, bottom, left, right) = _labelled_frame(tuple(rows), tuple(columns))
    image = frame.copy()
    colours = alpha_heatmap(probs, cell_px=1)
    # Each pixel inside the box's one-pixel border takes the colour of the entry it lies in.
    ys = (np.arange(top + 1, bottom - 1) - top) * len(rows) // (bottom - top)
    xs = (np.arange(left + 1, right - 1) - left) * len(columns) // (right - left)
    image[top + 1: bottom - 1, left + 1: right - 1] = colours[ys][:, xs]
    return image


@functools.lru_cache(maxsize=16)
def _labelled_frame(rows: tuple[str, ...], columns: tuple[str, ...]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The labelled, empty frame of a ``[len(rows), len(columns)]`` heatmap and its box's pixels ``(top, bottom,
    left, right)``, bottom and right exclusive."""
    fig = new_figure(1.2 + 0.75 * len(columns), 0.8 + 0.25 * len(rows), "a labelled heatmap")
    ax = fig.add_subplot()
    ax.set_xlim(-0.5, len(columns) - 0.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xticks(range(len(columns)), list(columns), fontsize=8)
    ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
    ax.xaxis.tick_top()
    fig.tight_layout()
    image = figure_rgb(fig)
    box = ax.get_window_extent()  # in pixels from the bottom left
    height = image.shape[0]
    image.flags.writeable = False
    return image, (height - round(box.y1), height - round(box.y0), round(box.x0), round(box.x1))


def heatmap_image(probs: np.ndarray, rows: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    """`labelled_heatmap`, or where matplotlib is not installed `alpha_heatmap` (its colours without the labels)
    and a warning that says so."""
    if has_matplotlib():
        return labelled_heatmap(probs, rows, columns)
    warn_without_matplotlib("architecture weights are drawn without their labels")
    return alpha_heatmap(probs)
