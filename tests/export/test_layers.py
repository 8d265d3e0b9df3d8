"""Two-layer models (``model.nlayers = 2``, the children of Zoph & Le section 4.2) in every export format.

The states are one flat list, layer after layer, so their names extend those
of one layer: ``hidden_0`` (and ``hidden_1`` for ``[h, c]`` cells) is layer
1, the next ones layer 2. Each format must give the model's logits and final
states, take every state as an input, and carry them across calls.
"""
import numpy as np
import onnx
import pytest
import tensorflow as tf

from tfnas.export import FORMATS, load_export, score_file

#: A DAG cell (one state per layer) and the LSTM baseline (two per layer), as in conftest.py.
LAYERED = ("darts_v2_2layers", "lstm_2layers")


def state_names(kind: str) -> list[str]:
    per_layer = 2 if kind.startswith("lstm") else 1
    return [f"hidden_{i}" for i in range(2 * per_layer)]


def random_states(names, batch, rng):
    return [rng.normal(0, 0.5, (batch, 16)).astype(np.float32) for _ in names]


@pytest.mark.parametrize("kind", LAYERED)
def test_keras_and_savedmodel_give_the_models_logits_and_states(runs, kind):
    model = runs.loaded(kind).model
    names = state_names(kind)
    assert model.hparams.nlayers == 2 and len(model.initial_state(1)) == len(names)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, model.vocab_size, (3, 9)).astype(np.int32)
    states = random_states(names, 3, rng)
    ref = model.forward(ids, states)
    # The second layer's states are inputs too: changing only them changes the logits.
    upper = states[:len(names) // 2] + random_states(names[len(names) // 2:], 3, rng)
    assert np.abs(model.forward(ids, upper).logits.numpy() - ref.logits.numpy()).max() > 1e-3
    for fmt in ("keras", "savedmodel"):
        lm = load_export(runs.exports(kind) / fmt)
        assert lm.state_names == names, fmt
        logits, finals = lm.step(ids, states)
        assert np.abs(logits - ref.logits.numpy()).max() < 1e-5, fmt
        for got, want in zip(finals, ref.states):
            assert np.abs(got - want.numpy()).max() < 1e-5, fmt
        first, carried = lm.step(ids[:, :4], states)
        second, _ = lm.step(ids[:, 4:], carried)
        np.testing.assert_allclose(np.concatenate([first, second], axis=1), logits, atol=1e-5, err_msg=fmt)
    serving = tf.saved_model.load(str(runs.exports(kind) / "savedmodel")).signatures["serving_default"]
    assert set(serving.structured_input_signature[1]) == {"ids", *names}
    assert set(serving.structured_outputs) == {"logits", *[f"final_{n}" for n in names]}


@pytest.mark.parametrize("kind", LAYERED)
def test_onnx_gives_the_models_logits_and_states(runs, kind):
    model = runs.loaded(kind).model
    names = state_names(kind)
    path = runs.exports(kind) / "onnx"
    proto = onnx.load(str(path / "model.onnx"))
    assert [i.name for i in proto.graph.input] == ["ids"] + names
    assert sorted(o.name for o in proto.graph.output) == sorted(["logits"] + [f"final_{n}" for n in names])
    lm = load_export(path)
    rng = np.random.default_rng(1)
    for batch, time in ((1, 5), (3, 12)):
        ids = rng.integers(0, model.vocab_size, (batch, time)).astype(np.int32)
        states = random_states(names, batch, rng)
        ref = model.forward(ids, states)
        logits, finals = lm.step(ids, states)
        assert np.abs(logits - ref.logits.numpy()).max() < 1e-5
        for got, want in zip(finals, ref.states):
            assert np.abs(got - want.numpy()).max() < 1e-5


@pytest.mark.parametrize("kind", LAYERED)
def test_score_of_every_format_matches_the_trainer(runs, tiny_corpus, kind):
    test_ppl = runs.loaded(kind).result["test_ppl"]
    for fmt in FORMATS:
        result = score_file(load_export(runs.exports(kind) / fmt), tiny_corpus / "test.txt")
        assert abs(result.perplexity / test_ppl - 1) < 1e-3, (fmt, result.perplexity, test_ppl)
