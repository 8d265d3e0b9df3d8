"""Attention heads and the NASABN mixture against NumPy transcriptions of their equations."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas.cells.attention import (ATTENTION_HEADS, AdditiveAttention, DotAttention, GeneralAttention, MultiHeadSelfAttention, NoAttention, make_attention)
from tfnas.cells.search.mixed_attention import MixedAttention
from tfnas.genotypes.base import ATTENTIONS

U, B, T = 8, 2, 6


def inputs(seed=0, batch=B, time=T, units=U):
    return np.random.default_rng(seed).normal(size=(batch, time, units)).astype("float32")


def randomise(layer, seed=1, scale=0.5):
    """Draws every weight from U(-scale, scale) (alpha of a mixture too) and returns them by name."""
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.uniform(-scale, scale, w.shape).astype("float32"))
    return layer


def built(layer, x):
    layer(x)
    return layer


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
def any_layer(name):
    if name == "mixed":
        return MixedAttention(U, alpha_init_std=0.5, seed=0)
    return make_attention(name, U, seed=0)


@pytest.mark.parametrize("name", list(ATTENTION_HEADS) + ["mixed"])
def test_causal(name):
    """Changing h_p leaves y_t (t < p) unchanged and changes y_t for every t >= p (only y_p for none)."""
    H = inputs(7)
    layer = randomise(built(any_layer(name), H), seed=8) if name != "mixed" else built(any_layer(name), H)
    Y = layer(H).numpy()
    noise = np.random.default_rng(9).normal(size=(B, U)).astype("float32")
    for p in range(T):
        H2 = H.copy()
        H2[:, p] += noise
        Y2 = layer(H2).numpy()
        np.testing.assert_allclose(Y2[:, :p], Y[:, :p], atol=1e-6, rtol=0)
        change = np.abs(Y2 - Y).max(axis=(0, 2))
        later = change[p:] if name != "none" else change[p:p + 1]
        assert later.min() > 1e-3, (p, change)
        if name == "none":
            assert change[p + 1:].max(initial=0.0) == 0.0


def test_future_does_not_leak_through_batch_or_large_scores():
    """Huge future values (scores ~1e6) must still get exactly zero weight."""
    H = inputs(10)
    H2 = H.copy()
    H2[:, 3:] *= 1000.0
    for layer in (DotAttention(U), randomise(built(GeneralAttention(U), H), seed=11)):
        np.testing.assert_array_equal(layer(H2)[:, :3], layer(H)[:, :3])


# ---------------------------------------------------------------------- mixture
def mixture(H, **kwargs):
    return randomise(built(MixedAttention(U, alpha_init_std=0.0, **kwargs), H), seed=12)


def standalone_copy(mixed, k, H):
    """A fresh head of candidate k with the mixture's weights."""
    name = mixed.candidates[k]
    head = built(make_attention(name, U, num_heads=mixed.num_heads), H)
    head.set_weights(mixed.heads[k].get_weights())
    return head


@pytest.mark.parametrize("k", range(len(ATTENTION_HEADS)))
def test_one_hot_alpha_selects_one_head(k):
    H = inputs(13)
    mixed = mixture(H)
    head = standalone_copy(mixed, k, H)
    expected = head(H).numpy()
    logits = np.zeros(len(ATTENTION_HEADS), "float32")
    logits[k] = 30.0
    mixed.alpha.assign(logits)
    np.testing.assert_allclose(mixed(H), expected, atol=1e-5)
    np.testing.assert_allclose(mixed(H, alphas=np.eye(5, dtype="float32")[k] * 100.0), expected, atol=1e-5)


def test_mixture_is_softmax_weighted_sum():
    H = inputs(14)
    mixed = mixture(H)
    alpha = np.array([0.3, -1.2, 0.8, 0.1, -0.4], "float32")
    mixed.alpha.assign(alpha)
    w = np.exp(alpha) / np.exp(alpha).sum()
    expected = sum(w[k] * standalone_copy(mixed, k, H)(H).numpy() for k in range(5))
    np.testing.assert_allclose(mixed(H), expected, atol=1e-5)
    other = np.array([1.0, 0.0, -2.0, 0.5, 0.0], "float32")
    w2 = np.exp(other) / np.exp(other).sum()
    expected2 = sum(w2[k] * mixed.heads[k](H).numpy() for k in range(5))
    np.testing.assert_allclose(mixed(H, alphas=other), expected2, atol=1e-5)
    np.testing.assert_allclose(list(mixed.mixture_weights().values()), w, rtol=1e-6)


def test_alpha_init():
    H = inputs(15)
    zeros = built(MixedAttention(U, alpha_init_std=0.0), H)
    np.testing.assert_array_equal(zeros.alpha.numpy(), np.zeros(5))
    small = built(MixedAttention(U, seed=3), H)
    a = small.alpha.numpy()
    assert 0 < np.abs(a).max() < 5e-3 and len(set(a.tolist())) == 5


@pytest.mark.parametrize("alpha, derived", [
    ([0.0, 0.1, 0.0, 0.0, 0.0], "dot"), ([0.0, 0.0, 2.0, 1.0, 0.0], "general"),
    ([0.0, 0.0, 0.0, 0.3, 0.2], "additive"), ([-1.0, -1.0, -1.0, -1.0, 0.5], "multihead"),
    ([0.9, 0.1, 0.2, 0.3, 0.4], None),
])
def test_derive_is_argmax(alpha, derived):
    mixed = built(MixedAttention(U), inputs(16))
    mixed.alpha.assign(alpha)
    assert mixed.derive() == derived
    assert derived is None or derived in ATTENTIONS


def test_derive_with_candidate_subset():
    mixed = built(MixedAttention(U, candidates=("additive", "none", "dot")), inputs(17))
    mixed.alpha.assign([1.0, 0.0, 2.0])
    assert mixed.derive() == "dot"
    mixed.alpha.assign([1.0, 3.0, 2.0])
    assert mixed.derive() is None
    assert mixed.head("additive") is mixed.heads[0]


def test_arch_and_weight_variables_are_separate():
    mixed = built(MixedAttention(U, attention_units=3), inputs(18))
    assert len(mixed.arch_variables) == 1
    alpha = mixed.arch_variables[0]
    assert alpha is mixed.alpha and alpha.name == "alpha_attention" and tuple(alpha.shape) == (5,)
    weights = mixed.weight_variables
    assert all(v is not alpha for v in weights)
    assert len(weights) + 1 == len(mixed.trainable_variables)
    # general 3u^2 + additive (2ua + a + 2u^2) + multihead (4u^2 + 4u); none and dot have none.
    assert sum(int(np.prod(v.shape)) for v in weights) == 3 * U**2 + (2 * U * 3 + 3 + 2 * U**2) + 4 * U**2 + 4 * U
    assert mixed.count_params() == sum(int(np.prod(v.shape)) for v in weights) + 5


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
        MixedAttention(U, candidates=("none", "general", "multihead"), num_heads=2, seed=1)(inp),
        DotAttention(U)(inp),
        GeneralAttention(U, seed=2)(inp),
        AdditiveAttention(U, attention_units=3, seed=3)(inp),
        MultiHeadSelfAttention(U, num_heads=2, seed=4)(inp),
        NoAttention(U)(inp),
    ]
    model = keras.Model(inp, outputs)
    mixed = model.layers[1]
    mixed.alpha.assign([0.2, -0.3, 0.5])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = inputs(21, time=4)
    for got, want in zip(loaded(x), model(x)):
        np.testing.assert_array_equal(got, want)
    lmixed = loaded.layers[1]
    assert isinstance(lmixed, MixedAttention) and lmixed.candidates == ("none", "general", "multihead")
    np.testing.assert_array_equal(lmixed.alpha.numpy(), np.float32([0.2, -0.3, 0.5]))
    assert lmixed.head("multihead").num_heads == 2 and lmixed.derive() == "multihead"
    assert loaded.layers[4].attention_units == 3
    x_long = inputs(22, time=9)  # the time axis stays dynamic after loading
    np.testing.assert_allclose(loaded(x_long)[0], model(x_long)[0], atol=1e-6)


# ------------------------------------------------------------------------- ONNX
def test_onnx_parity():
    tf2onnx = pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    layers = {
        "dot": DotAttention(U),
        "general": GeneralAttention(U, seed=1),
        "additive": AdditiveAttention(U, seed=2),
        "multihead": MultiHeadSelfAttention(U, seed=3),
        "mixed": MixedAttention(U, alpha_init_std=0.5, seed=4),
    }
    for name, layer in layers.items():
        layer(inputs(0))

        @tf.function(input_signature=[tf.TensorSpec([None, None, U], tf.float32, name="h")])
        def fn(h, layer=layer):
            return layer(h)

        proto, _ = tf2onnx.convert.from_function(fn, input_signature=fn.input_signature, opset=17)
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        for batch, time in ((3, 5), (1, 11)):
            x = inputs(23 + time, batch=batch, time=time)
            got = session.run(None, {"h": x})[0]
            np.testing.assert_allclose(got, layer(x).numpy(), atol=1e-5, err_msg=name)


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
    (lambda: MixedAttention(U, candidates=("dot", "luong")), "`candidates`.*luong"),
    (lambda: MixedAttention(U, candidates=("dot", "dot")), "`candidates`"),
    (lambda: MixedAttention(U, candidates=()), "`candidates`"),
    (lambda: MixedAttention(U, alpha_init_std=-1.0), "`alpha_init_std`"),
    (lambda: MixedAttention(6, num_heads=4), "`num_heads`"),
])
def test_arguments_are_validated(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_call_shapes_are_validated():
    with pytest.raises(ValueError, match="units=8"):
        GeneralAttention(U)(inputs(24, units=5))
    mixed = built(MixedAttention(U), inputs(25))
    with pytest.raises(ValueError, match="`alphas`"):
        mixed(inputs(25), alphas=np.zeros(3, "float32"))
