"""BayesCell (BayesNAS supernet, thesis §3.1-3.2) against GenotypeCell and a NumPy transcription of Eq. 3.1."""
import numpy as np
import pytest
import tensorflow as tf

from tfnas.cells import CellRNN, GenotypeCell
from tfnas.cells.search import SearchCell
from tfnas.cells.search.bayes_cell import BayesCell
from tfnas.genotypes.files import load_genotype

from support import ACT, numpy_norm, sigmoid

OPS = ("tanh", "relu", "sigmoid", "identity")


def numpy_bayes_step(ops, norm, W0, Ws, w, d, x, h):
    """Eq. 3.1 with highway ops (3.3-3.4) and dummy nodes scaling each edge's output, edge by edge, op by op."""
    u = h.shape[1]
    ch = np.concatenate([x, h], axis=1) @ W0
    s = [numpy_norm(h + sigmoid(ch[:, :u]) * (np.tanh(ch[:, u:]) - h), norm)]
    row = 0
    for j in range(1, Ws.shape[0] + 1):
        a = np.zeros_like(h)
        for i in range(j):
            ch = s[i] @ Ws[j - 1]
            c, hh = sigmoid(ch[:, :u]), ch[:, u:]
            a += d[row] * sum(w[row, k] * (s[i] + c * (ACT[op](hh) - s[i])) for k, op in enumerate(ops))
            row += 1
        s.append(numpy_norm(a, norm))
    return np.mean(s[1:], axis=0)


def random_cell(rng, steps=3, units=4, input_dim=5, norm="batch", ops=OPS):
    cell = BayesCell(steps, units, ops=ops, norm=norm, seed=0)
    cell.build((None, input_dim))
    for var in cell.weights:
        var.assign(rng.uniform(-0.8, 0.8, var.shape).astype(var.dtype))
    return cell


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_the_cell_is_eq_3_1_with_dummies_on_the_edge_outputs(norm):
    rng = np.random.default_rng(1)
    cell = random_cell(rng, norm=norm)
    d = cell.bayes_d.numpy()
    d[[1, 4]] = 0.0                                   # two dummies OFF: those edges contribute nothing
    cell.bayes_d.assign(d)
    x = rng.normal(size=(6, 3, 5)).astype("float32")
    outputs, _ = CellRNN(cell)(x)
    h = np.zeros((6, 4))
    W0, Ws, w = cell.W0.numpy(), cell.Ws.numpy(), cell.bayes_w.numpy()
    for t in range(3):
        h = numpy_bayes_step(OPS, norm, W0, Ws, w, d, x[:, t], h)
        np.testing.assert_allclose(outputs[:, t], h, atol=2e-5)


@pytest.mark.parametrize("name", ["darts_v1", "darts_v2"])
def test_one_hot_scalars_unit_dummies_and_no_norm_equal_the_genotype_cell(name, exported_cells):
    g = load_genotype(exported_cells / f"{name}.json")
    cell = BayesCell(g.steps, 6, norm="none", seed=0)
    cell.build((None, 5))
    rng = np.random.default_rng(2)
    cell.W0.assign(rng.uniform(-0.5, 0.5, cell.W0.shape).astype("float32"))
    cell.Ws.assign(rng.uniform(-0.5, 0.5, cell.Ws.shape).astype("float32"))
    cell.bayes_d.assign(rng.uniform(0, 2, cell.bayes_d.shape).astype("float32"))
    cell.set_one_hot(g)
    np.testing.assert_array_equal(cell.bayes_d.numpy(), 1.0)
    frozen = GenotypeCell.from_genotype(g, 6, 5)
    frozen.W0.assign(cell.W0)
    frozen.Ws.assign(cell.Ws)
    x = rng.normal(size=(3, 7, 5)).astype("float32")
    np.testing.assert_allclose(CellRNN(cell)(x)[0], CellRNN(frozen)(x)[0], atol=1e-5)


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_trace_recomputes_every_step_and_its_variances(norm):
    rng = np.random.default_rng(3)
    cell = random_cell(rng, norm=norm)
    x = rng.normal(size=(6, 4, 5)).astype("float32")
    outputs, _ = CellRNN(cell)(x)
    h_prev = tf.concat([tf.zeros((1, 6, 4)), tf.transpose(outputs, [1, 0, 2])[:-1]], axis=0)
    trace = cell.trace(tf.transpose(cell.project_inputs(x), [1, 0, 2]), h_prev)
    np.testing.assert_allclose(trace["output"], np.transpose(outputs, [1, 0, 2]), atol=1e-5)
    assert [tuple(c.shape) for c in trace["c"]] == [(j, 4, 6, 4) for j in (1, 2, 3)]
    # node 1 before normalisation is d * sum_o w^o (s0 + c (o(h~) - s0)); its variance is var + 1e-5
    s0, c, hh = trace["s"][0].numpy(), trace["c"][0][0].numpy(), trace["h"][0][0].numpy()
    w, d = cell.bayes_w.numpy(), cell.bayes_d.numpy()
    a1 = d[0] * sum(w[0, k] * (s0 + c * (ACT[op](hh) - s0)) for k, op in enumerate(OPS))
    axis = {"batch": 1, "layer": 2}.get(norm)
    expected = 1.0 if axis is None else a1.var(axis=axis, keepdims=True) + 1e-5
    np.testing.assert_allclose(np.broadcast_to(trace["var"][1], a1.shape), np.broadcast_to(expected, a1.shape),
                               rtol=1e-4)


def test_scalars_are_the_architecture_variables_initialised_to_one():
    cell = BayesCell(3, 4)
    cell.build((None, 5))
    assert isinstance(cell, SearchCell)
    assert [v.name for v in cell.arch_variables] == ["bayes_w", "bayes_d"]
    assert sorted(v.name for v in cell.weight_variables) == ["W0", "Ws"]
    assert len(cell.trainable_variables) == 4                       # no softmax logits (alpha)
    np.testing.assert_array_equal(cell.bayes_w.numpy(), np.ones((6, 4)))
    np.testing.assert_array_equal(cell.bayes_d.numpy(), np.ones(6))
    np.testing.assert_array_equal(cell.probabilities().numpy(), np.ones((6, 4)))


def test_no_none_op_and_derive_points_to_the_gamma_derivation():
    with pytest.raises(ValueError, match="no 'none' op"):
        BayesCell(3, 4, ops=("none", "tanh"))
    cell = BayesCell(2, 4)
    cell.build((None, 3))
    with pytest.raises(TypeError, match="derive_pruned"):
        cell.derive()
