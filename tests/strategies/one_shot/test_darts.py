"""DARTS / NASABN search: supernet restricted to a genotype, resume, NaN recovery, warm-up, CLI."""
import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from tfnas.callbacks import Callback, History
from tfnas.cells.attention import ATTENTION_HEADS, DotAttention
from tfnas.cells.search import MixedAttention, MixedCell
from tfnas.cli import main
from tfnas.config import ModelConfig
from tfnas.data import load_corpus
from tfnas.genotypes.files import load_genotype
from tfnas.lm.model import LanguageModel, attention_seed, cell_arguments, supernet
from tfnas.presets import search_config
from tfnas.settings import SettingsError
from tfnas.strategies.base import SearchDivergedError
from tfnas.strategies.one_shot.bilevel import adam_with_l2
from tfnas.strategies.one_shot.darts import DartsConfig, DartsSearch, NasabnConfig, NasabnSearch

from support import Kill, assert_same_checkpoints

TINY_MODEL = ModelConfig(emsize=8, nhid=8, dropout=0.1, dropouth=0.1, dropoutx=0.1, dropouti=0.1, dropoute=0.0)


def tiny_config(config_class=DartsConfig, **kw):
    base = dict(model=TINY_MODEL, steps=3, search_attention=True, attention_candidates=("none", "dot", "general"),
                batch_size=4, eval_batch_size=4, bptt=8, max_steps=12, epochs=5, log_interval=1,
                checkpoint_interval=3, max_eval_batches=3, order=2, seed=5)
    base.update(kw)
    return config_class(**base)


def test_supernet_restricted_to_a_genotype_equals_the_frozen_model(exported_cells):
    g = load_genotype(exported_cells / "darts_v2.json").with_attention("general")
    settings = ModelConfig(emsize=8, nhid=8)
    sup = supernet(40, MixedCell(8, norm="none", **cell_arguments(settings, 1)), settings, 1,
                   attention=MixedAttention(8, candidates=ATTENTION_HEADS, seed=attention_seed(1)))
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
    assert_same_checkpoints(tmp_path / "full", tmp_path / "cut")
    lines = (tmp_path / "cut" / "history.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["step"] == 12
    assert load_genotype(tmp_path / "cut" / "genotype.json") == full.genotype


class NanAt(DartsSearch):
    """Reports a NaN loss at the given global steps (once per listed step)."""

    nan_steps: list = []

    def search_step(self, train, lr, update_arch):
        logs, t = super().search_step(train, lr, update_arch)
        if self.nan_steps and self.step + 1 == self.nan_steps[0]:
            self.nan_steps.pop(0)
            logs["loss"] = float("nan")
        return logs, t


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
    assert g.steps == 3 and g.attention == "dot"                  # NASABN's experiment: the head fixed to dot
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
    probs = logs["alpha_cell"].values
    assert probs.shape == (1 + 2 + 3, 5)                                   # [edges of 3 nodes, DARTS' 5 ops]
    assert logs["alpha_cell"].rows == ("node1<-0", "node2<-0", "node2<-1", "node3<-0", "node3<-1", "node3<-2")
    assert logs["alpha_cell"].columns == ("none", "tanh", "relu", "sigmoid", "identity")
    np.testing.assert_array_equal(probs, search.model.cell.probabilities_numpy())
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)          # a softmax per edge
    for k, op in enumerate(("none", "tanh", "relu", "sigmoid", "identity")):
        assert logs[f"weight_{op}"] == pytest.approx(probs[:, k].sum() / 6)   # the op's weight averaged over edges
    assert sum(logs[f"attention_{k}"] for k in ("none", "dot", "general")) == pytest.approx(1.0)


def test_search_step_is_traced_once(tmp_path, tiny_corpus):
    search = DartsSearch(tiny_config(order=1, max_steps=10, checkpoint_interval=100))
    search.search(load_corpus(tiny_corpus), tmp_path / "s")
    assert search.compiled_step.experimental_get_tracing_count() == 1


def test_nasabn_defaults_and_preset_are_the_reported_experiment():
    """NASABN section IV-B (l.175): 5 learned nodes after the x/h node 0, the head fixed to global dot attention."""
    for config in (NasabnConfig(), search_config("nasabn", NasabnConfig, "nasabn_search_ptb")):
        assert config.steps == 5 and config.model.attention == "dot" and not config.search_attention
        assert config.attention_heads() == ("dot",)
        assert (config.model.nhid, config.batch_size, config.epochs) == (300, 256, 50)   # l.177: as DARTS
    assert search_config("nasabn", NasabnConfig, "nasabn_search_ptb").warmup_epochs == 5


def test_a_head_search_offers_none_only_when_asked():
    """NASABN names dot, multi-head and "others" (l.87), not "no attention": none joins when listed."""
    head_search = search_config("nasabn", NasabnConfig, "nasabn_head_search_ptb")
    assert head_search.search_attention and head_search.model.attention is None and head_search.steps == 5
    assert head_search.attention_heads() == ("dot", "general", "additive", "multihead")
    assert search_config("nasabn", NasabnConfig, "quick_nasabn").attention_heads() == head_search.attention_heads()
    search = NasabnSearch(dataclasses.replace(head_search, model=TINY_MODEL, steps=3, batch_size=4))
    search.build(30)
    assert search.model.attention.candidates == ("dot", "general", "additive", "multihead")
    asked = NasabnConfig(search_attention=True, model=TINY_MODEL, attention_candidates=("none", "dot"))
    assert asked.attention_heads() == ("none", "dot")


@pytest.mark.parametrize("kwargs, message", [
    (dict(search_attention=True), r"search_attention searches the head, model.attention fixes it \('dot'\)"),
    (dict(search_attention=True, model=TINY_MODEL, attention_candidates=("dot", "luong")),
     r"attention_candidates must be distinct names from \['none', 'dot'"),
    (dict(search_attention=True, model=TINY_MODEL, attention_candidates=("dot", "dot")), "attention_candidates"),
])
def test_attention_settings_are_validated_in_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        NasabnConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_a_fixed_head_trains_the_cell_under_it_and_the_genotype_carries_it(tmp_path, tiny_corpus):
    config = tiny_config(NasabnConfig, order=1, max_steps=4, search_attention=False,
                         model=dataclasses.replace(TINY_MODEL, attention="dot"))
    search = NasabnSearch(config)
    result = search.search(load_corpus(tiny_corpus), tmp_path / "s")
    head = search.model.attention
    assert head.arch_variables == [] and search.model.arch_variables == search.model.cell.arch_variables
    H = tf.random.stateless_normal((2, 6, 8), seed=(1, 2))
    np.testing.assert_array_equal(head(H), DotAttention(units=8)(H))      # the supernet's head is dot attention
    assert result.genotype.attention == "dot" and load_genotype(tmp_path / "s" / "genotype.json").attention == "dot"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_derived_head_is_the_argmax_of_alpha_att(seed):
    """NASABN eq. 4: i = argmax_i alpha_att^i, over the searched candidates (none when listed and best)."""
    search = DartsSearch(tiny_config())                           # candidates none, dot, general
    search.build(30)
    alpha = search.model.attention.alpha
    values = np.random.default_rng(seed).normal(size=3).astype("float32")
    alpha.assign(values)
    best = ("none", "dot", "general")[int(np.argmax(values))]
    assert search.derive().attention == (None if best == "none" else best)


def test_darts_second_order_preset_clips_v_as_the_reference_code():
    """quark0/darts rnn/architect.py (HEAD) clips v = grad_w' L_val to 0.25 before the HVP; the default is exact."""
    assert not DartsConfig().clip_hvp_vector
    preset = search_config("darts", DartsConfig, "darts2_search_ptb")
    assert preset.order == 2 and preset.clip_hvp_vector
    search = DartsSearch(tiny_config(clip_hvp_vector=True))
    search.build(30)
    assert search.architect.clip_hvp_vector and search.architect.clip == 0.25


def test_architecture_adam_is_pytorchs_with_eps_1e_8():
    """DARTS' architect: torch.optim.Adam(lr 3e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-3).

    PyTorch's first step moves each parameter by lr * d / (|d| + eps), d = grad + wd * alpha. Keras adds eps
    to sqrt(v) before the bias correction (eps / sqrt(1 - beta_2) = 3.2e-7 at step 1, a documented deviation):
    within 5% of PyTorch's step at |d| = 1e-5, where Keras' default eps 1e-7 is 24% short.
    """
    search = DartsSearch(tiny_config())
    search.build(30)
    alpha = search.model.arch_variables[0]
    before = alpha.numpy()
    grads = [tf.fill(v.shape, 1e-5) for v in search.model.arch_variables]
    adam_with_l2(search.arch_optimizer, search.model.arch_variables, grads, 1e-3)
    d = 1e-5 + 1e-3 * before.astype("float64")
    torch_step = -3e-3 * d / (np.abs(d) + 1e-8)
    np.testing.assert_allclose(alpha.numpy() - before, torch_step, rtol=0.05)


class Architectures(Callback):
    """The architecture parameters and derived genotype of ``search`` at every ``kind`` event, by step."""

    def __init__(self, search, kind):
        self.search, self.kind, self.alphas, self.genotypes = search, kind, {}, {}

    def on_event(self, kind, logs):
        if kind == self.kind:
            self.alphas[logs["step"]] = [v.numpy() for v in self.search.model.arch_variables]
            self.genotypes[logs["step"]] = self.search.model.derive()


def test_warmup_steps_hold_the_architecture_then_let_it_move(tmp_path, tiny_corpus):
    search = DartsSearch(tiny_config(order=1, warmup_steps=3, max_steps=5))
    seen = Architectures(search, "train")
    search.search(load_corpus(tiny_corpus), tmp_path / "w", [seen])
    start = DartsSearch(tiny_config(order=1))
    start.build(len(load_corpus(tiny_corpus).vocab))
    initial = [v.numpy() for v in start.model.arch_variables]
    for step in (1, 2, 3):
        for a, b in zip(seen.alphas[step], initial):
            np.testing.assert_array_equal(a, b)
    assert all(np.abs(a - b).max() > 1e-4 for a, b in zip(seen.alphas[4], initial))


def test_train_events_log_each_ops_mean_weight(tmp_path, tiny_corpus):
    history = History()
    search = DartsSearch(tiny_config(order=1, max_steps=2))
    seen = Architectures(search, "train")
    search.search(load_corpus(tiny_corpus), tmp_path / "s", [history, seen])
    for event in history.events["train"]:
        probs = tf.nn.softmax(seen.alphas[event["step"]][0]).numpy()
        assert event["weight_identity"] == pytest.approx(probs[:, 4].mean(), rel=1e-6)
        assert event["weight_none"] == pytest.approx(probs[:, 0].mean(), rel=1e-6)


class SyntheticEigenvalues(DartsSearch):
    """DARTS whose eigenvalue measurements read `by_step` instead of the Hessian (the rule's input, set by hand)."""

    by_step = {2: 0.1, 4: 1.0, 6: 1.0, 8: 2.0, 10: 2.0, 12: 2.0}

    def eigenvalues(self):
        return -1.0, self.by_step[self.step]


def es_config(**kw):
    return tiny_config(order=1, warmup_steps=2, eigenvalue_interval=2, early_stop="eigenvalue", early_stop_window=1,
                       max_steps=12, checkpoint_interval=3, **kw)


def test_darts_es_stops_and_returns_the_architecture_of_k_measurements_earlier(tmp_path, tiny_corpus):
    # Measurements at steps 2, 4, 6, 8. Step 2 is in the warm-up (the architecture has not moved): not counted,
    # or 0.1 < 0.75 * 1.0 would stop at step 4. Counted: 4 (1.0), 6 (1.0: 1.0 < 0.75 no), 8 (2.0: 1.0 < 1.5 yes):
    # stop at step 8 with k = 1, returning the architecture of step 6.
    history = History()
    search = SyntheticEigenvalues(es_config())
    seen = Architectures(search, "hessian")
    result = search.search(load_corpus(tiny_corpus), tmp_path / "es", [history, seen])
    assert result.metrics["steps"] == 8 and sorted(seen.alphas) == [2, 4, 6, 8]
    assert all(np.abs(a - b).max() > 1e-4 for a, b in zip(seen.alphas[8], seen.alphas[6]))
    for final, returned in zip(search.model.arch_variables, seen.alphas[6]):
        np.testing.assert_array_equal(final.numpy(), returned)
    assert result.genotype == seen.genotypes[6]
    assert result.genotype.provenance["darts_es"] == {
        "eigenvalues": [[4, 1.0], [6, 1.0], [8, 2.0]], "stopped_step": 8, "stopped_eigenvalue": 2.0,
        "returned_step": 6, "returned_eigenvalue": 1.0}
    assert [e["eigenvalue"] for e in history.events["hessian"]] == [0.1, 1.0, 1.0, 2.0]
    assert any("DARTS-ES" in e["text"] and "step 6" in e["text"] for e in history.events["message"])


def test_a_killed_darts_es_search_resumes_to_the_same_stop(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    full = SyntheticEigenvalues(es_config()).search(corpus, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):                            # at the measurement that stops it
        SyntheticEigenvalues(es_config()).search(corpus, tmp_path / "cut", [Kill("hessian", step=8)])
    resumed = SyntheticEigenvalues(es_config()).search(corpus, tmp_path / "cut")
    assert resumed.genotype == full.genotype and resumed.metrics["steps"] == 8
    assert resumed.genotype.provenance["darts_es"] == full.genotype.provenance["darts_es"]
    assert_same_checkpoints(tmp_path / "full", tmp_path / "cut")


def test_darts_es_needs_eigenvalue_measurements():
    with pytest.raises(SettingsError, match="eigenvalue_interval"):
        tiny_config(early_stop="eigenvalue")
    with pytest.raises(SettingsError, match="early_stop"):
        tiny_config(early_stop="sometimes", eigenvalue_interval=2)


def test_a_degenerate_cell_is_warned_about_in_one_line(tmp_path, tiny_corpus):
    # With identity the only op besides none, every derived node is identity.
    history = History()
    search = DartsSearch(tiny_config(order=1, ops=("none", "identity"), max_steps=2))
    search.search(load_corpus(tiny_corpus), tmp_path / "s", [history])
    lines = [e["text"] for e in history.events["message"] if e["text"].startswith("warning: the derived cell")]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "every node is identity" in lines[0] and "early_stop eigenvalue" in lines[0]
