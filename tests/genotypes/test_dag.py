"""Genotype: validation errors, JSON round trip, token encoding, known cells."""
import json
import re

import pytest
from hypothesis import given, strategies as st

from tfnas.genotypes.dag import ACTIVATIONS, Genotype, token_vocab_size
from tfnas.genotypes.base import GenotypeError
from tfnas.genotypes.files import load_genotype


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


def test_known_cells(exported_cells):
    v2 = load_genotype(exported_cells / "darts_v2.json")
    assert v2.nodes == (("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2),
                        ("sigmoid", 5), ("tanh", 3), ("relu", 5))
    assert v2.concat == tuple(range(1, 9))
    assert v2.provenance["reported"]["test_ppl"] == 55.7
    enas = load_genotype(exported_cells / "enas.json")
    assert enas.concat == (2, 5, 6, 9, 10, 11)  # the loose ends, as in the DARTS repository
    assert load_genotype(exported_cells / "darts_v1.json").nodes[5] == ("identity", 1)


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


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GenotypeError, match="bad.json.*not valid JSON"):
        load_genotype(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_genotype(tmp_path / "missing.json")
    bad.write_text(json.dumps({"nodes": [["relu", 3]]}))
    with pytest.raises(GenotypeError, match="node 1 can only read nodes 0..0"):
        load_genotype(bad)


def test_from_tokens_rejects_bad_tokens():
    with pytest.raises(GenotypeError, match="activation token"):
        Genotype.from_tokens([4, 9])
    with pytest.raises(GenotypeError, match="predecessor token"):
        Genotype.from_tokens([1, 1])
    with pytest.raises(GenotypeError, match="can only read"):
        Genotype.from_tokens([5, 0])  # node 1 reading node 1
