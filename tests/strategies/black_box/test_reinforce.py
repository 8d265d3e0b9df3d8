"""REINFORCE search (Zoph & Le): learning against random search, resume, retries."""
import json

import numpy as np
import pytest

from support import FailingEvaluator, Kill, SyntheticEvaluator
from tfnas.data import load_corpus
from tfnas.metrics import perplexity
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


class DivergingEvaluator:
    """The synthetic objective, except that a genotype whose first activation is tanh (choice 0) diverges: its
    loss reaches the cap of `tfnas.metrics.perplexity`, a finite perplexity of about 1e304 whose square overflows
    (issue 26, item 1)."""

    def __init__(self, space):
        self.space, self.inner = space, synthetic(space)

    def evaluate(self, genotypes):
        return [perplexity(1e6) if self.space.encode(g)[1] == 0 else ppl
                for g, ppl in zip(genotypes, self.inner.evaluate(genotypes))]


def test_a_child_whose_reward_overflows_is_a_failed_trial_and_the_search_goes_on_and_resumes(tmp_path, tiny_corpus):
    """``c / ppl^2`` at ppl = exp(700) raised OverflowError in every rerun of the folder; now the trial fails with
    reward 0, the controller still learns from the round, and a search killed before such a round resumes to the
    uninterrupted run's trials."""
    corpus = load_corpus(tiny_corpus)
    space = DagSpace(3)
    config = ReinforceConfig(space="dag", steps=3, max_trials=12, trials_per_round=3, seed=2, controller_lr=0.02,
                             controller_units=8)
    full = ReinforceSearch(config, evaluator=DivergingEvaluator(space))
    result = full.search(corpus, tmp_path / "full")
    diverged = [t for t in full.trials if t.choices[1] == 0]
    assert diverged and all((t.status, t.ppl, t.reward) == ("failed", None, 0.0) for t in diverged)
    assert all("overflows at perplexity 1.014e+304" in t.error for t in diverged)
    assert len(full.trials) == 12 and len(full.history) == 4
    assert result.metrics["failed"] == len(diverged) and space.encode(result.genotype)[1] != 0
    with pytest.raises(KeyboardInterrupt):
        ReinforceSearch(config, evaluator=DivergingEvaluator(space)).search(corpus, tmp_path / "cut",
                                                                            [Kill("round", step=1)])
    resumed = ReinforceSearch(config, evaluator=DivergingEvaluator(space))
    resumed.search(corpus, tmp_path / "cut")
    assert [t.to_dict() for t in resumed.trials] == [t.to_dict() for t in full.trials]


def test_defaults_and_ptb_preset_are_section_4_2():
    """Zoph & Le section 4.2 (PTB): controller lr 0.0005, 10 gradients per update, no entropy bonus, 15,000
    architectures, two-layer children of about the "medium" baseline's 20M parameters (Table 2) for 35 epochs."""
    from tfnas.presets import search_config
    from tfnas.lm import LanguageModel
    from tfnas.spaces.tree import TreeSpace
    from tfnas.strategies.one_shot.enas import EnasConfig

    r = ReinforceConfig()
    assert (r.controller_lr, r.entropy_weight, r.trials_per_round) == (5e-4, 0.0, 10)
    assert EnasConfig().entropy_weight == 1e-4  # ENAS keeps its bonus (the shared ControllerConfig default)
    ptb = search_config("reinforce", ReinforceConfig, "reinforce_ptb")
    assert (ptb.max_trials, ptb.base, ptb.child.epochs, ptb.child.model.nlayers) == (15000, 8, 35, 2)
    child = LanguageModel.from_config_objects(10000, TreeSpace(8).sample(np.random.default_rng(0)), ptb.child.model)
    assert child.count_params() == pytest.approx(20e6, rel=0.02)


@pytest.mark.slow  # ~15 s: two real child trainings
def test_two_layer_children_are_trained_as_two_layer_language_models(tmp_path, tiny_corpus):
    """The black-box child is a `LanguageModel`, so it takes model.nlayers = 2 (section 4.2): each child's run
    folder records two layers with a cell of its own each (2 x the tree cell's parameters, by formula)."""
    from tfnas.config import ModelConfig, TrainConfig
    from tfnas.lm import LanguageModel
    from tfnas.runs.atomic import read_json

    child = TrainConfig(model=ModelConfig(emsize=8, nhid=8, nlayers=2, dropout=0.1, dropouth=0.1, dropoutx=0.1,
                                          dropouti=0.1, dropoute=0.0),
                        batch_size=4, eval_batch_size=4, bptt=6, max_steps=3, max_eval_batches=2, log_interval=10,
                        checkpoint_interval=10)
    config = ReinforceConfig(base=2, max_trials=2, trials_per_round=2, seed=1, child=child)
    search = ReinforceSearch(config)
    search.search(load_corpus(tiny_corpus), tmp_path / "rl")
    trained = {t.key for t in search.trials if t.status == "ok"}
    assert trained and all(np.isfinite(t.ppl) for t in search.trials)
    runs = sorted((tmp_path / "rl" / "children").iterdir())
    assert [run.name for run in runs] == sorted(trained)
    for run in runs:
        model = LanguageModel.from_config(read_json(run / "model.json"))
        model.build_weights()
        assert model.hparams.nlayers == 2
        # base-2 tree cell: kernel [8, 2 * 8] and recurrent kernel [8, 2 * 8] per layer; 31 words, tied decoder
        assert model.count_params() == 2 * (8 * 16 + 8 * 16) + 31 * 8 + 31
