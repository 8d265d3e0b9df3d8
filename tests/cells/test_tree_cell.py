"""TreeCell against a NumPy transcription of the NASCell equations (Zoph & Le 2017)."""
import keras
import numpy as np
import pytest

from tfnas.cells import CellRNN
from tfnas.cells.tree_cell import TreeCell
from tfnas.spaces.tree import TreeSpace
from tfnas.genotypes.files import load_genotype

from support import run_with_masks, sigmoid


def relu(v):
    return np.maximum(v, 0)


def nascell_step(x, h, c, kernel, recurrent_kernel, bias=None):
    """The published NASCell equations, written out (tf.contrib.rnn.NASCell; Zoph & Le 2017, Figure 8)."""
    p = np.split(x @ kernel, 8, axis=1)
    m = h @ recurrent_kernel
    q = np.split(m if bias is None else m + bias, 8, axis=1)
    l1 = [sigmoid(p[0] + q[0]), relu(p[1] + q[1]), sigmoid(p[2] + q[2]), relu(p[3] * q[3]),
          np.tanh(p[4] + q[4]), sigmoid(p[5] + q[5]), np.tanh(p[6] + q[6]), sigmoid(p[7] + q[7])]
    l2_0 = np.tanh(l1[0] * l1[1])
    l2_1 = np.tanh(l1[2] + l1[3])
    l2_2 = np.tanh(l1[4] * l1[5])
    l2_3 = sigmoid(l1[6] + l1[7])
    l2_0 = np.tanh(l2_0 + c)
    new_c = l2_0 * l2_1
    l3_1 = np.tanh(l2_2 + l2_3)
    new_h = np.tanh(new_c * l3_1)
    return new_h, new_c


def randomise(cell, rng, scale=0.6):
    for w in cell.weights:
        w.assign(rng.uniform(-scale, scale, w.shape).astype("float32"))


@pytest.mark.parametrize("use_bias", [False, True])
def test_nascell_sequence_matches_numpy(exported_cells, use_bias):
    g = load_genotype(exported_cells / "nascell.json")
    rng = np.random.default_rng(0)
    cell = TreeCell.from_genotype(g, units=6, input_dim=5, use_bias=use_bias)
    randomise(cell, rng)
    bias = cell.bias.numpy() if use_bias else None
    x = rng.normal(size=(3, 7, 5)).astype("float32")
    h = rng.normal(size=(3, 6)).astype("float32") * 0.5
    c = rng.normal(size=(3, 6)).astype("float32") * 0.5
    expected, eh, ec = [], h, c
    for t in range(7):
        eh, ec = nascell_step(x[:, t], eh, ec, cell.kernel.numpy(), cell.recurrent_kernel.numpy(), bias)
        expected.append(eh)
    expected = np.stack(expected, axis=1)
    fused, (fh, fc) = CellRNN(cell)(x, initial_state=[h, c])
    keras_out, kh, kc = keras.layers.RNN(cell, return_sequences=True, return_state=True)(x, initial_state=[h, c])
    np.testing.assert_allclose(fused, expected, atol=2e-5)
    np.testing.assert_allclose(keras_out, expected, atol=2e-5)
    np.testing.assert_allclose(fh, eh, atol=2e-5)
    np.testing.assert_allclose(fc, ec, atol=2e-5)
    np.testing.assert_allclose(kc, ec, atol=2e-5)
    assert np.abs(ec).max() > 0.05  # the memory path is exercised


def test_parameter_count_and_layout(exported_cells):
    g = load_genotype(exported_cells / "nascell.json")
    cell = TreeCell.from_genotype(g, units=10, input_dim=7)
    assert cell.state_size == [10, 10]
    assert tuple(cell.kernel.shape) == (7, 80) and tuple(cell.recurrent_kernel.shape) == (10, 80)
    assert cell.count_params() == (7 + 10) * 8 * 10


def test_generic_tree_rules_leaf_cell_index_and_root_inject():
    """c_t is the pre-activation of a leaf; c_{t-1} injected at the root (general wiring, base 2)."""
    from tfnas.genotypes.tree import TreeGenotype

    g = TreeGenotype((("elem_mult", "relu"), ("add", "sigmoid"), ("add", "tanh")), inject=("elem_mult", "identity"),
                     inject_node=2, cell_node=0)
    rng = np.random.default_rng(3)
    cell = TreeCell.from_genotype(g, units=4, input_dim=3)
    randomise(cell, rng)
    x, h, c = (rng.normal(size=(2, n)).astype("float32") for n in (3, 4, 4))
    p = np.split(x @ cell.kernel.numpy(), 2, axis=1)
    q = np.split(h @ cell.recurrent_kernel.numpy(), 2, axis=1)
    z0 = p[0] * q[0]
    a0, a1 = relu(z0), sigmoid(p[1] + q[1])
    root = np.tanh(a0 + a1) * c
    out, (new_h, new_c) = cell(x, [h, c])
    np.testing.assert_allclose(out, root, atol=1e-6)
    np.testing.assert_allclose(new_h, root, atol=1e-6)
    np.testing.assert_allclose(new_c, z0, atol=1e-6)


def test_keras_round_trip(tmp_path, exported_cells):
    g = load_genotype(exported_cells / "nascell.json")
    inputs = keras.Input((None, 5))
    outputs = keras.layers.RNN(TreeCell(g, units=6, seed=1), return_sequences=True)(inputs)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(2, 4, 5)).astype("float32")
    path = tmp_path / "tree.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert loaded.layers[1].cell.genotype == g


def test_dropout_masks_fixed_per_sequence(exported_cells):
    """In training one x mask and one h mask are drawn per sequence and reused at every step."""
    g = load_genotype(exported_cells / "nascell.json")
    cell = TreeCell.from_genotype(g, units=6, input_dim=5, dropout_x=0.5, dropout_h=0.3, seed=4)
    rng = np.random.default_rng(1)
    randomise(cell, rng)
    x = rng.normal(size=(2, 6, 5)).astype("float32")
    out, mx, mh = run_with_masks(cell, x, (0.5, 0.3))
    h = c = np.zeros((2, 6), "float32")
    for t in range(6):  # the same two masks at every step
        h, c = nascell_step(x[:, t] * mx, h * mh, c, cell.kernel.numpy(), cell.recurrent_kernel.numpy())
        np.testing.assert_allclose(out[:, t], h, atol=2e-5)


def test_invalid_arguments_name_the_argument():
    g = TreeSpace(base=2).sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match="units"):
        TreeCell(g, units=0)
    with pytest.raises(ValueError, match="dropout_h"):
        TreeCell(g, units=3, dropout_h=1.5)
