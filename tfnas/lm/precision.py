"""Mixed precision for training: Keras mixed dtype policies and dynamic loss scaling.

With ``mixed_precision`` on, the language model is built under Keras'
``mixed_bfloat16`` policy on a CPU (bfloat16 has float32's exponent range,
so no loss scaling) and ``mixed_float16`` on a GPU (Micikevicius et al.,
ICLR 2018): the weights stay float32 and each layer computes in the lower
precision, while the logits, the softmax cross-entropy, the AR/TAR terms
and the recurrent states carried between BPTT segments are float32
(`tfnas.lm.model.LanguageModel.forward`). Under float16 the loss is
multiplied by a dynamic scale before the gradient and the gradient divided
by it: a step whose gradient is not finite is skipped and the scale halved;
after `GROWTH_INTERVAL` finite steps in a row it doubles.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import keras
import tensorflow as tf

#: Loss scale at the start (2^15, Keras' ``LossScaleOptimizer`` default).
INITIAL_SCALE = 2.0 ** 15
#: Finite steps in a row after which the scale doubles (Keras' default).
GROWTH_INTERVAL = 2000


def mixed_policy_name() -> str:
    """``mixed_float16`` when TensorFlow sees a GPU, else ``mixed_bfloat16``."""
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to ``name`` while layers are built (they keep it), then restored."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class DynamicLossScale:
    """The loss scale of float16 training and its update rule (checkpointed with the run).

    Args:
        enabled: False gives the identity (scale 1, every step applied).
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.scale = tf.Variable(INITIAL_SCALE if enabled else 1.0, trainable=False, dtype=tf.float32)
        self.good_steps = tf.Variable(0, trainable=False, dtype=tf.int64)

    @property
    def variables(self) -> list[tf.Variable]:
        return [self.scale, self.good_steps]

    def scaled(self, loss: tf.Tensor) -> tf.Tensor:
        return loss * self.scale if self.enabled else loss

    def unscaled(self, grads: Sequence[tf.Tensor]) -> tuple[list[tf.Tensor], tf.Tensor]:
        """``(grads / scale, whether all are finite)``."""
        if not self.enabled:
            return list(grads), tf.constant(True)
        grads = [tf.convert_to_tensor(g) / self.scale for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        return grads, finite

    def update(self, finite: tf.Tensor) -> tf.Operation:
        """Halves the scale after a non-finite gradient; doubles it after `GROWTH_INTERVAL` finite steps."""
        if not self.enabled:
            return tf.no_op()

        def grow_or_count():
            grow = self.good_steps + 1 >= GROWTH_INTERVAL
            return tf.group(self.scale.assign(tf.where(grow, self.scale * 2.0, self.scale)),
                            self.good_steps.assign(tf.where(grow, tf.constant(0, tf.int64), self.good_steps + 1)))

        def shrink():
            return tf.group(self.scale.assign(self.scale / 2.0), self.good_steps.assign(0))

        return tf.cond(finite, grow_or_count, shrink)
