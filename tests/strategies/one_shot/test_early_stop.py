"""DARTS-ES (R-DARTS section 4): the stopping rule on hand-computed eigenvalue sequences, and its saved state."""
import json

import pytest

from tfnas.settings import SettingsError
from tfnas.strategies.one_shot.early_stop import EigenvalueEarlyStop


def run(rule, eigenvalues, start=0):
    """Feeds the sequence as measurements ``start, start + 1, ...`` (measurement i at step 10 (i + 1), its
    architecture ``{"index": i}``) until the rule stops; the index it stopped at."""
    for i, lam in enumerate(eigenvalues, start=start):
        if rule.observe(10 * (i + 1), lam, {"index": i}):
            return i
    return None


def test_stops_when_the_eigenvalue_grew_past_one_over_the_ratio_over_k_measurements():
    # k = 2, ratio 0.75. lambda(i-2) / lambda(i): i=2: 1.0/1.2 = 0.833; i=3: 1.1/1.3 = 0.846;
    # i=4: 1.2/1.8 = 0.667 < 0.75 -> stop at measurement 4 (step 50), returning measurement 2 (step 30).
    rule = EigenvalueEarlyStop(window=2, ratio=0.75)
    assert run(rule, [1.0, 1.1, 1.2, 1.3, 1.8, 9.0]) == 4
    assert rule.stopped
    assert rule.returned == {"step": 30, "eigenvalue": 1.2, "architecture": {"index": 2}, "stopped_step": 50,
                             "stopped_eigenvalue": 1.8}
    assert rule.eigenvalues == [[10, 1.0], [20, 1.1], [30, 1.2], [40, 1.3], [50, 1.8]]


def test_the_comparison_spans_exactly_k_measurements():
    # k = 3: a doubling between neighbours does not count before 3 measurements lie between them.
    # lambda(i-3)/lambda(i): i=3: 1/1 = 1; i=4: 1/2 = 0.5 -> stop at 4, returning measurement 1.
    rule = EigenvalueEarlyStop(window=3, ratio=0.75)
    assert run(rule, [1.0, 1.0, 1.0, 1.0, 2.0]) == 4
    assert rule.returned["architecture"] == {"index": 1}
    # k = 1 on the same sequence stops at the jump itself and returns the measurement before it.
    rule = EigenvalueEarlyStop(window=1, ratio=0.75)
    assert run(rule, [1.0, 1.0, 1.0, 1.0, 2.0]) == 4
    assert rule.returned["architecture"] == {"index": 3}


def test_the_threshold_is_strict_and_a_falling_or_flat_sequence_never_stops():
    # 3.0 / 4.0 is exactly 0.75 (not below): no stop; 2.9 / 4.0 = 0.725 is.
    assert run(EigenvalueEarlyStop(window=1, ratio=0.75), [3.0, 4.0]) is None
    assert run(EigenvalueEarlyStop(window=1, ratio=0.75), [2.9, 4.0]) == 1
    assert run(EigenvalueEarlyStop(window=2, ratio=0.75), [5.0, 4.0, 3.0, 3.0, 3.0, 2.0]) is None


def test_signs_a_non_positive_eigenvalue_never_stops_a_rise_from_one_does():
    # lambda(i) <= 0: no sharp minimum, no stop (-1 -> -0.1 and 1 -> 0 are "growth" of no interest).
    assert run(EigenvalueEarlyStop(window=1, ratio=0.75), [-1.0, -0.1, 0.0]) is None
    # lambda(i-1) = -0.5 < 0.75 * 0.2: the paper's ratio -2.5 < 0.75.
    rule = EigenvalueEarlyStop(window=1, ratio=0.75)
    assert run(rule, [-0.5, 0.2]) == 1 and rule.returned["eigenvalue"] == -0.5


def test_a_rule_rebuilt_from_its_json_state_stops_where_the_uninterrupted_one_does():
    sequence = [0.5, 0.55, 0.6, 0.58, 0.7, 0.9, 1.2]
    whole = EigenvalueEarlyStop(window=3, ratio=0.75)
    stopped = run(whole, sequence)
    # 0.5/0.58, 0.55/0.7 = 0.786, 0.6/0.9 = 0.667 -> measurement 5, returning 2.
    assert stopped == 5 and whole.returned["architecture"] == {"index": 2}
    first = EigenvalueEarlyStop(window=3, ratio=0.75)
    assert run(first, sequence[:4]) is None
    assert len(first.state()["recent"]) == 4      # k + 1 kept
    again = EigenvalueEarlyStop(window=3, ratio=0.75, state=json.loads(json.dumps(first.state())))
    assert run(again, sequence[4:], start=4) == 5
    assert again.state() == whole.state()


def test_a_stopped_rule_refuses_more_measurements_and_bad_arguments_are_refused():
    rule = EigenvalueEarlyStop(window=1, ratio=0.5)
    run(rule, [1.0, 3.0])
    with pytest.raises(ValueError, match="already stopped"):
        rule.observe(100, 5.0, None)
    with pytest.raises(SettingsError, match="window"):
        EigenvalueEarlyStop(window=0)
    with pytest.raises(SettingsError, match="ratio"):
        EigenvalueEarlyStop(ratio=1.5)
