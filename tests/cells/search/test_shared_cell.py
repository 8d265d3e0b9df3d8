"""SharedCell running genotype g equals GenotypeCell(g) with the corresponding weights: ENAS' per-edge sharing and
RSWS' per-node sharing (DARTS' layout)."""

import keras
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


def randomised_run(shared: SharedCell, rng: np.random.Generator):
    """``(run, x, h0)``: ``shared`` built for 4 inputs with weights drawn from U(-0.6, 0.6), one traced function
    running it over a sequence, and a random sequence ``x`` [3, 7, 4] and initial state ``h0``."""
    shared.build((None, 4))
    shared.W0.assign(rng.uniform(-0.6, 0.6, shared.W0.shape).astype("float32"))
    shared.Ws.assign(rng.uniform(-0.6, 0.6, shared.Ws.shape).astype("float32"))
    x = rng.normal(size=(3, 7, 4)).astype("float32")
    h0 = rng.normal(size=(3, shared.units)).astype("float32")
    rnn = CellRNN(shared)
    return tf.function(lambda x, h: rnn(x, initial_state=[h])), x, h0


@pytest.mark.parametrize("first_node, output", [("enas", "loose_ends"), ("darts", "mean")])
def test_shared_cell_equals_genotype_cell(first_node, output):
    space = DagSpace(steps=5, first_node=first_node, output=output)
    shared = SharedCell(steps=5, units=6, first_node=first_node, output=output, seed=0)
    rng = np.random.default_rng(0)
    run, x, h0 = randomised_run(shared, rng)
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


# ------------------------------------------------ per-node sharing (DARTS' cell, as RSWS trains it)
@pytest.mark.parametrize("first_node, output", [("darts", "mean"), ("enas", "loose_ends")])
def test_node_sharing_equals_genotype_cell_given_the_node_matrices(first_node, output):
    """With ``sharing="node"`` node i applies ``Ws[i-1]`` to whichever predecessor it reads: the frozen
    `GenotypeCell` (an independent implementation, DARTS' layout) given the same ``W0`` and ``Ws`` computes the
    same sequence for every genotype, under one trace of the shared cell."""
    space = DagSpace(steps=5, first_node=first_node, output=output)
    shared = SharedCell(steps=5, units=6, first_node=first_node, output=output, sharing="node", seed=0)
    rng = np.random.default_rng(3)
    run, x, h0 = randomised_run(shared, rng)
    assert tuple(shared.Ws.shape) == (5, 6, 12) and shared.num_matrices == 5
    genotypes = space.sample_unique(6, rng)
    assert len({g.nodes[2][1] for g in genotypes}) > 1          # node 3 reads different predecessors
    for g in genotypes:
        shared.set_genotype(g)
        frozen = GenotypeCell.from_genotype(g, units=6, input_dim=4)
        frozen.W0.assign(shared.W0.numpy())                    # copied directly, not through the mapping
        frozen.Ws.assign(shared.Ws.numpy())
        out, (final,) = run(x, h0)
        expected, (expected_final,) = CellRNN(frozen)(x, initial_state=[h0])
        np.testing.assert_allclose(out, expected, atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(final, expected_final, atol=1e-6, rtol=1e-6)
        mapped = shared.genotype_cell_weights(g)
        np.testing.assert_array_equal(mapped["Ws"], shared.Ws.numpy())
        np.testing.assert_array_equal(mapped["W0"], shared.W0.numpy())
    assert run.experimental_get_tracing_count() == 1


def test_node_sharing_gives_each_node_one_matrix_whatever_its_predecessor():
    """The gradient of the output reaches only the rows of the nodes' own matrices: with node sharing a node's
    row is the same for both predecessors; with edge sharing (ENAS) it moves with the predecessor."""
    x = np.random.default_rng(0).normal(size=(2, 3, 2)).astype("float32")
    a = Genotype((("relu", 0), ("tanh", 1), ("tanh", 1)))
    b = Genotype((("relu", 0), ("tanh", 0), ("tanh", 1)))
    rows = {}
    for sharing in ("node", "edge"):
        cell = SharedCell(steps=3, units=4, first_node="darts", output="mean", sharing=sharing, seed=1)
        cell.build((None, 2))
        for g in (a, b):
            cell.set_genotype(g)
            with tf.GradientTape() as tape:
                out = tf.reduce_sum(CellRNN(cell)(x)[0])
            grad = tf.convert_to_tensor(tape.gradient(out, cell.Ws)).numpy()      # IndexedSlices for a gather
            rows[sharing, g] = [k for k in range(grad.shape[0]) if np.abs(grad[k]).max() > 0]
    assert rows["node", a] == rows["node", b] == [0, 1, 2]
    assert rows["edge", a] == [edge_index(1, 0), edge_index(2, 1), edge_index(3, 1)] == [0, 2, 4]
    assert rows["edge", b] == [0, 1, 4]


def test_sharing_round_trips_in_the_config_and_is_checked():
    cell = SharedCell(steps=2, units=4, first_node="darts", output="mean", sharing="node")
    config = cell.get_config()
    assert config["sharing"] == "node" and SharedCell.from_config(config).sharing == "node"
    legacy = {k: v for k, v in SharedCell(steps=2, units=4).get_config().items() if k != "sharing"}
    assert SharedCell.from_config(legacy).sharing == "edge"                 # a config of before: ENAS' sharing
    with pytest.raises(ValueError, match="Argument `sharing` must be 'edge' or 'node'; received: sharing='path'"):
        SharedCell(steps=2, units=4, sharing="path")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
    assert restored.sharing == "node"
