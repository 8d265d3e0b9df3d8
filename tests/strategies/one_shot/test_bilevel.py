"""DARTS architecture gradients against finite differences of the unrolled objective."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas.lm.objective import cross_entropy
from tfnas.lm.search_models import MixedLM
from tfnas.strategies.one_shot.bilevel import ArchitectureGradient

XI, WDECAY = 0.5, 1e-3


@pytest.fixture
def float64():
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")


def tiny_supernet():
    model = MixedLM(12, steps=3, norm="layer", search_attention=True,
                       attention_candidates=("none", "dot", "general"), emsize=6, nhid=6, dropout=0.0,
                       dropouth=0.0, dropoutx=0.0, dropouti=0.0, dropoute=0.0, seed=0)
    model.build_weights()
    rng = np.random.default_rng(0)
    for v in model.arch_variables:
        v.assign(rng.normal(0, 0.7, v.shape))
    for v in model.weight_variables:  # larger weights than the default init make the Hessian term visible
        v.assign(rng.uniform(-0.4, 0.4, v.shape))
    return model


def batches(model):
    rng = np.random.default_rng(1)
    make = lambda: (tf.constant(rng.integers(0, 12, (3, 5)), tf.int32),  # noqa: E731
                    tf.constant(rng.integers(0, 12, (3, 5)), tf.int32), model.initial_state(3))
    return make(), make()


def loss_fn_of(model):
    def loss_fn(inputs, targets, states):
        out = model.forward(inputs, states, training=True)
        return cross_entropy(out.logits, targets), out.states
    return loss_fn


def unrolled_objective(model, train, valid):
    """L_val(w - xi * (grad_w L_train(w, a) + wd * w), a), computed directly."""
    weights = model.weight_variables
    backup = [w.numpy() for w in weights]
    with tf.GradientTape() as tape:
        loss, _ = loss_fn_of(model)(*train)
    grads = tape.gradient(loss, weights)
    for w, g, w0 in zip(weights, grads, backup):
        w.assign(w0 - XI * (tf.convert_to_tensor(g) + WDECAY * w0))
    value = float(loss_fn_of(model)(*valid)[0])
    for w, w0 in zip(weights, backup):
        w.assign(w0)
    return value


def test_second_order_gradient_matches_finite_differences(float64):
    model = tiny_supernet()
    train, valid = batches(model)
    # r = 1e-4 instead of DARTS' 1e-2: the relu op makes the loss piecewise smooth, and a wide
    # central difference straddles kinks (1e-2 is off by ~5% on this tiny, large-weight model).
    architect = ArchitectureGradient(loss_fn_of(model), model.weight_variables, model.arch_variables,
                                     clip=0.0, wdecay=WDECAY, r=1e-4)
    second, _, _ = architect.second_order(train, valid, tf.constant(XI, tf.float64))
    first, _, _ = architect.first_order(valid)
    rng = np.random.default_rng(2)
    eps = 1e-5
    checked = 0
    for var, g2, g1 in zip(model.arch_variables, second, first):
        flat = var.numpy().reshape(-1)
        for k in rng.choice(flat.size, size=min(6, flat.size), replace=False):
            values = []
            for sign in (1, -1):
                shifted = flat.copy()
                shifted[k] += sign * eps
                var.assign(shifted.reshape(var.shape))
                values.append(unrolled_objective(model, train, valid))
            var.assign(flat.reshape(var.shape))
            fd = (values[0] - values[1]) / (2 * eps)
            analytic, naive = g2.numpy().reshape(-1)[k], g1.numpy().reshape(-1)[k]
            assert analytic == pytest.approx(fd, rel=1e-4, abs=1e-9)
            checked += abs(naive - fd) > 20 * max(abs(analytic - fd), 1e-7)
    # The Hessian term matters: the first-order gradient is clearly off for most entries.
    assert checked >= 6


def test_hessian_vector_product_matches_exact_second_derivative(float64):
    model = tiny_supernet()
    train, _ = batches(model)
    architect = ArchitectureGradient(loss_fn_of(model), model.weight_variables, model.arch_variables, r=1e-4)
    rng = np.random.default_rng(3)
    vector = [tf.constant(rng.normal(size=w.shape)) for w in model.weight_variables]
    approx = architect.hessian_vector_product(vector, train)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss, _ = loss_fn_of(model)(*train)
        gw = inner.gradient(loss, model.weight_variables)
        dot = tf.add_n([tf.reduce_sum(tf.convert_to_tensor(g) * v) for g, v in zip(gw, vector)])
    exact = outer.gradient(dot, model.arch_variables)
    for a, e in zip(approx, exact):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-4, atol=1e-8)


def test_second_order_restores_weights_and_zero_xi_is_first_order(float64):
    model = tiny_supernet()
    train, valid = batches(model)
    before = [w.numpy() for w in model.weight_variables]
    architect = ArchitectureGradient(loss_fn_of(model), model.weight_variables, model.arch_variables)
    g0, _, _ = architect.second_order(train, valid, tf.constant(0.0, tf.float64))
    g1, _, _ = architect.first_order(valid)
    for w, b in zip(model.weight_variables, before):
        np.testing.assert_array_equal(w.numpy(), b)
    for a, b in zip(g0, g1):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
