"""Cell drawings in the style of the DARTS figures: with graphviz's ``dot``, or the built-in drawing (matplotlib)
where ``dot`` is not installed, which TensorBoard's cell images also use."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphviz
import numpy as np

from tfnas.errors import TfnasError, access_error
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import AnyGenotype
from tfnas.viz.figures import INSTALL_HINT, figure_rgb, has_matplotlib, new_figure, warn_without_matplotlib

INPUT_COLOUR, NODE_COLOUR, OUTPUT_COLOUR, HEAD_COLOUR = "#b4eeb4", "lightblue", "palegoldenrod", "thistle"
#: The formats of the built-in drawing (matplotlib's Agg and vector backends).
BUILT_IN_FORMATS = ("png", "svg", "pdf", "eps", "ps")


class DotNotFoundError(TfnasError, RuntimeError):
    """Neither graphviz's ``dot`` program nor matplotlib (the built-in drawing) is installed."""


class DrawingFormatError(TfnasError, ValueError):
    """A drawing's file suffix names no format that graphviz (or the built-in drawing) writes."""


@dataclass(frozen=True)
class CellParts:
    """A cell as boxes and arrows: ``boxes`` are ``(id, label, colour)``, ``arrows`` ``(from, to, label,
    dashed)``; ``columns`` is each box's column from left to right (inputs 0, node 0 1, a node one past its
    predecessor, ``h_t`` and the head last)."""

    boxes: tuple[tuple[str, str, str], ...]
    arrows: tuple[tuple[str, str, str, bool], ...]
    columns: dict[str, int]


def cell_parts(genotype: Genotype) -> CellParts:
    """``x_t``, ``h_{t-1}``, nodes ``0..N`` (arrows labelled with activations), ``h_t`` and the attention head."""
    first = genotype.first_activation if genotype.first_node == "enas" else "tanh"
    boxes = [("x", "x_{t}", INPUT_COLOUR), ("h_prev", "h_{t-1}", INPUT_COLOUR), ("0", "0", NODE_COLOUR)]
    arrows = [("x", "0", first, False), ("h_prev", "0", first, False)]
    columns = {"x": 0, "h_prev": 0, "0": 1}
    for i, (act, pred) in enumerate(genotype.nodes, start=1):
        boxes.append((str(i), str(i), NODE_COLOUR))
        arrows.append((str(pred), str(i), act, False))
        columns[str(i)] = columns[str(pred)] + 1
    columns["h"] = max(columns.values()) + 1
    boxes.append(("h", "h_{t}", OUTPUT_COLOUR))
    arrows += [(str(i), "h", "", True) for i in genotype.concat]
    if genotype.attention:
        boxes.append(("att", f"attention: {genotype.attention}", HEAD_COLOUR))
        arrows.append(("h", "att", "", False))
        columns["att"] = columns["h"] + 1
    return CellParts(tuple(boxes), tuple(arrows), columns)


#: Suffixes of a drawing written as the graph's DOT source, which needs no graphviz program.
SOURCE_SUFFIXES = (".gv", ".dot")


def cell_graph(genotype: Genotype) -> graphviz.Digraph:
    """The graphviz graph of `cell_parts`, left to right."""
    parts = cell_parts(genotype)
    g = graphviz.Digraph("cell", graph_attr={"rankdir": "LR"},
                         node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": NODE_COLOUR})
    for name, label, colour in parts.boxes:
        g.node(name, label, fillcolor=colour)
    for tail, head, label, dashed in parts.arrows:
        g.edge(tail, head, label=label or None, style="dashed" if dashed else None)
    return g


def cell_figure(genotype: Genotype) -> Any:
    """The built-in drawing of `cell_parts` (a matplotlib ``Figure``): a column per depth, boxes stacked in each,
    arrows that skip columns curved.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    parts = cell_parts(genotype)
    by_column: dict[int, list[str]] = {}
    for name, _, _ in parts.boxes:
        by_column.setdefault(parts.columns[name], []).append(name)
    height = max(len(names) for names in by_column.values())
    where = {name: (2.0 * column, (len(names) - 1) / 2 - k)
             for column, names in by_column.items() for k, name in enumerate(names)}
    fig = new_figure(1.6 * len(by_column) + 0.8, 1.0 * height + 0.8, "drawing a cell")
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(-1.0, 2.0 * max(by_column) + 1.0)
    ax.set_ylim(-height / 2, height / 2)
    for name, label, colour in parts.boxes:
        text = f"${label}$" if "_" in label else label
        ax.text(*where[name], text, ha="center", va="center", fontsize=9, zorder=3,
                bbox={"boxstyle": "round,pad=0.4", "facecolor": colour, "edgecolor": "0.3"})
    for tail, head, label, dashed in parts.arrows:
        (x0, y0), (x1, y1) = where[tail], where[head]
        bend = 0.25 if parts.columns[head] - parts.columns[tail] > 1 else 0.0
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=2, arrowprops={
            "arrowstyle": "->", "shrinkA": 14, "shrinkB": 14, "linestyle": "--" if dashed else "-",
            "color": "0.4" if dashed else "0.1", "connectionstyle": f"arc3,rad={bend}"})
        if label:
            # The middle of the arc: the chord's middle moved by ``bend`` times the chord, to the right of it.
            mx, my = (x0 + x1) / 2 + bend * (y1 - y0) / 2, (y0 + y1) / 2 - bend * (x1 - x0) / 2
            ax.text(mx, my, label, ha="center", va="center", fontsize=7, zorder=4,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"})
    fig.tight_layout()
    return fig


def cell_image(genotype: Genotype) -> np.ndarray:
    """The ``[height, width, 3]`` uint8 pixels of `cell_figure` (TensorBoard's cell image).

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    return figure_rgb(cell_figure(genotype))


def drawn_cell(genotype: AnyGenotype) -> np.ndarray | None:
    """`cell_image` of a DAG cell; None for a tree cell, which is not drawn, and, with a warning, where matplotlib
    is not installed."""
    if not isinstance(genotype, Genotype):
        return None
    if not has_matplotlib():
        warn_without_matplotlib("TensorBoard shows no cell drawings")
        return None
    return cell_image(genotype)


def check_drawable(path: str | Path) -> None:
    """Refuses, before anything is drawn, a drawing that cannot be written: a suffix that names no format of the
    writer at hand (graphviz's ``dot``, or the built-in drawing where ``dot`` is not on PATH), or a rendered
    format with neither ``dot`` nor matplotlib installed. The DOT source (`SOURCE_SUFFIXES`) needs neither.

    Raises:
        DrawingFormatError: the drawing writes no format of that suffix.
        DotNotFoundError: neither ``dot`` nor matplotlib is installed.
    """
    path = Path(path)
    if path.suffix in SOURCE_SUFFIXES:
        return
    fmt = path.suffix.lstrip(".") or "png"
    built_in = shutil.which("dot") is None
    if fmt not in (BUILT_IN_FORMATS if built_in else graphviz.FORMATS):
        writer = "the built-in drawing (graphviz's dot is not installed)" if built_in else "graphviz"
        raise DrawingFormatError(f"cannot draw {path}: {writer} writes no {fmt!r} format; use .png, .svg, .pdf "
                                 "or .gv")
    if built_in and not has_matplotlib():
        raise DotNotFoundError(
            "drawing needs graphviz's 'dot' program (Debian/Ubuntu: apt-get install graphviz, macOS: brew install "
            f"graphviz) or, for the built-in drawing, matplotlib: {INSTALL_HINT}; or write the DOT source (.gv)")


def draw_genotype(genotype: Genotype, path: str | Path) -> Path:
    """Renders the cell to ``path`` with graphviz's ``dot``, or where ``dot`` is not on PATH with the built-in
    drawing (`cell_figure`); the suffix (.png, .svg, .pdf) picks the format, and .gv or .dot writes the graph's
    DOT source (`check_drawable` says which can be written).

    Raises:
        DrawingFormatError: the drawing writes no format of that suffix.
        DotNotFoundError: neither ``dot`` nor matplotlib is installed.
        PathAccessError: ``path`` cannot be written.
    """
    path = Path(path)
    check_drawable(path)
    fmt = path.suffix.lstrip(".") or "png"
    try:
        if path.suffix in SOURCE_SUFFIXES:
            return Path(cell_graph(genotype).save(filename=path.name, directory=path.parent))
        if shutil.which("dot") is None:
            cell_figure(genotype).savefig(path, format=fmt, dpi=120)
            return path
        return Path(cell_graph(genotype).render(outfile=str(path), format=fmt, cleanup=True))
    except OSError as err:
        raise access_error("write the drawing", path, err) from err
