"""The architecture Hessian's extreme eigenvalues (R-DARTS): Lanczos' method by hand, exact products against central
differences and the full Hessian (`tape.jacobian`), and the eigenvalues against `numpy.linalg.eigvalsh`, on a tiny
supernet."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas.data import load_corpus
from tfnas.lm.objective import cross_entropy
from tfnas.strategies.one_shot.arch_hessian import ArchitectureHessian, lanczos_extremes
from tfnas.strategies.one_shot.darts import DartsSearch

from support import tiny_search_config, write_ascending_corpus


def rotated(eigenvalues, seed=0):
    """A symmetric matrix with the given eigenvalues."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigenvalues),) * 2))
    return q @ np.diag(eigenvalues) @ q.T


def test_one_lanczos_step_is_the_rayleigh_quotient_of_the_start():
    h = rotated([3.0, -1.0, 0.5, 2.0])
    start = np.array([1.0, 2.0, -1.0, 0.5])
    quotient = start @ h @ start / (start @ start)
    assert lanczos_extremes(lambda v: h @ v, start, 1) == pytest.approx((quotient, quotient), rel=1e-12)


def test_two_lanczos_steps_by_hand():
    # H = diag(1, 2, 3), q1 = (1, 1, 1)/sqrt3: a1 = 2, w = (-1, 0, 1)/sqrt3, b1 = sqrt(2/3), q2 = (-1, 0, 1)/sqrt2,
    # a2 = (1 + 3)/2 = 2: T = [[2, b1], [b1, 2]], eigenvalues 2 -+ sqrt(2/3).
    low, high = lanczos_extremes(lambda v: np.array([1.0, 2.0, 3.0]) * v, np.ones(3), 2)
    assert low == pytest.approx(2 - np.sqrt(2 / 3), rel=1e-12) and high == pytest.approx(2 + np.sqrt(2 / 3), rel=1e-12)


@pytest.mark.parametrize("eigenvalues", [[1.0, -3.0, 0.2, 0.0, 0.0], [2.0, -1.0, 0.5, 0.0, 0.1], [-1.0, -3.0, -0.2,
                                                                                                  -0.5, -2.5]])
def test_lanczos_finds_both_extremes_of_an_indefinite_spectrum_once_the_krylov_space_closes(eigenvalues):
    # Power iteration would return the eigenvalue of largest magnitude (-3 in the first case); Lanczos gives the
    # largest and the smallest, exactly after dim products, and stops once the space closes (two zero eigenvalues:
    # a smaller invariant space is possible, so it is given more iterations than the dimension).
    h = rotated(eigenvalues, seed=2)
    calls = []
    low, high = lanczos_extremes(lambda v: calls.append(1) or h @ v, np.array([1.0, 0.3, -0.7, 0.2, 0.9]), 50)
    assert low == pytest.approx(min(eigenvalues), abs=1e-10) and high == pytest.approx(max(eigenvalues), abs=1e-10)
    assert len(calls) <= 5


def test_lanczos_refuses_a_zero_start_and_no_iterations():
    with pytest.raises(ValueError, match="non-zero"):
        lanczos_extremes(lambda v: v, np.zeros(2), 3)
    with pytest.raises(ValueError, match="iterations"):
        lanczos_extremes(lambda v: v, np.ones(2), 0)


def test_the_product_of_a_quadratic_is_its_matrix():
    a = tf.Variable([[1.0, -2.0]])
    b = tf.Variable([0.5])
    # L = a0^2 b + 3 a0 a1 + b^3 / 3: at (1, -2, 0.5) the Hessian over (a0, a1, b) is [[1, 3, 2], [3, 0, 0], [2, 0, 1]]
    hessian = ArchitectureHessian(lambda: a[0, 0] ** 2 * b[0] + 3 * a[0, 0] * a[0, 1] + b[0] ** 3 / 3, [a, b])
    exact = np.array([[1.0, 3.0, 2.0], [3.0, 0.0, 0.0], [2.0, 0.0, 1.0]])
    for v in np.eye(3):
        np.testing.assert_allclose(hessian.product(v), exact @ v, atol=1e-6)


@pytest.fixture(scope="module")
def tiny_search(tmp_path_factory):
    """A tiny DARTS supernet in float64 (2 nodes, a searched head of 2) with architecture parameters of scale 1 and
    its eigenvalue batch: the first window of the validation batches."""
    folder = write_ascending_corpus(tmp_path_factory.mktemp("corpus") / "tiny")
    corpus = load_corpus(folder)
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    search = DartsSearch(tiny_search_config("darts", folder, steps=2, search_attention=True,
                                            attention_candidates=["dot", "general"], eigenvalue_interval=1,
                                            eigenvalue_iterations=40))
    search._batchify(corpus)
    search.build(len(corpus.vocab))
    rng = np.random.default_rng(3)
    for v in search.model.arch_variables:
        v.assign(rng.standard_normal(v.shape))
    yield search
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(policy)


def validation_loss(search):
    """The validation cross-entropy of the first window from zero states, without dropout: what R-DARTS'
    Hessian is of."""
    model, c = search.model, search.config
    inputs = tf.constant(search.search_data[:, :c.bptt], tf.int32)
    targets = tf.constant(search.search_data[:, 1:c.bptt + 1], tf.int32)
    return cross_entropy(model.forward(inputs, model.initial_state(c.batch_size), training=False).logits, targets)


def exact_hessian(search):
    """The full Hessian of the validation cross-entropy of the first window (from zero states, no dropout) by
    `tape.jacobian` of its gradient."""
    arch = search.model.arch_variables
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            loss = validation_loss(search)
        grad = tf.concat([tf.reshape(g, [-1]) for g in inner.gradient(loss, arch)], 0)
    blocks = outer.jacobian(grad, arch, experimental_use_pfor=False)
    n = int(grad.shape[0])
    return np.concatenate([b.numpy().reshape(n, -1) for b in blocks], axis=1)


def test_products_are_central_differences_of_the_gradient(tiny_search):
    # An independent check of the second-order autodiff: (g(a + e v) - g(a - e v)) / 2e, error O(e^2) in float64.
    arch = tiny_search.model.arch_variables
    base = [v.numpy() for v in arch]

    def gradient_at(offset):
        pieces = np.split(offset, np.cumsum([b.size for b in base])[:-1])
        for v, b, p in zip(arch, base, pieces):
            v.assign(b + p.reshape(b.shape))
        with tf.GradientTape() as tape:
            loss = validation_loss(tiny_search)
        return np.concatenate([g.numpy().ravel() for g in tape.gradient(loss, arch)])

    v = np.random.default_rng(2).standard_normal(tiny_search.hessian.size)
    eps = 1e-4
    difference = (gradient_at(eps * v) - gradient_at(-eps * v)) / (2 * eps)
    gradient_at(0 * v)
    np.testing.assert_allclose(tiny_search.hessian.product(v), difference, rtol=1e-6, atol=1e-12)


def test_exact_products_and_extreme_eigenvalues_match_the_full_hessian(tiny_search):
    before = [v.numpy() for v in tiny_search.model.variables]
    h = exact_hessian(tiny_search)
    assert h.shape == (3 * 5 + 2, 3 * 5 + 2)
    np.testing.assert_allclose(h, h.T, rtol=1e-9, atol=1e-15)
    hessian = tiny_search.hessian
    for v in np.random.default_rng(1).standard_normal((3, h.shape[0])):
        np.testing.assert_allclose(hessian.product(v), h @ v, rtol=1e-9, atol=1e-15)
    lams = np.linalg.eigvalsh(h)                                   # ascending
    assert abs(lams[0]) > abs(lams[-1])                           # power iteration would find the smallest
    extremes = tiny_search.eigenvalues()                          # 40 iterations: the space closes by 17
    assert extremes == pytest.approx((lams[0], lams[-1]), rel=1e-8)
    assert tiny_search.eigenvalues() == extremes                  # the same start vector every time
    for v, value in zip(tiny_search.model.variables, before):       # and the model untouched
        np.testing.assert_array_equal(v.numpy(), value)
