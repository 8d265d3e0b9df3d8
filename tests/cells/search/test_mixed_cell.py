"""MixedCell (DARTS search cell) against GenotypeCell and a NumPy transcription of the relaxation."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas.cells import CellRNN, GenotypeCell
from tfnas.cells.search.mixed_cell import DARTS_OPS, MixedCell, derive_genotype
from tfnas.cells.search.norm import edge_index, edges, num_edges
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import load_genotype

from support import ACT, numpy_norm, sigmoid


def numpy_search_step(ops, norm, W0, Ws, alpha, x, h, mx=1.0, mh=1.0):
    """The DARTS recurrent search cell written out edge by edge and op by op."""
    u = h.shape[1]
    probs = np.exp(alpha - alpha.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    ch = np.concatenate([x * mx, h * mh], axis=1) @ W0
    s = [numpy_norm(h + sigmoid(ch[:, :u]) * (np.tanh(ch[:, u:]) - h), norm)]
    row = 0
    for i in range(1, Ws.shape[0] + 1):
        total = np.zeros_like(h)
        for j in range(i):
            ch = (s[j] * mh) @ Ws[i - 1]
            c, hh = sigmoid(ch[:, :u]), ch[:, u:]
            for k, op in enumerate(ops):
                if op != "none":
                    total += probs[row, k] * (s[j] + c * (ACT[op](hh) - s[j]))
            row += 1
        s.append(numpy_norm(total, norm))
    return np.mean(s[1:], axis=0)


def randomise(cell, rng, alpha_scale=1.0):
    W0 = rng.uniform(-0.5, 0.5, cell.W0.shape).astype(cell.W0.dtype)
    Ws = rng.uniform(-0.5, 0.5, cell.Ws.shape).astype(cell.Ws.dtype)
    alpha = (alpha_scale * rng.normal(size=cell.alpha.shape)).astype(cell.alpha.dtype)
    for var, value in zip((cell.W0, cell.Ws, cell.alpha), (W0, Ws, alpha)):
        var.assign(value)
    return W0, Ws, alpha


def capture_masks(cell, run, x, batch):
    """Runs ``run()`` and redraws the masks it drew from the same seed state."""
    state = cell.seed_generator.state.numpy().copy()
    result = run()
    cell.seed_generator.state.assign(state)
    mx = cell.get_dropout_mask(tf.constant(x[:, 0])).numpy() if cell.dropout > 0 else 1.0
    mh = cell.get_recurrent_dropout_mask(tf.zeros((batch, cell.units), x.dtype)).numpy() \
        if cell.recurrent_dropout > 0 else 1.0
    cell.reset_dropout_mask()
    cell.reset_recurrent_dropout_mask()
    return result, mx, mh


# ------------------------------------------------------------------ 1. one-hot == GenotypeCell
@pytest.mark.parametrize("name", ["darts_v1", "darts_v2"])
@pytest.mark.parametrize("training", [False, True])
def test_one_hot_equals_genotype_cell(name, training, exported_cells):
    g = load_genotype(exported_cells / f"{name}.json")
    rates = {"dropout_x": 0.4, "dropout_h": 0.3} if training else {}
    frozen = GenotypeCell.from_genotype(g, units=7, input_dim=5, seed=11, **rates)
    search = MixedCell.from_genotype(g, units=7, input_dim=5, norm="none", seed=11, **rates)
    rng = np.random.default_rng(0)
    for w in frozen.weights:
        w.assign(rng.uniform(-0.5, 0.5, w.shape).astype("float32"))
    for dst, src in zip(search.weight_variables, frozen.weights):
        assert dst.name == src.name and dst.shape == src.shape
        dst.assign(src)
    probs = search.probabilities_numpy()
    # The softmax of the one-hot alpha is exactly one-hot: no approximation.
    assert set(np.unique(probs)) == {0.0, 1.0}
    np.testing.assert_array_equal(probs.sum(axis=1), 1.0)
    x = rng.normal(size=(3, 6, 5)).astype("float32")
    h0 = rng.normal(size=(3, 7)).astype("float32")
    # Same seed, same draw order: both cells draw the same variational masks.
    expected, expected_final = CellRNN(frozen)(x, initial_state=[h0], training=training)
    got, got_final = CellRNN(search)(x, initial_state=[h0], training=training)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(got_final[0], expected_final[0], atol=1e-5)
    if training:  # the masks really were on: without them the result differs
        plain, _ = CellRNN(search)(x, initial_state=[h0], training=False)
        assert np.abs(plain - got).max() > 1e-2
    assert search.derive() == g


def test_explicit_one_hot_probabilities_through_transition(exported_cells):
    """prepare(probs=...) takes exact probabilities; one step equals GenotypeCell's step."""
    g = load_genotype(exported_cells / "darts_v2.json")
    frozen = GenotypeCell.from_genotype(g, units=6, input_dim=4)
    search = MixedCell(g.steps, units=6, norm="none")
    search.build((None, 4))
    for dst, src in zip(search.weight_variables, frozen.weights):
        dst.assign(src)
    one_hot = np.zeros((search.num_edges, len(DARTS_OPS)), "float32")
    for i, (act, pred) in enumerate(g.nodes, start=1):
        for j in range(i):
            one_hot[edge_index(i, j), DARTS_OPS.index(act if j == pred else "none")] = 1.0
    alpha = search.one_hot_alpha(g)
    exp = np.exp(alpha - alpha.max(axis=1, keepdims=True))
    np.testing.assert_array_equal(exp / exp.sum(axis=1, keepdims=True), one_hot)
    rng = np.random.default_rng(1)
    x, h = rng.normal(size=(2, 4)).astype("float32"), rng.normal(size=(2, 6)).astype("float32")
    out, (new_h,) = search.transition(search.project_inputs(x), [h], search.prepare(probs=one_hot))
    ref, _ = frozen(x, [h])
    np.testing.assert_allclose(out, ref, atol=1e-6)
    np.testing.assert_array_equal(out, new_h)


# -------------------------------------------------------------- 2. NumPy transcription
@pytest.mark.parametrize("norm", ["none", "layer", "batch"])
def test_sequence_matches_numpy_relaxation(norm):
    rng = np.random.default_rng(2)
    cell = MixedCell(steps=4, units=5, norm=norm)
    cell.build((None, 3))
    W0, Ws, alpha = randomise(cell, rng)
    x = rng.normal(size=(4, 5, 3)).astype("float32")
    h = np.zeros((4, 5), "float32")
    expected = []
    for t in range(5):
        h = numpy_search_step(cell.ops, norm, W0, Ws, alpha, x[:, t], h)
        expected.append(h)
    expected = np.stack(expected, axis=1)
    fused, final = CellRNN(cell)(x)
    np.testing.assert_allclose(fused, expected, atol=1e-5)
    np.testing.assert_allclose(final[0], expected[:, -1], atol=1e-5)
    keras_out = keras.layers.RNN(cell, return_sequences=True)(x)
    np.testing.assert_allclose(keras_out, expected, atol=1e-5)


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_training_masks_match_numpy(norm):
    """Variational masks: x and every node input share masks drawn once per sequence."""
    rng = np.random.default_rng(3)
    ops = ("none", "relu", "identity")
    cell = MixedCell(steps=3, units=6, ops=ops, norm=norm, dropout_x=0.5, dropout_h=0.3, seed=4)
    cell.build((None, 4))
    W0, Ws, alpha = randomise(cell, rng)
    x = rng.normal(size=(3, 4, 4)).astype("float32")
    (out, _), mx, mh = capture_masks(cell, lambda: CellRNN(cell)(x, training=True), x, 3)
    for mask, rate in ((mx, 0.5), (mh, 0.3)):
        kept = mask[mask != 0]
        np.testing.assert_allclose(kept, 1 / (1 - rate), rtol=1e-6)
        assert 0 < kept.size < mask.size
    h = np.zeros((3, 6), "float32")
    for t in range(4):
        h = numpy_search_step(ops, norm, W0, Ws, alpha, x[:, t], h, mx, mh)
        np.testing.assert_allclose(out[:, t], h, atol=1e-5)


def test_batch_norm_statistics_of_nodes():
    """With norm='batch' every node is standardised over the batch: the output has batch mean 0."""
    rng = np.random.default_rng(4)
    cell = MixedCell(steps=3, units=4, norm="batch")
    cell.build((None, 2))
    randomise(cell, rng)
    out, _ = CellRNN(cell)(rng.normal(size=(6, 3, 2)).astype("float32"))
    np.testing.assert_allclose(np.mean(out, axis=0), 0.0, atol=1e-5)
    # A batch of one sequence normalises every node to zero (documented limitation).
    single, _ = CellRNN(cell)(rng.normal(size=(1, 3, 2)).astype("float32"))
    np.testing.assert_array_equal(single, 0.0)


# ------------------------------------------------------------ 3. shapes and parameters
@pytest.mark.parametrize("steps, ops", [(8, DARTS_OPS), (3, ("tanh", "relu")), (1, ("none", "sigmoid"))])
def test_shapes_and_parameter_counts(steps, ops):
    d, u = 11, 13
    cell = MixedCell(steps, u, ops=ops)
    cell.build((None, d))
    assert tuple(cell.alpha.shape) == (steps * (steps + 1) // 2, len(ops)) == (num_edges(steps), len(ops))
    assert sum(int(np.prod(v.shape)) for v in cell.weight_variables) == (d + u) * 2 * u + steps * u * 2 * u
    assert cell.count_params() == (d + u) * 2 * u + steps * u * 2 * u + num_edges(steps) * len(ops)
    assert [v.name for v in cell.arch_variables] == ["alpha_cell"]
    assert [v.name for v in cell.weight_variables] == ["W0", "Ws"]
    assert tuple(cell.Ws.shape) == (steps, u, 2 * u)
    out, (h,) = cell(np.zeros((2, d), "float32"), [np.zeros((2, u), "float32")])
    assert out.shape == (2, u) and h.shape == (2, u)
    seq, _ = CellRNN(cell)(np.zeros((2, 3, d), "float32"))
    assert seq.shape == (2, 3, u)
    assert cell.project_inputs(np.zeros((2, 3, 4, d), "float32")).shape == (2, 3, 4, 2 * u)


def test_edge_row_order():
    assert edges(3) == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    assert [edge_index(i, j) for i, j in edges(4)] == list(range(10))
    with pytest.raises(ValueError, match="node 2"):
        edge_index(2, 2)


def test_initialisation_matches_genotype_cell_layout():
    g = Genotype((("tanh", 0), ("relu", 1), ("sigmoid", 1)))
    frozen = GenotypeCell.from_genotype(g, units=16, input_dim=8, seed=3)
    search = MixedCell.from_genotype(g, units=16, input_dim=8, seed=3)
    for a, b in zip(search.weight_variables, frozen.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert np.abs(search.Ws.numpy()).max() <= 0.04
    fresh = MixedCell(steps=8, units=4, seed=0)
    fresh.build((None, 4))
    std = fresh.alphas_numpy().std()
    assert 5e-4 < std < 2e-3  # 1e-3 * N(0, 1), 180 draws


# --------------------------------------------------------------------------- 4. derive
def test_derive_on_hand_set_alphas():
    cell = MixedCell(steps=3, units=2)
    cell.build((None, 2))
    #              none  tanh  relu  sigm  iden
    alpha = np.array([
        [0.0, 0.0, 2.0, 0.0, 0.0],   # 1<-0: relu
        [0.0, 1.0, 0.0, 0.0, 0.0],   # 2<-0: best 1.0
        [0.0, 0.0, 0.0, 0.0, 3.0],   # 2<-1: identity wins the node
        [0.0, 0.5, 0.0, 0.0, 0.0],   # 3<-0
        [0.0, 0.0, 0.0, 2.5, 0.0],   # 3<-1: sigmoid wins the node
        [0.0, 0.0, 1.5, 0.0, 0.0],   # 3<-2
    ], "float32")
    cell.alpha.assign(alpha)
    g = cell.derive(attention="dot")
    assert g.nodes == (("relu", 0), ("identity", 1), ("sigmoid", 1))
    assert g.first_node == "darts" and g.output == "mean" and g.attention == "dot"
    probs = cell.probabilities_numpy()
    np.testing.assert_allclose(probs, np.exp(alpha) / np.exp(alpha).sum(1, keepdims=True), rtol=1e-6)
    np.testing.assert_array_equal(cell.alphas_numpy(), alpha)


def test_derive_never_selects_none():
    ops = ("none", "tanh", "relu")
    probs = np.array([
        [0.90, 0.04, 0.06],   # 1<-0: none dominates, relu is the best real op
        [0.98, 0.01, 0.01],   # 2<-0: strongest none, weakest real ops
        [0.50, 0.45, 0.05],   # 2<-1: tanh 0.45 wins node 2
    ])
    g = derive_genotype(probs, ops)
    assert g.nodes == (("relu", 0), ("tanh", 1))
    # Ties go to the first predecessor and the first op, as in the reference code.
    assert derive_genotype(np.full((3, 3), 1 / 3), ops).nodes == (("tanh", 0), ("tanh", 0))


# ------------------------------------------------------------------------ 5. gradients
def _loss(cell, x, target):
    out, _ = CellRNN(cell, dtype=cell.dtype_policy.name)(x, training=True)
    return tf.reduce_sum(out * target)


def test_gradients_reach_alpha_and_weights_separately():
    rng = np.random.default_rng(5)
    cell = MixedCell(steps=3, units=4, norm="batch", dropout_h=0.2, seed=1)
    cell.build((None, 3))
    randomise(cell, rng, alpha_scale=0.5)
    x = tf.constant(rng.normal(size=(4, 3, 3)).astype("float32"))
    target = tf.constant(rng.normal(size=(4, 3, 4)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        loss = _loss(cell, x, target)
    (g_alpha,) = tape.gradient(loss, cell.arch_variables)
    g_w0, g_ws = tape.gradient(loss, cell.weight_variables)
    assert g_alpha.shape == cell.alpha.shape
    # Every edge row receives a gradient; rows of a softmax have zero-sum gradients.
    assert np.all(np.abs(g_alpha.numpy()).sum(axis=1) > 1e-6)
    np.testing.assert_allclose(g_alpha.numpy().sum(axis=1), 0.0, atol=1e-5)
    assert np.abs(g_w0.numpy()).max() > 1e-4 and np.abs(g_ws.numpy()).max() > 1e-4
    assert len(cell.trainable_variables) == 3


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_alpha_gradient_matches_finite_differences(norm):
    rng = np.random.default_rng(6)
    cell = MixedCell(steps=2, units=3, ops=("none", "tanh", "sigmoid"), norm=norm, dtype="float64")
    cell.build((None, 2))
    randomise(cell, rng, alpha_scale=0.5)
    x = tf.constant(rng.normal(size=(4, 3, 2)))
    target = tf.constant(rng.normal(size=(4, 3, 3)))
    with tf.GradientTape() as tape:
        loss = _loss(cell, x, target)
    grad = tape.gradient(loss, cell.alpha).numpy()
    alpha = cell.alphas_numpy().copy()
    eps = 1e-6
    for row, col in [(0, 1), (1, 0), (2, 2)]:
        values = []
        for sign in (1, -1):
            shifted = alpha.copy()
            shifted[row, col] += sign * eps
            cell.alpha.assign(shifted)
            values.append(float(_loss(cell, x, target)))
        cell.alpha.assign(alpha)
        numeric = (values[0] - values[1]) / (2 * eps)
        assert abs(grad[row, col]) > 1e-4
        assert abs(grad[row, col] - numeric) <= 1e-3 * abs(numeric)


# ---------------------------------------------------------------------- 6. round trip
def test_keras_round_trip(tmp_path):
    inputs = keras.Input((None, 5))
    cell = MixedCell(steps=3, units=8, ops=("none", "tanh", "relu"), norm="layer", dropout_x=0.1,
                     dropout_h=0.2, init_range=0.1, seed=7)
    outputs = keras.layers.RNN(cell, return_sequences=True)(inputs)
    model = keras.Model(inputs, outputs)
    cell.alpha.assign(np.random.default_rng(0).normal(size=cell.alpha.shape).astype("float32"))
    x = np.random.default_rng(1).normal(size=(2, 4, 5)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded(x), model(x))
    restored = loaded.layers[1].cell
    assert isinstance(restored, MixedCell)
    np.testing.assert_array_equal(restored.alphas_numpy(), cell.alphas_numpy())
    assert restored.get_config() == cell.get_config()
    assert restored.ops == ("none", "tanh", "relu") and restored.norm == "layer" and restored.dropout_h == 0.2


def test_cell_rnn_round_trip(tmp_path):
    inputs = keras.Input((None, 3))
    outputs, _ = CellRNN(MixedCell(steps=2, units=4, norm="batch", seed=2))(inputs)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(2).normal(size=(3, 5, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded(x), model(x))


# ------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "`steps`"), ({"units": 0}, "`units`"), ({"ops": ("tanh", "swish")}, "'swish'"),
    ({"ops": ("tanh", "none")}, "'none' must come first"), ({"ops": ("none",)}, "other than 'none'"),
    ({"ops": "tanh"}, "`ops`"), ({"ops": ("tanh", "tanh")}, "repeat"), ({"norm": "group"}, "norm='group'"),
    ({"dropout_x": 1.0}, "`dropout_x`"), ({"dropout_h": -0.1}, "`dropout_h`"), ({"init_range": 0}, "`init_range`"),
])
def test_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MixedCell(**{"steps": 2, "units": 4, **kwargs})


def test_set_one_hot_checks_the_genotype():
    cell = MixedCell(steps=2, units=3, ops=("tanh", "relu"))
    cell.build((None, 2))
    with pytest.raises(ValueError, match="'none'"):
        cell.set_one_hot(Genotype((("tanh", 0), ("relu", 0))))
    cell = MixedCell(steps=2, units=3, ops=("none", "tanh"))
    cell.build((None, 2))
    with pytest.raises(ValueError, match="'relu'"):
        cell.set_one_hot(Genotype((("tanh", 0), ("relu", 0))))
    with pytest.raises(ValueError, match="steps=2"):
        cell.set_one_hot(Genotype((("tanh", 0),)))
    with pytest.raises(ValueError, match="first_node"):
        cell.set_one_hot(Genotype((("tanh", 0), ("tanh", 1)), first_node="wenet"))
