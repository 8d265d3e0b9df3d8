"""BayesNAS update rules (thesis ch. 3, Algorithm 2) on hand-computed numbers."""
import math

import numpy as np
import pytest

from tfnas.genotypes.dag import Genotype
from tfnas.strategies.base import SearchDivergedError
from tfnas.strategies.one_shot.bayes_update import (ENTROPY_THRESHOLD, PRUNE_THRESHOLD, alive_nodes,
                                                    dependency_gamma, derive_pruned, laplace_update)

OPS = ("tanh", "relu", "sigmoid", "identity")


def test_laplace_step_on_hand_numbers():
    """gamma = H = w = 1: C = 1/(1 + 1) = 0.5, omega = sqrt(1 - 0.5)/1 = 0.707107, s = 1/omega = 1.414214."""
    c, omega, s = laplace_update(1.0, 1.0, 1.0)
    assert (float(c), float(omega), float(s)) == pytest.approx((0.5, 0.7071068, 1.4142136), abs=1e-6)


@pytest.mark.parametrize("gamma, h", [(0.3, 2.0), (4.0, 0.01), (1e-3, 50.0)])
def test_stable_omega_equals_the_printed_form_of_eq_3_17(gamma, h):
    c, omega, _ = laplace_update(0.5, gamma, h)
    assert float(c) == pytest.approx(1 / (1 / gamma + h), rel=1e-12)
    assert float(omega) == pytest.approx(math.sqrt(gamma - 1 / (1 / gamma + h)) / gamma, rel=1e-7)


def test_no_curvature_keeps_the_scalar_and_negative_curvature_is_clamped():
    _, omega, s = laplace_update(np.array([0.2, 0.2]), np.array([1.0, 1.0]), np.array([0.0, -3.0]))
    np.testing.assert_array_equal(omega, [1e-12, 1e-12])
    assert (s >= 0.2e12).all()
    _, omega, s = laplace_update(0.2, np.inf, 1.0)                   # gamma = inf: omega -> 0, not NaN
    assert float(omega) == 1e-12 and np.isfinite(s)


@pytest.mark.parametrize("w, h, fixed", [(1.0, 1.0, 1.6180340), (0.1, 4.0, 0.0552494)])
def test_iterated_updates_reach_the_closed_form_fixed_point(w, h, fixed):
    """gamma <- s = |w| / omega(gamma) converges to gamma* = (w^2 + sqrt(w^4 + 4 w^2 / H)) / 2."""
    assert (w ** 2 + math.sqrt(w ** 4 + 4 * w ** 2 / h)) / 2 == pytest.approx(fixed, abs=1e-7)
    gamma = 1.0
    for _ in range(200):
        _, _, gamma = laplace_update(w, gamma, h)
    assert float(gamma) == pytest.approx(fixed, abs=1e-7)
    assert (float(gamma) <= PRUNE_THRESHOLD) == (fixed < 0.0585)      # 0.0552: pruned; 1.618: kept


def test_dependency_gamma_of_a_hand_built_node():
    """Node 2 reads nodes 0 and 1 with 4 ops each, every switch 1: pi = (1/1 + 1/1)^-1 = 0.5,
    S_2 = 8 * 0.5 = 4, gamma_2k = (1/4 + 1/0.5)^-1 = 4/9; an edge out of node 0 has gamma = pi = 0.5."""
    steps = 3
    s = np.ones((6, 5))
    gamma = dependency_gamma(s, steps)
    # edges: row 0 = 0->1; rows 1, 2 = 0->2, 1->2; rows 3, 4, 5 = 0->3, 1->3, 2->3
    np.testing.assert_allclose(gamma[5, :4], 4 / 9, rtol=1e-12)
    assert gamma[5, :4] == pytest.approx(0.444444, abs=1e-6)
    np.testing.assert_allclose(gamma[[0, 1, 3], :4], 0.5)             # out of node 0: pi
    np.testing.assert_allclose(gamma[[0, 1, 3], 4], 1.0)              # a dummy out of node 0: its own s
    np.testing.assert_allclose(gamma[5, 4], 1 / (1 / 4 + 1), rtol=1e-12)  # a dummy out of node 2: S_2 AND s^d
    np.testing.assert_allclose(gamma[4, :4], 1 / (1 / 2 + 2), rtol=1e-12)  # out of node 1: S_1 = 4 * 0.5


def test_all_off_dummies_switch_the_successors_off_which_the_printed_eq_3_9_does_not():
    steps = 3
    s = np.ones((6, 5))
    s[[1, 2], 4] = 0.0                                                 # the dummies of 0->2 and 1->2 are OFF
    gamma = dependency_gamma(s, steps)
    np.testing.assert_array_equal(gamma[5], 0.0)                       # everything out of node 2
    assert (gamma[[0, 3, 4]] > 0).all()
    # The literal Eq. 3.9, (1/sum_i sum_o (s_ii' + s_i'j^o)^-1 + 1/s_jk)^-1, keeps node 2's successors on.
    printed = 1 / (1 / sum(1 / (s[e, 4] + s[e, o]) for e in (1, 2) for o in range(4)) + 1 / s[5, 0])
    assert printed > 0.5


def test_the_threshold_is_the_entropy_zero_of_the_prior():
    assert ENTROPY_THRESHOLD == pytest.approx(0.0585498, abs=1e-7)
    assert 0.5 * math.log(2 * math.pi * math.e * ENTROPY_THRESHOLD) == pytest.approx(0.0, abs=1e-12)
    gamma = np.full((1, 5), 0.0585)
    with pytest.raises(SearchDivergedError):                           # 0.0585 is pruned
        derive_pruned(gamma, OPS)
    gamma[0, 2] = 0.0586                                               # 0.0586 is kept
    assert derive_pruned(gamma, OPS).nodes == (("sigmoid", 0),)


def hand_table():
    """3 steps. Node 1 survives nothing (dead); node 2 reads node 0 (relu 0.3) and the dead node 1 with the
    table's largest gamma (0.9); node 3 reads node 2 (identity 0.2), node 0 (tanh 0.2, same gamma: the
    smaller predecessor wins) and node 1 (0.8, dead)."""
    g = np.full((6, 5), 0.01)
    g[0, :4] = 0.05                               # 0 -> 1: all below 0.0585
    g[1, 1] = 0.3                                 # 0 -> 2 relu
    g[2, 3] = 0.9                                 # 1 -> 2 identity, from a dead node
    g[3, 0] = 0.2                                 # 0 -> 3 tanh
    g[4, 2] = 0.8                                 # 1 -> 3 sigmoid, from a dead node
    g[5, 3] = 0.2                                 # 2 -> 3 identity, ties with 0 -> 3 tanh
    return g


def test_derivation_removes_dead_nodes_and_renumbers():
    g = hand_table()
    assert alive_nodes(g, 3) == [0, 2, 3]
    genotype = derive_pruned(g, OPS)
    assert genotype == Genotype((("relu", 0), ("tanh", 0)), first_node="darts", output="mean")
    g[5, 3] = 0.25                                                      # now node 3 keeps 2 -> 3, renumbered 1
    assert derive_pruned(g, OPS).nodes == (("relu", 0), ("identity", 1))


def test_everything_pruned_raises():
    with pytest.raises(SearchDivergedError, match="no node"):
        derive_pruned(np.full((6, 5), 0.05), OPS)
    with pytest.raises(ValueError, match="shape"):
        derive_pruned(np.ones((6, 4)), OPS)
