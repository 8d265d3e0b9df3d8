"""The largest eigenvalue of the validation loss' Hessian with respect to the architecture (R-DARTS).

Zela et al. (ICLR 2020, section 4) track the dominant eigenvalue of

    H = grad^2_alpha L_valid(w, alpha)

over a DARTS search: it grows as the search heads for architectures that
generalise badly, which DARTS-ES (`tfnas.strategies.one_shot.early_stop`)
turns into a stopping rule. tfnas computes Hessian-vector products exactly
by differentiating twice (back-over-back, two nested `tf.GradientTape`)::

    H v = grad_alpha ( grad_alpha L_valid(w, alpha) . v )

(unlike the finite difference of DARTS' eq. 8 in `bilevel`, which is the
mixed Hessian of the *training* loss). R-DARTS tracks the largest
eigenvalue ``lambda_max`` (the sharpest upward curvature). Plain power
iteration finds the eigenvalue of largest *magnitude* instead, and on a
short search the Hessian is indefinite with its largest-magnitude
eigenvalue negative (the validation loss is far from a minimum in alpha;
softmax's invariance to a constant added to an edge's alpha also gives it
one zero eigenvalue per edge, so ``lambda_max >= 0``): power iteration
there returns the most negative eigenvalue, and power iteration on a
shifted ``H - mu I`` converges at a rate near 1 because many eigenvalues
lie near zero. tfnas therefore runs Lanczos' method, the Krylov form of
power iteration: from the unit start vector ``q_1``,

    w = H q_j - a_j q_j - b_{j-1} q_{j-1},   a_j = q_j . H q_j,   b_j = ||w||,   q_{j+1} = w / b_j

(``w`` reorthogonalised against every ``q``, twice, so that rounding does
not bring back converged directions), ``j = 1..T``; the extreme eigenvalues
of the tridiagonal ``T_T`` (``a`` on the diagonal, ``b`` beside it) bound
and approach those of ``H`` from inside, ``lambda_max`` at least as closely
as the ``T``-th power iterate's Rayleigh quotient (which lies in the same
Krylov space), and exactly once the space is invariant (``b_j = 0``, at the
latest at ``T = dim``). With ``T`` fixed and ``q_1`` fixed the result is
reproducible.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

#: ``b_j`` below this fraction of the largest ``|a|, |b|`` so far ends the recurrence: the Krylov space is invariant.
BREAKDOWN = 1e-10


def lanczos_extremes(product: Callable[[np.ndarray], np.ndarray], start: np.ndarray,
                     iterations: int) -> tuple[float, float]:
    """The smallest and largest eigenvalue of a symmetric operator by ``iterations`` steps of Lanczos' method
    (module docstring).

    Args:
        product: ``v -> H v`` on flat vectors.
        start: the start vector ``q_1`` (normalised here; not zero).
        iterations: ``T``, the number of products at most (fewer if the Krylov space closes), at least 1.

    Returns:
        ``(smallest, largest)`` eigenvalue of ``T_T``: with ``T = 1`` both are ``q_1 . H q_1``.
    """
    if iterations < 1:
        raise ValueError(f"Argument `iterations` must be a positive integer; received: iterations={iterations}")
    q = np.asarray(start, dtype=np.float64)
    norm = np.linalg.norm(q)
    if not norm > 0:
        raise ValueError("Argument `start` must be a non-zero vector")
    basis = [q / norm]
    diagonal: list[float] = []
    beside: list[float] = []
    for j in range(iterations):
        w = np.asarray(product(basis[j]), dtype=np.float64)
        diagonal.append(float(basis[j] @ w))
        for _ in range(2):
            w = w - np.stack(basis, axis=1) @ (np.stack(basis) @ w)
        b = float(np.linalg.norm(w))
        if j == iterations - 1 or b <= BREAKDOWN * max(map(abs, diagonal + beside)):
            break
        beside.append(b)
        basis.append(w / b)
    ritz = np.linalg.eigvalsh(np.diag(diagonal) + np.diag(beside, 1) + np.diag(beside, -1))
    return float(ritz[0]), float(ritz[-1])


class ArchitectureHessian:
    """Exact Hessian-vector products of a scalar loss with respect to some variables, and its extreme eigenvalues.

    Args:
        loss: ``() -> scalar``, the loss under the variables' current values
            (for R-DARTS: the validation cross-entropy of a fixed batch).
        variables: the variables ``alpha`` (flattened and concatenated in
            this order into the vectors of `product`).

    Example:

    >>> a = tf.Variable([1.0, 2.0])
    >>> hessian = ArchitectureHessian(lambda: a[0] ** 2 + 3.0 * a[0] * a[1], [a])   # H = [[2, 3], [3, 0]]
    >>> hessian.product(np.array([1.0, 0.0])).tolist()
    [2.0, 3.0]
    >>> [round(e, 4) for e in hessian.extreme_eigenvalues(np.array([1.0, 1.0]), 2)]   # 1 -+ sqrt(10)
    [-2.1623, 4.1623]
    """

    def __init__(self, loss: Callable[[], tf.Tensor], variables: Sequence[tf.Variable]):
        self.loss = loss
        self.variables = list(variables)
        self.sizes = [int(np.prod(v.shape)) for v in self.variables]
        #: The length of the flat vectors.
        self.size = sum(self.sizes)
        dtype = self.variables[0].dtype
        self._product = tf.function(self._hvp, input_signature=[tf.TensorSpec([self.size], dtype)], autograph=False)

    def _hvp(self, vector: tf.Tensor) -> tf.Tensor:
        pieces = [tf.reshape(p, v.shape) for p, v in zip(tf.split(vector, self.sizes), self.variables)]
        zero = tf.UnconnectedGradients.ZERO
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                loss = self.loss()
            grads = inner.gradient(loss, self.variables, unconnected_gradients=zero)
            directional = tf.add_n([tf.reduce_sum(g * p) for g, p in zip(grads, pieces)])
        products = outer.gradient(directional, self.variables, unconnected_gradients=zero)
        return tf.concat([tf.reshape(p, [-1]) for p in products], axis=0)

    def product(self, vector: np.ndarray) -> np.ndarray:
        """``H v`` for a flat ``vector`` of length `size`."""
        return self._product(tf.constant(vector, self.variables[0].dtype)).numpy()

    def extreme_eigenvalues(self, start: np.ndarray, iterations: int) -> tuple[float, float]:
        """``(lambda_min, lambda_max)`` by `lanczos_extremes` from ``start`` (length `size`) in ``iterations``
        products at most."""
        return lanczos_extremes(self.product, start, iterations)
