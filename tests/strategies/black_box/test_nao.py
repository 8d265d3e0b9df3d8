"""NAO's Algorithm 1 as an ask/tell strategy: trial accounting, seeds, footnote 4's fallback, resume, quality, CLI."""
import dataclasses
import itertools
import json

import numpy as np
import pytest

from support import Kill, SyntheticEvaluator
from tfnas.cli import main
from tfnas.data import load_corpus
from tfnas.genotypes.files import genotype_from_dict, load_genotype
from tfnas.policies.nao import relabel
from tfnas.spaces.dag import DagSpace
from tfnas.strategies.black_box.nao import NaoConfig, NaoSearch
from tfnas.strategies.black_box.random_search import RandomConfig, RandomSearch

TINY_EPD = dict(epd_embed=8, epd_hidden=16, epd_decoder_hidden=16, epd_mlp=(16,), epd_epochs=20, epd_batch_size=8,
                epd_lr=5e-3)


def synthetic(space, seed=123):
    return SyntheticEvaluator(space, space.encode(space.sample(np.random.default_rng(seed))))


def config(**kw):
    return NaoConfig(**{**dict(steps=4, initial_archs=16, seed_archs=8, iterations=3, seed=1, **TINY_EPD), **kw})


def test_defaults_are_the_papers_ptb_settings_and_the_trial_count_is_derived():
    c = NaoConfig()
    assert (c.epd_embed, c.epd_hidden, c.epd_mlp, c.epd_decoder_hidden) == (64, 128, (200,), 128)   # section 4.3
    assert (c.trade_off, c.epd_lr, c.iterations) == (0.8, 1e-3, 2)
    assert (c.initial_archs, c.seed_archs, c.step_size, c.epd_epochs) == (600, 200, 10.0, 1000)    # section 4.1
    assert (c.space, c.steps, c.first_node, c.output) == ("dag", 11, "darts", "mean")              # authors' code
    assert c.child.epochs == 600 and c.child.model.dropoute == 0.0 and c.child.model.nhid == 850
    assert (c.max_trials, c.trials_per_round) == (None, None)
    assert (c.resolved().max_trials, c.resolved().trials_per_round) == (800, 600)
    assert NaoConfig(epd_mlp=[200, 200]).epd_mlp == (200, 200)                       # as a preset gives them
    with pytest.raises(ValueError, match="epd_mlp must be a list of positive integers"):  # the CLI parses integers
        NaoConfig(epd_mlp=["200", "200"])
    with pytest.raises(ValueError, match="space must be 'dag'"):
        NaoConfig(space="tree")
    with pytest.raises(ValueError, match="epd_decoder_hidden must equal epd_hidden"):
        NaoConfig(epd_decoder_hidden=64)
    with pytest.raises(ValueError, match="trials_per_round must be at least"):
        NaoConfig(trials_per_round=300)


def test_trials_are_initial_plus_l_minus_1_times_k_never_repeated_and_seeded_by_the_top_k(tmp_path, tiny_corpus):
    space = DagSpace(4)
    search = NaoSearch(config(), evaluator=synthetic(space))
    used = []
    original = search.seeds

    def record(k):
        seeds = original(k)
        used.append((search.round, k, [t.trial for t in seeds]))
        return seeds

    search.seeds = record
    result = search.search(load_corpus(tiny_corpus), tmp_path / "nao")
    trials = search.trials
    assert len(trials) == 16 + 2 * 8 == result.metrics["trials"]
    assert [t.round for t in trials] == [0] * 16 + [1] * 8 + [2] * 8
    assert len({t.key for t in trials}) == 32                              # no cell proposed twice
    expected_first = space.sample_unique(16, np.random.default_rng(1))
    assert [genotype_from_dict(t.genotype) for t in trials[:16]] == expected_first
    for round_, k, seed_trials in used:
        earlier = [t for t in trials if t.round < round_]
        best_k = sorted(earlier, key=lambda t: (t.ppl, t.trial))[:8]
        assert k == 8 and seed_trials == [t.trial for t in best_k]
    assert [r for r, _, _ in used] == [1, 2]
    history = search.history
    assert {"epd_loss", "epd_mse", "epd_ce", "pairwise_acc", "hamming"} <= set(history[0])
    assert "epd_loss" not in history[-1]                                   # no EPD training after the last round
    assert {"heldout_pairwise_acc", "decoded", "random_fill"} <= set(history[1])
    assert history[1]["decoded"] + history[1]["random_fill"] == 8
    assert result.metrics["valid_ppl"] == min(t.ppl for t in trials)


def test_seeds_that_decode_no_new_cell_are_replaced_by_unseen_random_cells(tmp_path, tiny_corpus):
    """Footnote 4's bound: a decoder stuck on tried cells falls back to random cells (fill_random)."""
    space = DagSpace(4)
    search = NaoSearch(config(iterations=2), evaluator=synthetic(space))
    etas_tried = []

    def stuck(seed_ids, etas, is_new, per_seed=1, limit=None):
        assert not any(is_new(tuple(int(v) for v in row)) for row in seed_ids)   # the seeds are tried cells
        etas_tried.append(list(etas))
        return [], list(etas)

    search.build = (lambda build: lambda: (build(), setattr(search.trainer, "generate", stuck)))(search.build)
    search.search(load_corpus(tiny_corpus), tmp_path / "stuck")
    assert etas_tried == [[10.0 * (1 + 0.5 * k) for k in range(10)]]
    assert search.history[1]["decoded"] == 0 and search.history[1]["random_fill"] == 8
    assert len({t.key for t in search.trials}) == 24
    search.config = dataclasses.replace(search.config, fill_random=False)
    assert search.propose(8) == []                                          # without filling, nothing new


def test_killed_nao_search_resumes_to_the_same_trials_and_genotype(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    space = DagSpace(4)
    c = config(initial_archs=8, seed_archs=4, iterations=3, epd_epochs=10)
    full = NaoSearch(c, evaluator=synthetic(space))
    full_result = full.search(corpus, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        NaoSearch(c, evaluator=synthetic(space)).search(corpus, tmp_path / "cut", [Kill("round", step=2)])
    assert (tmp_path / "cut" / "checkpoints" / "latest").read_text() == "step-2"
    resumed = NaoSearch(c, evaluator=synthetic(space))
    result = resumed.search(corpus, tmp_path / "cut")
    assert [t.to_dict() for t in resumed.trials] == [t.to_dict() for t in full.trials]
    assert result.genotype == full_result.genotype
    assert [h.get("epd_loss") for h in resumed.history] == [h.get("epd_loss") for h in full.history]


def test_symmetric_copies_enlarge_the_training_set(tmp_path, tiny_corpus):
    space = DagSpace(4)
    search = NaoSearch(config(iterations=2, augment_symmetric=True), evaluator=synthetic(space))
    sizes = []
    original = search.training_set

    def record():
        ids, scores = original()
        sizes.append((ids, scores))
        return ids, scores

    search.training_set = record
    search.search(load_corpus(tiny_corpus), tmp_path / "sym")
    (ids, scores), = sizes
    assert 16 < len(ids) <= 32
    originals = [(search.tokens.decode(row), s) for row, s in zip(ids[:16], scores[:16])]
    for row, s in zip(ids[16:], scores[16:]):
        copy = search.tokens.decode(row)
        assert copy not in [g for g, _ in originals]
        # Some topological renumbering of an original cell with the same score gives the copy.
        assert any(s == s0 and copy in relabellings(g) for g, s0 in originals)


def relabellings(g):
    out = []
    for order in itertools.permutations(range(1, g.steps + 1)):
        try:
            out.append(relabel(g, order))
        except ValueError:
            pass
    return out


@pytest.mark.slow
def test_nao_beats_random_search_at_equal_budgets(tmp_path, tiny_corpus):
    """Median over 3 seeds of the best synthetic perplexity: NAO below random search (60 children each)."""
    corpus = load_corpus(tiny_corpus)
    space = DagSpace(6)
    nao_best, random_best = [], []
    for seed in range(3):
        nao = NaoSearch(config(steps=6, initial_archs=30, seed_archs=10, iterations=4, seed=seed, epd_epochs=60,
                               step_size=1.0), evaluator=synthetic(space))
        nao.search(corpus, tmp_path / f"nao{seed}")
        rs = RandomSearch(RandomConfig(space="dag", steps=6, max_trials=60, trials_per_round=10, seed=seed),
                          evaluator=synthetic(space))
        rs.search(corpus, tmp_path / f"rs{seed}")
        assert len(nao.trials) == len(rs.trials) == 60
        nao_best.append(min(t.ppl for t in nao.trials))
        random_best.append(min(t.ppl for t in rs.trials))
    assert np.median(nao_best) < np.median(random_best)


def test_cli_nao_search_with_short_training_then_train(tmp_path, tiny_corpus):
    out = tmp_path / "search"
    code = main(["search", "--strategy", "nao", "--config", "quick_nao", "--dataset", str(tiny_corpus),
                 "--out", str(out), "--initial-archs", "2", "--seed-archs", "1", "--iterations", "2",
                 "--child-max-steps", "3", "--epd-epochs", "2", "--epd-mlp", "8", "8", "--seed", "1", "--quiet"])
    assert code == 0
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 3 and all(t["status"] == "ok" for t in trials)
    record = json.loads((out / "config.json").read_text())
    assert record["strategy"] == "nao" and record["config"]["epd_mlp"] == [8, 8] and record["config"]["max_trials"] == 3
    g = load_genotype(out / "genotype.json")
    assert g.provenance["strategy"] == "nao" and g.steps == 4
    assert g.provenance["metrics"]["valid_ppl"] == min(t["ppl"] for t in trials)
    assert main(["train", "--genotype", str(out / "genotype.json"), "--dataset", str(tiny_corpus),
                 "--out", str(tmp_path / "train"), "--max-steps", "2", "--batch-size", "4", "--eval-batch-size", "4",
                 "--test-batch-size", "4", "--bptt", "6", "--emsize", "8", "--nhid", "8", "--quiet", "--no-test"]) == 0


# Activation codes of the authors' scripts: NAO/rnn/utils.py parse_arch, and NAO-WS/rnn/model.py's NAOCell.
NON_WS_CODES = {0: "tanh", 1: "relu", 2: "identity", 3: "sigmoid"}
WS_CODES = {0: "tanh", 1: "relu", 2: "sigmoid", 3: "identity"}


@pytest.mark.parametrize("name, fixed_arc, codes", [
    ("nao", "0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2", NON_WS_CODES),      # NAO/rnn/train_ptb_final.sh
    ("nao_ws", "0 1 1 1 2 2 1 2 4 1 4 1 4 1 7 1 8 2 1 0 4 1", WS_CODES),       # NAO-WS/rnn/train_final.sh
])
def test_published_naonet_cells_decode_to_the_authors_architectures(name, fixed_arc, codes, exported_cells):
    g = load_genotype(exported_cells / f"{name}.json")
    arc = [int(v) for v in fixed_arc.split()]
    assert [list(node) for node in g.nodes] == [[codes[arc[k + 1]], arc[k]] for k in range(0, len(arc), 2)]
    assert (g.first_node, g.output, g.concat) == ("darts", "mean", tuple(range(1, 12)))
    assert g.provenance["reported"]["test_ppl"] == {"nao": 56.0, "nao_ws": 56.6}[name]


def test_naonet_has_the_reported_27m_parameters_at_850_units_on_ptb(exported_cells):
    """Table 3: 27M; the 11-step DARTS-node cell with a tied 10k-word embedding gives 27.3M."""
    from tfnas.lm import LanguageModel

    lm = LanguageModel(10000, load_genotype(exported_cells / "nao.json"), emsize=850, nhid=850, seed=0)
    lm.build_weights()
    assert abs(lm.count_params() - 27.3e6) <= 0.1e6
