"""`CellRNN` with per-step recomputation: the same outputs and gradients as storing every intermediate."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas.cells import CellRNN, GenotypeCell
from tfnas.cells.search.mixed_cell import MixedCell
from tfnas.cells.search.shared_cell import SharedCell
from tfnas.cells.tree_cell import TreeCell
from tfnas.genotypes.files import resolve_genotype


def make_cell(kind: str):
    """A built cell of each kind, with dropout on both masks."""
    masks = {"dropout_x": 0.3, "dropout_h": 0.2, "seed": 5}
    if kind == "genotype":
        cell = GenotypeCell(resolve_genotype("darts_v2"), 6, **masks)
    elif kind == "mixed":
        cell = MixedCell(3, 6, norm="batch", **masks)
    elif kind == "tree":
        cell = TreeCell(resolve_genotype("nascell"), 6, **masks)
    else:
        cell = SharedCell(3, 6, **masks)
    cell.build((None, 4))
    if kind == "mixed":  # a non-uniform mixture, so that every op's gradient matters
        cell.alpha.assign(np.random.default_rng(1).normal(size=cell.alpha.shape).astype("float32"))
    return cell


def seed_states(layer):
    return [v for v in layer.non_trainable_variables if "seed_generator_state" in v.path]


def loss_and_grads(rnn: CellRNN, x, h0, seeds_at):
    """Loss and gradients (cell variables, input, initial states) under the dropout masks of ``seeds_at``."""
    for var, value in zip(seed_states(rnn.cell), seeds_at):
        var.assign(value)

    @tf.function(autograph=False)
    def run(x, h0):
        with tf.GradientTape() as tape:
            tape.watch([x, *h0])
            out, finals = rnn(x, initial_state=h0, training=True)
            loss = tf.reduce_sum(tf.sin(out)) + tf.add_n([tf.reduce_sum(f * f) for f in finals])
        variables = rnn.cell.trainable_variables
        return loss, [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables + [x, *h0])]

    loss, grads = run(x, h0)
    return loss.numpy(), [g.numpy() for g in grads]


def inputs_of(cell):
    """An input ``[3, 7, 4]`` and initial states of ``cell``, drawn with a fixed seed."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, 7, 4)).astype("float32"))
    sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
    return x, [tf.constant(rng.normal(size=(3, n)).astype("float32")) for n in sizes]


@pytest.mark.parametrize("kind", ["genotype", "mixed", "tree", "shared"])
def test_recomputed_steps_give_the_same_loss_and_gradients(kind):
    cell = make_cell(kind)
    x, h0 = inputs_of(cell)
    seeds = [v.numpy() for v in seed_states(cell)]
    assert seeds, "the cell draws dropout masks, so both runs must use the same ones"
    stored = loss_and_grads(CellRNN(cell), x, h0, seeds)
    recomputed = loss_and_grads(CellRNN(cell, recompute=True), x, h0, seeds)
    np.testing.assert_allclose(recomputed[0], stored[0], rtol=1e-6)
    assert len(recomputed[1]) == len(stored[1]) == len(cell.trainable_variables) + 1 + len(h0)
    for got, want in zip(recomputed[1], stored[1]):
        assert np.max(np.abs(want)) > 0
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_recomputed_step_watches_no_integer_tensor(monkeypatch):
    """`SharedCell` prepares its architecture as an int32 tensor, which has no gradient: the recomputed step
    captures it instead of taking it as an argument, which `tf.recompute_grad` would watch (and TensorFlow warn
    that a watched tensor must be floating)."""
    cell = make_cell("shared")
    assert tf.int32 in {tf.as_dtype(p.dtype) for p in cell.prepare()}
    watched = []
    watch = tf.GradientTape.watch

    def recording_watch(tape, tensor):
        watched.extend(tf.nest.flatten(tensor))
        return watch(tape, tensor)

    monkeypatch.setattr(tf.GradientTape, "watch", recording_watch)
    x, h0 = inputs_of(cell)
    loss_and_grads(CellRNN(cell, recompute=True), x, h0, [v.numpy() for v in seed_states(cell)])
    dtypes = {tf.as_dtype(t.dtype) for t in watched}
    assert tf.float32 in dtypes and not any(d.is_integer for d in dtypes), dtypes


def test_recompute_is_inference_neutral_and_serialized():
    cell = make_cell("genotype")
    rnn = CellRNN(cell, recompute=True)
    x = np.random.default_rng(2).normal(size=(2, 5, 4)).astype("float32")
    out, _ = rnn(x, training=False)
    np.testing.assert_array_equal(out, CellRNN(cell)(x, training=False)[0])
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(rnn))
    assert restored.recompute is True and restored.get_config()["recompute"] is True
    assert CellRNN.from_config(CellRNN(cell).get_config()).recompute is False
