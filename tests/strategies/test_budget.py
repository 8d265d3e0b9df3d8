"""A wall-clock budget (``budget_s``) for every strategy: it stops at the next step boundary past the budget, the
result records the seconds and the steps reached, the same steps as ``max_steps`` (``max_trials``) reproduce the
search bit for bit, and a killed search resumed counts the seconds of its checkpoints.

The clock is the test's: `tfnas.runs.session.monotonic` reads a counter that one second moves per training step
(one-shot searches, the trainer) or per round (black-box searches).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import tfnas.runs.session as session_module
from tfnas.callbacks import Callback
from tfnas.data import load_corpus
from tfnas.spaces.dag import DagSpace
from tfnas.strategies.registry import get_strategy

from support import Kill, SyntheticEvaluator, assert_same_checkpoints, tiny_search_config, write_ascending_corpus

ONE_SHOT = ("darts", "nasabn", "bayesnas", "enas", "nao_ws", "rsws")
BLACK_BOX = ("random", "reinforce", "nao")


class Tick(Callback):
    """Moves the test clock one second on each event of ``kind``."""

    def __init__(self, clock: list[float], kind: str):
        self.clock, self.kind = clock, kind

    def on_event(self, kind, logs):
        if kind == self.kind:
            self.clock[0] += 1.0


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    now = [0.0]
    monkeypatch.setattr(session_module, "monotonic", lambda: now[0])
    return now


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = write_ascending_corpus(tmp_path_factory.mktemp("budget") / "tiny")
    return folder, load_corpus(folder)


def search(strategy, out, data, callbacks=(), **overrides):
    folder, corpus = data
    return get_strategy(strategy).strategy_class(tiny_search_config(strategy, folder, **overrides)).search(
        corpus, out, list(callbacks))


def trials(out):
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds",)}
            for line in (out / "trials.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("strategy", ONE_SHOT)
def test_a_budget_stops_a_one_shot_search_whose_steps_reproduce_it(strategy, data, tmp_path, clock):
    stopped = search(strategy, tmp_path / "budget", data, [Tick(clock, "train")], budget_s=2.5)
    assert stopped.metrics["steps"] == 3 and stopped.seconds == 3.0      # 8 steps without the budget
    again = search(strategy, tmp_path / "steps", data, max_steps=3)
    assert again.genotype == stopped.genotype and again.metrics["steps"] == 3
    assert_same_checkpoints(tmp_path / "budget", tmp_path / "steps")


@pytest.mark.parametrize("strategy", BLACK_BOX)
def test_a_budget_stops_a_black_box_search_whose_trials_reproduce_it(strategy, data, tmp_path, clock):
    full = search(strategy, tmp_path / "full", data)
    stopped = search(strategy, tmp_path / "budget", data, [Tick(clock, "round")], budget_s=0.5)
    assert stopped.metrics["rounds"] == 1 < full.metrics["rounds"] and stopped.seconds == 1.0
    again = search(strategy, tmp_path / "trials", data, max_trials=stopped.metrics["trials"])
    assert again.genotype == stopped.genotype and trials(tmp_path / "trials") == trials(tmp_path / "budget")


class TimedEvaluator:
    """`SyntheticEvaluator`'s scores, one second of the test clock per genotype (before the round's checkpoint)."""

    def __init__(self, clock: list[float]):
        space = DagSpace(2)
        self.clock, self.inner = clock, SyntheticEvaluator(space, space.encode(space.sample(np.random.default_rng(0))))

    def evaluate(self, genotypes):
        self.clock[0] += len(genotypes)
        return self.inner.evaluate(genotypes)


def test_a_killed_one_shot_search_resumed_counts_the_seconds_of_its_checkpoint(data, tmp_path, clock):
    whole = search("darts", tmp_path / "whole", data, [Tick(clock, "train")], budget_s=4.5)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        search("darts", out, data, [Tick(clock, "train"), Kill("checkpoint", step=2)], budget_s=4.5)
    clock[0] += 1000.0                                      # between the two processes: not the run's time
    resumed = search("darts", out, data, [Tick(clock, "train")], budget_s=4.5)
    assert resumed.metrics["steps"] == whole.metrics["steps"] == 5 and resumed.seconds == 5.0
    assert resumed.genotype == whole.genotype
    assert_same_checkpoints(tmp_path / "whole", out)


def test_a_killed_black_box_search_resumed_counts_the_seconds_of_its_checkpoint(data, tmp_path, clock):
    folder, corpus = data

    def run(out, callbacks=()):
        config = tiny_search_config("random", folder, max_trials=8, budget_s=3.5)
        strategy = get_strategy("random").strategy_class(config, evaluator=TimedEvaluator(clock))
        return strategy.search(corpus, out, list(callbacks))

    whole = run(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed", [Kill("checkpoint", step=1)])
    clock[0] += 1000.0
    resumed = run(tmp_path / "killed")
    # 2 trials (2 s) a round: the budget ends the search after round 2 (4 s), and so it does after the resume,
    # which starts from round 1's 2 s (without them it would run a third round).
    assert resumed.metrics["rounds"] == whole.metrics["rounds"] == 2 and resumed.seconds == 4.0
    assert trials(tmp_path / "killed") == trials(tmp_path / "whole")


def test_a_wenet_budget_ends_the_search_in_the_round_that_spends_it(data, tmp_path, clock):
    full = search("wenet", tmp_path / "full", data)
    stopped = search("wenet", tmp_path / "budget", data, [Tick(clock, "train")], budget_s=5.5)
    # 4 steps per round: round 1 runs 4, round 2 stops after 2 more; no third round starts.
    assert stopped.metrics["steps"] == 6 < full.metrics["steps"] and stopped.metrics["rounds"] == 2
    assert stopped.seconds == 6.0
