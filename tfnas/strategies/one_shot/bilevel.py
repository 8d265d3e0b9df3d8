"""Architecture gradients of DARTS: first order and the one-step unrolled second order.

DARTS (Liu et al., ICLR 2019, eq. 6-8) approximates the bilevel problem
``min_a L_val(w*(a), a)``, ``w*(a) = argmin_w L_train(w, a)`` by one virtual
SGD step ``w' = w - xi * dw`` with ``dw = k * grad_w L_train(w, a) + wd * w``
(``k`` the gradient-clipping coefficient, held constant). Its gradient is

    dL/da = grad_a L_val(w', a) - xi * k * grad^2_{a,w} L_train(w, a) . grad_w' L_val(w', a)

and the Hessian-vector product is the central finite difference (eq. 8)

    grad^2_{a,w} L_train . v ~ (grad_a L_train(w + R v, a) - grad_a L_train(w - R v, a)) / (2 R),
    R = r / ||v||,  r = 0.01.

First order (``xi = 0``) is ``grad_a L_val(w, a)``. The reference code
(quark0/darts ``rnn/architect.py`` at HEAD) also clips
``v = grad_w' L_val(w', a)`` to the gradient clip before the product,
``v <- v * min(1, clip / ||v||)``: with ``||v||`` of 10-50 in a PTB search
that shrinks the second term 40-200 times. ``clip_hvp_vector=True`` does
the same; ``False`` (the default) keeps the exact derivative of the unrolled
objective above. The dropout masks of the two finite-difference passes are
the same as those of the virtual step (the seed-generator states are
rewound; the reference draws new ones), so the difference measures the
change of ``w`` alone.
"""
from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

#: ``loss_fn(inputs, targets, states) -> (loss, new_states)``, reading the model's current variables.
LossFn = Callable[[tf.Tensor, tf.Tensor, list], tuple[tf.Tensor, list]]


def _norm(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    return tf.linalg.global_norm([tf.convert_to_tensor(t) for t in tensors])


def _clip_coefficient(tensors: Sequence[tf.Tensor], clip: float, dtype: tf.DType) -> tf.Tensor:
    """``min(1, clip / (||tensors|| + 1e-6))``, the scale of norm clipping (DARTS ``_clip``); 1 if ``clip`` is 0."""
    if not clip:
        return tf.constant(1.0, dtype)
    return tf.cast(tf.minimum(1.0, clip / (_norm(tensors) + 1e-6)), dtype)


class ArchitectureGradient:
    """Computes DARTS architecture gradients for a model with separate arch/weight variables.

    Args:
        loss_fn: the search loss (cross-entropy) of one batch under the current variables.
        weights: the network weights ``w``.
        arch: the architecture parameters ``a``.
        seed_states: variables of the dropout seed generators (rewound between passes).
        clip: gradient-norm clip of the virtual step (as the real weight step).
        wdecay: L2 weight decay of the virtual step.
        r: finite-difference scale of the Hessian-vector product.
        clip_hvp_vector: clip ``v`` to the norm ``clip`` before the
            Hessian-vector product, as the DARTS reference code (see the
            module docstring); False keeps the exact unrolled gradient.
    """

    def __init__(self, loss_fn: LossFn, weights: Sequence[tf.Variable], arch: Sequence[tf.Variable],
                 seed_states: Sequence[tf.Variable] = (), clip: float = 0.25, wdecay: float = 0.0,
                 r: float = 1e-2, clip_hvp_vector: bool = False):
        self.loss_fn = loss_fn
        self.weights = list(weights)
        self.arch = list(arch)
        self.seed_states = list(seed_states)
        self.clip = clip
        self.wdecay = wdecay
        self.r = r
        self.clip_hvp_vector = bool(clip_hvp_vector)

    def _grads(self, variables, inputs, targets, states):
        with tf.GradientTape() as tape:
            loss, new_states = self.loss_fn(inputs, targets, states)
        grads = tape.gradient(loss, variables)
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for v, g in zip(variables, grads)]
        return loss, grads, new_states

    def first_order(self, valid_batch) -> tuple[list[tf.Tensor], tf.Tensor, list]:
        """``grad_a L_val(w, a)``; returns ``(grads, val_loss, new_valid_states)``."""
        loss, grads, states = self._grads(self.arch, *valid_batch)
        return grads, loss, states

    def second_order(self, train_batch, valid_batch, xi: tf.Tensor) -> tuple[list[tf.Tensor], tf.Tensor, list]:
        """The unrolled gradient above; returns ``(grads, val_loss_at_w', new_valid_states)``.

        ``train_batch`` and ``valid_batch`` are ``(inputs, targets, states)``.
        The weights are restored before returning.
        """
        seeds = [tf.identity(s) for s in self.seed_states]
        backup = [tf.identity(w) for w in self.weights]
        _, g_train, _ = self._grads(self.weights, *train_batch)
        coef = _clip_coefficient(g_train, self.clip, backup[0].dtype)
        for w, g, w0 in zip(self.weights, g_train, backup):
            w.assign(w0 - xi * (coef * g + self.wdecay * w0))
        val_loss, grads = self._unrolled_valid_grads(valid_batch)
        g_arch, g_weights, valid_states = grads
        if self.clip_hvp_vector:
            v_coef = _clip_coefficient(g_weights, self.clip, backup[0].dtype)
            g_weights = [v_coef * g for g in g_weights]
        for w, w0 in zip(self.weights, backup):
            w.assign(w0)
        after = [tf.identity(s) for s in self.seed_states]
        hvp = self.hessian_vector_product(g_weights, train_batch, seeds)
        for s, value in zip(self.seed_states, after):
            s.assign(value)
        return [ga - xi * coef * h for ga, h in zip(g_arch, hvp)], val_loss, valid_states

    def _unrolled_valid_grads(self, valid_batch):
        with tf.GradientTape() as tape:
            loss, states = self.loss_fn(*valid_batch)
        grads = tape.gradient(loss, self.arch + self.weights)
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                 for v, g in zip(self.arch + self.weights, grads)]
        n = len(self.arch)
        return loss, (grads[:n], grads[n:], states)

    def hessian_vector_product(self, vector: Sequence[tf.Tensor], train_batch, seeds=None) -> list[tf.Tensor]:
        """``grad^2_{a,w} L_train(w, a) . vector`` by central differences (DARTS eq. 8)."""
        radius = tf.cast(self.r, vector[0].dtype) / (_norm(vector) + 1e-12)
        backup = [tf.identity(w) for w in self.weights]
        grads = []
        for sign in (1.0, -1.0):
            for s, value in zip(self.seed_states, seeds or []):
                s.assign(value)
            for w, w0, v in zip(self.weights, backup, vector):
                w.assign(w0 + sign * radius * v)
            grads.append(self._grads(self.arch, *train_batch)[1])
        for w, w0 in zip(self.weights, backup):
            w.assign(w0)
        return [(gp - gn) / (2.0 * radius) for gp, gn in zip(*grads)]


def adam_with_l2(optimizer, variables: Sequence[tf.Variable], grads: Sequence[tf.Tensor], wdecay: float) -> None:
    """Adam on ``grads + wdecay * variables`` (PyTorch ``Adam(weight_decay=...)``, as DARTS' architect)."""
    optimizer.apply_gradients([(g + wdecay * v, v) for g, v in zip(grads, variables)])
