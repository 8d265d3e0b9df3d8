"""BayesNAS for recurrent cells: the update rules of the scalars' priors, in NumPy (no TensorFlow).

M. Li, *Efficient Neural Architecture Search for Language Modeling*, MSc
thesis, TU Delft 2019, chapter 3 (Algorithm 2). Every edge ``i -> j`` of
the complete DAG (row ``e(j, i) = j(j-1)/2 + i``,
`tfnas.cells.search.norm.edge_index`) carries one scalar ``w^o`` per op and
one dummy-node scalar ``d`` (§3.2). Their tables have one row per edge and
one column per op, then a last column for the dummy: ``[edges, ops + 1]``.

* `laplace_update`: Eqs. 3.16-3.18 for every scalar, from its own prior
  variance ``gamma(t-1)`` and the diagonal Hessian ``H``.
* `dependency_gamma`: the new prior variances from the switches ``s``
  (Eq. 3.19 with the dummies in the harmonic AND form, below).
* `derive_pruned`: the pruned, renumbered cell (§3.3.3 step 4, §5.3).

The dependency form. Eq. 3.9 prints ``(1/sum_i sum_o (s_ii' + s_i'j^o)^-1
+ 1/s_jk^o')^-1``, in which an OFF dummy (``s_ii' = 0``) does not switch its
edge off, against the sentence after it. tfnas encodes AND as the harmonic
form ``(1/a + 1/b)^-1`` and OR as ``+`` (§3.2) throughout::

    pi_ij^o = (1/s_ij^d + 1/s_ij^o)^-1          dummy AND op
    S_j     = sum_{i<j} sum_o pi_ij^o          node j is alive (j >= 1)
    gamma_jk^o = (1/S_j + 1/pi_jk^o)^-1  (j >= 1);   gamma_0k^o = pi_0k^o
    gamma_jk^d = (1/S_j + 1/s_jk^d)^-1   (j >= 1);   gamma_0k^d = s_0k^d

with ``1/0 = inf`` and ``1/inf = 0``; Eq. 3.19 is the case ``s^d -> inf``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from tfnas.genotypes.dag import Genotype
from tfnas.strategies.base import SearchDivergedError

#: ``1 / (2 pi e)``: ``N(0, gamma)`` has entropy ``ln(2 pi e gamma) / 2``, which is <= 0 exactly below it (§3.3.3).
ENTROPY_THRESHOLD = 1.0 / (2.0 * math.pi * math.e)
#: The pruning threshold the thesis prints, ``ENTROPY_THRESHOLD`` rounded (§3.3.3 step 4, §5.3).
PRUNE_THRESHOLD = 0.0585
#: Floor of omega, so that zero curvature gives ``s = inf`` (kept) rather than a division by zero.
OMEGA_FLOOR = 1e-12


def harmonic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(1/a + 1/b)^-1`` elementwise with ``1/0 = inf``, ``1/inf = 0``: the AND of two switches (§3.2)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 / a + 1.0 / b)


def laplace_update(w: np.ndarray, gamma: np.ndarray, hessian: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Laplace step of Algorithm 2 (Eqs. 3.16-3.18) for every scalar; returns ``(C, omega, s)``.

    ::

        C     = (1/gamma + H)^-1                                  (3.16)
        omega = sqrt(gamma - C) / gamma = sqrt(H / (1 + gamma H))   (3.17)
        s     = |w / omega|                                       (3.18)

    3.17 is evaluated in its stable right-hand form, as ``sqrt(1 / (1/H +
    gamma))`` so that ``gamma = inf`` or ``H = 0`` give 0 rather than NaN.
    ``H`` is clamped at 0 (the public BayesNAS code takes ``abs``) and omega
    at `OMEGA_FLOOR`, so zero curvature gives a huge ``s``: no evidence to
    prune.

    Args:
        w: the scalars.
        gamma: their prior variances ``gamma(t-1)`` (``>= 0``, ``inf`` allowed).
        hessian: the diagonal Hessian of the loss in each scalar.
    """
    w = np.asarray(w, np.float64)
    gamma = np.asarray(gamma, np.float64)
    h = np.maximum(np.asarray(hessian, np.float64), 0.0)
    with np.errstate(divide="ignore"):
        c = 1.0 / (1.0 / gamma + h)
        omega = np.sqrt(1.0 / (1.0 / h + gamma))
    omega = np.maximum(omega, OMEGA_FLOOR)
    return c, omega, np.abs(w) / omega


def dependency_gamma(s: np.ndarray, steps: int) -> np.ndarray:
    """The prior variances of every scalar from the switches (Eq. 3.19, with dummies; module docstring).

    Args:
        s: switches ``[num_edges(steps), ops + 1]``, the dummy's in the last column.
        steps: nodes of the cell after node 0.

    Returns:
        ``gamma`` with the shape of ``s``.
    """
    s = np.asarray(s, np.float64)
    if s.ndim != 2 or s.shape[0] != steps * (steps + 1) // 2 or s.shape[1] < 2:
        raise ValueError(f"Argument `s` must have shape [{steps * (steps + 1) // 2}, ops + 1] for steps={steps}; "
                         f"received: {s.shape}")
    pi = harmonic(s[:, -1:], s[:, :-1])                       # dummy AND op, [edges, ops]
    alive = np.zeros(steps + 1)                               # S_j; node 0 has no incoming edge
    for j in range(1, steps + 1):
        rows = slice(j * (j - 1) // 2, j * (j + 1) // 2)
        alive[j] = pi[rows].sum()
    gamma = np.empty_like(s)
    for j in range(1, steps + 1):
        for i in range(j):
            e = j * (j - 1) // 2 + i
            if i == 0:
                gamma[e, :-1], gamma[e, -1] = pi[e], s[e, -1]
            else:
                gamma[e, :-1], gamma[e, -1] = harmonic(alive[i], pi[e]), harmonic(alive[i], s[e, -1])
    return gamma


def alive_nodes(gamma: np.ndarray, steps: int, threshold: float = PRUNE_THRESHOLD) -> list[int]:
    """Node 0, then every node with an op edge above ``threshold`` from a node alive before it (§2 of the spec).

    A dead node's outgoing gammas are not guaranteed to fall below the
    threshold, so liveness is propagated here explicitly.
    """
    gamma = np.asarray(gamma, np.float64)
    alive = [0]
    for j in range(1, steps + 1):
        rows = [j * (j - 1) // 2 + i for i in alive]
        if (gamma[rows, :-1] > threshold).any():
            alive.append(j)
    return alive


def derive_pruned(gamma: np.ndarray, ops: Sequence[str], threshold: float = PRUNE_THRESHOLD) -> Genotype:
    """The cell left after pruning every op edge with ``gamma <= threshold`` (§3.3.3 step 4, §5.3).

    1. Node 0 is alive; node ``j`` is alive iff an op edge ``i -> j`` from an
       alive node ``i`` has ``gamma > threshold`` (`alive_nodes`).
    2. Each alive node keeps its surviving incoming op edge (from an alive
       node) with the largest gamma, "the edge with the highest gamma"
       (§3.3.3); ties go to the smaller ``i``, then the earlier op.
    3. The alive nodes are renumbered consecutively: the genotype may have
       fewer nodes than the search (Fig. 5.2 lost two).

    Args:
        gamma: ``[num_edges(steps), len(ops) + 1]``, the dummies' in the last column (unused here: a
            dummy's state is already in its ops' gammas).
        ops: the op names of the columns.
        threshold: an op edge survives iff its gamma is above it.

    Raises:
        SearchDivergedError: no node but node 0 survives.
    """
    gamma = np.asarray(gamma, np.float64)
    ops = tuple(ops)
    if gamma.ndim != 2 or gamma.shape[1] != len(ops) + 1:
        raise ValueError(f"Argument `gamma` must have shape [num_edges, {len(ops) + 1}]; received: {gamma.shape}")
    steps = int(round((math.sqrt(8 * gamma.shape[0] + 1) - 1) / 2))
    if steps * (steps + 1) // 2 != gamma.shape[0]:
        raise ValueError(f"Argument `gamma` has {gamma.shape[0]} rows, not steps*(steps+1)/2 for any steps")
    alive = alive_nodes(gamma, steps, threshold)
    if len(alive) == 1:
        raise SearchDivergedError(f"every op edge has gamma <= {threshold}: the pruned cell has no node "
                                  "(lower --lambda-w or --prune-threshold)")
    number = {old: new for new, old in enumerate(alive)}
    nodes = []
    for j in alive[1:]:
        block = np.stack([gamma[j * (j - 1) // 2 + i, :-1] for i in alive if i < j])   # [alive preds, ops]
        block = np.where(block > threshold, block, -np.inf)
        k, o = np.unravel_index(int(np.argmax(block)), block.shape)                # first maximum: smaller i, op
        nodes.append((ops[o], number[[i for i in alive if i < j][k]]))
    return Genotype(tuple(nodes), first_node="darts", output="mean",
                    provenance={"derived_by": "BayesNAS pruning (tfnas.strategies.one_shot.bayes_update)"})
