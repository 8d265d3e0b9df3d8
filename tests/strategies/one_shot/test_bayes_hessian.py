"""The diagonal Hessian of BayesNAS' scalars (thesis ch. 4): every rule and both estimators in float64
against TensorFlow Jacobians."""
import numpy as np
import pytest
import tensorflow as tf

from tfnas.cells.search import BayesCell
from tfnas.config import ModelConfig
from tfnas.lm.model import cell_arguments, supernet
from tfnas.strategies.one_shot.bayes_hessian import (decoder_hessian, edge_input_hessian, edge_outputs,
                                                     exact_ggn_hessian, norm_hessian, recursive_hessian,
                                                     scalar_hessian, scalar_hessians)

OPS = ("tanh", "relu", "sigmoid", "identity")
ACT = {"tanh": tf.tanh, "relu": tf.nn.relu, "sigmoid": tf.sigmoid, "identity": tf.identity}


def const(rng, *shape, low=-1.0, high=1.0):
    return tf.constant(rng.uniform(low, high, shape), tf.float64)


def ggn_diagonal(jacobian, h):
    """``diag(J^T diag(h) J)`` for a per-row Jacobian ``[B, out, in]`` and ``h`` ``[B, out]``."""
    return tf.einsum("bui,bu->bi", tf.square(jacobian), h)


def test_r0_is_the_exact_softmax_ggn_of_the_tied_decoder():
    rng = np.random.default_rng(0)
    emb, h = const(rng, 7, 3), const(rng, 2, 3)
    logits = tf.linalg.matmul(h, emb, transpose_b=True)
    p = tf.nn.softmax(logits)
    lam = tf.linalg.diag(p) - p[:, :, None] * p[:, None, :]                    # [B, V, V]
    expected = tf.linalg.diag_part(tf.einsum("vi,bvw,wj->bij", emb, lam, emb))
    np.testing.assert_allclose(decoder_hessian(p, emb), expected, atol=1e-12)
    np.testing.assert_array_less(-1e-15, decoder_hessian(p, emb).numpy())


def test_r2_divides_by_the_variance_of_a_normalisation_with_frozen_statistics():
    rng = np.random.default_rng(1)
    a, h = const(rng, 5, 3), const(rng, 5, 3, low=0.0)
    mean, var = tf.reduce_mean(a, 0), tf.math.reduce_variance(a, 0) + 1e-5
    with tf.GradientTape() as tape:
        tape.watch(a)
        s = (a - tf.stop_gradient(mean)) / tf.sqrt(tf.stop_gradient(var))
    jac = tape.batch_jacobian(s, a)
    np.testing.assert_allclose(norm_hessian(h, var), ggn_diagonal(jac, h), rtol=1e-12)


@pytest.mark.parametrize("ops", [("tanh",), ("relu",), ("sigmoid",), ("identity",), OPS])
def test_r3_and_r4_are_exact_for_an_edge(ops):
    """R3: the Jacobians of a = sum_k d_k sum_o w_k^o y_k^o in w and d; R4: diag(J^T diag(H) J) of the edge
    output in its input s, per op and for the mixture."""
    rng = np.random.default_rng(2)
    k, b, u = 2, 3, 4
    s, kernel = const(rng, k, b, u), const(rng, u, 2 * u)
    w, d, h_a = const(rng, k, len(ops)), const(rng, k, low=0.5, high=1.5), const(rng, b, u, low=0.0)

    def node(s, w, d):
        ch = tf.linalg.matmul(s, kernel)
        c, hh = tf.sigmoid(ch[..., :u]), ch[..., u:]
        return sum(d[:, None, None] * w[:, o, None, None] * (s + c * (ACT[op](hh) - s))
                   for o, op in enumerate(ops))                                  # [k, b, u] per edge

    ch = tf.linalg.matmul(s, kernel)
    c, hh = tf.sigmoid(ch[..., :u]), ch[..., u:]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([s, w, d])
        per_edge = node(s, w, d)
        a = tf.reduce_sum(per_edge, axis=0)
    jw = tape.jacobian(a, w)                                                    # [b, u, k, ops]
    jd = tape.jacobian(a, d)                                                    # [b, u, k]
    h_w, h_d = scalar_hessians(h_a, edge_outputs(s, c, hh, ops), w, d)
    np.testing.assert_allclose(h_w, tf.einsum("buko,bu->ko", tf.square(jw), h_a), rtol=1e-10)
    np.testing.assert_allclose(h_d, tf.einsum("buk,bu->k", tf.square(jd), h_a), rtol=1e-10)
    js = tape.jacobian(per_edge, s)                                             # [k, b, u, k, b, u]
    for e in range(k):
        jac = tf.stack([js[e, r, :, e, r, :] for r in range(b)])                # the edge's own rows
        expected = ggn_diagonal(jac, h_a)
        got = edge_input_hessian(h_a[None], s, c, hh, w, d, kernel, ops)[e]
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-14)


def tiny_lm(rng, units, steps, ops, vocab=11, scale=0.6):
    settings = ModelConfig(emsize=units, nhid=units, dropout=0.0, dropouth=0.0, dropoutx=0.0, dropouti=0.0,
                           dropoute=0.0)
    model = supernet(vocab, BayesCell(steps, ops=ops, norm="none", **cell_arguments(settings, 0)), settings, 0)
    for var in model.trainable_variables:
        var.assign(rng.uniform(-scale, scale, var.shape))
    model.cell.bayes_w.assign(rng.uniform(0.3, 1.5, model.cell.bayes_w.shape))
    model.cell.bayes_d.assign(rng.uniform(0.5, 1.5, model.cell.bayes_d.shape))
    return model


def test_recursive_equals_the_untied_exact_ggn_on_a_one_unit_one_node_cell(float64):
    """One unit, one node, one op, no norm: every diagonal is the whole matrix and every path is the only one,
    so the sweep through time (R5) is exact; a missing R5 or a shifted time index breaks it."""
    rng = np.random.default_rng(3)
    model = tiny_lm(rng, units=1, steps=1, ops=("tanh",))
    tokens = tf.constant(rng.integers(0, 11, (3, 5)), tf.int32)
    states = model.initial_state(3)
    got, _ = recursive_hessian(model, tokens, states)
    exact, _ = exact_ggn_hessian(model, tokens, states, untied=True)
    assert exact.numpy().min() > 1e-6
    np.testing.assert_allclose(got, exact, rtol=1e-8, atol=1e-14)
    tied, _ = exact_ggn_hessian(model, tokens, states, untied=False)           # the tied one differs
    assert np.abs(tied.numpy() - exact.numpy()).max() > 1e-4 * exact.numpy().max()


def ranks(v):
    return np.argsort(np.argsort(v)).astype(float)


@pytest.mark.slow
def test_exact_ggn_is_the_jacobian_ggn_and_recursive_ranks_like_it_on_a_tiny_full_cell(float64):
    """About 50 s on 2 CPU cores (tape.jacobian through the time loop, 180 JVPs)."""
    rng = np.random.default_rng(4)
    model = tiny_lm(rng, units=3, steps=3, ops=OPS)
    tokens = tf.constant(rng.integers(0, 11, (2, 5)), tf.int32)
    states = model.initial_state(2)
    cell = model.cell
    with tf.GradientTape(persistent=True) as tape:
        logits = model.forward(tokens, states, training=False).logits         # [B, T, V]
    jw = tape.jacobian(logits, cell.bayes_w)                                  # [B, T, V, E, O]
    jd = tape.jacobian(logits, cell.bayes_d)                                  # [B, T, V, E]
    jac = tf.concat([jw, jd[..., None]], axis=-1)
    p = tf.nn.softmax(logits)
    lam = tf.linalg.diag(p) - p[..., :, None] * p[..., None, :]                # [B, T, V, V]
    expected = tf.einsum("btvek,btvw,btwek->ek", jac, lam, jac) / 10.0       # mean over B * T = 10 tokens
    exact, _ = exact_ggn_hessian(model, tokens, states, untied=False)
    np.testing.assert_allclose(exact, expected, rtol=1e-8, atol=1e-15)
    untied, _ = exact_ggn_hessian(model, tokens, states, untied=True)
    got, _ = recursive_hessian(model, tokens, states)
    got, untied = got.numpy().ravel(), untied.numpy().ravel()
    assert got.min() >= 0 and untied.min() >= 0
    spearman = np.corrcoef(ranks(got), ranks(untied))[0, 1]
    assert spearman >= 0.8, spearman


def test_windows_carry_the_state_and_average(float64):
    rng = np.random.default_rng(5)
    model = tiny_lm(rng, units=2, steps=2, ops=("tanh", "relu"))
    windows = [tf.constant(rng.integers(0, 11, (2, 4)), tf.int32) for _ in range(2)]
    first, states = recursive_hessian(model, windows[0], model.initial_state(2))
    second, _ = recursive_hessian(model, windows[1], states)
    np.testing.assert_allclose(scalar_hessian(model, windows), (first + second) / 2, rtol=1e-12)
    with pytest.raises(ValueError, match="method"):
        scalar_hessian(model, windows, method="fisher")
