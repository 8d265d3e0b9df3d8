"""Cell drawings: the boxes and arrows of a genotype, graphviz's graph of them, the built-in drawing that
`tfnas show --draw` falls back to where graphviz's ``dot`` is missing, the DOT source written without ``dot``, and the
drawings refused before anything is drawn."""
import dataclasses
import importlib
import re

import numpy as np
import pytest

from tfnas.genotypes import resolve_genotype
from tfnas.viz.cell_graph import (DotNotFoundError, DrawingFormatError, cell_figure, cell_graph, cell_image,
                                  cell_parts, check_drawable, draw_genotype)

cell_graph_module = importlib.import_module("tfnas.viz.cell_graph")   # tfnas.viz.cell_graph is also a function
DARTS_V2 = resolve_genotype("darts_v2")   # nodes: sigmoid(0) relu(1) relu(1) identity(1) tanh(2) sigmoid(5) tanh(3) relu(5)


def test_the_parts_of_darts_v2_are_its_published_edges_in_columns_by_depth():
    parts = cell_parts(dataclasses.replace(DARTS_V2, attention="dot"))
    assert parts.arrows[:2] == (("x", "0", "tanh", False), ("h_prev", "0", "tanh", False))
    assert [a for a in parts.arrows if not a[3] and a[1] not in ("0", "att")] == [
        ("0", "1", "sigmoid", False), ("1", "2", "relu", False), ("1", "3", "relu", False),
        ("1", "4", "identity", False), ("2", "5", "tanh", False), ("5", "6", "sigmoid", False),
        ("3", "7", "tanh", False), ("5", "8", "relu", False)]
    assert {a[0] for a in parts.arrows if a[3]} == {str(i) for i in range(1, 9)}   # h_t: the mean of nodes 1..8
    # depth: node 1 reads node 0 (column 1), nodes 2-4 read node 1, 5 and 7 read 2 and 3, 6 and 8 read 5
    assert parts.columns == {"x": 0, "h_prev": 0, "0": 1, "1": 2, "2": 3, "3": 3, "4": 3, "5": 4, "7": 4, "6": 5,
                             "8": 5, "h": 6, "att": 7}
    assert parts.boxes[-1] == ("att", "attention: dot", "thistle")


def test_graphviz_draws_the_same_parts():
    source = cell_graph(DARTS_V2).source
    for tail, head, label, dashed in cell_parts(DARTS_V2).arrows:
        edge = f"{tail} -> {head}"
        assert (f"\t{edge} [style=dashed]" if dashed else f"\t{edge} [label={label}]") in source.splitlines()


def test_the_built_in_drawing_has_a_column_per_depth():
    image = cell_image(DARTS_V2)
    fig = cell_figure(DARTS_V2)
    width, height = fig.get_size_inches() * fig.dpi
    assert image.shape == (round(height), round(width), 3) and image.dtype == np.uint8
    assert width == pytest.approx(100 * (1.6 * 7 + 0.8))                     # columns 0..6
    assert height == pytest.approx(100 * (1.0 * 3 + 0.8))                    # column 3 holds three nodes
    assert (image < 250).any() and (image == 255).all(axis=-1).mean() > 0.5  # drawn on white


@pytest.fixture
def without_dot(monkeypatch):
    monkeypatch.setattr(cell_graph_module.shutil, "which", lambda name: None)


def test_without_dot_draw_writes_the_built_in_drawing(without_dot, tmp_path):
    import matplotlib.image

    path = draw_genotype(DARTS_V2, tmp_path / "cell.png")
    drawn = matplotlib.image.imread(path)
    assert drawn.shape[:2] == tuple(round(1.2 * n) for n in cell_image(DARTS_V2).shape[:2])   # 120 dpi
    assert draw_genotype(DARTS_V2, tmp_path / "cell.svg").read_text().startswith("<?xml")
    with pytest.raises(DrawingFormatError, match=r"built-in drawing .* writes no 'gif' format"):
        draw_genotype(DARTS_V2, tmp_path / "cell.gif")


def test_without_dot_and_matplotlib_draw_names_both_on_one_line(without_dot, monkeypatch, tmp_path):
    monkeypatch.setattr(cell_graph_module, "has_matplotlib", lambda: False)
    with pytest.raises(DotNotFoundError, match=r"^drawing needs graphviz's 'dot' program .* matplotlib: "
                                               r"pip install tfnas\[compare\][^\n]*$"):
        draw_genotype(DARTS_V2, tmp_path / "cell.png")
    assert not (tmp_path / "cell.png").exists()


#: DARTS V2 as published (DARTS repository, rnn/genotypes.py): node i's activation and predecessor, nodes 1-8 averaged.
PUBLISHED_DARTS_V2 = [("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5),
                      ("tanh", 3), ("relu", 5)]


@pytest.mark.parametrize("suffix", [".gv", ".dot"])
def test_the_dot_source_is_written_without_the_dot_program(monkeypatch, tmp_path, suffix):
    monkeypatch.setenv("PATH", str(tmp_path))
    path = draw_genotype(DARTS_V2, tmp_path / f"cell{suffix}")
    source = path.read_text()
    assert path == tmp_path / f"cell{suffix}" and source.startswith("digraph cell {")
    edges = re.findall(r"^\s*(\w+) -> (\w+) \[label=(\w+)\]", source, re.M)
    assert edges == [("x", "0", "tanh"), ("h_prev", "0", "tanh")] + [
        (str(pred), str(node), act) for node, (act, pred) in enumerate(PUBLISHED_DARTS_V2, start=1)]
    assert re.findall(r"^\s*(\w+) -> h \[style=dashed\]", source, re.M) == [str(i) for i in range(1, 9)]


def test_check_drawable_refuses_before_drawing_what_cannot_be_written(without_dot, monkeypatch, tmp_path):
    check_drawable(tmp_path / "cell.png")                       # the built-in drawing
    with pytest.raises(DrawingFormatError, match="built-in drawing .* writes no 'docx' format"):
        check_drawable(tmp_path / "cell.docx")
    monkeypatch.setattr(cell_graph_module, "has_matplotlib", lambda: False)
    for name in ("cell.png", "cell.svg", "cell"):
        with pytest.raises(DotNotFoundError, match="or write the DOT source"):
            check_drawable(tmp_path / name)
    check_drawable(tmp_path / "cell.gv")                        # the source needs neither
    monkeypatch.setattr(cell_graph_module.shutil, "which", lambda name: "/usr/bin/dot")
    with pytest.raises(DrawingFormatError, match="graphviz writes no 'docx' format"):
        check_drawable(tmp_path / "cell.docx")
