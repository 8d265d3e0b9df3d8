"""DagSpace: size, token choices, sampling (uniform, seeded, without duplicates) and validity."""
import itertools
import math

import numpy as np
import pytest

from tfnas.genotypes.dag import ACTIVATIONS, Genotype
from tfnas.spaces import DagSpace


def brute_force(steps, activations, first_node):
    """Every genotype of the space, built by nested loops over the raw choices."""
    per_node = [[(a, j) for j in range(i) for a in activations] for i in range(1, steps + 1)]
    firsts = activations if first_node == "enas" else ("tanh",)
    return {Genotype(nodes, first_node=first_node, first_activation=f)
            for f in firsts for nodes in itertools.product(*per_node)}


@pytest.mark.parametrize("steps, activations, first_node", [
    (3, ("tanh", "relu"), "wenet"), (2, ACTIVATIONS, "darts"), (2, ("sigmoid", "identity", "relu"), "enas")])
def test_size_matches_enumeration_and_rank_is_a_bijection(steps, activations, first_node):
    space = DagSpace(steps, activations, first_node=first_node)
    everything = brute_force(steps, activations, first_node)
    a = len(activations)
    assert space.size() == len(everything) == a ** (first_node == "enas") * math.factorial(steps) * a ** steps
    ranked = [space.at(r) for r in range(space.size())]
    assert set(ranked) == everything
    assert [space.index(g) for g in ranked] == list(range(space.size()))
    assert all(space.contains(g) and space.decode(space.encode(g)) == g for g in ranked)


def test_paper_space_size_and_token_choices():
    space = DagSpace(8, first_node="wenet")
    assert space.size() == math.factorial(8) * 4 ** 8 == 2_642_411_520
    assert space.token_choices() == [1, 4, 2, 4, 3, 4, 4, 4, 5, 4, 6, 4, 7, 4, 8, 4]
    assert DagSpace(2, first_node="enas").token_choices() == [4, 1, 4, 2, 4]


def test_token_choices_bound_the_genotype_tokens():
    """Each position of Genotype.to_tokens takes fewer values than token_choices says (full op set)."""
    for first_node in ("darts", "wenet", "enas"):
        space = DagSpace(5, first_node=first_node)
        limits = space.token_choices()
        offset = 1 if first_node == "enas" else 0
        for g in space.sample_unique(200, np.random.default_rng(1)):
            tokens = g.to_tokens()
            assert len(tokens) == len(limits)
            # With the full ACTIVATIONS in order, choice index == token (minus the predecessor offset).
            choices = space.encode(g)
            for p, (tok, c, n) in enumerate(zip(tokens, choices, limits)):
                is_pred = p >= offset and (p - offset) % 2 == 0
                assert 0 <= c < n
                assert tok == (len(ACTIVATIONS) + c if is_pred else c)


def test_sample_is_uniform_and_seeded():
    space = DagSpace(2, ("tanh", "sigmoid"), first_node="wenet")   # size 1*2 * 2*2 = 8
    rng = np.random.default_rng(0)
    counts = np.bincount([space.index(space.sample(rng)) for _ in range(8000)], minlength=8)
    # 1000 expected per cell, sd ~ 30: every count within 5 sd.
    assert np.all(np.abs(counts - 1000) < 150), counts
    assert [space.sample(7) for _ in range(3)] == [space.sample(np.random.default_rng(7)) for _ in range(3)]
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert space.sample_unique(5, a) == space.sample_unique(5, b)
    assert a.bit_generator.state == b.bit_generator.state


def test_sample_unique_has_no_duplicates_and_honours_exclude():
    space = DagSpace(3, first_node="wenet")                          # 4 * 8 * 12 = 384
    pool = space.sample_unique(300, np.random.default_rng(0))
    assert len(set(pool)) == 300 and all(space.contains(g) for g in pool)
    rest = space.sample_unique(84, np.random.default_rng(1), exclude=pool)
    assert not set(rest) & set(pool) and len(set(rest)) == 84
    assert set(rest) | set(pool) == {space.at(r) for r in range(space.size())}
    with pytest.raises(ValueError, match="only 0 of the 384"):
        space.sample_unique(1, np.random.default_rng(2), exclude=pool + rest)
    with pytest.raises(ValueError, match="385 distinct"):
        space.sample_unique(385, np.random.default_rng(2))
    assert space.sample_unique(0, 0) == []


def test_contains_and_why_not():
    space = DagSpace(2, ("tanh", "relu"), first_node="wenet")
    good = Genotype((("tanh", 0), ("relu", 1)), first_node="wenet")
    assert space.contains(good) and good in space
    cases = {
        Genotype((("tanh", 0),), first_node="wenet"): "has 1 steps",
        Genotype((("tanh", 0), ("relu", 1))): "first_node is 'darts'",
        Genotype((("tanh", 0), ("relu", 1)), first_node="wenet", output="loose_ends"): "output is 'loose_ends'",
        Genotype((("sigmoid", 0), ("relu", 1)), first_node="wenet"): "node 1 uses 'sigmoid'",
    }
    for genotype, why in cases.items():
        assert not space.contains(genotype)
        assert why in space.why_not(genotype)
        with pytest.raises(ValueError, match="is not in DagSpace"):
            space.validate(genotype)
    enas = DagSpace(1, ("relu",), first_node="enas")
    assert not enas.contains(Genotype((("relu", 0),), first_node="enas", first_activation="tanh"))
    assert enas.contains(Genotype((("relu", 0),), first_node="enas", first_activation="relu"))
    assert "x" not in space


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, r"`steps` must be an integer in \[1, 128\] \(MAX_NODES\), received steps=0"),
    ({"steps": 10**6}, r"`steps` must be an integer in \[1, 128\] \(MAX_NODES\), received steps=1000000"),
    ({"steps": 2, "activations": ()}, "must not be empty"),
    ({"steps": 2, "activations": ("tanh", "none")}, "unknown \\['none'\\]"),
    ({"steps": 2, "activations": ("tanh", "tanh")}, "has repeats"),
    ({"steps": 2, "first_node": "lstm"}, "`first_node` must be one of"),
    ({"steps": 2, "output": "sum"}, "`output` must be one of"),
])
def test_constructor_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DagSpace(**kwargs)


def test_decode_rejects_out_of_range_choices_and_config_round_trip():
    space = DagSpace(2, first_node="wenet")
    with pytest.raises(ValueError, match="choice 2 must be in 0..1"):
        space.decode([0, 0, 2, 0])
    with pytest.raises(ValueError, match="expected 4 choices"):
        space.decode([0, 0])
    assert DagSpace.from_config(space.to_config()) == space
