"""The statistics of a comparison: how well a cheap signal ranks cells, and whether a strategy beats random cells.

Units (what one number stands for):

* A cell's *value* is its mean test perplexity over the comparison's
  retraining seeds. The seeds of one cell are repeated measurements of that
  cell, not replicates of a strategy: pooling them would count one search
  several times (pseudo-replication).
* A strategy's values are one per search (a search seed gives one cell):
  the searches are the independent replicates of the strategy.
* The reference population is the K random cells of the comparison, one
  value each.
* A signal (a child's score at an ASHA rung, a shared-weights score, the
  hidden-state covariance of an untrained cell) is paired with the value of
  the same cell.

The intervals are percentile bootstrap intervals: with B resamples the
interval at confidence c runs from the (1 - c) / 2 to the (1 + c) / 2
quantile of the resampled statistic (NumPy's default, linear interpolation;
Efron & Tibshirani 1993, section 13.3). Percentile rather than BCa: BCa's
jackknife needs the statistic on every leave-one-out sample, and Spearman's
rho is undefined on some of those for small n. SciPy draws the resamples and
the permutations (`scipy.stats.bootstrap`, `scipy.stats.permutation_test`),
each from ``numpy.random.default_rng(seed)``, so a result is a function of
its inputs and ``seed``.

Every function returns a JSON-able dict (floats, ints, None); a statistic
that the numbers do not define (too few values, constant ranks) is None, so
a report can be written at any stage of a comparison. Numbers that are not
finite, or pairs of unequal length, raise `StatisticsError`.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
from scipy import stats

from tfnas.errors import TfnasError
from tfnas.settings import AT_LEAST_ONE, SEED, Bound, check_argument

#: The confidence of every interval unless told otherwise.
CONFIDENCE = 0.95
#: Bootstrap resamples.
RESAMPLES = 9999
#: Permutations of a permutation test; every distinct one is enumerated when there are at most this many.
PERMUTATIONS = 99_999
#: Spearman's rho needs at least this many pairs (with two, it is +-1 whatever the data).
MIN_PAIRS = 3

_OPEN_UNIT = Bound(0, 1, open_low=True, open_high=True)


class StatisticsError(TfnasError, ValueError):
    """Numbers a statistic cannot use: not one-dimensional, not finite, or pairs of unequal length."""


def _sample(name: str, values: Sequence[float]) -> np.ndarray:
    """``values`` as a 1-D float64 array of finite numbers, or a `StatisticsError` naming ``name``."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise StatisticsError(f"{name} must be a list of numbers; received: {values!r}") from None
    if array.ndim != 1:
        raise StatisticsError(f"{name} must be a list of numbers; received an array of shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise StatisticsError(f"{name} must be finite numbers; received: {array.tolist()!r} (leave out the cells "
                              "that have no value)")
    return array


def _check(confidence: float, resamples: int, seed: int) -> None:
    check_argument("confidence", confidence, float, _OPEN_UNIT)
    check_argument("resamples", resamples, int, AT_LEAST_ONE)
    check_argument("seed", seed, int, SEED)


def spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rho along ``axis``: Pearson's correlation of the ranks, ties given their average rank,

    ``rho = sum_i (r_i - mean r)(s_i - mean s) / sqrt(sum_i (r_i - mean r)^2 sum_i (s_i - mean s)^2)``

    with ``r`` the ranks of ``x`` and ``s`` those of ``y`` (Spearman 1904; `scipy.stats.spearmanr` for one pair of
    vectors). NaN where the ranks of ``x`` or ``y`` are constant (all values tied): rho is undefined there.
    Vectorised over the other axes (one rho per bootstrap resample or permutation)."""
    r = stats.rankdata(x, axis=axis)
    s = stats.rankdata(y, axis=axis)
    r = r - r.mean(axis=axis, keepdims=True)
    s = s - s.mean(axis=axis, keepdims=True)
    denominator = np.sqrt((r * r).sum(axis=axis) * (s * s).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (r * s).sum(axis=axis) / denominator, np.nan)


def rank_correlation(signal: Sequence[float], target: Sequence[float], confidence: float = CONFIDENCE,
                     resamples: int = RESAMPLES, permutations: int = PERMUTATIONS, seed: int = 0) -> dict[str, Any]:
    """Spearman's rho between a cheap ``signal`` and the ``target`` (retrained test perplexity) of the same cells.

    * ``rho``: `spearman` of the n pairs (`scipy.stats.spearmanr`). A signal that predicts perplexity has
      rho > 0 (a loss) or rho < 0 (a score where higher is better).
    * ``low``, ``high``: the percentile bootstrap interval at ``confidence``, resampling the n (signal, target)
      pairs with replacement (``resamples`` times; `scipy.stats.bootstrap`, ``paired=True``). A resample whose
      signal or target ranks are constant (one pair drawn n times, or only tied values) has no rho: it is
      dropped, the interval is taken over the others, and ``undefined_resamples`` counts them.
    * ``p_value``: two-sided permutation test of rho = 0 (`scipy.stats.permutation_test`, ``pairings``: the
      signal re-paired with the targets), ``p = min(1, 2 min(P(rho* >= rho), P(rho* <= rho)))`` over the
      permutations ``rho*``; exact (``p_exact``) when the n! pairings are at most ``permutations``, else from
      that many random ones, counting the observed pairing (``(k + 1) / (permutations + 1)``).

    Returns a dict with ``rho``, ``low``, ``high``, ``p_value`` (None when rho is undefined: n < 3 or constant
    ranks), ``p_exact``, ``n``, ``confidence``, ``resamples``, ``undefined_resamples``, ``interval``
    (``"percentile"``).

    Raises:
        StatisticsError: the two lists differ in length, or hold a value that is not a finite number.
    """
    _check(confidence, resamples, seed)
    check_argument("permutations", permutations, int, AT_LEAST_ONE)
    x, y = _sample("signal", signal), _sample("target", target)
    if x.size != y.size:
        raise StatisticsError(f"signal and target must pair up: {x.size} signal values, {y.size} targets")
    n = int(x.size)
    result: dict[str, Any] = {"rho": None, "low": None, "high": None, "p_value": None, "p_exact": None, "n": n,
                              "confidence": confidence, "resamples": resamples, "undefined_resamples": None,
                              "interval": "percentile"}
    if n < MIN_PAIRS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return result
    result["rho"] = float(stats.spearmanr(x, y).statistic)
    with warnings.catch_warnings():  # SciPy's own interval is NaN once a resample is undefined; it is not used
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        boot = stats.bootstrap((x, y), spearman, paired=True, vectorized=True, n_resamples=resamples,
                               method="percentile", rng=np.random.default_rng(seed))
    distribution = boot.bootstrap_distribution
    defined = distribution[np.isfinite(distribution)]
    result["undefined_resamples"] = int(distribution.size - defined.size)
    if defined.size:
        low, high = np.percentile(defined, [50 * (1 - confidence), 50 * (1 + confidence)])
        result["low"], result["high"] = float(low), float(high)
    # one sample, the signal, re-ordered against the fixed targets: SciPy's n! pairings
    test = stats.permutation_test((x,), lambda permuted, axis: spearman(permuted, y, axis),
                                  permutation_type="pairings", vectorized=True, n_resamples=permutations,
                                  alternative="two-sided", rng=np.random.default_rng(seed))
    result["p_value"] = float(test.pvalue)
    result["p_exact"] = math.factorial(n) <= permutations
    return result


def mean_minus_median(values: np.ndarray, reference: np.ndarray, axis: int = -1) -> np.ndarray:
    """``mean(values) - median(reference)`` along ``axis``: a strategy's mean test perplexity minus the random
    cells' median (negative: the strategy is better). Vectorised over the other axes."""
    return np.mean(values, axis=axis) - np.median(reference, axis=axis)


def difference_to_median(values: Sequence[float], reference: Sequence[float], confidence: float = CONFIDENCE,
                         resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """A strategy's mean test perplexity minus the median of the reference cells', with its bootstrap interval.

    ``difference = mean(values) - median(reference)`` (`mean_minus_median`): ``values`` one per search of the
    strategy, ``reference`` one per random cell (module docstring). The interval is the percentile interval at
    ``confidence`` of the difference over ``resamples`` resamples, each group resampled with replacement on its
    own (`scipy.stats.bootstrap`, ``paired=False``): the searches and the random cells are independent samples.

    Returns a dict with ``difference`` (None when either group is empty), ``low``, ``high`` (None unless both
    groups hold two values or more: one value gives no spread to resample), ``mean``, ``median``, ``n``,
    ``n_reference``, ``confidence``, ``resamples``, ``interval`` (``"percentile"``).

    Raises:
        StatisticsError: a value that is not a finite number.
    """
    _check(confidence, resamples, seed)
    x, y = _sample("values", values), _sample("reference", reference)
    result: dict[str, Any] = {"difference": None, "low": None, "high": None,
                              "mean": float(np.mean(x)) if x.size else None,
                              "median": float(np.median(y)) if y.size else None,
                              "n": int(x.size), "n_reference": int(y.size), "confidence": confidence,
                              "resamples": resamples, "interval": "percentile"}
    if not x.size or not y.size:
        return result
    result["difference"] = float(mean_minus_median(x, y))
    if x.size < 2 or y.size < 2:
        return result
    boot = stats.bootstrap((x, y), mean_minus_median, paired=False, vectorized=True, n_resamples=resamples,
                           method="percentile", confidence_level=confidence, rng=np.random.default_rng(seed))
    result["low"], result["high"] = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    return result


def permutation_test_less(values: Sequence[float], reference: Sequence[float], permutations: int = PERMUTATIONS,
                          seed: int = 0) -> dict[str, Any]:
    """One-sided permutation test that a strategy's values are lower (better perplexity) than the reference cells'.

    Null hypothesis: the n values of the strategy and the m of the random cells are exchangeable (the strategy
    finds cells like random ones). The statistic is ``T = mean(values) - median(reference)``
    (`mean_minus_median`), the same quantity as `difference_to_median`, so the estimate, its interval and the
    test speak of one number; the median keeps the reference side robust to the random cells that barely train
    (a permutation test is exact for any statistic). ``p = P(T* <= T)`` over the splits of the n + m values
    into groups of n and m (`scipy.stats.permutation_test`, ``independent``, alternative ``less``): exact
    (``p_exact``) when the (n + m)! / (n! m!) splits are at most ``permutations``, which SciPy then enumerates;
    else from that many random splits, counting the observed one (``(k + 1) / (permutations + 1)``). The
    smallest p-value an exact test can give is ``1 / splits`` (``min_p_value``).

    Returns a dict with ``statistic``, ``p_value`` (None when either group is empty), ``p_exact``,
    ``min_p_value``, ``splits``, ``n``, ``n_reference``, ``permutations``, ``alternative`` (``"less"``).

    Raises:
        StatisticsError: a value that is not a finite number.
    """
    check_argument("permutations", permutations, int, AT_LEAST_ONE)
    check_argument("seed", seed, int, SEED)
    x, y = _sample("values", values), _sample("reference", reference)
    result: dict[str, Any] = {"statistic": None, "p_value": None, "p_exact": None, "min_p_value": None,
                              "splits": None, "n": int(x.size), "n_reference": int(y.size),
                              "permutations": permutations, "alternative": "less"}
    if not x.size or not y.size:
        return result
    splits = math.comb(x.size + y.size, x.size)
    if min(x.size, y.size) == 1:
        statistic, p_value = _exact_test_of_a_single_value(x, y)
    else:
        test = stats.permutation_test((x, y), mean_minus_median, permutation_type="independent", vectorized=True,
                                      n_resamples=permutations, alternative="less", rng=np.random.default_rng(seed))
        statistic, p_value = float(test.statistic), float(test.pvalue)
    exact = splits <= permutations or min(x.size, y.size) == 1
    result.update(statistic=statistic, p_value=p_value, p_exact=exact,
                  min_p_value=1 / splits if exact else 1 / (permutations + 1), splits=splits)
    return result


def _exact_test_of_a_single_value(values: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """`permutation_test_less` when one group holds a single value (one search, or one random cell), which
    `scipy.stats.permutation_test` refuses: the n + m splits put each pooled value in turn in the group of one.
    ``p = #{splits: T* <= T + gamma} / (n + m)``, with SciPy's tolerance ``gamma = 100 eps |T|`` for ties."""
    pool = np.concatenate([values, reference])
    alone = pool[:, None]                                              # split i: pool[i] alone ...
    rest = np.broadcast_to(pool, (pool.size, pool.size))[~np.eye(pool.size, dtype=bool)].reshape(
        pool.size, pool.size - 1)                                      # ... against the others
    null = mean_minus_median(alone, rest) if values.size == 1 else mean_minus_median(rest, alone)
    observed = float(mean_minus_median(values, reference))
    gamma = abs(100 * np.finfo(np.float64).eps * observed)
    return observed, float(np.mean(null <= observed + gamma))


def against_random(values: Sequence[float], reference: Sequence[float], confidence: float = CONFIDENCE,
                   resamples: int = RESAMPLES, permutations: int = PERMUTATIONS, seed: int = 0) -> dict[str, Any]:
    """What the report gives a strategy: ``mean`` test perplexity of its searches (``values``, one per search),
    ``n``, its `difference_to_median` of the random cells (``reference``) and the `permutation_test_less` against
    them."""
    x = _sample("values", values)
    return {"mean": float(np.mean(x)) if x.size else None, "n": int(x.size),
            "difference_to_median": difference_to_median(values, reference, confidence, resamples, seed),
            "permutation_test": permutation_test_less(values, reference, permutations, seed)}
