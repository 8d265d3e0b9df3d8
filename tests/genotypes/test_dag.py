"""Genotype: validation errors, JSON round trip, token encoding, description (reading files: test_files.py)."""
import re

import pytest
from hypothesis import given, strategies as st

from tfnas.genotypes.dag import ACTIVATIONS, Genotype, token_vocab_size
from tfnas.genotypes.base import MAX_NODES, GenotypeError
from tfnas.genotypes.files import resolve_genotype


@st.composite
def genotypes(draw):
    steps = draw(st.integers(1, 12))
    nodes = tuple((draw(st.sampled_from(ACTIVATIONS)), draw(st.integers(0, i - 1))) for i in range(1, steps + 1))
    first = draw(st.sampled_from(["darts", "wenet", "enas"]))
    first_act = draw(st.sampled_from(ACTIVATIONS)) if first == "enas" else "tanh"
    return Genotype(nodes, first_node=first, first_activation=first_act,
                    output=draw(st.sampled_from(["mean", "loose_ends"])),
                    attention=draw(st.sampled_from([None, "dot", "general", "additive", "multihead"])))


@given(genotypes())
def test_json_round_trip(g):
    assert Genotype.from_json(g.to_json()) == g
    assert hash(Genotype.from_json(g.to_json())) == hash(g)


@given(genotypes())
def test_token_round_trip(g):
    tokens = g.to_tokens()
    assert all(0 <= t < token_vocab_size(g.steps) for t in tokens)
    assert len(tokens) == 2 * g.steps + (g.first_node == "enas")
    assert Genotype.from_tokens(tokens, g.first_node, g.output, g.attention) == g


def test_provenance_not_part_of_identity():
    a = Genotype((("tanh", 0),), provenance={"run": "a"})
    b = Genotype((("tanh", 0),), provenance={"run": "b"})
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize("data, field", [
    ({"nodes": []}, "nodes"),
    ({"nodes": [["tanh", 1]]}, "nodes[0].predecessor"),
    ({"nodes": [["tanh", 0], ["swish", 0]]}, "nodes[1].activation"),
    ({"nodes": [["tanh", "0"]]}, "nodes[0].predecessor"),
    ({"nodes": [["tanh"]]}, "nodes[0]"),
    ({"nodes": [["tanh", 0]], "output": "max"}, "output"),
    ({"nodes": [["tanh", 0]], "first_node": "lstm"}, "first_node"),
    ({"nodes": [["tanh", 0]], "first_activation": "relu"}, "first_activation"),
    ({"nodes": [["tanh", 0]], "attention": "conv"}, "attention"),
    ({"nodes": [["tanh", 0]], "version": 7}, "version"),
    ({"nodes": [["tanh", 0]], "colour": "red"}, "colour"),
    ({}, "nodes"),
])
def test_invalid_genotypes_name_the_field(data, field):
    with pytest.raises(GenotypeError, match=re.escape(f"'{field}'")):
        Genotype.from_dict(data)


def test_a_cell_is_bounded_by_max_nodes():
    chain = [["tanh", i] for i in range(MAX_NODES)]
    assert Genotype.from_dict({"nodes": chain}).steps == MAX_NODES == 128   # 10 x NAO's 12 nodes
    with pytest.raises(GenotypeError, match=r"^genotype field 'nodes': holds 10000 nodes; tfnas builds cells of at "
                                            r"most 128 nodes \(MAX_NODES\) \(got 10000\)$"):
        Genotype.from_dict({"nodes": [["tanh", i] for i in range(10_000)]})


def test_from_tokens_rejects_bad_tokens():
    with pytest.raises(GenotypeError, match="activation token"):
        Genotype.from_tokens([4, 9])
    with pytest.raises(GenotypeError, match="predecessor token"):
        Genotype.from_tokens([1, 1])
    with pytest.raises(GenotypeError, match="can only read"):
        Genotype.from_tokens([5, 0])  # node 1 reading node 1


def test_describe_darts_v2():
    """DARTS_V2 as published (DARTS repository, rnn/genotypes.py): 8 nodes, output the mean of all."""
    assert resolve_genotype("darts_v2").describe() == [
        "first node: darts (tanh)",
        "node 1: sigmoid(0)",
        "node 2: relu(1)",
        "node 3: relu(1)",
        "node 4: identity(1)",
        "node 5: tanh(2)",
        "node 6: sigmoid(5)",
        "node 7: tanh(3)",
        "node 8: relu(5)",
        "output: mean of nodes [1, 2, 3, 4, 5, 6, 7, 8]",
    ]


def test_describe_names_the_first_activation_and_the_loose_ends():
    g = Genotype((("relu", 0), ("identity", 0), ("tanh", 1)), first_node="enas", first_activation="sigmoid",
                 output="loose_ends")
    # Node 1 is read by node 3; nodes 2 and 3 are read by none.
    assert g.describe() == ["first node: enas (sigmoid)", "node 1: relu(0)", "node 2: identity(0)", "node 3: tanh(1)",
                            "output: loose_ends of nodes [2, 3]"]
    assert len(resolve_genotype("enas").describe()) == 1 + 11 + 1
    assert resolve_genotype("enas").describe()[-1] == "output: loose_ends of nodes [2, 5, 6, 9, 10, 11]"


def test_an_integer_too_long_to_print_is_named_by_its_digits():
    """Issue 26 item 22: a predecessor Python cannot turn into text (over 4,300 digits) gets the genotype's own
    one-line error, the value named by its number of digits."""
    with pytest.raises(GenotypeError, match=r"^genotype field 'nodes\[1\].predecessor': node 2 can only read nodes "
                                            r"0..1 \(got an integer of 5001 digits\)$"):
        Genotype((("tanh", 0), ("relu", 10 ** 5000)))
    with pytest.raises(GenotypeError, match=r"'tokens': position 0 must be a predecessor token \(got a negative "
                                            r"integer of 5001 digits\)$"):
        Genotype.from_tokens([-10 ** 5000, 0])


def test_a_cell_of_identity_nodes_is_degenerate_and_one_other_node_makes_it_not():
    cell = Genotype((("identity", 0), ("identity", 1), ("identity", 0)))
    assert cell.degenerate() == "every node is identity: nodes 1..3 are gated linear maps of node 0"
    assert Genotype((("identity", 0), ("tanh", 1), ("identity", 0))).degenerate() is None
    assert Genotype((("identity", 0),), first_node="enas", first_activation="identity").degenerate() is not None


def test_published_cells_are_not_degenerate_and_the_collapsed_cpu_darts_cell_is():
    for name in ("darts_v1", "darts_v2", "enas", "nao", "nao_ws"):
        assert resolve_genotype(name).degenerate() is None, name
    for name in ("discovered/darts_ptb_cpu", "discovered/darts_wt2_cpu"):   # the collapse issue 25 is about
        assert resolve_genotype(name).degenerate() is not None, name


@given(st.data())
def test_every_node_of_a_dag_cell_reaches_the_output(data):
    # Why degenerate() need not look for unused nodes: a node reaches the output if the output averages it or a
    # node that reads it reaches the output; computed backwards from the last node for both output rules.
    steps = data.draw(st.integers(1, 9))
    nodes = tuple((data.draw(st.sampled_from(ACTIVATIONS)), data.draw(st.integers(0, i - 1)))
                  for i in range(1, steps + 1))
    for output in ("mean", "loose_ends"):
        g = Genotype(nodes, output=output)
        reaches = set(g.concat)
        for i in range(steps, 0, -1):
            if any(pred == i and k in reaches for k, (_, pred) in enumerate(nodes, start=1)):
                reaches.add(i)
        assert reaches == set(range(1, steps + 1))
