"""Random search: reproducible by seed, never repeats, and runs end to end through the CLI."""
import json

import numpy as np

from support import SyntheticEvaluator
from tfnas.cli import main
from tfnas.data import load_corpus
from tfnas.genotypes.tree import TreeGenotype
from tfnas.spaces.tree import TreeSpace
from tfnas.genotypes.files import load_genotype
from tfnas.strategies.black_box.random_search import RandomConfig, RandomSearch


def run(tmp_path, corpus, name, seed, space=TreeSpace(2)):
    target = space.encode(space.sample(np.random.default_rng(7)))
    search = RandomSearch(RandomConfig(space="tree", base=2, max_trials=30, trials_per_round=4, seed=seed),
                          evaluator=SyntheticEvaluator(space, target))
    result = search.search(corpus, tmp_path / name)
    return search, result


def test_random_search_is_reproducible_by_seed_and_unique(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    a, ra = run(tmp_path, corpus, "a", seed=11)
    b, rb = run(tmp_path, corpus, "b", seed=11)
    c, _ = run(tmp_path, corpus, "c", seed=12)
    keys = [t.key for t in a.trials]
    assert keys == [t.key for t in b.trials] and len(keys) == 30
    assert len(set(keys)) == 30  # no genotype proposed twice
    assert keys != [t.key for t in c.trials]
    assert ra.genotype == rb.genotype
    assert ra.metrics["valid_ppl"] == min(t.ppl for t in a.trials)
    # Proposals are uniform draws of TreeSpace.sample_unique with the seeded generator.
    expected = TreeSpace(2).sample_unique(4, np.random.default_rng(11))
    assert [TreeGenotype.from_dict(t.genotype) for t in a.trials[:4]] == expected


def test_cli_random_tree_search_with_short_training_then_train(tmp_path, tiny_corpus, capsys):
    out = tmp_path / "search"
    code = main(["search", "--strategy", "random", "--space", "tree", "--base", "2", "--dataset", str(tiny_corpus),
                 "--out", str(out), "--max-trials", "2", "--trials-per-round", "2", "--child-max-steps", "3",
                 "--seed", "1", "--quiet", "--config", "quick_random"])
    assert code == 0
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 2 and all(t["status"] == "ok" for t in trials)
    # Each child is a real (short) training run; its folder holds the reported perplexity.
    for t in trials:
        child = json.loads((out / "children" / t["key"] / "result.json").read_text())
        assert child["steps"] == 3
        assert child["best_valid_ppl"] == t["ppl"]
    g = load_genotype(out / "genotype.json")
    assert isinstance(g, TreeGenotype) and g.provenance["strategy"] == "random"
    assert g.provenance["metrics"]["valid_ppl"] == min(t["ppl"] for t in trials)
    assert main(["train", "--genotype", str(out / "genotype.json"), "--dataset", str(tiny_corpus),
                 "--out", str(tmp_path / "train"), "--max-steps", "2", "--batch-size", "4", "--eval-batch-size", "4",
                 "--test-batch-size", "4", "--bptt", "6", "--emsize", "8", "--nhid", "8", "--quiet", "--no-test"]) == 0
    result = json.loads((tmp_path / "train" / "result.json").read_text())
    assert result["steps"] == 2 and np.isfinite(result["best_valid_ppl"])
