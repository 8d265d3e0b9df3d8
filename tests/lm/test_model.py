"""LanguageModel and its regularisers."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas.cells import GenotypeCell, TreeCell
from tfnas.cells.attention import ATTENTION_HEADS
from tfnas.cells.search import MixedAttention, MixedCell, SharedCell
from tfnas.config import ModelConfig
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import load_genotype, resolve_genotype
from tfnas.genotypes.tree import TreeGenotype
from tfnas.lm import (DroppedEmbedding, LanguageModel, LockedDropout, activation_regularization,
                      attention_seed, cell_arguments, supernet, temporal_activation_regularization)


def randomised(lm: LanguageModel, scale: float = 0.5, seed: int = 3) -> LanguageModel:
    """``lm`` built, every trainable weight drawn from U(-scale, scale) (outputs well away from zero)."""
    lm.build_weights()
    rng = np.random.default_rng(seed)
    for v in lm.trainable_variables:
        v.assign(rng.uniform(-scale, scale, v.shape).astype("float32"))
    return lm


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


@pytest.mark.parametrize("nlayers", [1, 2, 3])
def test_tied_decoder_and_parameter_count(exported_cells, nlayers):
    g = load_genotype(exported_cells / "darts_v2.json")
    V, n = 50, 12
    lm = LanguageModel(V, g, emsize=n, nhid=n, nlayers=nlayers, seed=0)
    lm.build_weights()
    cell = (n + n) * 2 * n + 8 * n * 2 * n
    # embedding (shared with decoder) + decoder bias + one cell of its own per layer
    assert lm.count_params() == V * n + V + nlayers * cell
    out = lm.forward(np.array([[1, 2, 3]]))
    expected = out.dropped_outputs.numpy() @ lm.embedding.embeddings.numpy().T + lm.decoder_bias.numpy()
    np.testing.assert_allclose(out.logits, expected, rtol=1e-5, atol=1e-6)


def test_untied_needs_no_equal_sizes_but_tied_does():
    with pytest.raises(ValueError, match="emsize == nhid"):
        LanguageModel(10, None, emsize=8, nhid=6)
    lm = LanguageModel(10, None, emsize=8, nhid=6, tie_weights=False)
    lm.build_weights()
    assert lm(np.zeros((2, 3), "int32"))[0].shape == (2, 3, 10)


@pytest.mark.parametrize("nlayers", [1, 2])
@pytest.mark.parametrize("cell", ["darts_v2", "nascell", "lstm"])
def test_state_carry_equals_one_long_sequence(cell, nlayers, exported_cells):
    """Running two segments with the carried state equals running their concatenation."""
    g = None if cell == "lstm" else load_genotype(exported_cells / f"{cell}.json")
    lm = randomised(LanguageModel(30, g, emsize=8, nhid=8, nlayers=nlayers, seed=1))
    ids = np.random.default_rng(0).integers(0, 30, (2, 10))
    whole, _ = lm(ids)
    first, states = lm(ids[:, :4])
    assert len(states) == nlayers * (1 if cell == "darts_v2" else 2)
    second, _ = lm((ids[:, 4:], states))
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-5)
    # Not vacuous: every layer's state matters (restarting any layer from zeros changes the second half by far
    # more than float32 rounding, ~1e-7 here).
    per_layer = len(states) // nlayers
    for layer in range(nlayers):
        zeroed = [tf.zeros_like(s) if i // per_layer == layer else s for i, s in enumerate(states)]
        assert np.abs(np.asarray(lm((ids[:, 4:], zeroed))[0]) - np.asarray(second)).max() > 1e-4


@pytest.mark.parametrize("nlayers", [1, 2])
def test_keras_round_trip(tmp_path, exported_cells, nlayers):
    lm = randomised(LanguageModel(30, load_genotype(exported_cells / "enas.json"), emsize=8, nhid=8, nlayers=nlayers,
                                  seed=1))
    lm.save(tmp_path / "lm.keras")
    loaded = keras.saving.load_model(tmp_path / "lm.keras")
    ids = np.arange(12).reshape(2, 6)
    np.testing.assert_array_equal(loaded(ids)[0], lm(ids)[0])
    assert loaded.genotype == lm.genotype and loaded.hparams.nlayers == nlayers
    for mine, theirs in zip(lm.trainable_variables, loaded.trainable_variables, strict=True):
        np.testing.assert_array_equal(mine, theirs)


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
    assert np.abs(a[:, 5:] - b[:, 5:]).max() > 1e-3 * np.abs(a[:, 5:]).max()  # float32 noise is ~1e-7 of it
    lm.save(tmp_path / "lm.keras")
    np.testing.assert_array_equal(keras.saving.load_model(tmp_path / "lm.keras")(ids)[0], a)


def reference_layer(lm: LanguageModel, layer: int, genotype) -> keras.layers.Layer:
    """A new layer with the weights of ``lm``'s layer ``layer``, run by Keras' own time loop (not `CellRNN`)."""
    n = lm.hparams.nhid
    if genotype is None:
        ref = keras.layers.LSTM(n, return_sequences=True, return_state=True)
    else:
        cell_class = TreeCell if isinstance(genotype, TreeGenotype) else GenotypeCell
        ref = keras.layers.RNN(cell_class.from_genotype(genotype, units=n, input_dim=n), return_sequences=True,
                               return_state=True)
    ref.build((None, None, n))
    source = lm.rnns[layer].trainable_weights
    assert len(ref.trainable_weights) == len(source)
    for target, weight in zip(ref.trainable_weights, source):
        target.assign(weight)
    return ref


@pytest.mark.parametrize("cell", ["darts_v2", "nascell", "lstm", "darts_v2+general"])
def test_two_layers_are_two_cells_in_sequence(cell, exported_cells):
    """nlayers = 2, dropout off: the second cell runs on the first one's outputs, each from its own states (the
    flat state list, layer after layer); the attention head, if any, and the tied decoder sit on the last one."""
    name, _, attention = cell.partition("+")
    genotype = None if name == "lstm" else load_genotype(exported_cells / f"{name}.json")
    if attention:
        genotype = genotype.with_attention(attention)
    V, n = 30, 8
    lm = randomised(LanguageModel.from_config_objects(V, genotype, ModelConfig(emsize=n, nhid=n, nlayers=2), seed=4))
    assert (lm.attention is not None) == bool(attention)
    rng = np.random.default_rng(5)
    ids = rng.integers(0, V, (3, 7))
    states = [rng.normal(0, 0.5, (3, n)).astype("float32") for _ in lm.initial_state(1)]
    per_layer = len(states) // 2
    assert per_layer == (1 if name.startswith("darts") else 2)
    out = lm.forward(ids, states)  # training=False: no dropout anywhere
    E, b = lm.embedding.embeddings.numpy(), lm.decoder_bias.numpy()
    x, finals = E[ids], []
    for layer in range(2):
        x, *final = reference_layer(lm, layer, genotype)(x, initial_state=states[layer * per_layer:][:per_layer])
        finals += final
    top = x if lm.attention is None else lm.attention(x)
    np.testing.assert_allclose(out.raw_outputs, x, atol=1e-5)
    np.testing.assert_allclose(out.logits, np.asarray(top) @ E.T + b, atol=1e-5)
    assert len(out.states) == len(finals)
    for got, want in zip(out.states, finals):
        np.testing.assert_allclose(got, want, atol=1e-5)
    # Each layer has weights of its own.
    assert all(np.abs(a - c).max() > 0.1 for a, c in zip(*(r.trainable_weights for r in lm.rnns)))


def test_dropouth_is_a_locked_dropout_between_layers(monkeypatch):
    """AWD-LSTM: the output of every layer but the last gets a locked dropout of rate ``dropouth``."""
    p, n = 0.5, 16
    lm = randomised(LanguageModel(30, None, emsize=n, nhid=n, nlayers=2, dropout=0.0, dropouth=p, dropouti=0.0,
                                  dropoute=0.0, seed=6))
    seen = []
    upper = lm.rnns[1]
    call = upper.call
    monkeypatch.setattr(upper, "call", lambda inputs, *args, **kwargs: call(seen.append(inputs) or inputs, *args,
                                                                             **kwargs))
    ids = np.random.default_rng(7).integers(0, 30, (4, 9))
    out = lm.forward(ids, training=True)
    below = np.asarray(lm.rnns[0](lm.embedding.embeddings.numpy()[ids])[0])  # the LSTM has no dropout of its own
    fed = np.asarray(seen[0])
    kept = fed != 0
    np.testing.assert_allclose(fed[kept], below[kept] / (1 - p), rtol=1e-5)
    np.testing.assert_array_equal(kept, np.repeat(kept[:, :1], ids.shape[1], axis=1))  # same units at every step
    assert 0.2 < kept.mean() < 0.8
    np.testing.assert_array_equal(out.dropped_outputs, out.raw_outputs)  # the last layer: `dropout` (0 here) only


def test_nlayers_is_validated_and_search_supernets_refuse_more_than_one():
    with pytest.raises(ValueError, match="Argument `nlayers` must be an integer >= 1; received: nlayers=0"):
        LanguageModel(10, None, emsize=4, nhid=4, nlayers=0)
    with pytest.raises(ValueError, match=r"given a cell \(MixedCell, a search supernet\) has one recurrent layer; "
                                         "received nlayers=2"):
        LanguageModel(10, cell=MixedCell(2, 4), emsize=4, nhid=4, nlayers=2)


def test_embedding_is_initialised_from_u_004_as_darts():
    """DARTS ``RNNModel.init_weights``: encoder (and tied decoder) weights ~ U(-0.04, 0.04)."""
    assert ModelConfig().emb_init_range == 0.04
    lm = LanguageModel(2000, None, emsize=20, nhid=20, seed=0)
    lm.build_weights()
    E = lm.embedding.embeddings.numpy()
    assert 0.0399 < np.abs(E).max() <= 0.04
    assert np.std(E) == pytest.approx(0.04 / np.sqrt(3), rel=0.02)  # the standard deviation of U(-r, r)


SMALL = ModelConfig(emsize=4, nhid=4)


def test_a_supernet_derives_the_cell_genotype_with_the_attention_choice():
    lm = supernet(12, MixedCell(8, **cell_arguments(SMALL, 0)), SMALL, 0,
                  attention=MixedAttention(4, candidates=ATTENTION_HEADS, seed=attention_seed(0)))
    darts_v2 = resolve_genotype("darts_v2")
    lm.cell.set_one_hot(darts_v2)
    lm.attention.alpha.assign(np.float32([0.0, 0.0, 0.0, 3.0, 0.0]))
    assert lm.attention.candidates[3] == "additive"
    assert lm.derive() == darts_v2.with_attention("additive")
    assert [v.name for v in lm.arch_variables] == ["alpha_cell", "alpha_attention"]
    assert sorted(map(id, lm.arch_variables + lm.weight_variables)) == sorted(map(id, lm.trainable_variables))


def test_a_shared_weights_supernet_derives_the_genotype_it_was_set_to():
    lm = supernet(12, SharedCell(3, **cell_arguments(SMALL, 0)), SMALL, 0)
    genotype = Genotype((("relu", 0), ("tanh", 0), ("identity", 1)), first_node="enas",
                        first_activation="relu", output="loose_ends")
    lm.cell.set_genotype(genotype)
    assert lm.derive() == genotype == lm.cell.derive()
    assert lm.arch_variables == []
    assert sorted(v.name for v in lm.weight_variables) == ["W0", "Ws", "decoder_bias", "embeddings"]


def test_a_supernet_round_trips_through_its_config_with_the_same_variables():
    lm = supernet(12, MixedCell(3, norm="layer", **cell_arguments(SMALL, 5)), SMALL, 5,
                  attention=MixedAttention(4, candidates=("dot", "general"), seed=attention_seed(5)))
    clone = LanguageModel.from_config(lm.get_config())
    clone.build_weights()
    assert type(clone.cell) is MixedCell and clone.cell.norm == "layer" and clone.cell.steps == 3
    assert clone.attention.candidates == ("dot", "general") and not clone.is_lstm
    assert [v.path.split("/", 1)[1] for v in clone.weights] == [v.path.split("/", 1)[1] for v in lm.weights]
    for mine, theirs in zip(lm.weights, clone.weights):  # the same seeds draw the same initial weights
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_a_model_takes_a_genotype_or_a_cell_and_a_frozen_cell_derives_nothing():
    v2 = resolve_genotype("darts_v2")
    with pytest.raises(ValueError, match="pass a genotype or a cell, not both"):
        LanguageModel(10, v2, cell=MixedCell(2, 4), emsize=4, nhid=4)
    with pytest.raises(ValueError, match="the cell has 6 units but the model nhid=4"):
        LanguageModel(10, cell=MixedCell(2, 6), emsize=4, nhid=4)
    frozen = LanguageModel(10, v2, emsize=4, nhid=4)
    with pytest.raises(TypeError, match="derive\\(\\) needs a search cell; this model's cell is a GenotypeCell"):
        frozen.derive()
    assert frozen.arch_variables == [] and frozen.get_config().keys() == LanguageModel(10, None).get_config().keys()
