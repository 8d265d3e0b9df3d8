"""DARTS / NASABN search: supernet restricted to a genotype, resume, NaN recovery, warm-up, CLI."""
import json

import numpy as np
import pytest

from tfnas.cli import main
from tfnas.config import ModelConfig
from tfnas.data import load_corpus
from tfnas.genotypes.files import load_genotype
from tfnas.lm.model import LanguageModel
from tfnas.lm.search_models import MixedLM
from tfnas.strategies.base import SearchDivergedError
from tfnas.strategies.one_shot.darts import DartsConfig, DartsSearch, NasabnSearch

from support import Kill, latest_checkpoint_arrays

TINY_MODEL = ModelConfig(emsize=8, nhid=8, dropout=0.1, dropouth=0.1, dropoutx=0.1, dropouti=0.1, dropoute=0.0)


def tiny_config(**kw):
    base = dict(model=TINY_MODEL, steps=3, search_attention=True, attention_candidates=("none", "dot", "general"),
                batch_size=4, eval_batch_size=4, bptt=8, max_steps=12, epochs=5, log_interval=1,
                checkpoint_interval=3, max_eval_batches=3, order=2, seed=5)
    base.update(kw)
    return DartsConfig(**base)


def test_supernet_restricted_to_a_genotype_equals_the_frozen_model(exported_cells):
    g = load_genotype(exported_cells / "darts_v2.json").with_attention("general")
    sup = MixedLM(40, steps=8, norm="none", search_attention=True, emsize=8, nhid=8, seed=1)
    sup.build_weights()
    sup.cell.set_one_hot(g)
    sup.attention.alpha.assign(np.where(np.array(sup.attention.candidates) == "general", 1000.0, 0.0))
    frozen = LanguageModel.from_config_objects(40, g, ModelConfig(emsize=8, nhid=8), seed=2)
    frozen.embedding.set_weights(sup.embedding.get_weights())
    frozen.decoder_bias.assign(sup.decoder_bias)
    frozen.rnn.cell.W0.assign(sup.cell.W0)
    frozen.rnn.cell.Ws.assign(sup.cell.Ws)
    frozen.attention.set_weights(sup.attention.head("general").get_weights())
    ids = np.random.default_rng(0).integers(0, 40, (3, 7))
    np.testing.assert_allclose(sup(ids)[0], frozen(ids)[0], atol=1e-5)
    assert sup.derive() == g


def test_killed_search_resumes_exactly(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    full = NasabnSearch(tiny_config()).search(corpus, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        NasabnSearch(tiny_config()).search(corpus, tmp_path / "cut", [Kill("train", step=8)])
    resumed = NasabnSearch(tiny_config()).search(corpus, tmp_path / "cut")
    assert resumed.genotype == full.genotype
    a, b = latest_checkpoint_arrays(tmp_path / "full"), latest_checkpoint_arrays(tmp_path / "cut")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    lines = (tmp_path / "cut" / "history.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["step"] == 12
    assert load_genotype(tmp_path / "cut" / "genotype.json") == full.genotype


class NanAt(DartsSearch):
    """Reports a NaN loss at the given global steps (once per listed step)."""

    nan_steps: list = []

    def search_step(self, train, valid, lr, update_arch):
        logs, t, v = super().search_step(train, valid, lr, update_arch)
        if self.nan_steps and self.step + 1 == self.nan_steps[0]:
            self.nan_steps.pop(0)
            logs["loss"] = float("nan")
        return logs, t, v


def test_nan_loss_recovers_from_last_checkpoint_with_halved_lr(tmp_path, tiny_corpus):
    search = NanAt(tiny_config(order=1))
    search.nan_steps = [5]
    result = search.search(load_corpus(tiny_corpus), tmp_path / "s")
    assert result.metrics["recoveries"] == 1 and search.lr_factor == 0.5
    assert search.step == 12 and (tmp_path / "s" / "genotype.json").exists()


def test_persistent_nan_stops_without_writing_a_genotype(tmp_path, tiny_corpus):
    search = NanAt(tiny_config(order=1, nan_retries=2))
    search.nan_steps = [5, 4, 4]  # every retry fails again
    with pytest.raises(SearchDivergedError, match="no genotype was written"):
        search.search(load_corpus(tiny_corpus), tmp_path / "s")
    assert not (tmp_path / "s" / "genotype.json").exists()


def test_a_resumed_search_refuses_other_settings_and_accepts_resumable_ones(tmp_path, tiny_corpus):
    from tfnas.callbacks import History

    corpus = load_corpus(tiny_corpus)
    DartsSearch(tiny_config(order=1, max_steps=2)).search(corpus, tmp_path / "s")
    with pytest.raises(ValueError, match=r"holds a `darts` search with another configuration "
                                         r"\(lr: 20\.0 -> 10\.0, seed: 5 -> 6\); use a new --out folder"):
        DartsSearch(tiny_config(order=1, max_steps=2, seed=6, lr=10.0)).search(corpus, tmp_path / "s")
    with pytest.raises(ValueError, match="holds a `darts` search, not a `nasabn` search"):
        NasabnSearch(tiny_config(order=1, max_steps=2)).search(corpus, tmp_path / "s")
    history = History()
    resumed = DartsSearch(tiny_config(order=1, max_steps=4, log_interval=2)).search(corpus, tmp_path / "s",
                                                                                   [history])
    assert history.events["message"][0]["text"].startswith("resumed from")
    assert [e["step"] for e in history.events["train"]] == [4]          # steps 3 and 4, logged every 2
    assert resumed.metrics["steps"] == 4
    record = json.loads((tmp_path / "s" / "config.json").read_text())
    assert record["config"]["log_interval"] == 2 and record["config"]["max_steps"] == 4


def test_warmup_trains_weights_only(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    search = DartsSearch(tiny_config(order=1, warmup_epochs=1, max_steps=6))
    search.search(corpus, tmp_path / "w")
    start = DartsSearch(tiny_config(order=1, warmup_epochs=1, max_steps=6))
    start.build(len(corpus.vocab))
    for moved, initial in zip(search.model.arch_variables, start.model.arch_variables):
        np.testing.assert_array_equal(moved.numpy(), initial.numpy())
    trained = DartsSearch(tiny_config(order=1, max_steps=6))
    trained.search(corpus, tmp_path / "n")
    assert any(np.abs(a.numpy() - b.numpy()).max() > 1e-4
               for a, b in zip(trained.model.arch_variables, start.model.arch_variables))


def test_cli_search_then_train_accepts_the_genotype(tmp_path, tiny_corpus, capsys):
    code = main(["search", "--strategy", "nasabn", "--dataset", str(tiny_corpus), "--out", str(tmp_path / "s"),
                 "--emsize", "8", "--nhid", "8", "--batch-size", "4", "--eval-batch-size", "4", "--bptt", "8",
                 "--steps", "3", "--max-steps", "4", "--max-eval-batches", "2", "--quiet"])
    assert code == 0
    g = load_genotype(tmp_path / "s" / "genotype.json")
    assert g.steps == 3 and g.attention in ("dot", "general", "additive", "multihead", None)
    assert g.provenance["strategy"] == "nasabn" and g.provenance["metrics"]["steps"] == 4
    code = main(["train", "--genotype", str(tmp_path / "s" / "genotype.json"), "--dataset", str(tiny_corpus),
                 "--out", str(tmp_path / "t"), "--emsize", "8", "--nhid", "8", "--batch-size", "4", "--bptt", "8",
                 "--eval-batch-size", "4", "--test-batch-size", "4", "--max-steps", "3", "--quiet"])
    assert code == 0
    assert "test ppl" in capsys.readouterr().out


def test_cli_names_the_known_strategies_for_an_unknown_one(tmp_path, capsys):
    assert main(["search", "--strategy", "simulated-annealing", "--out", str(tmp_path)]) == 2
    assert "known strategies" in capsys.readouterr().err


def test_epoch_logs_emit_the_edge_probabilities_for_callbacks_to_draw():
    search = DartsSearch(tiny_config())
    search.build(30)
    logs = search.epoch_logs()
    probs = logs["alpha_cell"]
    assert probs.shape == (1 + 2 + 3, 5)                                   # [edges of 3 nodes, DARTS' 5 ops]
    np.testing.assert_array_equal(probs, search.model.cell.probabilities_numpy())
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)          # a softmax per edge
    assert sum(logs[f"attention_{k}"] for k in ("none", "dot", "general")) == pytest.approx(1.0)


def test_search_step_is_traced_once(tmp_path, tiny_corpus):
    search = DartsSearch(tiny_config(order=1, max_steps=10, checkpoint_interval=100))
    search.search(load_corpus(tiny_corpus), tmp_path / "s")
    assert search.compiled_step.experimental_get_tracing_count() == 1
