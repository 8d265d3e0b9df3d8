"""The cheap signals of a comparison's random cells (`tfnas.compare.signals`), end to end on a tiny corpus."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy import stats

from support import TINY_SEARCH, write_ascending_corpus
from tfnas.compare import load_compare_config, run_comparison
from tfnas.compare.report import markdown_table
from tfnas.compare.signals import SIGNALS_FILE, signal_child_config
from tfnas.evaluation.evaluators import WeightSharingEvaluator, genotype_key
from tfnas.genotypes.files import as_any_genotype
from tfnas.runs.atomic import read_json

TINY_TRAIN = {"batch_size": 4, "eval_batch_size": 4, "test_batch_size": 4, "bptt": 8, "max_steps": 3,
              "eval_interval": 3, "log_interval": 1, "checkpoint_interval": 2, "max_eval_batches": 2,
              "model": {"emsize": 8, "nhid": 8}}
TINY_CHILD = {"batch_size": 4, "eval_batch_size": 4, "bptt": 8, "max_eval_batches": 2, "log_interval": 1,
              "checkpoint_interval": 2, "model": {"emsize": 8, "nhid": 8}}


@pytest.fixture(scope="module")
def signalled(tmp_path_factory):
    root = tmp_path_factory.mktemp("signals")
    corpus = write_ascending_corpus(root / "corpus")
    config = load_compare_config(None, {
        "dataset": str(corpus), "random_cells": 4, "random_steps": 2, "seeds": [1], "baselines": [],
        "train": "quick_train", "train_overrides": TINY_TRAIN, "signal_child_steps": [2, 4],
        "signal_child": TINY_CHILD, "searches": [{"strategy": "rsws", "overrides": TINY_SEARCH["rsws"]}]})
    return config, root / "out", run_comparison(config, root / "out")


def test_children_are_scored_at_each_step_count_from_their_own_training(signalled):
    config, out, report = signalled
    saved = read_json(out / SIGNALS_FILE)
    cells = read_json(out / "random_cells.json")
    assert saved["cells"] == sorted(cells)
    for steps in (2, 4):
        values = saved["signals"][f"child@{steps}"]["values"]
        for name, genotype in cells.items():
            folder = out / "signals" / "children" / genotype_key(as_any_genotype(genotype))
            history = read_json(folder / "result.json")["history"] if (folder / "result.json").exists() else None
            assert history is not None
            best = min(e["valid_ppl"] for e in history if e["step"] <= steps and "valid_ppl" in e)
            assert values[name] == pytest.approx(best)
    # the child of 4 steps continued the child of 2: one run folder per cell, trained 4 steps in all
    assert len(list((out / "signals" / "children").iterdir())) == 4
    assert signal_child_config(config).model.nhid == 8


def test_shared_weights_and_covariance_signals_and_their_correlations(signalled):
    config, out, report = signalled
    saved = read_json(out / SIGNALS_FILE)["signals"]
    cells = read_json(out / "random_cells.json")
    names = sorted(cells)
    evaluator = WeightSharingEvaluator.from_search(out / "searches" / "rsws")
    expected = evaluator.evaluate([as_any_genotype(cells[n]) for n in names])
    assert [saved["shared weights (rsws)"]["values"][n] for n in names] == pytest.approx(expected)
    assert set(saved) == {"hidden covariance", "child@2", "child@4", "shared weights (rsws)"}
    target = {row["cell"]: row["test_ppl"]["mean"] for row in report["rows"] if row["kind"] == "random"}
    for entry in report["signals"]:
        signal = saved[entry["signal"]]
        x = [signal["orientation"] * signal["values"][n] for n in names]
        if not all(math.isfinite(v) for v in x):
            continue
        assert entry["n"] == 4
        assert entry["rho"] == pytest.approx(stats.spearmanr(x, [target[n] for n in names]).statistic)
    assert "| hidden covariance | 4 |" in markdown_table(report)


def test_a_resumed_comparison_measures_nothing_again(signalled, monkeypatch):
    from tfnas.evaluation import proxies

    config, out, report = signalled
    before = (out / SIGNALS_FILE).read_bytes()

    def refuse(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(proxies, "hidden_covariance", refuse)
    monkeypatch.setattr(WeightSharingEvaluator, "evaluate", refuse)
    assert run_comparison(config, out)["signals"] == report["signals"]
    assert (out / SIGNALS_FILE).read_bytes() == before
