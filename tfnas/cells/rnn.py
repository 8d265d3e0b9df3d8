"""`CellRNN` and `fused_loop`: the fused time loop that runs any tfnas cell over a sequence."""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfnas")
class CellRNN(keras.layers.Layer):
    """Runs a tfnas cell over ``[batch, time, features]`` in one loop.

    Equivalent to ``keras.layers.RNN(cell, return_sequences=True,
    return_state=True)`` but faster: the input part of the first matmul is
    computed for all time steps at once (``cell.project_inputs``), weights
    that do not change over time are prepared once per sequence
    (``cell.prepare``), and the recurrence is a single ``tf.scan``. The
    variational dropout masks of the cell (on the input and on the hidden
    state) are drawn once per call, so they are fixed over the sequence.

    With ``recompute=True`` each time step is wrapped in `tf.recompute_grad`
    while training: the forward pass keeps only the step inputs (the state
    and the projected input) instead of every intermediate of the cell, and
    the backward pass recomputes one step at a time. For a search cell (a
    DARTS supernet evaluates every op on every edge) this cuts the memory of
    a training step by about half at a few per cent of time (see
    ``scripts/bench.py``); the gradients are the same.

    A cell used here provides ``project_inputs(x)``, ``prepare()``,
    ``transition(x_proj_t, states, prepared, h_mask)`` returning
    ``(output, new_states)``, ``state_size`` and the ``dropout`` /
    ``recurrent_dropout`` rates with ``get_dropout_mask`` /
    ``get_recurrent_dropout_mask`` (Keras' ``DropoutRNNCell``).

    Args:
        cell: the cell (e.g. `GenotypeCell`).
        recompute: recompute each step's intermediates in the backward pass
            (training only) instead of storing them.

    Call arguments:
        inputs: ``[batch, time, features]``.
        initial_state: list of state tensors, or None for zeros.
        training: whether dropout applies.

    Call returns:
        ``(outputs [batch, time, units], final_states list)``.
    """

    def __init__(self, cell: keras.layers.Layer, recompute: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.recompute = bool(recompute)

    def build(self, input_shape):
        if not self.cell.built:
            self.cell.build((input_shape[0], input_shape[-1]))
        self.built = True

    def initial_state(self, batch_size) -> list[tf.Tensor]:
        """The cell's initial states (``cell.get_initial_state``, zeros for every cell but a noisy
        `WeightedCells`)."""
        return list(self.cell.get_initial_state(batch_size))

    def call(self, inputs, initial_state=None, training=False):
        if initial_state is None:
            initial_state = self.initial_state(tf.shape(inputs)[0])
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        return fused_loop(self.cell, inputs, states, training, recompute=self.recompute)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cell": keras.saving.serialize_keras_object(self.cell),
                "recompute": self.recompute}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)


#: The longest sequence `fused_loop` unrolls under XLA (``jit_compile``); longer ones run the ``tf.while_loop``.
XLA_MAX_STEPS = 128


def fused_loop(cell: keras.layers.Layer, inputs: tf.Tensor, states: list[tf.Tensor], training: Any,
               mask: tf.Tensor | None = None, go_backwards: bool = False, zero_output_for_mask: bool = False,
               recompute: bool = False, jit_compile: bool = False) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Runs ``cell`` (the fused protocol, see `CellRNN`) over ``inputs [batch, time, features]`` from ``states``.

    With ``y_t, s_t = transition(P_t, s_{t-1})`` and ``P = project_inputs(x * m_x)`` computed for all steps at
    once, a ``mask [batch, time]`` makes a masked step keep its state and repeat the previous output (zeros at
    the first step, or always with ``zero_output_for_mask``)::

        s_t = s_t if mask_t else s_{t-1},   y_t = y_t if mask_t else (0 if zero_output_for_mask else y_{t-1})

    which is ``keras.layers.RNN``'s rule. ``go_backwards`` reads the steps last first and returns the outputs
    in that order. The dropout masks ``m_x`` and ``m_h`` are the cell's (`DropoutRNNCell`: drawn once per
    sequence, or the ones ``keras.layers.RNN.call`` drew before its loop), cleared after.

    With ``jit_compile``, a number of steps known when the graph is traced and at most `XLA_MAX_STEPS`, and
    no XLA compilation around the call already, the steps are unrolled inside one XLA-compiled function
    (`compiled_unrolled_loop`): XLA fuses each step's element-wise ops, and the forward pass hands its backward
    pass plain tensors (a ``tf.while_loop``'s gradient needs tensor lists, which cannot leave an XLA function).
    Each new ``[batch, time]`` shape compiles once. Otherwise, and always without ``jit_compile``, the
    recurrence is one ``tf.while_loop``, which an enclosing XLA compilation (a model compiled with
    ``jit_compile=True``) compiles with the rest: the unrolled function nested in it made XLA's compilation of
    a training step run for minutes.

    Returns ``(outputs [batch, time, units] in the order read, final states)``.
    """
    if recompute and jit_compile:
        raise ValueError("Arguments `recompute` and `jit_compile` cannot both be set: the XLA loop keeps every "
                         "step's intermediates")
    x_mask = h_mask = None
    if training and cell.dropout > 0:
        x_mask = cell.get_dropout_mask(inputs[:, 0])
        cell.reset_dropout_mask()
    if training and cell.recurrent_dropout > 0:
        h_mask = cell.get_recurrent_dropout_mask(states[0])
        cell.reset_recurrent_dropout_mask()
    steps = inputs.shape[1]
    if jit_compile and steps is not None and steps <= XLA_MAX_STEPS and not in_xla_context():
        return compiled_unrolled_loop(cell, inputs, list(states), x_mask, h_mask, mask, go_backwards,
                                      zero_output_for_mask)
    return _while_loop(cell, inputs, states, x_mask, h_mask, mask, go_backwards, zero_output_for_mask,
                       recompute and training)


def in_xla_context() -> bool:
    """Whether the graph being built is compiled by XLA (inside a ``tf.function(jit_compile=True)``, or a Keras
    model compiled with ``jit_compile=True``); True when TensorFlow does not say, so that no XLA function is
    nested in one by mistake."""
    try:  # TensorFlow's own test of it, not exported publicly
        from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext
    except ImportError:
        return True
    return bool(GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


def _project(cell, inputs, x_mask, mask, go_backwards):
    """``(P [time, batch, 2 units] = project_inputs(x * m_x) in reading order, mask [time, batch, 1] or None,
    the cell's prepared weights)``."""
    if x_mask is not None:
        inputs = inputs * tf.expand_dims(x_mask, 1)
    if go_backwards:
        inputs = tf.reverse(inputs, [1])
        mask = None if mask is None else tf.reverse(mask, [1])
    keep = None if mask is None else tf.transpose(tf.cast(mask, tf.bool), [1, 0])[:, :, None]
    return tf.transpose(cell.project_inputs(inputs), [1, 0, 2]), keep, cell.prepare()


def _masked(output, new_states, prev_output, prev_states, keep, zero_output_for_mask):
    """A step's output and states under ``keep [batch, 1]`` (`fused_loop`'s masking rule)."""
    output = tf.where(keep, output, tf.zeros_like(output) if zero_output_for_mask else prev_output)
    return output, [tf.where(keep, new, old) for new, old in zip(new_states, prev_states)]


def _while_loop(cell, inputs, states, x_mask, h_mask, mask, go_backwards, zero_output_for_mask, recompute):
    """The recurrence as one ``tf.while_loop`` over ``tf.TensorArray`` s (any number of steps)."""
    projected, keep, prepared = _project(cell, inputs, x_mask, mask, go_backwards)
    steps = tf.shape(projected)[0]
    inputs_ta = tf.TensorArray(projected.dtype, size=steps).unstack(projected)
    outputs_ta = tf.TensorArray(cell.compute_dtype, size=steps)
    transition = _transition(cell, h_mask, len(states), recompute)

    if keep is None:
        def body(t, prev_states, outputs_ta):
            output, new_states = transition(inputs_ta.read(t), prev_states, prepared)
            return t + 1, list(new_states), outputs_ta.write(t, output)

        loop_vars = (0, states, outputs_ta)
    else:
        keep_ta = tf.TensorArray(tf.bool, size=steps).unstack(keep)

        def body(t, prev_states, outputs_ta, prev_output):
            output, new_states = transition(inputs_ta.read(t), prev_states, prepared)
            output, new_states = _masked(output, new_states, prev_output, prev_states, keep_ta.read(t),
                                         zero_output_for_mask)
            return t + 1, new_states, outputs_ta.write(t, output), output

        loop_vars = (0, states, outputs_ta, tf.zeros((tf.shape(inputs)[0], cell.output_size), cell.compute_dtype))
    finals, outputs_ta = tf.while_loop(lambda t, *_: t < steps, body, loop_vars, maximum_iterations=steps)[1:3]
    return tf.transpose(outputs_ta.stack(), [1, 0, 2]), finals


@tf.function(jit_compile=True)
def compiled_unrolled_loop(cell, inputs, states, x_mask, h_mask, mask, go_backwards, zero_output_for_mask):
    """The recurrence unrolled over the (static) steps, compiled by XLA with its gradient (see `fused_loop`)."""
    projected, keep, prepared = _project(cell, inputs, x_mask, mask, go_backwards)
    output = tf.zeros((tf.shape(inputs)[0], cell.output_size), cell.compute_dtype)
    outputs = []
    for t in range(projected.shape[0]):
        new_output, new_states = cell.transition(projected[t], states, prepared, h_mask)
        if keep is None:
            output, states = new_output, list(new_states)
        else:
            output, states = _masked(new_output, new_states, output, states, keep[t], zero_output_for_mask)
        outputs.append(output)
    return tf.stack(outputs, axis=1), states


def _transition(cell: keras.layers.Layer, h_mask: tf.Tensor | None, n_states: int, recompute: Any):
    """``f(x_proj_t, states, prepared) -> (output, new_states)``, recomputed in backprop if ``recompute``."""
    if not recompute:
        return lambda x, states, prepared: cell.transition(x, states, prepared, h_mask)

    def run(x, states, prepared):
        # Every tensor the step differentiates through is an argument (captured ones would get no gradient); an
        # integer one (`SharedCell`'s architecture) has none and is captured: `tf.recompute_grad` watches its
        # arguments, and the tape warns of an integer one.
        floating = [tf.as_dtype(p.dtype).is_floating for p in prepared]

        @tf.recompute_grad
        def step(x, *tensors):
            differentiated = iter(tensors[n_states:])
            parts = [next(differentiated) if f else p for p, f in zip(prepared, floating)]
            output, new_states = cell.transition(x, list(tensors[:n_states]), parts, h_mask)
            return [output, *new_states]

        output, *new_states = step(x, *states, *(p for p, f in zip(prepared, floating) if f))
        return output, new_states

    return run
