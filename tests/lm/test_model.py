"""LanguageModel and its regularisers."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas.config import ModelConfig
from tfnas.genotypes.files import load_genotype
from tfnas.lm import (DroppedEmbedding, LanguageModel, LockedDropout, activation_regularization,
                      temporal_activation_regularization)


def test_locked_dropout_mask_is_shared_over_time():
    x = tf.ones((3, 7, 5))
    y = LockedDropout(0.5, seed=1)(x, training=True).numpy()
    np.testing.assert_array_equal(y, np.repeat(y[:, :1], 7, axis=1))
    assert set(np.unique(y)) == {0.0, 2.0}
    np.testing.assert_array_equal(LockedDropout(0.5)(x, training=False), x)


def test_embedding_dropout_drops_whole_words():
    layer = DroppedEmbedding(20, 4, dropout=0.5, seed=2)
    ids = np.tile(np.arange(20), (3, 1))
    out = layer(ids, training=True).numpy()
    E = layer.embeddings.numpy()
    for w in range(20):  # a word is either dropped everywhere or kept (scaled) everywhere
        rows = out[:, w]
        assert np.allclose(rows, 0) or np.allclose(rows, E[w] * 2.0)
    dropped = sum(np.allclose(out[0, w], 0) for w in range(20))
    assert 0 < dropped < 20


def test_ar_and_tar_formulas():
    h = tf.constant(np.arange(24, dtype="float32").reshape(2, 3, 4))
    assert float(activation_regularization(h, 2.0)) == pytest.approx(2.0 * np.mean(np.arange(24.0) ** 2))
    # consecutive time steps differ by 4 everywhere
    assert float(temporal_activation_regularization(h, 0.5)) == pytest.approx(0.5 * 16.0)


def test_tied_decoder_and_parameter_count(exported_cells):
    g = load_genotype(exported_cells / "darts_v2.json")
    V, n = 50, 12
    lm = LanguageModel(V, g, emsize=n, nhid=n, seed=0)
    lm.build_weights()
    cell = (n + n) * 2 * n + 8 * n * 2 * n
    assert lm.count_params() == V * n + V + cell  # embedding (shared with decoder) + decoder bias + cell
    out = lm.forward(np.array([[1, 2, 3]]))
    expected = out.dropped_outputs.numpy() @ lm.embedding.embeddings.numpy().T + lm.decoder_bias.numpy()
    np.testing.assert_allclose(out.logits, expected, rtol=1e-5, atol=1e-6)


def test_untied_needs_no_equal_sizes_but_tied_does():
    with pytest.raises(ValueError, match="emsize == nhid"):
        LanguageModel(10, None, emsize=8, nhid=6)
    lm = LanguageModel(10, None, emsize=8, nhid=6, tie_weights=False)
    lm.build_weights()
    assert lm(np.zeros((2, 3), "int32"))[0].shape == (2, 3, 10)


@pytest.mark.parametrize("cell", ["darts_v2", "lstm"])
def test_state_carry_equals_one_long_sequence(cell, exported_cells):
    """Running two segments with the carried state equals running their concatenation."""
    g = None if cell == "lstm" else load_genotype(exported_cells / f"{cell}.json")
    lm = LanguageModel(30, g, emsize=8, nhid=8, seed=1)
    lm.build_weights()
    ids = np.random.default_rng(0).integers(0, 30, (2, 10))
    whole, _ = lm(ids)
    first, states = lm(ids[:, :4])
    second, _ = lm((ids[:, 4:], states))
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-5)


def test_keras_round_trip(tmp_path, exported_cells):
    lm = LanguageModel(30, load_genotype(exported_cells / "enas.json"), emsize=8, nhid=8, seed=1)
    lm.build_weights()
    lm.save(tmp_path / "lm.keras")
    loaded = keras.saving.load_model(tmp_path / "lm.keras")
    ids = np.arange(12).reshape(2, 6)
    np.testing.assert_array_equal(loaded(ids)[0], lm(ids)[0])
    assert loaded.genotype == lm.genotype


@pytest.mark.parametrize("attention", ["dot", "general", "additive", "multihead"])
def test_attention_lm_is_causal_and_round_trips(attention, tmp_path, exported_cells):
    g = load_genotype(exported_cells / "darts_v2.json").with_attention(attention)
    lm = LanguageModel.from_config_objects(30, g, ModelConfig(emsize=8, nhid=8), seed=2)
    assert lm.attention is not None and lm.hparams.attention == attention
    ids = np.random.default_rng(1).integers(0, 30, (2, 9))
    changed = ids.copy()
    changed[:, 5:] = (changed[:, 5:] + 1) % 30
    a, b = lm(ids)[0].numpy(), lm(changed)[0].numpy()
    np.testing.assert_array_equal(a[:, :5], b[:, :5])
    assert np.abs(a[:, 5:] - b[:, 5:]).max() > 1e-4
    lm.save(tmp_path / "lm.keras")
    np.testing.assert_array_equal(keras.saving.load_model(tmp_path / "lm.keras")(ids)[0], a)
