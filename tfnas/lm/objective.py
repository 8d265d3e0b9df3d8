"""The language-modelling objective, the clipped SGD update and the evaluation loss shared by training and search."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from tfnas.data import BPTTIterator
from tfnas.lm.model import LMOutput

#: An evaluation step: ``(inputs, targets, states) -> (mean per-token loss, new states)``.
EvalStep = Callable[[tf.Tensor, tf.Tensor, Sequence[tf.Tensor]], tuple[tf.Tensor, Sequence[tf.Tensor]]]
from tfnas.lm.regularizers import activation_regularization, temporal_activation_regularization


def cross_entropy(logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Mean per-token cross-entropy (natural log)."""
    return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True))


def regularized_loss(out: LMOutput, targets: tf.Tensor, alpha: float, beta: float) -> tuple[tf.Tensor, tf.Tensor]:
    """``(CE + AR(alpha) + TAR(beta), CE)`` of one forward pass (AWD-LSTM)."""
    raw = cross_entropy(out.logits, targets)
    loss = raw
    if alpha:
        loss += activation_regularization(out.dropped_outputs, alpha)
    if beta:
        loss += temporal_activation_regularization(out.raw_outputs, beta)
    return loss, raw


def clipped_sgd_update(variables: Sequence[tf.Variable], grads: Sequence[tf.Tensor], lr: tf.Tensor,
                       clip: float, wdecay: float) -> tf.Tensor:
    """``w <- w - lr * (clip(g) + wdecay * w)``; returns the gradient norm before clipping.

    The order (clip the loss gradient, then add the L2 term) is PyTorch's
    ``clip_grad_norm_`` followed by ``SGD(weight_decay=...)``, as in DARTS.
    """
    grads, norm = tf.clip_by_global_norm([tf.convert_to_tensor(g) for g in grads], clip)
    for var, grad in zip(variables, grads):
        var.assign_sub(lr * (grad + wdecay * var))
    return norm


def make_eval_step(model: Any) -> EvalStep:
    """The traced `EvalStep` of ``model`` (anything with ``forward``): its cross-entropy in inference mode."""

    def step(inputs, targets, states):
        out = model.forward(inputs, states, training=False)
        return cross_entropy(out.logits, targets), out.states

    return tf.function(step, reduce_retracing=True)


def mean_window_loss(step: EvalStep, data: np.ndarray, bptt: int, states: Sequence[tf.Tensor],
                     max_batches: int | None = None) -> float:
    """Mean per-token loss of ``step`` over the fixed-length BPTT windows of batchified ``data``.

    The windows have ``bptt`` steps (the last one what is left;
    `tfnas.data.BPTTIterator` with ``variable=False``), the states are
    carried from window to window starting from ``states``, and each
    window's mean loss is weighted by its number of targets. Evaluation in
    the trainer, the one-shot search loop and the weight-sharing evaluator.

    Args:
        step: an `EvalStep` (e.g. from `make_eval_step`).
        data: ``[batch, time]`` token ids.
        bptt: window length.
        states: the initial states (``batch`` rows).
        max_batches: stop after this many windows (None: all).
    """
    total, count = 0.0, 0
    for k, (inputs, targets, _, _) in enumerate(BPTTIterator(data, bptt, variable=False)):
        if max_batches is not None and k >= max_batches:
            break
        loss, states = step(tf.constant(inputs, tf.int32), tf.constant(targets, tf.int32), states)
        total += float(loss) * targets.size
        count += targets.size
    return total / max(count, 1)
