"""`tfnas.compare.statistics` against hand-computed ranks, exact enumerations and a plain NumPy bootstrap."""
import itertools

import numpy as np
import pytest

from tfnas.compare.statistics import (StatisticsError, against_random, difference_to_median, permutation_test_less,
                                      rank_correlation)
from tfnas.settings import SettingsError

# A fixed set with ties in both columns, and its average ranks worked out by hand.
SIGNAL = [0.5, 2.0, 2.0, 3.5, 1.0, 3.5, 4.0]
TARGET = [10.0, 30.0, 20.0, 40.0, 20.0, 50.0, 60.0]
SIGNAL_RANKS = [1, 3.5, 3.5, 5.5, 2, 5.5, 7]    # 0.5 < 1.0 < 2.0 = 2.0 (ranks 3, 4) < 3.5 = 3.5 (5, 6) < 4.0
TARGET_RANKS = [1, 4, 2.5, 5, 2.5, 6, 7]        # 10 < 20 = 20 (ranks 2, 3) < 30 < 40 < 50 < 60


def average_ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis: ``#{j: a_j < a_i} + (#{j: a_j = a_i} + 1) / 2``."""
    below = (a[..., :, None] > a[..., None, :]).sum(-1)
    tied = (a[..., :, None] == a[..., None, :]).sum(-1)
    return below + (tied + 1) / 2


def test_average_ranks_match_the_hand_computed_ones():
    assert average_ranks(np.array(SIGNAL)).tolist() == SIGNAL_RANKS
    assert average_ranks(np.array(TARGET)).tolist() == TARGET_RANKS


def test_rho_is_the_correlation_of_the_hand_computed_ranks():
    result = rank_correlation(SIGNAL, TARGET, resamples=50, permutations=50)
    assert result["rho"] == pytest.approx(np.corrcoef(SIGNAL_RANKS, TARGET_RANKS)[0, 1], abs=1e-12)
    assert result["n"] == 7 and result["interval"] == "percentile"


def test_rho_interval_is_the_numpy_percentile_bootstrap_of_the_same_paired_resamples():
    resamples, seed = 2000, 11
    result = rank_correlation(SIGNAL, TARGET, confidence=0.9, resamples=resamples, permutations=10, seed=seed)
    # SciPy draws paired resamples as one index matrix from default_rng(seed)
    index = np.random.default_rng(seed).integers(0, len(SIGNAL), (resamples, len(SIGNAL)))
    x, y = np.array(SIGNAL)[index], np.array(TARGET)[index]
    rhos = []
    for rx, ry in zip(average_ranks(x), average_ranks(y)):
        if np.ptp(rx) > 0 and np.ptp(ry) > 0:
            rhos.append(np.corrcoef(rx, ry)[0, 1])
    assert result["undefined_resamples"] == resamples - len(rhos)
    assert [result["low"], result["high"]] == pytest.approx(np.percentile(rhos, [5, 95]), abs=1e-12)


def test_resamples_without_rho_are_dropped_and_counted():
    # 3 distinct pairs: a resample is undefined exactly when it draws one pair three times
    resamples, seed = 3000, 4
    result = rank_correlation([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], resamples=resamples, permutations=10, seed=seed)
    index = np.random.default_rng(seed).integers(0, 3, (resamples, 3))
    assert result["undefined_resamples"] == int(np.sum(np.ptp(index, axis=1) == 0))
    assert 0 < result["undefined_resamples"] < resamples
    assert result["low"] is not None and result["high"] is not None


def test_rho_p_value_is_the_exact_two_sided_enumeration_of_pairings():
    signal, target = np.array([1.0, 2.0, 2.0, 4.0, 5.0, 3.0]), np.array([2.0, 1.0, 4.0, 3.0, 6.0, 6.0])
    result = rank_correlation(signal, target, resamples=10)
    observed = np.corrcoef(average_ranks(signal), average_ranks(target))[0, 1]
    null = np.array([np.corrcoef(average_ranks(signal[list(p)]), average_ranks(target))[0, 1]
                     for p in itertools.permutations(range(6))])
    tolerance = 1e-12
    upper, lower = np.mean(null >= observed - tolerance), np.mean(null <= observed + tolerance)
    assert result["p_exact"] is True
    assert result["p_value"] == pytest.approx(min(1.0, 2 * min(upper, lower)), abs=1e-12)


def test_rho_p_value_from_random_pairings_when_there_are_too_many():
    signal, target = np.arange(8.0), np.array([2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 8.0, 7.0])
    result = rank_correlation(signal, target, resamples=10, permutations=999)  # 8! = 40320 pairings
    assert result["p_exact"] is False
    # the exact two-sided p over all 8! pairings (ties: none), enumerated here
    pairings = np.array(list(itertools.permutations(range(8))))
    null = np.array([np.corrcoef(signal[p], average_ranks(target))[0, 1] for p in pairings])
    observed = np.corrcoef(signal, average_ranks(target))[0, 1]
    exact = min(1.0, 2 * min(np.mean(null >= observed - 1e-12), np.mean(null <= observed + 1e-12)))
    # 999 random pairings estimate it within 5 binomial standard errors (plus the counted observed pairing)
    assert abs(result["p_value"] - exact) <= 5 * 2 * np.sqrt(exact * (1 - exact) / 999) + 2 / 1000


@pytest.mark.parametrize("signal, target", [([1.0, 2.0], [2.0, 1.0]),             # n < 3
                                            ([], []),
                                            ([3.0, 3.0, 3.0, 3.0], [1.0, 2.0, 3.0, 4.0]),  # all ties
                                            ([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])])
def test_undefined_rho_is_none(signal, target):
    result = rank_correlation(signal, target, resamples=10, permutations=10)
    assert (result["rho"], result["low"], result["high"], result["p_value"]) == (None, None, None, None)
    assert result["n"] == len(signal)


def test_difference_interval_is_the_numpy_percentile_bootstrap_of_the_same_independent_resamples():
    values, reference = [61.0, 64.5, 60.25], [70.0, 65.0, 80.0, 59.0, 75.0, 90.0, 66.0, 71.5]
    resamples, seed = 3000, 7
    result = difference_to_median(values, reference, resamples=resamples, seed=seed)
    assert result["difference"] == pytest.approx(np.mean(values) - 70.75, abs=1e-12)  # median of 8: (70 + 71.5) / 2
    assert (result["mean"], result["median"], result["n"], result["n_reference"]) == (
        pytest.approx(61.916666666666664), 70.75, 3, 8)
    # SciPy resamples the groups one after the other from default_rng(seed)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(values), (resamples, len(values)))
    j = rng.integers(0, len(reference), (resamples, len(reference)))
    differences = np.array(values)[i].mean(axis=1) - np.median(np.array(reference)[j], axis=1)
    assert [result["low"], result["high"]] == pytest.approx(np.percentile(differences, [2.5, 97.5]), abs=1e-9)


def test_difference_of_constant_groups_has_a_point_interval():
    result = difference_to_median([60.0, 60.0], [70.0, 70.0, 70.0], resamples=100)
    assert (result["difference"], result["low"], result["high"]) == (-10.0, -10.0, -10.0)


@pytest.mark.parametrize("values, reference, difference", [([60.0], [70.0, 65.0, 80.0], -10.0),
                                                           ([60.0, 62.0], [70.0], -9.0),
                                                           ([60.0, 62.0], [], None),
                                                           ([], [70.0, 71.0], None)])
def test_difference_of_groups_too_small_to_resample(values, reference, difference):
    result = difference_to_median(values, reference, resamples=100)
    assert (result["difference"], result["low"], result["high"]) == (difference, None, None)


@pytest.mark.parametrize("values, reference, splits", [
    ([60.0, 62.0, 61.0], [70.0, 65.0, 80.0, 59.0, 75.0, 90.0, 66.0], 120),
    ([66.0], [70.0, 65.0, 80.0, 59.0, 75.0, 66.0], 7),          # one search: its rank among the random cells
    ([60.0, 75.0, 61.0], [70.0], 4),                           # one random cell
    ([64.0, 64.0], [64.0, 70.0, 64.0], 10),                    # ties with the observed split
])
def test_permutation_p_value_is_the_exact_enumeration_of_splits(values, reference, splits):
    result = permutation_test_less(values, reference)
    pool = np.array(values + reference)
    null = []
    for chosen in itertools.combinations(range(pool.size), len(values)):
        inside = np.isin(np.arange(pool.size), chosen)
        null.append(pool[inside].mean() - np.median(pool[~inside]))
    observed = np.mean(values) - np.median(reference)
    assert result["statistic"] == pytest.approx(observed, abs=1e-12)
    assert result["splits"] == len(null) == splits
    assert result["p_exact"] is True and result["min_p_value"] == pytest.approx(1 / splits)
    assert result["p_value"] == pytest.approx(np.mean(np.array(null) <= observed + 1e-9), abs=1e-12)


def test_permutation_p_value_from_random_splits_when_there_are_too_many():
    values, reference = [60.0, 61.0, 62.0, 63.0], list(np.linspace(58.0, 90.0, 12))   # C(16, 4) = 1820 splits
    result = permutation_test_less(values, reference, permutations=500)
    assert result["p_exact"] is False and result["min_p_value"] == pytest.approx(1 / 501)
    # the exact p over all 1820 splits, enumerated here; 500 random splits estimate it within 5 standard errors
    pool = np.array(values + reference)
    null = [pool[list(chosen)].mean() - np.median(np.delete(pool, chosen))
            for chosen in itertools.combinations(range(pool.size), len(values))]
    exact = np.mean(np.array(null) <= np.mean(values) - np.median(reference) + 1e-9)
    assert abs(result["p_value"] - exact) <= 5 * np.sqrt(exact * (1 - exact) / 500) + 1 / 501


def test_permutation_test_of_an_empty_group_is_none():
    assert permutation_test_less([], [70.0, 71.0])["p_value"] is None
    assert permutation_test_less([60.0], [])["p_value"] is None


def test_one_search_below_every_random_cell_has_the_smallest_p_value():
    result = permutation_test_less([50.0], [60.0, 61.0, 70.0, 65.0])
    assert result["p_value"] == pytest.approx(1 / 5)


def test_against_random_gathers_the_strategy_row():
    row = against_random([60.0, 62.0], [70.0, 65.0, 80.0], resamples=100, permutations=100)
    assert (row["mean"], row["n"]) == (61.0, 2)
    assert row["difference_to_median"]["difference"] == -9.0
    assert row["permutation_test"]["splits"] == 10


@pytest.mark.parametrize("call, message", [
    (lambda: rank_correlation([1.0, 2.0, 3.0], [1.0, 2.0]), "must pair up"),
    (lambda: rank_correlation([1.0, float("nan"), 3.0], [1.0, 2.0, 3.0]), "signal must be finite"),
    (lambda: difference_to_median([60.0, float("inf")], [70.0]), "values must be finite"),
    (lambda: permutation_test_less([60.0], [[70.0]]), "reference must be a list of numbers"),
    (lambda: permutation_test_less(["a"], [70.0]), "values must be a list of numbers"),
])
def test_numbers_a_statistic_cannot_use_are_one_line_errors(call, message):
    with pytest.raises(StatisticsError, match=message):
        call()


@pytest.mark.parametrize("kwargs", [{"confidence": 1.0}, {"confidence": 0}, {"resamples": 0}, {"seed": -1}])
def test_bad_arguments_are_settings_errors(kwargs):
    with pytest.raises(SettingsError):
        difference_to_median([60.0, 61.0], [70.0, 71.0], **kwargs)
