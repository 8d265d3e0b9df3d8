"""MixedAttention (NASABN eq. 3-4): the softmax mixture of the heads of `tfnas.cells.attention`."""
import keras
import numpy as np
import pytest

from support import assert_causal, assert_onnx_parity, attention_inputs as inputs, built, randomise
from tfnas.cells.attention import ATTENTION_HEADS, make_attention
from tfnas.cells.search.mixed_attention import MixedAttention
from tfnas.genotypes.base import ATTENTIONS

U = 8


def mixture(H, **kwargs):
    """A mixture of every head, ``"none"`` included (opt-in)."""
    return randomise(built(MixedAttention(U, candidates=ATTENTION_HEADS, alpha_init_std=0.0, **kwargs), H), seed=12)


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


def test_causal():
    """Changing h_p leaves y_t (t < p) unchanged and changes y_t for every t >= p."""
    H = inputs(7)
    assert_causal(built(MixedAttention(U, alpha_init_std=0.5, seed=0), H), H)


def test_alpha_init():
    H = inputs(15)
    zeros = built(MixedAttention(U, alpha_init_std=0.0), H)
    np.testing.assert_array_equal(zeros.alpha.numpy(), np.zeros(4))
    small = built(MixedAttention(U, seed=3), H)
    a = small.alpha.numpy()
    assert 0 < np.abs(a).max() < 5e-3 and len(set(a.tolist())) == 4


def test_none_is_a_candidate_only_when_listed():
    """NASABN's candidates (section III-A, l.87) do not include "no attention": by default the genotype's heads."""
    assert MixedAttention(U).candidates == ("dot", "general", "additive", "multihead") == ATTENTIONS
    assert "none" in MixedAttention(U, candidates=("none", "dot")).candidates


def test_one_candidate_is_that_head_fixed():
    """NASABN's experiment (l.175): the head fixed to dot; a mixture of one head is that head, with no alpha."""
    H = inputs(19)
    fixed = randomise(built(MixedAttention(U, candidates=("general",), seed=2), H), seed=3)
    assert fixed.arch_variables == [] and not hasattr(fixed, "alpha")
    assert len(fixed.weight_variables) == len(fixed.trainable_variables) == len(fixed.heads[0].trainable_variables)
    head = built(make_attention("general", U), H)
    head.set_weights(fixed.heads[0].get_weights())
    np.testing.assert_array_equal(fixed(H), head(H))
    assert fixed.derive() == "general" and fixed.mixture_weights() == {"general": 1.0}
    dot = built(MixedAttention(U, candidates="dot"), H)
    assert dot.count_params() == 0 and dot.derive() == "dot"


@pytest.mark.parametrize("alpha, derived", [
    ([0.0, 0.1, 0.0, 0.0, 0.0], "dot"), ([0.0, 0.0, 2.0, 1.0, 0.0], "general"),
    ([0.0, 0.0, 0.0, 0.3, 0.2], "additive"), ([-1.0, -1.0, -1.0, -1.0, 0.5], "multihead"),
    ([0.9, 0.1, 0.2, 0.3, 0.4], None),
])
def test_derive_is_argmax(alpha, derived):
    mixed = built(MixedAttention(U, candidates=ATTENTION_HEADS), inputs(16))
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
    assert alpha is mixed.alpha and alpha.name == "alpha_attention" and tuple(alpha.shape) == (4,)
    weights = mixed.weight_variables
    assert all(v is not alpha for v in weights)
    assert len(weights) + 1 == len(mixed.trainable_variables)
    # general 3u^2 + additive (2ua + a + 2u^2) + multihead (4u^2 + 4u); dot has none.
    assert sum(int(np.prod(v.shape)) for v in weights) == 3 * U**2 + (2 * U * 3 + 3 + 2 * U**2) + 4 * U**2 + 4 * U
    assert mixed.count_params() == sum(int(np.prod(v.shape)) for v in weights) + 4


def test_keras_round_trip(tmp_path):
    inp = keras.Input((None, U))
    model = keras.Model(inp, MixedAttention(U, candidates=("none", "general", "multihead"), num_heads=2, seed=1)(inp))
    mixed = model.layers[1]
    mixed.alpha.assign([0.2, -0.3, 0.5])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = inputs(21, time=4)
    np.testing.assert_array_equal(loaded(x), model(x))
    lmixed = loaded.layers[1]
    assert isinstance(lmixed, MixedAttention) and lmixed.candidates == ("none", "general", "multihead")
    np.testing.assert_array_equal(lmixed.alpha.numpy(), np.float32([0.2, -0.3, 0.5]))
    assert lmixed.head("multihead").num_heads == 2 and lmixed.derive() == "multihead"
    x_long = inputs(22, time=9)  # the time axis stays dynamic after loading
    np.testing.assert_allclose(loaded(x_long), model(x_long), atol=1e-6)


def test_onnx_parity():
    layer = MixedAttention(U, alpha_init_std=0.5, seed=4)
    layer(inputs(0))
    assert_onnx_parity(layer, U, "mixed")


@pytest.mark.parametrize("build, message", [
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
    mixed = built(MixedAttention(U), inputs(25))
    with pytest.raises(ValueError, match="`alphas`"):
        mixed(inputs(25), alphas=np.zeros(3, "float32"))
