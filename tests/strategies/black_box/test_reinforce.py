"""REINFORCE search (Zoph & Le): learning against random search, resume, retries."""
import json

import numpy as np
import pytest

from support import FailingEvaluator, Kill, SyntheticEvaluator
from tfnas.data import load_corpus
from tfnas.spaces.dag import DagSpace
from tfnas.strategies.black_box.random_search import RandomConfig, RandomSearch
from tfnas.strategies.black_box.reinforce import ReinforceConfig, ReinforceSearch


def synthetic(space):
    target = space.encode(space.sample(np.random.default_rng(123)))
    return SyntheticEvaluator(space, target)


def test_controller_beats_random_search_on_synthetic_reward(tmp_path, tiny_corpus):
    """Same budget (40 rounds x 5 trials), same seeds: the controller's late rewards beat random search."""
    corpus = load_corpus(tiny_corpus)
    common = dict(space="dag", steps=4, max_trials=200, trials_per_round=5, seed=3)
    space = DagSpace(4)
    rl = ReinforceSearch(ReinforceConfig(controller_lr=0.03, **common), evaluator=synthetic(space))
    rl.search(corpus, tmp_path / "rl")
    rs = RandomSearch(RandomConfig(**common), evaluator=synthetic(space))
    rs.search(corpus, tmp_path / "rs")
    rl_rewards = np.array([t.reward for t in rl.trials])
    rs_rewards = np.array([t.reward for t in rs.trials])
    assert len(rl_rewards) == len(rs_rewards) == 200
    # Both start alike; after 30 updates the controller samples far better cells.
    assert rl_rewards[:25].mean() < 1.5 * rs_rewards.mean()
    assert rl_rewards[-50:].mean() > 1.8 * rs_rewards[-50:].mean()
    assert rl.history[-1]["entropy"] < 0.5 * rl.history[0]["entropy"]
    assert min(t.ppl for t in rl.trials) <= min(t.ppl for t in rs.trials)


def final_controller(out):
    latest = (out / "checkpoints" / "latest").read_text().strip()
    data = np.load(out / "checkpoints" / latest / "variables.npz")
    return [data[k] for k in sorted(data.files) if k != "__names__"]


def test_killed_reinforce_search_resumes_exactly(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    space = DagSpace(3, first_node="enas", output="loose_ends")
    config = ReinforceConfig(space="dag", steps=3, first_node="enas", output="loose_ends", max_trials=24,
                             trials_per_round=3, seed=5, controller_lr=0.02, checkpoint_interval=2,
                             controller_units=8)
    full = ReinforceSearch(config, evaluator=synthetic(space)).search(corpus, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        ReinforceSearch(config, evaluator=synthetic(space)).search(corpus, tmp_path / "cut", [Kill("round", step=5)])
    assert (tmp_path / "cut" / "checkpoints" / "latest").read_text() == "step-4"
    resumed = ReinforceSearch(config, evaluator=synthetic(space))
    result = resumed.search(corpus, tmp_path / "cut")
    assert result.genotype == full.genotype
    full_trials = [json.loads(line) for line in (tmp_path / "full" / "trials.jsonl").read_text().splitlines()]
    assert [t.to_dict() for t in resumed.trials] == full_trials
    for a, b in zip(final_controller(tmp_path / "full"), final_controller(tmp_path / "cut")):
        np.testing.assert_array_equal(a, b)


def test_failed_evaluations_are_retried_then_recorded(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    space = DagSpace(2)
    config = RandomConfig(space="dag", steps=2, max_trials=4, trials_per_round=2, seed=0, trial_retries=1)
    search = RandomSearch(config, evaluator=FailingEvaluator(synthetic(space), failures=1))
    search.search(corpus, tmp_path / "retry")
    assert [t.status for t in search.trials] == ["ok"] * 4
    failing = RandomSearch(RandomConfig(**{**config.__dict__, "trial_retries": 0, "max_trials": 2}),
                           evaluator=FailingEvaluator(synthetic(space), failures=100))
    with pytest.raises(Exception, match="all 2 trials failed"):
        failing.search(corpus, tmp_path / "fail")
    assert [(t.status, t.ppl, t.reward) for t in failing.trials] == [("failed", None, 0.0)] * 2
    assert "simulated evaluation failure" in failing.trials[0].error
