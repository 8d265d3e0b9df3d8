"""`FusedRNN` against Keras' own ``keras.layers.RNN(cell)`` with the same cell weights (the independent reference):
outputs, states and gradients for every argument that changes them, in `Bidirectional`, stacked, under XLA, saved
and loaded in a fresh process; with both of its loops (the XLA-compiled unrolled one and the ``tf.while_loop``)."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas.cells import FusedRNN, GenotypeCell, TreeCell, rnn
from tfnas.cells.attention import make_attention
from tfnas.errors import PathNotFoundError
from tfnas.genotypes.files import resolve_genotype

ROOT = Path(__file__).resolve().parents[2]
BATCH, TIME, FEATURES, UNITS = 3, 6, 4, 5
#: DAG cell, tree cell (two states), DAG cell under a head with weights.
CELLS = {"dag": ("darts_v2", "none"), "tree": ("nascell", "none"), "head": ("darts_v2", "general")}


def inputs(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(BATCH, TIME, FEATURES)).astype("float32")


def padded_mask() -> np.ndarray:
    """Row 0 padded after 4 steps, row 1 fully padded, row 2 whole."""
    mask = np.ones((BATCH, TIME), bool)
    mask[0, 4:] = False
    mask[1, :] = False
    return mask


def reference_cell(layer: FusedRNN) -> keras.layers.Layer:
    """A new cell of the layer's class and config (its own seed generator, same seed)."""
    return type(layer.cell).from_config(layer.cell.get_config())


def as_list(out) -> list[np.ndarray]:
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def carried(sequence: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keras' masking rule on a finished sequence, step by step: a masked step repeats the previous output
    (zeros at the first)."""
    out = np.zeros_like(sequence)
    for t in range(sequence.shape[1]):
        previous = out[:, t - 1] if t else np.zeros_like(sequence[:, 0])
        out[:, t] = np.where(mask[:, t, None], sequence[:, t], previous)
    return out


@pytest.fixture(params=["xla", "while"])
def loop(request, monkeypatch):
    """Runs a test with each of the fused loop's drivers: ``xla`` (the default, the sequence short enough) and
    ``while`` (the sequence longer than `rnn.XLA_MAX_STEPS`); checks that the XLA loop ran exactly in the first."""
    calls = []
    compiled = rnn.compiled_unrolled_loop

    def spy(*args):
        calls.append(args[1].shape)
        return compiled(*args)

    monkeypatch.setattr(rnn, "compiled_unrolled_loop", spy)
    if request.param == "while":
        monkeypatch.setattr(rnn, "XLA_MAX_STEPS", TIME - 1)
    yield request.param
    assert bool(calls) == (request.param == "xla")


class Reference:
    """``keras.layers.RNN(cell)`` with a built layer's cell weights, followed by the layer's head (if any) applied
    to the whole output sequence."""

    def __init__(self, layer: FusedRNN, **arguments):
        self.layer = layer
        self.arguments = arguments
        self.rnn = keras.layers.RNN(reference_cell(layer), **{**arguments, "return_sequences": True,
                                                              "return_state": True})
        self.rnn.build((None, None, FEATURES))
        self.rnn.set_weights(layer.cell.get_weights())

    def __call__(self, x, mask=None):
        out = self.rnn(x, mask=mask)
        sequence, states = np.asarray(out[0]), as_list(out[1:])
        if self.layer.head is not None:
            sequence = np.asarray(self.layer.head(sequence))
            if mask is not None:
                order = mask[:, ::-1] if self.arguments.get("go_backwards") else mask
                sequence = carried(sequence, order)
        output = sequence if self.arguments.get("return_sequences") else sequence[:, -1]
        return [output, *states] if self.arguments.get("return_state") else [output]


def close(a, b, tol=1e-5):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=tol, rtol=tol)


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_outputs_and_states_equal_keras_rnn_for_every_argument(kind, loop, monkeypatch):
    genotype, attention = CELLS[kind]
    x, mask = inputs(), padded_mask()
    combinations = list(itertools.product([False, True], repeat=4))
    if loop == "xla" and kind != "dag":
        # Each case compiles the XLA loop anew (seconds); the driver's masking and reversal are the same for every
        # cell, so the other cells run the cases that return everything, forwards and backwards, masked or not.
        combinations = [c for c in combinations if c[0] and c[1]]
    for sequences, state, backwards, masked in combinations:
        arguments = {"return_sequences": sequences, "return_state": state, "go_backwards": backwards}
        layer = FusedRNN(genotype, UNITS, attention=attention, seed=3, **arguments)
        fused = as_list(layer(x, mask=mask if masked else None))
        reference = Reference(layer, **arguments)
        close(fused, reference(x, mask=mask if masked else None))
        if masked and sequences:  # the zeros of masked steps, as Bidirectional asks of its layers
            zero = FusedRNN(layer.cell, attention=attention, zero_output_for_mask=True, **arguments)
            zero(x)
            zero.set_weights(layer.get_weights())
            reference = Reference(zero, zero_output_for_mask=True, **arguments)
            expected = reference(x, mask=mask)
            if layer.head is not None:  # the head's masked steps are zeros too
                expected[0] = np.where((mask[:, ::-1] if backwards else mask)[:, :, None], expected[0], 0.0)
            close(as_list(zero(x, mask=mask)), expected)
    assert layer.fused
    # The fused loop never calls the cell's one-step `call` (Keras' loop does, once per step and once more).
    monkeypatch.setattr(type(layer.cell), "call", lambda *a, **k: pytest.fail("the cell's step ran"))
    layer(x)


def test_masked_steps_keep_the_state_and_repeat_the_output():
    """A hand check of the masking rule: row 1 is fully padded (zeros out, initial state kept), row 0 stops at 4."""
    layer = FusedRNN("darts_v2", UNITS, return_sequences=True, return_state=True, seed=0)
    x, mask = inputs(), padded_mask()
    h0 = np.random.default_rng(2).normal(size=(BATCH, UNITS)).astype("float32")
    out, h = (np.asarray(t) for t in layer(x, mask=mask, initial_state=[h0]))
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_array_equal(h[1], h0[1])
    np.testing.assert_array_equal(out[0, 4:], np.stack([out[0, 3]] * 2))
    unpadded, h_short = (np.asarray(t) for t in layer(x[:1, :4], initial_state=[h0[:1]]))
    np.testing.assert_allclose(out[0, :4], unpadded[0], atol=1e-6)
    np.testing.assert_allclose(h[0], h_short[0], atol=1e-6)


def test_a_head_reads_the_whole_sequence_and_return_sequences_false_gives_its_last_step():
    layer = FusedRNN("darts_v2", UNITS, attention="dot", seed=0)
    full = FusedRNN(layer.cell, attention="dot", return_sequences=True)
    x = inputs()
    last = np.asarray(layer(x))
    plain = keras.layers.RNN(layer.cell, return_sequences=True)(x)
    np.testing.assert_allclose(np.asarray(full(x)), np.asarray(make_attention("dot", UNITS)(plain)), atol=1e-6)
    np.testing.assert_allclose(last, np.asarray(full(x))[:, -1], atol=1e-6)


def test_a_genotype_with_a_head_gets_it_unless_told_otherwise():
    nasabn = resolve_genotype("discovered/nasabn_ptb_cpu")
    assert nasabn.attention is not None
    assert type(FusedRNN(nasabn, UNITS).head).__name__ == type(make_attention(nasabn.attention, UNITS)).__name__
    assert FusedRNN(nasabn, UNITS, attention="none").head is None
    assert FusedRNN("darts_v2", UNITS).head is None


@pytest.mark.parametrize("kind", ["dag", "tree"])
def test_stateful_across_two_calls_then_reset(kind, loop):
    genotype, _ = CELLS[kind]
    layer = FusedRNN(genotype, UNITS, stateful=True, return_sequences=True, seed=1)
    reference = keras.layers.RNN(reference_cell(layer), stateful=True, return_sequences=True)
    x1, x2 = inputs(1), inputs(2)
    first = np.asarray(layer(x1))
    reference(x1)
    reference.set_weights(layer.cell.get_weights())
    reference.reset_state()
    np.testing.assert_allclose(first, np.asarray(reference(x1)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(layer(x2)), np.asarray(reference(x2)), atol=1e-5)
    assert not np.allclose(np.asarray(layer.states[0]), 0.0)
    layer.reset_state()
    np.testing.assert_allclose(np.asarray(layer(x1)), first, atol=1e-6)


@pytest.mark.parametrize("kind", ["dag", "tree"])
def test_training_dropout_and_gradients_equal_keras_rnn(kind, loop):
    """Same seeds: the same per-sequence masks in both layers, so the same outputs and gradients; dropout acts."""
    genotype, _ = CELLS[kind]
    layer = FusedRNN(genotype, UNITS, return_sequences=True, return_state=True, dropout_x=0.4, dropout_h=0.3,
                     seed=7)
    reference = keras.layers.RNN(reference_cell(layer), return_sequences=True, return_state=True)
    x, mask = tf.constant(inputs()), tf.constant(padded_mask())
    layer(x)
    reference(x)
    reference.set_weights(layer.get_weights())
    # Both seed generators have drawn once per call so far: they are in step.

    def loss_and_grads(rnn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out, *states = rnn(x, mask=mask, training=True)
            loss = tf.reduce_sum(tf.sin(out)) + tf.add_n([tf.reduce_sum(s * s) for s in states])
        return [loss.numpy()] + [np.asarray(g) for g in tape.gradient(loss, [x, *rnn.trainable_weights])]

    fused, keras_grads = loss_and_grads(layer), loss_and_grads(reference)
    close(fused, keras_grads, tol=1e-4)
    evaluation = np.asarray(layer(x, mask=mask)[0])
    assert np.abs(np.asarray(layer(x, mask=mask, training=True)[0]) - evaluation).max() > 1e-3


def test_bidirectional_and_stacked_equal_keras_rnn(loop):
    x, mask = inputs(), padded_mask()
    fused = keras.Sequential([keras.Input((TIME, FEATURES)), keras.layers.Masking(),
                              keras.layers.Bidirectional(FusedRNN("darts_v2", UNITS, return_sequences=True, seed=4)),
                              FusedRNN("nascell", UNITS, return_sequences=True, seed=5),
                              FusedRNN("darts_v2", UNITS, attention="general", seed=6)])
    bidirectional, tree, top = fused.layers[1:]
    reference = keras.Sequential([
        keras.Input((TIME, FEATURES)), keras.layers.Masking(),
        keras.layers.Bidirectional(keras.layers.RNN(reference_cell(bidirectional.forward_layer),
                                                    return_sequences=True)),
        keras.layers.RNN(reference_cell(tree), return_sequences=True),
        keras.layers.RNN(reference_cell(top), return_sequences=True)])
    reference.set_weights([w for w in fused.get_weights()][:len(reference.get_weights())])
    assert bidirectional.backward_layer.go_backwards and isinstance(bidirectional.backward_layer, FusedRNN)
    padded = x * padded_mask()[:, :, None]  # Masking skips the all-zero steps
    expected = np.asarray(top.head(np.asarray(reference(padded))))
    expected = carried(expected, mask)[:, -1]
    np.testing.assert_allclose(np.asarray(fused(padded)), expected, atol=1e-5)


def _compiled_step(model: keras.Model, x, y, jit: bool):
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse", jit_compile=jit)
    loss = model.train_on_batch(x, y)
    return [loss] + [np.asarray(w) for w in model.get_weights()]


def test_a_compiled_training_step_under_xla_equals_keras_rnn(monkeypatch):
    """Under a model compiled with XLA the layer runs the while loop, which XLA compiles with the model (its own
    XLA function nested in the model's compiled for minutes at 128 units)."""
    monkeypatch.setattr(rnn, "compiled_unrolled_loop", lambda *a: pytest.fail("the nested XLA loop ran"))
    x = inputs()
    y = np.random.default_rng(1).normal(size=(BATCH, TIME, UNITS)).astype("float32")
    layer = FusedRNN("darts_v2", UNITS, return_sequences=True, seed=2)
    fused = keras.Sequential([keras.Input((TIME, FEATURES)), layer])
    reference = keras.Sequential([keras.Input((TIME, FEATURES)),
                                  keras.layers.RNN(reference_cell(layer), return_sequences=True)])
    reference.set_weights(fused.get_weights())
    close(_compiled_step(fused, x, y, jit=True), _compiled_step(reference, x, y, jit=False))


def test_names_paths_and_genotypes_give_the_same_cell():
    nascell = resolve_genotype("nascell")
    for given in ("nascell", ROOT / "exported_cells" / "nascell.json", str(ROOT / "exported_cells" / "nascell.json"),
                  nascell, nascell.to_dict()):
        cell = FusedRNN(given, UNITS).cell
        assert isinstance(cell, TreeCell) and cell.genotype == nascell and cell.units == UNITS
    cell = FusedRNN("darts_v2", UNITS, dropout_x=0.25, seed=9).cell
    assert isinstance(cell, GenotypeCell) and cell.genotype == resolve_genotype("darts_v2")
    assert (cell.dropout, cell.seed) == (0.25, 9)


def test_bad_arguments_fail_on_one_line():
    with pytest.raises(PathNotFoundError) as err:
        FusedRNN("darts_v9", UNITS)
    assert "darts_v9" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="`units`"):
        FusedRNN("darts_v2")
    with pytest.raises(ValueError, match="seed"):
        FusedRNN(GenotypeCell("darts_v2", UNITS), seed=1)
    with pytest.raises(ValueError, match="name"):
        FusedRNN("darts_v2", UNITS, attention="luong")
    with pytest.raises(ValueError, match="jit_compile") as err:
        FusedRNN("darts_v2", UNITS, jit_compile="auto")
    assert "\n" not in str(err.value)


def test_the_xla_context_is_seen_inside_a_compiled_function_only():
    assert not rnn.in_xla_context()
    seen = {}

    def probe(jit):
        seen[jit] = rnn.in_xla_context()
        return tf.constant(0.0)

    tf.function(lambda: probe(True), jit_compile=True)()
    tf.function(lambda: probe(False))()
    assert seen == {True: True, False: False}


def test_jit_compile_false_runs_the_while_loop_and_is_kept_in_the_config(monkeypatch):
    monkeypatch.setattr(rnn, "compiled_unrolled_loop", lambda *a: pytest.fail("the XLA loop ran"))
    layer = FusedRNN("darts_v2", UNITS, return_sequences=True, jit_compile=False, seed=0)
    x, mask = inputs(), padded_mask()
    close(as_list(layer(x, mask=mask)), Reference(layer, return_sequences=True)(x, mask=mask)[:1])
    again = FusedRNN.from_config(layer.get_config())
    assert layer.get_config()["jit_compile"] is False and again.jit_compile is False


def test_other_cells_and_unroll_run_keras_loop():
    layer = FusedRNN("darts_v2", UNITS, return_sequences=True, unroll=True, seed=0)
    x, mask = inputs(), padded_mask()
    assert not layer.fused
    close(as_list(layer(x, mask=mask)), Reference(layer, return_sequences=True)(x, mask=mask)[:1])
    lstm = FusedRNN(keras.layers.LSTMCell(UNITS), return_sequences=True)
    assert not lstm.fused and np.asarray(lstm(x)).shape == (BATCH, TIME, UNITS)


def test_a_keras_file_loads_in_a_fresh_process_after_import_tfnas(tmp_path):
    x = inputs()
    model = keras.Sequential([keras.Input((TIME, FEATURES)), keras.layers.Masking(),
                              keras.layers.Bidirectional(FusedRNN("nascell", UNITS, return_sequences=True, seed=1)),
                              FusedRNN("darts_v2", UNITS, attention="general", dropout_h=0.2, seed=2)])
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.asarray(model(x)))
    code = textwrap.dedent(f"""
        import tfnas, keras, numpy as np
        model = keras.saving.load_model({str(path)!r})
        layers = [type(layer).__name__ for layer in model.layers]
        diff = float(np.abs(np.asarray(model(np.load({str(tmp_path / 'x.npy')!r}))) -
                            np.load({str(tmp_path / 'y.npy')!r})).max())
        print(layers, model.layers[-1].attention, diff)
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    layers, attention, diff = done.stdout.strip().splitlines()[-1].rsplit(" ", 2)
    assert layers == "['Masking', 'Bidirectional', 'FusedRNN']" and attention == "general"
    assert float(diff) < 1e-6
