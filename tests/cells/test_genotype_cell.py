"""GenotypeCell against a NumPy transcription of the DARTS cell equations."""
import keras
import numpy as np
import pytest

from tfnas.cells import CellRNN, GenotypeCell, node_schedule
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import load_genotype

from support import numpy_step, run_with_masks


def random_weights(cell, rng):
    for w in cell.weights:
        w.assign(rng.uniform(-0.5, 0.5, w.shape).astype("float32"))
    return cell.W0.numpy(), cell.Ws.numpy()


CELLS = ["darts_v1", "darts_v2", "enas"]


@pytest.mark.parametrize("name", CELLS)
def test_sequence_matches_numpy(name, exported_cells):
    g = load_genotype(exported_cells / f"{name}.json")
    rng = np.random.default_rng(1)
    cell = GenotypeCell.from_genotype(g, units=7, input_dim=5)
    W0, Ws = random_weights(cell, rng)
    x = rng.normal(size=(3, 6, 5)).astype("float32")
    h = np.zeros((3, 7), "float32")
    expected = []
    for t in range(6):
        h = numpy_step(g, W0, Ws, x[:, t], h)
        expected.append(h)
    expected = np.stack(expected, axis=1)
    fused, final = CellRNN(cell)(x)
    keras_out = keras.layers.RNN(cell, return_sequences=True)(x)
    np.testing.assert_allclose(fused, expected, atol=1e-5)
    np.testing.assert_allclose(keras_out, expected, atol=1e-5)
    np.testing.assert_allclose(final[0], expected[:, -1], atol=1e-5)


@pytest.mark.parametrize("first_node, first_activation", [("wenet", "tanh"), ("enas", "relu")])
def test_first_node_variants(first_node, first_activation):
    g = Genotype((("relu", 0), ("sigmoid", 1), ("identity", 0)), first_node=first_node,
                 first_activation=first_activation, output="loose_ends")
    rng = np.random.default_rng(2)
    cell = GenotypeCell.from_genotype(g, units=4, input_dim=3)
    W0, Ws = random_weights(cell, rng)
    x, h = rng.normal(size=(2, 3)).astype("float32"), rng.normal(size=(2, 4)).astype("float32")
    out, (new_h,) = cell(x, [h])
    np.testing.assert_allclose(out, numpy_step(g, W0, Ws, x, h), atol=1e-5)
    np.testing.assert_array_equal(out, new_h)


@pytest.mark.parametrize("first_node", ["darts", "wenet"])
def test_parameter_count_formula(first_node):
    g = load_genotype("exported_cells/darts_v2.json") if first_node == "darts" else \
        Genotype((("tanh", 0),) * 1 + (("relu", 1),), first_node="wenet")
    d, u, n = 11, 13, g.steps
    cell = GenotypeCell.from_genotype(g, units=u, input_dim=d)
    first = (d + u) * 2 * u if first_node == "darts" else (d + u) * u
    assert cell.count_params() == first + n * u * 2 * u
    assert tuple(cell.Ws.shape) == (n, u, 2 * u)


def test_dropout_masks_fixed_per_sequence_and_match_numpy():
    """In training the x and h masks are drawn once and reused at every step (variational dropout)."""
    g = load_genotype("exported_cells/darts_v2.json")
    cell = GenotypeCell.from_genotype(g, units=6, input_dim=4, dropout_x=0.5, dropout_h=0.3, seed=5)
    rng = np.random.default_rng(3)
    W0, Ws = random_weights(cell, rng)
    x = rng.normal(size=(2, 5, 4)).astype("float32")
    out, mx, mh = run_with_masks(cell, x, (0.5, 0.3))
    h = np.zeros((2, 6), "float32")
    for t in range(5):
        h = numpy_step(g, W0, Ws, x[:, t], h, mx, mh)
        np.testing.assert_allclose(out[:, t], h, atol=1e-5)


def test_node_schedule_groups_shared_predecessors():
    g = load_genotype("exported_cells/darts_v2.json")
    # node 1 reads 0; nodes 2, 3, 4 read 1; 5 reads 2; 7 reads 3; 6 and 8 read 5.
    assert node_schedule(g) == ((0, (1,)), (1, (2, 3, 4)), (2, (5,)), (3, (7,)), (5, (6, 8)))


def test_keras_round_trip(tmp_path, exported_cells):
    g = load_genotype(exported_cells / "darts_v2.json")
    inputs = keras.Input((None, 5))
    outputs = keras.layers.RNN(GenotypeCell(g, units=8, dropout_x=0.1), return_sequences=True)(inputs)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(2, 4, 5)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded(x), model(x))
    cell = loaded.layers[1].cell
    assert isinstance(cell, GenotypeCell) and cell.genotype == g and cell.dropout_x == 0.1


@pytest.mark.parametrize("kwargs, message", [
    ({"units": 0}, "`units`"), ({"units": 4, "dropout_x": 1.0}, "`dropout_x`"),
    ({"units": 4, "dropout_h": -0.1}, "`dropout_h`"), ({"units": 4, "init_range": 0}, "`init_range`"),
])
def test_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GenotypeCell(Genotype((("tanh", 0),)), **kwargs)
