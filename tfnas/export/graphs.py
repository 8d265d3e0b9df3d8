"""The inference functions every export format is built from.

They call `LanguageModel.forward` directly (not through a Keras functional
model), which is what converts cleanly with tf2onnx, and take the state as
explicit inputs named ``hidden_i`` (never ``state``). A state input whose
batch axis is 1 is broadcast to the batch of ``ids``, so a single zero row
stands for "start from the zero state" at any batch size.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf

from tfnas.export.metadata import IDS_INPUT, state_input_name, state_output_name
from tfnas.export.run import state_shapes


def ids_spec(name: str = IDS_INPUT, dtype: tf.DType = tf.int32) -> tf.TensorSpec:
    """Token ids ``[batch, time]`` (int32, or int64 as `keras.layers.TextVectorization` gives), both axes dynamic."""
    return tf.TensorSpec([None, None], dtype, name=name)


def with_int32_ids(function: Callable[..., dict[str, tf.Tensor]], n_ids: int) -> Callable[..., dict[str, tf.Tensor]]:
    """``function`` with its first ``n_ids`` arguments (ids, targets) cast to int32 first: the same function for
    int64 ids (an id beyond the int32 range would be out of any vocabulary anyway)."""

    def cast(*args):
        return function(*[tf.cast(a, tf.int32) for a in args[:n_ids]], *args[n_ids:])

    return cast


def state_specs(model) -> list[tf.TensorSpec]:
    """One spec ``[batch, *shape]`` (float32, dynamic batch) per recurrent state of ``model``."""
    return [tf.TensorSpec([None, *shape], tf.float32, name=state_input_name(i))
            for i, shape in enumerate(state_shapes(model))]


def zero_states(model) -> list[tf.Tensor]:
    """One zero row ``[1, *shape]`` per state: the default initial state of the exports."""
    return [tf.zeros([1, *shape], tf.float32) for shape in state_shapes(model)]


def _broadcast(states, batch) -> list[tf.Tensor]:
    return [tf.broadcast_to(s, tf.concat([[batch], tf.shape(s)[1:]], axis=0)) for s in states]


def forward_fn(model) -> Callable[..., dict[str, tf.Tensor]]:
    """``f(ids, *states) -> {"logits": [B, T, V], "final_hidden_i": [B, ...]}``."""

    def forward(ids, *states):
        out = model.forward(ids, _broadcast(states, tf.shape(ids)[0]), training=False)
        logits = tf.cast(out.logits, tf.float32)
        return {"logits": logits, **{state_output_name(i): tf.cast(s, tf.float32)
                                     for i, s in enumerate(out.states)}}

    return forward


def score_fn(model) -> Callable[..., dict[str, tf.Tensor]]:
    """``f(ids, targets, *states) -> {"log_probs": [B, T], "final_hidden_i"}``: ``log p(targets | ids)``."""
    forward = forward_fn(model)

    def score(ids, targets, *states):
        out = forward(ids, *states)
        log_probs = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=out.pop("logits"))
        return {"log_probs": log_probs, **out}

    return score
