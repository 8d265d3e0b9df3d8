"""WeightedCells (WeNet eq. 4) against GenotypeCell, a loop over cells and a NumPy transcription."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas.cells import CellRNN, GenotypeCell
from tfnas.cells.search.weighted_cells import WeightedCells
from tfnas.genotypes.dag import Genotype
from tfnas.spaces import DagSpace

from support import ACT, numpy_norm, sigmoid


def numpy_node0(first_node, W0, x, h):
    """Node 0 before normalisation.

    darts: DARTS' ``_compute_init_state`` (rnn/model_search.py), the node WeNet's code is built on:
    [c0, h0] = [x, h_prev] W0, c0 = sigmoid, h0 = tanh, s0 = h_prev + c0 (h0 - h_prev).
    wenet: WeNet §3.1 (l.55) read literally: c = sigmoid(W_x x), h = tanh(W_h h_prev), same highway.
    """
    d, u = x.shape[1], h.shape[1]
    if first_node == "darts":
        ch = np.concatenate([x, h], axis=1) @ W0
        c0, h0 = sigmoid(ch[:, :u]), np.tanh(ch[:, u:])
    else:
        c0, h0 = sigmoid(x @ W0[:d]), np.tanh(h @ W0[d:])
    return h + c0 * (h0 - h)


def numpy_step(genotypes, norm, W0, Ws, logits, x, h):
    """WeNet eq. 4 written network by network: h_t = sum_k softmax(w)_k N_k(x_t, h_{t-1})."""
    u = h.shape[1]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    out = np.zeros_like(h)
    for k, g in enumerate(genotypes):
        s = [numpy_norm(numpy_node0(g.first_node, W0[k], x, h), norm)]
        for i, (act, j) in enumerate(g.nodes, start=1):
            ch = s[j] @ Ws[k][i - 1]
            s.append(numpy_norm(s[j] + sigmoid(ch[:, :u]) * (ACT[act](ch[:, u:]) - s[j]), norm))
        out += p[k] * np.mean([s[i] for i in g.concat], axis=0)
    return out


def make_cells(m=4, steps=3, units=6, input_dim=5, first_node="darts", output="mean", seed=0, **kwargs):
    genotypes = DagSpace(steps, first_node=first_node, output=output).sample_unique(m, np.random.default_rng(seed))
    cells = WeightedCells.from_genotypes(genotypes, units, input_dim, **kwargs)
    rng = np.random.default_rng(seed + 1)
    for v in cells.weight_variables:      # larger than the default init so every op matters
        v.assign(rng.uniform(-0.6, 0.6, v.shape).astype("float32"))
    return cells, rng


# ------------------------------------------------------ 1. one-hot == that GenotypeCell
@pytest.mark.parametrize("first_node, output", [("darts", "mean"), ("wenet", "mean"), ("darts", "loose_ends"),
                                                ("enas", "mean")])
@pytest.mark.parametrize("training", [False, True])
def test_one_hot_weight_equals_that_genotype_cell(first_node, output, training):
    rates = {"dropout_x": 0.4, "dropout_h": 0.3} if training else {}
    cells, rng = make_cells(m=5, steps=4, first_node=first_node, output=output, norm="none", seed=3, **rates)
    x = rng.normal(size=(3, 6, 5)).astype("float32")
    h0 = rng.normal(size=(3, 6)).astype("float32")
    for k in range(cells.num_networks):
        cells.set_one_hot(k)
        probs = cells.probabilities_numpy()
        np.testing.assert_array_equal(probs, np.eye(cells.num_networks)[k])   # exactly one-hot
        single = cells.get_network(k)          # same parameters, same seed -> same dropout masks
        cells.seed_generator.state.assign(single.seed_generator.state)
        expected, (expected_h,) = CellRNN(single)(x, initial_state=[h0], training=training)
        got, (got_h,) = CellRNN(cells)(x, initial_state=[h0], training=training)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        np.testing.assert_allclose(got_h, expected_h, atol=1e-5)
        assert cells.derive() == cells.genotypes[k] == single.genotype
    if training:   # the masks really were on
        plain, _ = CellRNN(cells)(x, initial_state=[h0], training=False)
        assert np.abs(plain - got).max() > 1e-2


def test_one_hot_through_keras_rnn_and_single_step():
    cells, rng = make_cells(m=3, norm="none", seed=5)
    cells.set_one_hot(1)
    single = cells.get_network(1)
    x = rng.normal(size=(2, 4, 5)).astype("float32")
    got = keras.layers.RNN(cells, return_sequences=True)(x)
    expected = keras.layers.RNN(single, return_sequences=True)(x)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    h = rng.normal(size=(2, 6)).astype("float32")
    out, (new_h,) = cells(x[:, 0], [h])
    ref, _ = single(x[:, 0], [h])
    np.testing.assert_allclose(out, ref, atol=1e-6)
    np.testing.assert_array_equal(out, new_h)


# ------------------------------------------------- 2. general weights: loop and NumPy references
def test_general_weights_equal_a_loop_over_genotype_cells():
    """h_t = sum_k p_k N_k(x_t, h_{t-1}) with every N_k a separate GenotypeCell fed the combined state."""
    cells, rng = make_cells(m=4, steps=4, norm="none", seed=7)
    cells.network_logits.assign(rng.normal(size=4).astype("float32"))
    p = cells.probabilities_numpy()
    assert p.min() > 0.04                   # every network contributes
    singles = [cells.get_network(k) for k in range(4)]
    x = rng.normal(size=(3, 5, 5)).astype("float32")
    h = rng.normal(size=(3, 6)).astype("float32")
    got, _ = CellRNN(cells)(x, initial_state=[h])
    for t in range(5):
        h = sum(p[k] * singles[k](x[:, t], [h])[0].numpy() for k in range(4))
        np.testing.assert_allclose(got[:, t], h, atol=1e-5)


@pytest.mark.parametrize("first_node", ["darts", "wenet"])
@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_sequence_matches_numpy_transcription(norm, first_node):
    cells, rng = make_cells(m=3, steps=4, first_node=first_node, norm=norm, seed=11)
    logits = rng.normal(size=3).astype("float32")
    cells.network_logits.assign(logits)
    W0, Ws = cells.W0.numpy(), cells.Ws.numpy()
    x = rng.normal(size=(4, 5, 5)).astype("float32")
    h = rng.normal(size=(4, 6)).astype("float32")
    got, (final,) = CellRNN(cells)(x, initial_state=[h])
    for t in range(5):
        h = numpy_step(cells.genotypes, norm, W0, Ws, logits, x[:, t], h)
        np.testing.assert_allclose(got[:, t], h, atol=2e-5)
    np.testing.assert_allclose(final, h, atol=2e-5)
    if norm == "batch":   # every node standardised over the batch -> the output has batch mean 0
        np.testing.assert_allclose(np.mean(got, axis=0), 0.0, atol=1e-5)


def test_weight_gradient_is_the_softmax_jacobian():
    """dL/dw_k = p_k (N_k - h_t) . dL/dh_t for one step (eq. 4)."""
    cells, rng = make_cells(m=4, norm="none", seed=13)
    cells.network_logits.assign(rng.normal(size=4).astype("float32"))
    x, h = rng.normal(size=(2, 5)).astype("float32"), rng.normal(size=(2, 6)).astype("float32")
    g = rng.normal(size=(2, 6)).astype("float32")
    with tf.GradientTape() as tape:
        out, _ = cells(x, [h])
        loss = tf.reduce_sum(out * g)
    grad = tape.gradient(loss, cells.network_logits).numpy()
    p = cells.probabilities_numpy()
    nets = np.stack([cells.get_network(k)(x, [h])[0].numpy() for k in range(4)])
    expected = p * np.sum((nets - out.numpy()[None]) * g[None], axis=(1, 2))
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)
    assert np.abs(grad).min() > 1e-4


def test_from_a_zero_state_the_darts_node_reads_x_and_the_wenet_option_stays_at_zero():
    """Why only the ``first_node="wenet"`` option needs a random initial state under batch norm.

    From h = 0, DARTS' node 0 gives s0 = sigmoid(c0) tanh(h0~) with [c0, h0~] = [x, 0] W0, a function of x.
    The literal node of WeNet §3.1 gives s0 = 0 whatever x; batch norm removes the constant
    0.5 * sigmoid(0) that a sigmoid node then adds, so the zero state is a fixed point.
    """
    x = np.random.default_rng(0).normal(size=(4, 3, 5)).astype("float32")
    zero = np.zeros((4, 6), "float32")
    darts = WeightedCells.from_genotypes([Genotype((("sigmoid", 0), ("tanh", 1)))], 6, 5, norm="batch")
    out, _ = CellRNN(darts)(x)
    expected = numpy_step(darts.genotypes, "batch", darts.W0.numpy(), darts.Ws.numpy(), np.zeros(1), x[:, 0], zero)
    np.testing.assert_allclose(out[:, 0], expected, atol=1e-5)
    assert np.abs(out[:, 0]).mean() > 0.1
    g = Genotype((("sigmoid", 0), ("tanh", 1)), first_node="wenet")
    batch = WeightedCells.from_genotypes([g], 6, 5, norm="batch")
    out, _ = CellRNN(batch)(x)
    np.testing.assert_array_equal(out, 0.0)
    plain = WeightedCells.from_genotypes([g], 6, 5, norm="none")
    out, _ = CellRNN(plain)(x)
    assert np.abs(out[:, 0]).min() > 0.1                  # sigmoid(0) * sigmoid(0) = 0.25 leaves zero
    assert np.abs(out[0, 1:] - out[1, 1:]).max() > 1e-4     # and from t = 1 on the input matters


# ----------------------------------------------------------- 3. parameters and layout
def test_shapes_parameter_counts_and_network_round_trip():
    m, steps, u, d = 5, 3, 6, 5
    cells, rng = make_cells(m=m, steps=steps, units=u, input_dim=d, seed=17)
    # DARTS' layout per network: W0 [d + u, 2u] for [c0, h0] of node 0, then [u, 2u] per node; plus w
    assert tuple(cells.W0.shape) == (m, d + u, 2 * u) and tuple(cells.Ws.shape) == (m, steps, u, 2 * u)
    assert cells.count_params() == m * ((d + u) * 2 * u + steps * u * 2 * u) + m
    literal, _ = make_cells(m=m, steps=steps, units=u, input_dim=d, first_node="wenet")
    assert tuple(literal.W0.shape) == (m, d + u, u)                  # W_x and W_h: u columns each
    assert [v.name for v in cells.arch_variables] == ["network_logits"]
    assert [v.name for v in cells.weight_variables] == ["W0", "Ws"]
    np.testing.assert_array_equal(cells.predecessors, [[j for _, j in g.nodes] for g in cells.genotypes])
    single = GenotypeCell.from_genotype(cells.genotypes[2], u, d)
    for w in single.weights:
        w.assign(rng.normal(size=w.shape).astype("float32"))
    before = cells.W0.numpy()
    cells.set_network(2, single)
    np.testing.assert_array_equal(cells.W0.numpy()[2], single.W0.numpy())
    np.testing.assert_array_equal(cells.Ws.numpy()[2], single.Ws.numpy())
    np.testing.assert_array_equal(np.delete(cells.W0.numpy(), 2, 0), np.delete(before, 2, 0))
    back = cells.get_network(2)
    np.testing.assert_array_equal(back.W0.numpy(), single.W0.numpy())
    with pytest.raises(ValueError, match="network 1 is"):
        cells.set_network(1, single)
    with pytest.raises(ValueError, match="network index in 0..4"):
        cells.get_network(5)


def test_config_round_trip_and_argument_errors():
    cells, _ = make_cells(m=3, norm="layer", dropout_x=0.2, seed=19)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cells))
    assert clone.genotypes == cells.genotypes and clone.norm == "layer" and clone.dropout == 0.2
    g2, g3 = DagSpace(2, first_node="wenet").sample(0), DagSpace(3, first_node="wenet").sample(0)
    with pytest.raises(ValueError, match="same number of steps"):
        WeightedCells([g2, g3], 4)
    with pytest.raises(ValueError, match="same first_node"):
        WeightedCells([g2, Genotype(g2.nodes)], 4)
    with pytest.raises(ValueError, match="`norm` must be one of"):
        WeightedCells([g2], 4, norm="group")
    with pytest.raises(ValueError, match="non-empty list"):
        WeightedCells([], 4)
    with pytest.raises(ValueError, match="`init_noise` must be >= 0; received: init_noise=-0.5"):
        WeightedCells([g2], 4, init_noise=-0.5)


def test_weighted_supernet_splits_weights_and_round_trips():
    from tfnas.config import ModelConfig
    from tfnas.lm import LanguageModel, cell_arguments, supernet

    genotypes = DagSpace(2, first_node="wenet").sample_unique(3, np.random.default_rng(0))
    settings = ModelConfig(emsize=4, nhid=4)
    cells = WeightedCells(genotypes, norm="batch", init_noise=0.5, state_seed=2, **cell_arguments(settings, 2))
    lm = supernet(12, cells, settings, 2)
    assert [v.name for v in lm.arch_variables] == ["network_logits"]
    assert sorted(v.name for v in lm.weight_variables) == ["W0", "Ws", "decoder_bias", "embeddings"]
    state = lm.initial_state(5)[0].numpy()
    np.testing.assert_array_equal(state, lm.initial_state(5)[0].numpy())     # a fixed draw
    assert 0.2 < state.std() < 1.0
    clone = LanguageModel.from_config(lm.get_config())
    assert clone.cell.genotypes == lm.cell.genotypes and clone.cell.init_noise == 0.5 and clone.cell.norm == "batch"
    np.testing.assert_array_equal(state, clone.initial_state(5)[0].numpy())     # the same draw after a round trip
    lm.cell.set_one_hot(1)
    assert lm.derive() == genotypes[1]
