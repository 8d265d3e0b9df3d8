"""Cell drawings with graphviz, in the style of the DARTS figures."""
from __future__ import annotations

import shutil
from pathlib import Path

import graphviz

from tfnas.errors import TfnasError, access_error
from tfnas.genotypes.dag import Genotype


class DotNotFoundError(TfnasError, RuntimeError):
    """The graphviz ``dot`` program is not installed."""


class DrawingFormatError(TfnasError, ValueError):
    """A drawing's file suffix names no format that graphviz writes."""


#: Suffixes of a drawing written as the graph's DOT source, which needs no graphviz program.
SOURCE_SUFFIXES = (".gv", ".dot")


def cell_graph(genotype: Genotype) -> graphviz.Digraph:
    """A graph with ``x_t``, ``h_{t-1}``, nodes ``0..N`` (edges labelled with activations) and ``h_t``."""
    g = graphviz.Digraph("cell", graph_attr={"rankdir": "LR"},
                         node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": "lightblue"})
    g.node("x", "x_{t}", fillcolor="darkseagreen2")
    g.node("h_prev", "h_{t-1}", fillcolor="darkseagreen2")
    first = genotype.first_activation if genotype.first_node == "enas" else "tanh"
    g.node("0", "0")
    g.edge("x", "0", label=first)
    g.edge("h_prev", "0", label=first)
    for i, (act, pred) in enumerate(genotype.nodes, start=1):
        g.node(str(i), str(i))
        g.edge(str(pred), str(i), label=act)
    g.node("h", "h_{t}", fillcolor="palegoldenrod")
    for i in genotype.concat:
        g.edge(str(i), "h", style="dashed")
    if genotype.attention:
        g.node("att", f"attention: {genotype.attention}", fillcolor="thistle")
        g.edge("h", "att")
    return g


def _dot_missing() -> DotNotFoundError:
    return DotNotFoundError("drawing needs the graphviz 'dot' program, which is not on PATH; install it "
                            "(Debian/Ubuntu: apt-get install graphviz, macOS: brew install graphviz), or write the "
                            "DOT source (.gv)")


def check_drawable(path: str | Path) -> None:
    """Refuses, before anything is drawn, a drawing that cannot be written: a suffix that names no format of
    graphviz, or a rendered format (anything but `SOURCE_SUFFIXES`) without the ``dot`` program on PATH.

    Raises:
        DrawingFormatError: graphviz writes no format of that suffix.
        DotNotFoundError: the format needs the ``dot`` program, which is not installed.
    """
    path = Path(path)
    if path.suffix in SOURCE_SUFFIXES:
        return
    fmt = path.suffix.lstrip(".") or "png"
    if fmt not in graphviz.FORMATS:
        raise DrawingFormatError(f"cannot draw {path}: graphviz writes no {fmt!r} format; use .png, .svg, .pdf "
                                 "or .gv")
    if shutil.which("dot") is None:
        raise _dot_missing()


def draw_genotype(genotype: Genotype, path: str | Path) -> Path:
    """Renders the cell to ``path``; the suffix (.png, .svg, .pdf) picks the format, and .gv or .dot writes the
    graph's DOT source (`check_drawable` says which can be written).

    Raises:
        DrawingFormatError: graphviz writes no format of that suffix.
        DotNotFoundError: the ``dot`` program is not installed.
        PathAccessError: ``path`` cannot be written.
    """
    path = Path(path)
    check_drawable(path)
    graph = cell_graph(genotype)
    try:
        if path.suffix in SOURCE_SUFFIXES:
            return Path(graph.save(filename=path.name, directory=path.parent))
        return Path(graph.render(outfile=str(path), format=path.suffix.lstrip(".") or "png", cleanup=True))
    except graphviz.ExecutableNotFound:
        raise _dot_missing() from None
    except OSError as err:
        raise access_error("write the drawing", path, err) from err
