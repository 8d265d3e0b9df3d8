"""The `SearchCell` protocol: every search cell has it, its variables split in two, `derive` reads the choice."""
import numpy as np
import pytest

from tfnas.cells import GenotypeCell
from tfnas.cells.search import BayesCell, MixedCell, SearchCell, SharedCell, WeightedCells
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import resolve_genotype

UNITS, INPUT_DIM = 4, 5

#: Three WeNet networks of 3 nodes (WeightedCells needs one first node and one step count).
NETWORKS = (
    Genotype((("relu", 0), ("tanh", 1), ("sigmoid", 1)), first_node="wenet"),
    Genotype((("identity", 0), ("relu", 0), ("tanh", 2)), first_node="wenet", output="loose_ends"),
    Genotype((("sigmoid", 0), ("sigmoid", 1), ("relu", 2)), first_node="wenet"),
)


def mixed() -> MixedCell:
    cell = MixedCell(steps=3, units=UNITS, seed=0)
    cell.build((None, INPUT_DIM))
    return cell


def weighted() -> WeightedCells:
    return WeightedCells.from_genotypes(NETWORKS, UNITS, INPUT_DIM, seed=0)


def shared() -> SharedCell:
    cell = SharedCell(steps=3, units=UNITS, seed=0)
    cell.build((None, INPUT_DIM))
    return cell


def bayes() -> BayesCell:
    cell = BayesCell(steps=3, units=UNITS, seed=0)
    cell.build((None, INPUT_DIM))
    return cell


def size(variables) -> int:
    return sum(int(np.prod(v.shape)) for v in variables)


@pytest.mark.parametrize("make", [mixed, weighted, shared, bayes])
def test_search_cells_are_search_cells_and_frozen_cells_are_not(make):
    assert isinstance(make(), SearchCell)
    frozen = GenotypeCell.from_genotype(NETWORKS[0], UNITS, INPUT_DIM)
    assert not isinstance(frozen, SearchCell)


@pytest.mark.parametrize("make, arch_names, arch_size, weight_size", [
    # alpha: one row per edge, 3*4/2 = 6, one column per DARTS op (5); W0 [d+u, 2u], Ws [steps, u, 2u].
    (mixed, ["alpha_cell"], 6 * 5, (INPUT_DIM + UNITS) * 2 * UNITS + 3 * UNITS * 2 * UNITS),
    # w: one logit per network; per network W0 [d+u, u] (wenet first node) and Ws [steps, u, 2u].
    (weighted, ["network_logits"], 3, 3 * ((INPUT_DIM + UNITS) * UNITS + 3 * UNITS * 2 * UNITS)),
    # No trainable architecture; W0 [d+u, 2u] and one Ws matrix per edge, 6 of [u, 2u].
    (shared, [], 0, (INPUT_DIM + UNITS) * 2 * UNITS + 6 * UNITS * 2 * UNITS),
    # BayesNAS: one scalar per (edge, op), 6 x 4 (no none), and one dummy scalar per edge; DARTS' layout.
    (bayes, ["bayes_w", "bayes_d"], 6 * 4 + 6, (INPUT_DIM + UNITS) * 2 * UNITS + 3 * UNITS * 2 * UNITS),
])
def test_arch_and_weight_variables_partition_the_trainable_variables(make, arch_names, arch_size, weight_size):
    cell = make()
    arch, weights = cell.arch_variables, cell.weight_variables
    assert [v.name for v in arch] == arch_names
    assert sorted(v.name for v in weights) == ["W0", "Ws"]
    assert {id(v) for v in arch}.isdisjoint(id(v) for v in weights)
    assert sorted(map(id, arch + weights)) == sorted(map(id, cell.trainable_variables))
    assert (size(arch), size(weights)) == (arch_size, weight_size)
    assert size(cell.trainable_variables) == arch_size + weight_size


def test_mixed_cell_derives_its_one_hot_genotype():
    cell = MixedCell(steps=8, units=UNITS, seed=0)
    cell.build((None, INPUT_DIM))
    darts_v2 = resolve_genotype("darts_v2")
    cell.set_one_hot(darts_v2)
    assert cell.derive() == darts_v2
    small = mixed()
    for genotype in (Genotype((("relu", 0), ("sigmoid", 0), ("identity", 2))),
                     Genotype((("tanh", 0), ("tanh", 1), ("relu", 1)))):
        small.set_one_hot(genotype)
        assert small.derive() == genotype


@pytest.mark.parametrize("k", range(len(NETWORKS)))
def test_weighted_cells_derive_the_one_hot_network(k):
    cells = weighted()
    cells.set_one_hot(k)
    assert cells.derive() == NETWORKS[k]


def test_shared_cell_derives_the_genotype_it_runs():
    cell = shared()
    # Before any set_genotype: the default chain of tanh nodes (node i reads node i-1).
    assert cell.derive() == Genotype((("tanh", 0), ("tanh", 1), ("tanh", 2)), first_node="enas",
                                     output="loose_ends")
    genotype = Genotype((("relu", 0), ("identity", 0), ("sigmoid", 2)), first_node="enas",
                        first_activation="sigmoid", output="loose_ends")
    cell.set_genotype(genotype)
    assert cell.derive() == genotype
    # The arch vector [act_0, pred_1, act_1, ...] with ACTIVATIONS = (tanh, relu, sigmoid, identity).
    cell.set_genotype(np.array([1, 0, 3, 1, 0, 1, 2], np.int32))
    assert cell.derive() == Genotype((("identity", 0), ("tanh", 1), ("sigmoid", 1)), first_node="enas",
                                     first_activation="relu", output="loose_ends")
    mean_cell = SharedCell(steps=2, units=UNITS, first_node="darts", output="mean")
    mean_cell.build((None, INPUT_DIM))
    mean_cell.set_genotype(Genotype((("relu", 0), ("relu", 0))))
    assert mean_cell.derive() == Genotype((("relu", 0), ("relu", 0)))
