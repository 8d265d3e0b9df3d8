"""ENAS: weight-sharing search resumes exactly, and its cell trains with `tfnas train`."""
import json
import pickle

import numpy as np
import pytest

from tfnas.cli import main
from tfnas.config import ModelConfig
from tfnas.data import batchify, load_corpus
from tfnas.evaluation import WeightSharingEvaluator
from tfnas.genotypes.files import load_genotype
from tfnas.spaces.dag import DagSpace
from tfnas.strategies.one_shot.enas import EnasConfig, EnasSearch

from support import Kill, assert_same_checkpoints, write_ascending_corpus


def tiny_config(**kw) -> EnasConfig:
    base = dict(steps=3, batch_size=4, eval_batch_size=4, bptt=8, max_steps=10, log_interval=1,
                checkpoint_interval=4, controller_interval=3, controller_steps=1, samples_per_update=2,
                derive_samples=4, derive_batches=2, controller_units=8, controller_lr=0.01, seed=1,
                max_eval_batches=4, model=ModelConfig(emsize=12, nhid=12, dropout=0.1, dropouth=0.1, dropoutx=0.1,
                                                      dropouti=0.1, dropoute=0.0, cell_init_range=0.05))
    base.update(kw)
    return EnasConfig(**base)


@pytest.fixture(scope="module")
def enas_runs(tmp_path_factory):
    """A full tiny search and the same search killed at step 7 and resumed (shared by the tests).

    The full search's `EnasSearch` object is ``full.search``.
    """
    root = tmp_path_factory.mktemp("enas")
    corpus = load_corpus(write_ascending_corpus(root / "tiny"))
    search = EnasSearch(tiny_config())
    full = search.search(corpus, root / "full")
    full.search = search
    with pytest.raises(KeyboardInterrupt):
        EnasSearch(tiny_config()).search(corpus, root / "cut", [Kill("train", step=7)])
    latest = (root / "cut" / "checkpoints" / "latest").read_text()
    resumed = EnasSearch(tiny_config()).search(corpus, root / "cut")
    return root, corpus, full, resumed, latest


def test_killed_enas_search_resumes_to_the_same_genotype_and_weights(enas_runs):
    root, _, full, resumed, latest = enas_runs
    assert latest == "step-4"
    assert resumed.genotype == full.genotype
    assert resumed.metrics["valid_ppl"] == full.metrics["valid_ppl"]
    assert_same_checkpoints(root / "full", root / "cut")


def test_enas_genotype_is_in_the_space_and_chosen_by_validation(enas_runs):
    root, corpus, full, _, _ = enas_runs
    g = full.genotype
    assert DagSpace(3, first_node="enas", output="loose_ends").contains(g)
    history = [json.loads(line) for line in (root / "full" / "history.jsonl").read_text().splitlines()]
    assert history[-1]["genotype"]["nodes"] == [list(n) for n in g.nodes]
    # The chosen cell is the best of the derive samples (ENAS section 2.2): each sample's reward loss is
    # recomputed with the saved shared weights, on each of the first derive_batches validation windows of the
    # search batch from zero states.
    search, c = full.search, full.search.config
    choices, _, _ = search.reinforce.sample(c.derive_samples, [c.seed + 2, search.step])
    candidates = list(dict.fromkeys(search.space.decode(row) for row in choices))
    evaluator = WeightSharingEvaluator.from_search(root / "full", corpus=corpus, max_batches=2)
    data = batchify(corpus.valid, c.batch_size)
    windows = [WeightSharingEvaluator(evaluator.model, data[:, k * c.bptt:(k + 1) * c.bptt + 1], c.bptt)
               for k in range(c.derive_batches)]
    losses = [np.mean([w.loss(x) for w in windows]) for x in candidates]
    assert len(candidates) > 1 and len(set(np.round(losses, 6))) > 1
    assert g in candidates and g == candidates[int(np.argmin(losses))]
    scores = evaluator.evaluate(candidates)
    assert all(np.isfinite(scores))
    # The evaluator pickles (for Ray) with its weights: the same scores after a round trip.
    np.testing.assert_allclose(pickle.loads(pickle.dumps(evaluator)).evaluate(candidates), scores, rtol=1e-6)
    assert isinstance(WeightSharingEvaluator.from_search(root / "full", corpus=corpus), WeightSharingEvaluator)


def test_tfnas_train_accepts_the_enas_genotype(enas_runs, tmp_path):
    root, _, full, _, _ = enas_runs
    assert load_genotype(root / "full" / "genotype.json") == full.genotype
    assert full.genotype.provenance["strategy"] == "enas"
    code = main(["train", "--genotype", str(root / "full" / "genotype.json"), "--dataset", str(root / "tiny"),
                 "--out", str(tmp_path / "train"), "--max-steps", "3", "--batch-size", "4", "--eval-batch-size", "4",
                 "--test-batch-size", "4", "--bptt", "6", "--emsize", "8", "--nhid", "8", "--quiet"])
    assert code == 0
    result = json.loads((tmp_path / "train" / "result.json").read_text())
    assert result["steps"] == 3 and np.isfinite(result["test_ppl"])


def test_a_resumed_search_refuses_other_settings_and_accepts_resumable_ones(enas_runs, tmp_path):
    from tfnas.callbacks import History

    _, corpus, _, _, _ = enas_runs
    out = tmp_path / "s"
    EnasSearch(tiny_config(max_steps=2)).search(corpus, out)
    with pytest.raises(ValueError, match=r"holds a `enas` search with another configuration "
                                         r"\(lr: 20\.0 -> 10\.0, seed: 1 -> 2\); use a new --out folder"):
        EnasSearch(tiny_config(max_steps=2, seed=2, lr=10.0)).search(corpus, out)
    history = History()
    resumed = EnasSearch(tiny_config(max_steps=4, log_interval=2)).search(corpus, out, [history])
    assert history.events["message"][0]["text"].startswith("resumed from")
    assert [e["step"] for e in history.events["train"]] == [4]          # steps 3 and 4, logged every 2
    assert resumed.metrics["steps"] == 4
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["log_interval"] == 2 and record["config"]["max_steps"] == 4


def test_enas_config_refuses_the_tree_space():
    with pytest.raises(ValueError, match="space must be 'dag'"):
        EnasConfig(space="tree")


def test_random_search_scores_with_the_enas_shared_weights(enas_runs):
    from tfnas.strategies.black_box.random_search import RandomConfig, RandomSearch

    root, corpus, _, _, _ = enas_runs
    config = RandomConfig(space="dag", evaluator="weight_sharing", shared_weights=str(root / "full"), max_trials=4,
                          trials_per_round=2, eval_batches=2, seed=0)
    search = RandomSearch(config)
    result = search.search(corpus, root / "random_ws")
    # The space is the shared weights' (3 steps, ENAS node 0, loose ends), not the config's default DAG space.
    assert search.space == DagSpace(3, first_node="enas", output="loose_ends")
    evaluator = WeightSharingEvaluator.from_search(root / "full", corpus=corpus, max_batches=2)
    genotypes = [search.space.decode(t.choices) for t in search.trials]
    np.testing.assert_allclose([t.ppl for t in search.trials], evaluator.evaluate(genotypes), rtol=1e-6)
    assert result.metrics["valid_ppl"] == min(t.ppl for t in search.trials)


def test_a_blown_up_loss_restores_the_checkpoint_at_half_the_learning_rate(enas_runs, tmp_path):
    from tfnas.callbacks import History
    from tfnas.strategies.base import SearchDivergedError

    _, corpus, _, _, _ = enas_runs
    history = History()
    with pytest.raises(SearchDivergedError, match="after 1 recoveries"):
        EnasSearch(tiny_config(max_loss=0.5, nan_retries=1, max_steps=3)).search(corpus, tmp_path / "s", [history])
    texts = [e["text"] for e in history.events["message"]]
    assert any("(above max_loss 0.5) at step 1: restored" in t and "learning rates now x0.5 (recovery 1 of 1)" in t
               for t in texts), texts
    assert not (tmp_path / "s" / "genotype.json").exists()


class BadCell(EnasSearch):
    """The cell that the first try of step 5 trains blows the shared weights up (loss 1e9) whenever it is trained."""

    bad = None

    def training_arch(self):
        arch = super().training_arch()
        self.drawn = tuple(arch.numpy().tolist())
        if self.step == 4 and self.bad is None:
            self.bad = self.drawn
        return arch

    def search_step(self, train, lr, update_arch):
        logs, t = super().search_step(train, lr, update_arch)
        return ({**logs, "loss": 1e9} if self.drawn == self.bad else logs), t


def test_a_step_retried_after_a_blow_up_draws_another_cell(enas_runs, tmp_path):
    """A smaller learning rate does not tame a cell that blows up: the retried step draws another one."""
    from tfnas.callbacks import History

    _, corpus, _, _, _ = enas_runs
    history = History()
    search = BadCell(tiny_config(nan_retries=3))
    result = search.search(corpus, tmp_path / "s", [history])
    assert result.metrics["steps"] == 10 and result.metrics["recoveries"] >= 1
    assert "(above max_loss 100) at step 5: restored" in [e["text"] for e in history.events["message"]
                                                          if "restored" in e["text"]][0]
    assert search.training_seed() == [search.config.seed + 1 + result.metrics["recoveries"] * 2**20, 10]
