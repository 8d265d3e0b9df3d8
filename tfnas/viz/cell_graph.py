"""Cell drawings with graphviz, in the style of the DARTS figures."""
from __future__ import annotations

from pathlib import Path

import graphviz

from tfnas.errors import TfnasError, access_error
from tfnas.genotypes.dag import Genotype


class DotNotFoundError(TfnasError, RuntimeError):
    """The graphviz ``dot`` program is not installed."""


class DrawingFormatError(TfnasError, ValueError):
    """A drawing's file suffix names no format that graphviz writes."""


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


def draw_genotype(genotype: Genotype, path: str | Path) -> Path:
    """Renders the cell to ``path``; the suffix (.png, .svg, .pdf) picks the format.

    Raises:
        DrawingFormatError: graphviz writes no format of that suffix.
        DotNotFoundError: the ``dot`` program is not installed.
        PathAccessError: ``path`` cannot be written.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    if fmt not in graphviz.FORMATS:
        raise DrawingFormatError(f"cannot draw {path}: graphviz writes no {fmt!r} format; use .png, .svg or .pdf")
    try:
        out = cell_graph(genotype).render(outfile=str(path), format=fmt, cleanup=True)
    except graphviz.ExecutableNotFound:
        raise DotNotFoundError(
            "drawing needs the graphviz 'dot' program, which is not on PATH; install it "
            "(Debian/Ubuntu: apt-get install graphviz, macOS: brew install graphviz)") from None
    except OSError as err:
        raise access_error("write the drawing", path, err) from err
    return Path(out)
