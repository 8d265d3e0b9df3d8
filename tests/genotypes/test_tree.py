"""TreeGenotype (Zoph & Le): node numbering, tokens and JSON round trip, validation errors, the NASCell."""
import json
import math

import numpy as np
import pytest

from tfnas.genotypes.base import MAX_NODES, GenotypeError
from tfnas.genotypes.files import load_genotype, resolve_genotype
from tfnas.genotypes.tree import COMBINATIONS, TreeGenotype, tree_children
from tfnas.spaces.tree import TreeSpace


def test_tree_numbering_base_8():
    kids = tree_children(8)
    assert len(kids) == 15 and kids[:8] == (None,) * 8
    assert kids[8:] == ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13))


def test_tokens_round_trip_and_json(tmp_path):
    space = TreeSpace(base=4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = space.sample(rng)
        tokens = space.encode(g)
        assert all(0 <= t < k for t, k in zip(tokens, space.token_choices()))
        assert space.decode(tokens) == g
        assert TreeGenotype.from_json(g.to_json()) == g
    path = g.save(tmp_path / "g.json")
    assert load_genotype(path) == g
    assert json.loads(path.read_text())["space"] == "tree"


@pytest.mark.parametrize("field, value, message", [
    ("nodes", [["add", "tanh"]] * 4, r"'nodes'.*2 \* base - 1.*got 4"),
    ("inject", ["sub", "tanh"], r"'inject.combination'.*got 'sub'"),
    ("inject_node", 3, r"'inject_node'.*0\.\.2.*got 3"),
    ("cell_node", -1, r"'cell_node'.*got -1"),
    ("space", "dag", r"'space'.*got 'dag'"),
    ("colour", "red", r"'colour'.*unknown field.*got 'red'"),
])
def test_validation_errors_name_field_and_value(field, value, message):
    data = TreeGenotype((("add", "tanh"),) * 3, inject_node=0, cell_node=1).to_dict()
    data[field] = value
    with pytest.raises(GenotypeError, match=message):
        TreeGenotype.from_dict(data)


def test_a_tree_is_bounded_by_max_nodes():
    assert TreeGenotype((("add", "tanh"),) * 127).base == 64 and MAX_NODES == 128
    with pytest.raises(GenotypeError, match=r"'nodes': holds 255 nodes; tfnas builds cells of at most 128 nodes"):
        TreeGenotype((("add", "tanh"),) * 255)


def test_node_activation_error():
    with pytest.raises(GenotypeError, match=r"nodes\[1\].activation.*'softplus'"):
        TreeGenotype((("add", "tanh"), ("add", "softplus"), ("add", "tanh")))


def test_nascell_is_a_base_8_tree(exported_cells):
    g = resolve_genotype("nascell")
    assert g == load_genotype(exported_cells / "nascell.json")
    assert g.base == 8 and g.inject == ("add", "tanh") and g.inject_node == 8 and g.cell_node == 12
    # Leaf 3 is the only leaf that multiplies its input and recurrent projections.
    assert [i for i in range(8) if g.nodes[i][0] == "elem_mult"] == [3]
    assert g.nodes[14] == ("elem_mult", "tanh")
    assert TreeSpace(8).contains(g)
    assert math.isclose(g.provenance["reported"]["test_ppl"], 62.4)
    assert set(COMBINATIONS) == {"add", "elem_mult"}


def test_a_tree_of_add_and_identity_is_a_linear_recurrence_and_degenerate():
    linear = TreeGenotype((("add", "identity"),) * 7, inject=("add", "identity"), inject_node=2, cell_node=5)
    assert linear.degenerate() == "every node adds its inputs and is identity: the cell is a linear recurrence"
    for changed in (dict(nodes=(("elem_mult", "identity"),) + (("add", "identity"),) * 6),   # a product of inputs
                    dict(nodes=(("add", "identity"),) * 6 + (("add", "tanh"),)),
                    dict(inject=("add", "sigmoid")), dict(inject=("elem_mult", "identity"))):
        assert TreeGenotype(**{**dict(nodes=linear.nodes, inject=linear.inject, inject_node=2, cell_node=5),
                               **changed}).degenerate() is None
    assert resolve_genotype("nascell").degenerate() is None
