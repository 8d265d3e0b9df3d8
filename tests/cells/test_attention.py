"""Attention heads against NumPy transcriptions of their equations (their mixture: tests/cells/search)."""
import keras
import numpy as np
import pytest

from support import assert_causal, assert_onnx_parity, attention_inputs as inputs, built, randomise
from tfnas.cells.attention import (ATTENTION_HEADS, AdditiveAttention, DotAttention, GeneralAttention, MultiHeadSelfAttention, NoAttention, make_attention)

U = 8


# --------------------------------------------------------------- NumPy equations
def softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def np_attention(H, score, output):
    """For each t: a_t = softmax_{s<=t} score(h_t, h_s); c_t = sum a_ts h_s; y_t = output(c_t, h_t)."""
    Y = np.zeros_like(H, dtype="float64")
    for b in range(H.shape[0]):
        for t in range(H.shape[1]):
            a = softmax(np.array([score(H[b, t], H[b, s]) for s in range(t + 1)]))
            c = sum(a[s] * H[b, s] for s in range(t + 1))
            Y[b, t] = output(c, H[b, t])
    return Y


def np_dot(H):
    u = H.shape[-1]
    return np_attention(H.astype("float64"), lambda ht, hs: ht @ hs / np.sqrt(u), lambda c, h: (h + c) / 2)


def np_general(H, W_a, W_c):
    return np_attention(H.astype("float64"), lambda ht, hs: ht @ W_a @ hs,
                        lambda c, h: np.tanh(np.concatenate([c, h]) @ W_c))


def np_additive(H, W_1, W_2, v, W_c):
    return np_attention(H.astype("float64"), lambda ht, hs: v @ np.tanh(ht @ W_1 + hs @ W_2),
                        lambda c, h: np.tanh(np.concatenate([c, h]) @ W_c))


def np_multihead(H, mha):
    """Vaswani et al. masked self-attention, head by head, plus the residual."""
    H = H.astype("float64")
    get = lambda dense: (dense.kernel.numpy(), dense.bias.numpy())  # noqa: E731
    (Wq, bq), (Wk, bk), (Wv, bv), (Wo, bo) = map(get, (mha.query_dense, mha.key_dense, mha.value_dense,
                                                       mha.output_dense))
    n, d = Wq.shape[1], Wq.shape[2]
    Y = H.copy()
    for b in range(H.shape[0]):
        for t in range(H.shape[1]):
            for i in range(n):
                q = H[b, t] @ Wq[:, i] + bq[i]
                a = softmax(np.array([q @ (H[b, s] @ Wk[:, i] + bk[i]) / np.sqrt(d) for s in range(t + 1)]))
                head = sum(a[s] * (H[b, s] @ Wv[:, i] + bv[i]) for s in range(t + 1))
                Y[b, t] += head @ Wo[i]
            Y[b, t] += bo
    return Y


# ------------------------------------------------------------------- the heads
def test_dot_matches_numpy():
    H = inputs(0)
    np.testing.assert_allclose(DotAttention(U)(H), np_dot(H), atol=1e-5)


def test_general_matches_numpy():
    H = inputs(1)
    head = randomise(built(GeneralAttention(U), H), seed=2)
    np.testing.assert_allclose(head(H), np_general(H, head.W_a.numpy(), head.W_c.numpy()), atol=1e-5)


def test_additive_matches_numpy():
    H = inputs(2)
    head = randomise(built(AdditiveAttention(U, attention_units=5), H), seed=3)
    expected = np_additive(H, head.W_1.numpy(), head.W_2.numpy(), head.v.numpy(), head.W_c.numpy())
    np.testing.assert_allclose(head(H), expected, atol=1e-5)


@pytest.mark.parametrize("num_heads", [1, 2])
def test_multihead_matches_numpy(num_heads):
    H = inputs(3)
    head = randomise(built(MultiHeadSelfAttention(U, num_heads=num_heads), H), seed=4)
    np.testing.assert_allclose(head(H), np_multihead(H, head.mha), atol=1e-5)


def test_none_is_identity():
    H = inputs(4)
    np.testing.assert_array_equal(NoAttention(U)(H), H)


def test_first_step_attends_to_itself_only():
    """At t=0 the only key is h_0: c_0 = h_0, so dot gives h_0 and general gives tanh([h_0; h_0] W_c)."""
    H = inputs(5)
    np.testing.assert_allclose(DotAttention(U)(H)[:, 0], H[:, 0], atol=1e-6)
    head = randomise(built(GeneralAttention(U), H), seed=6)
    np.testing.assert_allclose(head(H)[:, 0], np.tanh(np.concatenate([H[:, 0], H[:, 0]], -1) @ head.W_c.numpy()),
                               atol=1e-6)


# --------------------------------------------------------------------- causality
@pytest.mark.parametrize("name", ATTENTION_HEADS)
def test_causal(name):
    """Changing h_p leaves y_t (t < p) unchanged and changes y_t for every t >= p (only y_p for none)."""
    H = inputs(7)
    assert_causal(randomise(built(make_attention(name, U, seed=0), H), seed=8), H, own_step_only=name == "none")


def test_future_does_not_leak_through_batch_or_large_scores():
    """Huge future values (scores ~1e6) must still get exactly zero weight."""
    H = inputs(10)
    H2 = H.copy()
    H2[:, 3:] *= 1000.0
    for layer in (DotAttention(U), randomise(built(GeneralAttention(U), H), seed=11)):
        np.testing.assert_array_equal(layer(H2)[:, :3], layer(H)[:, :3])


# ------------------------------------------------------------ parameter counts
@pytest.mark.parametrize("u, a", [(8, 8), (6, 5)])
def test_parameter_counts(u, a):
    H = inputs(19, units=u)
    assert built(NoAttention(u), H).count_params() == 0
    assert built(DotAttention(u), H).count_params() == 0
    assert built(GeneralAttention(u), H).count_params() == 3 * u * u
    assert built(AdditiveAttention(u, attention_units=a), H).count_params() == 2 * u * a + a + 2 * u * u
    mha = built(MultiHeadSelfAttention(u), H)
    assert mha.count_params() == 4 * u * u + 4 * u
    assert mha.num_heads == (4 if u % 4 == 0 else 1)


def test_seeded_initialisation_is_reproducible_and_distinct():
    H = inputs(20)
    a1, a2 = (built(AdditiveAttention(U, seed=5), H) for _ in range(2))
    np.testing.assert_array_equal(a1.W_1.numpy(), a2.W_1.numpy())
    assert not np.allclose(a1.W_1.numpy(), a1.W_2.numpy())
    m = built(MultiHeadSelfAttention(U, seed=5), H)
    q, k = m.mha.query_dense.kernel.numpy(), m.mha.key_dense.kernel.numpy()
    assert not np.allclose(q, k)
    np.testing.assert_array_equal(q, built(MultiHeadSelfAttention(U, seed=5), H).mha.query_dense.kernel.numpy())


# ---------------------------------------------------------------- serialisation
def test_keras_round_trip(tmp_path):
    inp = keras.Input((None, U))
    outputs = [
        DotAttention(U)(inp),
        GeneralAttention(U, seed=2)(inp),
        AdditiveAttention(U, attention_units=3, seed=3)(inp),
        MultiHeadSelfAttention(U, num_heads=2, seed=4)(inp),
        NoAttention(U)(inp),
    ]
    model = keras.Model(inp, outputs)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = inputs(21, time=4)
    for got, want in zip(loaded(x), model(x)):
        np.testing.assert_array_equal(got, want)
    assert isinstance(loaded.layers[3], AdditiveAttention) and loaded.layers[3].attention_units == 3
    x_long = inputs(22, time=9)  # the time axis stays dynamic after loading
    for got, want in zip(loaded(x_long), model(x_long)):
        np.testing.assert_allclose(got, want, atol=1e-6)


# ------------------------------------------------------------------------- ONNX
def test_onnx_parity():
    layers = {
        "dot": DotAttention(U),
        "general": GeneralAttention(U, seed=1),
        "additive": AdditiveAttention(U, seed=2),
        "multihead": MultiHeadSelfAttention(U, seed=3),
    }
    for name, layer in layers.items():
        layer(inputs(0))
        assert_onnx_parity(layer, U, name)


# ------------------------------------------------------------------- validation
def test_make_attention_names_and_options():
    assert [type(make_attention(n, U, num_heads=2, attention_units=3, seed=1)).__name__ for n in ATTENTION_HEADS] \
        == ["NoAttention", "DotAttention", "GeneralAttention", "AdditiveAttention", "MultiHeadSelfAttention"]
    assert isinstance(make_attention(None, U), NoAttention)
    assert make_attention("multihead", U, num_heads=2).num_heads == 2
    assert make_attention("additive", U, attention_units=3).attention_units == 3
    assert make_attention("dot", U, name="att").name == "att"


@pytest.mark.parametrize("build, message", [
    (lambda: make_attention("bahdanau", U), r"`name`.*'additive'.*bahdanau"),
    (lambda: DotAttention(0), "`units`"),
    (lambda: GeneralAttention(U, seed=1.5), "`seed`"),
    (lambda: AdditiveAttention(U, attention_units=-2), "`attention_units`"),
    (lambda: MultiHeadSelfAttention(U, num_heads=3), r"`num_heads` must divide units=8.*num_heads=3"),
    (lambda: MultiHeadSelfAttention(U, num_heads=0), "`num_heads`"),
])
def test_arguments_are_validated(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_call_shapes_are_validated():
    with pytest.raises(ValueError, match="units=8"):
        GeneralAttention(U)(inputs(24, units=5))
