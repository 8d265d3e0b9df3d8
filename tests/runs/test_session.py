"""`RunSession`'s clock: the seconds a run has spent over its sessions, checkpointed with every save, resumed by the
first restore only, and the budget check."""
import dataclasses

import pytest

from tfnas.runs.session import SPENT_KEY, RunSession
from tfnas.settings import SettingsError

from support import Var


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def session(folder, clock, config=None):
    from tfnas.config import RunConfig

    fingerprint = {"words": 1, "vocabulary": "v" * 64, "tokens": 1, "token_ids": "t" * 64}
    return RunSession(folder, "search", "darts", config or RunConfig(), fingerprint, clock=clock)


def test_the_clock_counts_this_session_and_the_checkpointed_seconds_of_the_ones_before(tmp_path):
    clock, weights = Clock(), [Var("w", [1.0, 2.0])]
    with session(tmp_path, clock) as first:
        assert first.restore(weights) is None
        clock.now += 7.0
        path = first.save(1, weights, {"step": 1})
        clock.now += 5.0                                  # killed here: these 5 s are redone, not counted twice
    assert (path / "state.json").read_text().count(SPENT_KEY) == 1
    clock.now += 1000.0                                   # the time between two sessions is no run time
    with session(tmp_path, clock) as second:
        assert second.spent_s() == 0.0
        restored = second.restore(weights)
        assert restored.state[SPENT_KEY] == 7.0 and second.spent_s() == 7.0
        clock.now += 3.0
        assert second.spent_s() == 10.0
        assert not second.over_budget(None) and not second.over_budget(10.5) and second.over_budget(10.0)
        second.restore(weights)                           # a recovery: the clock runs on
        assert second.spent_s() == 10.0
        second.reset_clock(42.0)                          # a loop that counts nested runs itself
        clock.now += 1.0
        assert second.spent_s() == 43.0


def test_a_budget_must_be_positive_and_may_change_on_resume():
    from tfnas.config import RunConfig

    assert RunConfig(budget_s=0.5).budget_s == 0.5
    with pytest.raises(SettingsError, match="budget_s"):
        RunConfig(budget_s=0)
    resumable = {f.name for f in dataclasses.fields(RunConfig) if f.metadata.get("resumable")}
    assert "budget_s" in resumable
