"""DARTS architecture gradients against finite differences of the unrolled objective."""
import numpy as np
import pytest
import tensorflow as tf

from tfnas.lm.objective import cross_entropy
from tfnas.cells.search import MixedAttention, MixedCell
from tfnas.config import ModelConfig
from tfnas.lm.model import attention_seed, cell_arguments, supernet
from tfnas.strategies.one_shot.bilevel import ArchitectureGradient

XI, WDECAY = 0.5, 1e-3
#: DARTS' gradient clip; ||grad_w L_train|| (0.60) and ||grad_w' L_val|| (about 0.8) of the tiny supernet exceed it.
CLIP = 0.25


def tiny_supernet():
    settings = ModelConfig(emsize=6, nhid=6, dropout=0.0, dropouth=0.0, dropoutx=0.0, dropouti=0.0, dropoute=0.0)
    model = supernet(12, MixedCell(3, norm="layer", **cell_arguments(settings, 0)), settings, 0,
                     attention=MixedAttention(6, candidates=("none", "dot", "general"), seed=attention_seed(0)))
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


def gradients(model, batch, variables):
    with tf.GradientTape() as tape:
        loss, _ = loss_fn_of(model)(*batch)
    return [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, variables)]


def clip_coefficient(arrays, clip):
    """DARTS ``_clip``: the factor that brings the global norm down to ``clip`` (1 if it is below)."""
    return min(1.0, clip / (np.sqrt(sum(float((a * a).sum()) for a in arrays)) + 1e-6))


def unrolled_objective(model, train, valid, k=1.0):
    """L_val(w - xi * (k * grad_w L_train(w, a) + wd * w), a), computed directly (k held fixed)."""
    weights = model.weight_variables
    backup = [w.numpy() for w in weights]
    for w, g, w0 in zip(weights, gradients(model, train, weights), backup):
        w.assign(w0 - XI * (k * g + WDECAY * w0))
    value = float(loss_fn_of(model)(*valid)[0])
    for w, w0 in zip(weights, backup):
        w.assign(w0)
    return value


@pytest.mark.parametrize("clip", [0.0, CLIP])
def test_second_order_gradient_matches_finite_differences(float64, clip):
    """Without ``clip_hvp_vector`` the gradient is exact for the unrolled objective with the clip factor k fixed."""
    model = tiny_supernet()
    train, valid = batches(model)
    coef = clip_coefficient(gradients(model, train, model.weight_variables), clip) if clip else 1.0
    assert clip == 0.0 or coef < 0.5                              # the clip is active
    # r = 1e-4 instead of DARTS' 1e-2: the relu op makes the loss piecewise smooth, and a wide
    # central difference straddles kinks (1e-2 is off by ~5% on this tiny, large-weight model).
    architect = ArchitectureGradient(loss_fn_of(model), model.weight_variables, model.arch_variables,
                                     clip=clip, wdecay=WDECAY, r=1e-4)
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
                values.append(unrolled_objective(model, train, valid, coef))
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


def darts_reference_second_order(model, train, valid, clip, clip_v, r=1e-2):
    """DARTS' ``Architect._backward_step_unrolled`` (quark0/darts ``rnn/architect.py`` at HEAD), in NumPy and tapes.

    w' = w - xi (k g + wd w) with g = grad_w L_train(w), k = _clip(g); at w': d_alpha = grad_a L_val(w') and
    v = grad_w' L_val(w'), clipped to the norm ``clip`` when ``clip_v``; the Hessian-vector product at w with
    R = r / ||v||; d_alpha - xi k HVP. Returns d_alpha, k and the clip factor of v (whether applied or not).
    """
    weights, arch = model.weight_variables, model.arch_variables
    w0 = [w.numpy() for w in weights]
    g = gradients(model, train, weights)
    k = clip_coefficient(g, clip)
    for w, a, b in zip(weights, w0, g):
        w.assign(a - XI * (k * b + WDECAY * a))
    d_alpha = gradients(model, valid, arch)
    v = gradients(model, valid, weights)
    v_coef = clip_coefficient(v, clip)
    if clip_v:
        v = [v_coef * x for x in v]
    radius = r / np.sqrt(sum(float((x * x).sum()) for x in v))
    sides = []
    for sign in (1.0, -1.0):
        for w, a, x in zip(weights, w0, v):
            w.assign(a + sign * radius * x)
        sides.append(gradients(model, train, arch))
    for w, a in zip(weights, w0):
        w.assign(a)
    hvp = [(p - n) / (2 * radius) for p, n in zip(*sides)]
    return [d - XI * k * h for d, h in zip(d_alpha, hvp)], k, v_coef


@pytest.mark.parametrize("clip_hvp_vector", [False, True])
def test_second_order_with_clip_matches_the_darts_reference(float64, clip_hvp_vector):
    """clip > 0: k scales the virtual step and the implicit term; ``clip_hvp_vector`` also clips v (DARTS code)."""
    model = tiny_supernet()
    train, valid = batches(model)
    architect = ArchitectureGradient(loss_fn_of(model), model.weight_variables, model.arch_variables,
                                     clip=CLIP, wdecay=WDECAY, r=1e-2, clip_hvp_vector=clip_hvp_vector)
    ours, _, _ = architect.second_order(train, valid, tf.constant(XI, tf.float64))
    reference, k, v_coef = darts_reference_second_order(model, train, valid, CLIP, clip_hvp_vector)
    assert k < 0.5 and v_coef < 0.5                               # both clips are active
    for a, b in zip(ours, reference):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-7, atol=1e-12)
    # The two settings differ: clipping v shrinks the implicit term by v_coef.
    other, _, _ = darts_reference_second_order(model, train, valid, CLIP, not clip_hvp_vector)
    assert max(float(np.abs(a.numpy() - b).max()) for a, b in zip(ours, other)) > 1e-4
