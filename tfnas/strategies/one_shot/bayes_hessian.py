"""The diagonal Hessian of BayesNAS' scalars (M. Li's thesis, chapter 4), for a `BayesCell` supernet.

Both estimators return the Gauss-Newton (GGN) diagonal of the per-token
mean cross-entropy ``l_pred`` of a window of tokens in every scalar, as a
table ``[edges, ops + 1]`` (the dummy's in the last column, as
`tfnas.strategies.one_shot.bayes_update`), in inference mode (no dropout).

``recursive`` (the default; thesis Eqs. 4.5-4.7 and 4.13-4.24 worked out
for this cell). A backward sweep over time ``t = T..1`` carries the diagonal
``H_h`` of the state and, inside a step, the diagonals of the nodes; every
rule is exact for its block given a diagonal Hessian downstream and drops
the cross terms between paths and the terms in the second derivatives
(the thesis' ``D``), so it is positive semi-definite:

* R0, tied decoder ``E [V, U]``: ``H_h += p @ (E*E) - (p @ E)^2``, the exact
  ``diag(E^T (diag p - p p^T) E)`` (the thesis and the BayesNAS code keep
  only ``p (1 - p)``);
* R1, output mean: ``H_{s_j} = H_h / N^2`` plus what the successors send back;
* R2, normalisation with its statistics held constant (as the code's
  ``bn_hessian``): ``H_{a_j} = H_{s_j} / sigma_j^2``;
* R3, scalars (Eqs. 4.22-4.23): ``H_w[e(j, i), o] += sum_{b,u} (d_ij y_ij^o)^2
  H_{a_j}`` and ``H_d[e(j, i)] += sum_{b,u} (sum_o w^o y^o)^2 H_{a_j}``;
* R4, the whole edge ``i -> j`` (Eqs. 4.6 and 4.24 for a highway edge),
  `edge_input_hessian`;
* R5, recurrence (Eqs. 4.14-4.16, with ``u_k`` for 4.19's ``u_{k-1}``): R2,
  then R4 for node 0 (``d = P = 1``, tanh, the rows ``W0[input_dim:]``)
  gives ``H_h`` at step ``t - 1``.

The time steps are untied copies summed (Eq. 4.14) over the whole window
(``tau = T``); the sum is divided by ``batch * T`` (the per-token mean of
``l_pred``; Eq. 4.18's ``1/(T tau)`` is not the Hessian of any loss).

``exact_ggn`` (the reference, for tests and small cells): one forward-mode
JVP per scalar, ``j^T (diag p - p p^T) j`` per token. ``untied=True`` gives
each time step its own copy of each scalar and sums their diagonals, what
Eq. 4.14 defines and what ``recursive`` estimates.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from tfnas.cells.search.norm import num_edges

#: The estimators of the ``hessian`` setting.
HESSIANS: tuple[str, ...] = ("recursive", "exact_ggn")

#: ``o'(x)`` of every op of the space, as a function of ``x``.
DERIVATIVES: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "tanh": lambda x: 1.0 - tf.square(tf.tanh(x)),
    "relu": lambda x: tf.cast(x > 0, x.dtype),
    "sigmoid": lambda x: tf.sigmoid(x) * (1.0 - tf.sigmoid(x)),
    "identity": tf.ones_like,
}
ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "tanh": tf.tanh, "relu": tf.nn.relu, "sigmoid": tf.sigmoid, "identity": tf.identity}


def decoder_hessian(p: tf.Tensor, embeddings: tf.Tensor) -> tf.Tensor:
    """R0: ``diag(E^T (diag p - p p^T) E)`` of the tied decoder's input, ``p @ (E*E) - (p @ E)^2``.

    Args:
        p: softmax of the logits, ``[..., V]``.
        embeddings: the tied decoder ``E``, ``[V, U]``.
    """
    return tf.linalg.matmul(p, tf.square(embeddings)) - tf.square(tf.linalg.matmul(p, embeddings))


def norm_hessian(h_s: tf.Tensor, variance: tf.Tensor) -> tf.Tensor:
    """R2: the normalisation with its statistics held constant, ``H_a = H_s / sigma^2``."""
    return h_s / variance


def edge_outputs(s: tf.Tensor, c: tf.Tensor, h_pre: tf.Tensor, ops: Sequence[str]) -> tf.Tensor:
    """``y^o = s + c (o(h~) - s)`` for every op, ``[ops, ...]`` (Eqs. 3.3-3.4)."""
    return tf.stack([s + c * (ACTIVATIONS[op](h_pre) - s) for op in ops])


def scalar_hessians(h_a: tf.Tensor, y: tf.Tensor, w: tf.Tensor, d: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """R3 (Eq. 4.23) for the ``k`` incoming edges of a node with ``a = sum_k d_k sum_o w_k^o y_k^o``.

    Args:
        h_a: the node's diagonal ``[batch, units]``.
        y: the edge outputs ``[ops, k, batch, units]`` (`edge_outputs`).
        w: ``[k, ops]``.
        d: ``[k]``.

    Returns:
        ``(H_w [k, ops], H_d [k])``: ``sum_{b,u} (d y^o)^2 H_a`` and ``sum_{b,u} (sum_o w^o y^o)^2 H_a``.
    """
    per_op = tf.reduce_sum(tf.square(y) * h_a, axis=[2, 3])                   # [ops, k]
    h_w = tf.transpose(per_op) * tf.square(d)[:, None]
    mixed = tf.einsum("ko,okbu->kbu", w, y)
    return h_w, tf.reduce_sum(tf.square(mixed) * h_a, axis=[1, 2])


def edge_input_hessian(h_a: tf.Tensor, s: tf.Tensor, c: tf.Tensor, h_pre: tf.Tensor, w: tf.Tensor, d: tf.Tensor,
                       kernel: tf.Tensor, ops: Sequence[str]) -> tf.Tensor:
    """R4: the GGN diagonal in ``s`` of the edges ``d_k sum_o w_k^o (s_k + c_k (o(h~_k) - s_k))``.

    With ``[c~, h~] = s [Wc, Wh]`` (``kernel = [Wc | Wh]``, ``[U, 2U]``),
    ``P = sum_o w^o``, ``g = sum_o w^o o(h~)``, ``g' = sum_o w^o o'(h~)`` and
    the edge's Jacobian ``J = diag(delta) + diag(alpha) Wh^T + diag(beta) Wc^T``,
    ``delta = d P (1 - c)``, ``alpha = d c g'``, ``beta = d (g - P s) c (1 - c)``::

        H_s = delta^2 H + 2 delta (alpha diag(Wh) + beta diag(Wc)) H
              + (alpha^2 H) (Wh*Wh)^T + 2 (alpha beta H) (Wh*Wc)^T + (beta^2 H) (Wc*Wc)^T

    exact for the block, row by row (``diag(J^T diag(H) J)``).

    Args:
        h_a: the downstream diagonal ``[k, batch, units]`` (or broadcastable).
        s: the edges' inputs ``[k, batch, units]``.
        c: ``sigmoid(c~)``, ``[k, batch, units]``.
        h_pre: ``h~``, ``[k, batch, units]``.
        w: ``[k, ops]``.
        d: ``[k]``.
        kernel: ``[units, 2*units]``, shared by the ``k`` edges.
        ops: op names of ``w``'s columns.
    """
    units = s.shape[-1]
    wc, wh = kernel[:, :units], kernel[:, units:]
    wk = [w[:, k, None, None] for k in range(len(ops))]
    total = tf.add_n(wk)
    g = tf.add_n([wo * ACTIVATIONS[op](h_pre) for wo, op in zip(wk, ops)])
    g_prime = tf.add_n([wo * DERIVATIVES[op](h_pre) for wo, op in zip(wk, ops)])
    d = d[:, None, None]
    delta = d * total * (1.0 - c)
    alpha = d * c * g_prime
    beta = d * (g - total * s) * c * (1.0 - c)
    diag_h, diag_c = tf.linalg.diag_part(wh), tf.linalg.diag_part(wc)
    out = tf.square(delta) * h_a + 2.0 * delta * (alpha * diag_h + beta * diag_c) * h_a
    out += tf.linalg.matmul(tf.square(alpha) * h_a, tf.square(wh), transpose_b=True)
    out += 2.0 * tf.linalg.matmul(alpha * beta * h_a, wh * wc, transpose_b=True)
    out += tf.linalg.matmul(tf.square(beta) * h_a, tf.square(wc), transpose_b=True)
    return out


def _inference_inputs(model, tokens: tf.Tensor) -> tf.Tensor:
    """The cell's projected inputs ``[time, batch, 2U]`` of ``tokens`` in inference mode."""
    embedded = model.input_dropout(model.embedding(tokens, training=False), training=False)
    return tf.transpose(model.cell.project_inputs(embedded), [1, 0, 2])


def recursive_hessian(model, tokens: tf.Tensor, states: Sequence[tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """The ``recursive`` estimator on one window (module docstring); returns ``(H [edges, ops + 1], final states)``.

    Args:
        model: a built `LanguageModel` around a `tfnas.cells.search.BayesCell` (tied decoder, no attention).
        tokens: ``[batch, T]`` inputs.
        states: the states at the window's start (constants: nothing flows back through them).
    """
    cell = model.cell
    n, ops = cell.steps, cell.ops
    out = model.forward(tokens, list(states), training=False)
    raw = tf.transpose(out.raw_outputs, [1, 0, 2])                                 # h_t, [T, B, U]
    h_prev = tf.concat([states[0][None], raw[:-1]], axis=0)
    trace = cell.trace(_inference_inputs(model, tokens), h_prev)
    p = tf.transpose(tf.nn.softmax(out.logits), [1, 0, 2])
    from_loss = decoder_hessian(p, model.embedding.embeddings)                     # R0 of every step, [T, B, U]
    w, d = cell.bayes_w, cell.bayes_d
    w0 = cell.W0[cell.input_dim:]
    one_tanh, one = tf.ones((1, 1), w.dtype), tf.ones((1,), w.dtype)
    time_major = {"R0": from_loss, "h_prev": h_prev, "c0": trace["c0"], "h0": trace["h0"],
                  "s": tf.transpose(trace["s"], [1, 0, 2, 3]),
                  "c": [tf.transpose(c, [1, 0, 2, 3]) for c in trace["c"]],
                  "h": [tf.transpose(h, [1, 0, 2, 3]) for h in trace["h"]],
                  "var": [tf.broadcast_to(v, tf.shape(h_prev)) for v in trace["var"]]}

    def step(carry, x):
        h_h, total = carry
        h_h = h_h + x["R0"]
        back = [tf.zeros_like(h_h) for _ in range(n + 1)]
        rows = [None] * n
        for j in range(n, 0, -1):
            h_a = norm_hessian(h_h / float(n * n) + back[j], x["var"][j])[None]       # R1, R2
            first = j * (j - 1) // 2
            w_j, d_j = w[first:first + j], d[first:first + j]
            s, c, h_pre = x["s"][:j], x["c"][j - 1], x["h"][j - 1]
            h_w, h_d = scalar_hessians(h_a[0], edge_outputs(s, c, h_pre, ops), w_j, d_j)          # R3
            rows[j - 1] = tf.concat([h_w, h_d[:, None]], axis=1)
            sent = edge_input_hessian(h_a, s, c, h_pre, w_j, d_j, cell.Ws[j - 1], ops)            # R4
            for i in range(j):
                back[i] = back[i] + sent[i]
        h_s0 = norm_hessian(back[0], x["var"][0])[None]                                          # R5
        h_h = edge_input_hessian(h_s0, x["h_prev"][None], x["c0"][None], x["h0"][None], one_tanh, one,
                                 w0, ("tanh",))[0]
        return h_h, total + tf.concat(rows, axis=0)

    batch = tf.shape(tokens)[0]
    start = (tf.zeros_like(states[0]), tf.zeros((num_edges(n), len(ops) + 1), w.dtype))
    _, total = tf.foldr(lambda carry, x: step(carry, x), time_major, initializer=start)
    scale = tf.cast(batch * tf.shape(tokens)[1], total.dtype)
    return total / scale, out.states


def _unrolled_logits(model, x_proj: tf.Tensor, states: Sequence[tf.Tensor], w_seq: tf.Tensor,
                     d_seq: tf.Tensor) -> tf.Tensor:
    """Logits ``[batch, T, V]`` with step ``t`` run on the scalars ``w_seq[t]``, ``d_seq[t]`` (inference mode)."""
    cell = model.cell
    states, outputs = list(states), []
    for t in range(x_proj.shape[0]):
        prepared = cell.prepare(d_seq[t][:, None] * w_seq[t])
        output, states = cell.transition(x_proj[t], states, prepared)
        outputs.append(output)
    return model.decode(tf.stack(outputs, axis=1))


def exact_ggn_hessian(model, tokens: tf.Tensor, states: Sequence[tf.Tensor],
                      untied: bool = False) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """The exact GGN diagonal of ``l_pred`` in every scalar (one JVP each); returns ``(H, final states)``.

    ``H[e, o] = (1 / (B T)) sum_tokens j^T (diag p - p p^T) j`` with ``j`` the
    derivative of the token's logits in the scalar (the dummies in the last
    column). ``untied``: every time step has its own copy of each scalar and
    the copies' diagonals are summed (Eq. 4.14), ``T`` JVPs per scalar.
    """
    cell = model.cell
    x_proj = _inference_inputs(model, tokens)
    steps = int(x_proj.shape[0])
    copies = steps if untied else 1
    w = tf.tile(tf.convert_to_tensor(cell.bayes_w)[None], [steps, 1, 1])
    d = tf.tile(tf.convert_to_tensor(cell.bayes_d)[None], [steps, 1])
    states = [tf.convert_to_tensor(s) for s in states]
    p = tf.nn.softmax(_unrolled_logits(model, x_proj, states, w, d))

    @tf.function(autograph=False)
    def curvature(t_w, t_d):
        with tf.autodiff.ForwardAccumulator([w, d], [t_w, t_d]) as acc:
            logits = _unrolled_logits(model, x_proj, states, w, d)
        j = acc.jvp(logits)
        return tf.reduce_sum(p * tf.square(j)) - tf.reduce_sum(tf.square(tf.reduce_sum(p * j, axis=-1)))

    edges, n_ops = cell.bayes_w.shape
    table = np.zeros((edges, n_ops + 1))
    for col in range(n_ops + 1):
        for e in range(edges):
            for t in range(copies):
                at = np.zeros(steps) if untied else np.ones(steps)
                if untied:
                    at[t] = 1.0
                t_w = np.zeros(w.shape)
                t_d = np.zeros(d.shape)
                if col < n_ops:
                    t_w[:, e, col] = at
                else:
                    t_d[:, e] = at
                table[e, col] += float(curvature(tf.constant(t_w, w.dtype), tf.constant(t_d, d.dtype)))
    out = model.forward(tokens, states, training=False)
    scale = float(np.prod(tokens.shape))
    return tf.constant(table / scale, cell.bayes_w.dtype), out.states


def scalar_hessian(model, windows: Sequence[tuple[tf.Tensor, ...]], method: str = "recursive",
                   untied: bool = True) -> np.ndarray:
    """The mean of ``method``'s diagonal over ``windows`` of input tokens, the states carried from zeros.

    Args:
        model: a built `BayesCell` supernet.
        windows: ``[batch, T]`` input tokens, consecutive windows of the same rows.
        method: ``"recursive"`` or ``"exact_ggn"``.
        untied: for ``exact_ggn``, whether the time steps are untied copies.

    Returns:
        ``[edges, ops + 1]`` float64.
    """
    if method not in HESSIANS:
        raise ValueError(f"Argument `method` must be one of {list(HESSIANS)}; received: method={method!r}")
    if not windows:
        raise ValueError("Argument `windows` is empty: the Hessian needs at least one window of tokens")
    states = model.initial_state(int(windows[0].shape[0]))
    total = np.zeros((model.cell.num_edges, len(model.cell.ops) + 1))
    recursive = tf.function(lambda tokens, states: recursive_hessian(model, tokens, states), reduce_retracing=True)
    for tokens in windows:
        if method == "recursive":
            h, states = recursive(tokens, states)
        else:
            h, states = exact_ggn_hessian(model, tokens, states, untied=untied)
        total += np.asarray(h, np.float64)
    return total / len(windows)
