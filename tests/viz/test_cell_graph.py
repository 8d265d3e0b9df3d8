"""Cell drawings: the DOT source of a cell (written without graphviz' program) and the drawings refused before
anything is drawn."""
import re

import pytest

from tfnas.genotypes.files import resolve_genotype
from tfnas.viz import DotNotFoundError, check_drawable, draw_genotype
from tfnas.viz.cell_graph import DrawingFormatError

#: DARTS V2 as published (DARTS repository, rnn/genotypes.py): node i's activation and predecessor, nodes 1-8 averaged.
DARTS_V2 = [("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5), ("tanh", 3),
            ("relu", 5)]


@pytest.mark.parametrize("suffix", [".gv", ".dot"])
def test_the_dot_source_is_written_without_the_dot_program(monkeypatch, tmp_path, suffix):
    monkeypatch.setenv("PATH", str(tmp_path))
    path = draw_genotype(resolve_genotype("darts_v2"), tmp_path / f"cell{suffix}")
    source = path.read_text()
    assert path == tmp_path / f"cell{suffix}" and source.startswith("digraph cell {")
    edges = re.findall(r"^\s*(\w+) -> (\w+) \[label=(\w+)\]", source, re.M)
    assert edges == [("x", "0", "tanh"), ("h_prev", "0", "tanh")] + [
        (str(pred), str(node), act) for node, (act, pred) in enumerate(DARTS_V2, start=1)]
    assert re.findall(r"^\s*(\w+) -> h \[style=dashed\]", source, re.M) == [str(i) for i in range(1, 9)]


def test_a_rendered_format_needs_dot_and_a_suffix_must_name_a_format(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    for name in ("cell.png", "cell.svg", "cell"):
        with pytest.raises(DotNotFoundError, match="'dot' program, which is not on PATH"):
            check_drawable(tmp_path / name)
    with pytest.raises(DrawingFormatError, match="graphviz writes no 'docx' format"):
        check_drawable(tmp_path / "cell.docx")
    check_drawable(tmp_path / "cell.gv")
    dot = tmp_path / "dot"
    dot.write_text("#!/bin/sh\n")
    dot.chmod(0o755)
    check_drawable(tmp_path / "cell.png")  # dot on PATH
