"""SharedCell (ENAS) running genotype g equals GenotypeCell(g) with the corresponding weights."""

import numpy as np
import pytest
import tensorflow as tf

from tfnas.cells import CellRNN, GenotypeCell
from tfnas.cells.search.shared_cell import SharedCell
from tfnas.cells.search.norm import edge_index
from tfnas.genotypes.dag import Genotype
from tfnas.spaces.dag import DagSpace


def shared_and_frozen(g: Genotype, shared: SharedCell):
    shared.set_genotype(g)
    frozen = GenotypeCell.from_genotype(g, units=shared.units, input_dim=shared.input_dim)
    weights = shared.genotype_cell_weights(g)
    frozen.W0.assign(weights["W0"])
    frozen.Ws.assign(weights["Ws"])
    return frozen


@pytest.mark.parametrize("first_node, output", [("enas", "loose_ends"), ("darts", "mean")])
def test_shared_cell_equals_genotype_cell(first_node, output):
    space = DagSpace(steps=5, first_node=first_node, output=output)
    shared = SharedCell(steps=5, units=6, first_node=first_node, output=output, seed=0)
    shared.build((None, 4))
    rng = np.random.default_rng(0)
    shared.W0.assign(rng.uniform(-0.6, 0.6, shared.W0.shape).astype("float32"))
    shared.Ws.assign(rng.uniform(-0.6, 0.6, shared.Ws.shape).astype("float32"))
    x = rng.normal(size=(3, 7, 4)).astype("float32")
    h0 = rng.normal(size=(3, 6)).astype("float32")
    rnn = CellRNN(shared)
    run = tf.function(lambda x, h: rnn(x, initial_state=[h]))
    for g in space.sample_unique(6, rng):
        frozen = shared_and_frozen(g, shared)
        out, (final,) = run(x, h0)
        expected, (expected_final,) = CellRNN(frozen)(x, initial_state=[h0])
        np.testing.assert_allclose(out, expected, atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(final, expected_final, atol=1e-6, rtol=1e-6)
    # One trace served every architecture: the genotype is data, not structure.
    assert run.experimental_get_tracing_count() == 1


def test_distinct_genotypes_give_distinct_outputs_and_edges_are_per_predecessor():
    shared = SharedCell(steps=3, units=4, seed=1)
    shared.build((None, 2))
    assert tuple(shared.Ws.shape) == (6, 4, 8)
    assert [edge_index(i, j) for i in (1, 2, 3) for j in range(i)] == list(range(6))
    a = Genotype((("relu", 0), ("tanh", 1), ("tanh", 1)), first_node="enas", output="loose_ends")
    b = Genotype((("relu", 0), ("tanh", 0), ("tanh", 1)), first_node="enas", output="loose_ends")
    x = np.random.default_rng(0).normal(size=(2, 3, 2)).astype("float32")
    outs = []
    for g in (a, b):
        shared.set_genotype(g)
        outs.append(CellRNN(shared)(x)[0].numpy())
    assert np.abs(outs[0] - outs[1]).max() > 1e-4
    # Node 2 reads node 0 in b: it uses edge e(2, 0) = 1, not e(2, 1) = 2 as in a.
    np.testing.assert_array_equal(shared.genotype_cell_weights(b)["Ws"][1], shared.Ws.numpy()[1])
    np.testing.assert_array_equal(shared.genotype_cell_weights(a)["Ws"][1], shared.Ws.numpy()[2])


def test_wrong_genotype_is_refused():
    shared = SharedCell(steps=3, units=4)
    shared.build((None, 2))
    with pytest.raises(ValueError, match="steps=3"):
        shared.set_genotype(Genotype((("relu", 0),), first_node="enas", output="loose_ends"))
    with pytest.raises(ValueError, match="first_node"):
        shared.set_genotype(Genotype((("relu", 0),) * 3))
