"""BayesNAS search (thesis ch. 3-5): the loss of Eq. 3.15, the prior update, exact resume, the CLI, and the
published parameter counts of the derived cells."""
import json

import numpy as np
import pytest
import tensorflow as tf

from tfnas.cli import main
from tfnas.config import ModelConfig
from tfnas.data import load_corpus
from tfnas.genotypes.files import genotype_from_dict, load_genotype
from tfnas.lm.model import LanguageModel
from tfnas.lm.objective import regularized_loss
from tfnas.strategies.one_shot.bayes_hessian import scalar_hessian
from tfnas.strategies.one_shot.bayes_update import derive_pruned
from tfnas.strategies.one_shot.bayesnas import BayesNasConfig, BayesNasSearch
from tfnas.strategies.registry import STRATEGIES

from support import Kill, assert_same_checkpoints

TINY_MODEL = ModelConfig(emsize=8, nhid=8, dropout=0.1, dropouth=0.1, dropoutx=0.1, dropouti=0.1, dropoute=0.0)
OPS = ("tanh", "relu", "sigmoid", "identity")


def tiny_config(**kw):
    base = dict(model=TINY_MODEL, steps=3, batch_size=32, eval_batch_size=4, bptt=8, max_steps=24, epochs=5,
                log_interval=1, checkpoint_interval=5, max_eval_batches=2, hessian_batches=2, arch_lr=0.01, seed=5)
    base.update(kw)
    return BayesNasConfig(**base)


def test_the_defaults_are_the_thesis_search_setting():
    c = BayesNasConfig()
    assert (c.steps, c.ops, c.norm, c.epochs, c.lambda_w, c.prune_threshold) == (
        12, OPS, "batch", 1, 0.17, 0.0585)                                   # §5.2, §3.3, Table 5.2, §5.3
    assert (c.model.emsize, c.model.nhid, c.model.dropouti, c.model.dropoutx, c.model.dropouth) == (
        300, 300, 0.2, 0.75, 0.25)                                           # §5.2
    assert STRATEGIES["bayesnas"].strategy_class is BayesNasSearch


def test_penalty_is_the_reweighted_l1_of_eq_3_15():
    search = BayesNasSearch(tiny_config(lambda_w=0.13, lambda_dummy=0.4))
    search.build(30)
    rng = np.random.default_rng(0)
    cell = search.model.cell
    w, d, omega = rng.normal(size=(6, 4)), rng.normal(size=6), rng.uniform(0, 2, (6, 5))
    cell.bayes_w.assign(w.astype("float32"))
    cell.bayes_d.assign(d.astype("float32"))
    search.tables["omega"].assign(omega)
    expected = 0.13 * (omega[:, :4] * np.abs(w)).sum() + 0.4 * (omega[:, 4] * np.abs(d)).sum()
    assert float(search.penalty()) == pytest.approx(expected, rel=1e-5)


def test_clipping_the_weight_gradients_leaves_the_scalars_gradients_alone(tiny_corpus):
    quiet = ModelConfig(emsize=8, nhid=8, dropout=0.0, dropouth=0.0, dropoutx=0.0, dropouti=0.0, dropoute=0.0)
    c = tiny_config(model=quiet, clip=1e-6, arch_lr=0.5, wdecay=0.0)
    search = BayesNasSearch(c)
    search.build(30)
    model = search.model
    rng = np.random.default_rng(1)
    inputs = tf.constant(rng.integers(0, 30, (32, 8)), tf.int32)
    targets = tf.constant(rng.integers(0, 30, (32, 8)), tf.int32)
    states = model.initial_state(32)
    scalars = model.arch_variables
    with tf.GradientTape() as tape:
        loss, _ = regularized_loss(model.forward(inputs, states, training=True), targets, c.alpha, c.beta)
        total = loss + search.penalty()
    grads = [g.numpy() for g in tape.gradient(total, scalars)]
    before = [v.numpy() for v in scalars]
    weights_before = [v.numpy() for v in model.weight_variables]
    search.search_step((inputs, targets, states), 20.0, True)
    for v, b, g in zip(scalars, before, grads):                # SGD with momentum, first step: -lr * g
        np.testing.assert_allclose(v.numpy() - b, -0.5 * g, rtol=1e-4, atol=1e-7)
    moved = np.sqrt(sum(((v.numpy() - b) ** 2).sum() for v, b in zip(model.weight_variables, weights_before)))
    assert moved <= 20.0 * 1e-6 * 1.01                          # the weights' step is clipped to lr * clip


@pytest.mark.slow
def test_the_epoch_end_update_follows_algorithm_2(tiny_corpus):
    """About 20 s on 2 CPU cores."""
    search = BayesNasSearch(tiny_config(max_steps=3))
    result = search.search(load_corpus(tiny_corpus), tiny_corpus.parent / "s")
    cell = search.model.cell
    h = scalar_hessian(search.model, search.hessian_windows()) / 0.17         # hessian_scale inv_lambda
    np.testing.assert_allclose(search.tables["H"].numpy(), h, rtol=1e-5)
    scalars = np.concatenate([cell.bayes_w.numpy(), cell.bayes_d.numpy()[:, None]], axis=1)
    # from gamma(0) = 1: C = 1/(1 + H), omega = sqrt(H/(1 + H)), s = |w| / omega (Eqs. 3.16-3.18)
    np.testing.assert_allclose(search.tables["C"].numpy(), 1 / (1 + h), rtol=1e-6)
    omega = np.sqrt(h / (1 + h))
    np.testing.assert_allclose(search.tables["omega"].numpy(), omega, rtol=1e-6)
    np.testing.assert_allclose(search.tables["s"].numpy(), np.abs(scalars) / omega, rtol=1e-5)
    gamma = search.gamma()
    assert gamma[0, 0] == pytest.approx(1 / (1 / gamma[0, 4] + 1 / search.tables["s"].numpy()[0, 0]))  # pi_01
    assert result.genotype == derive_pruned(gamma, OPS)
    logs = search.epoch_logs()
    assert logs["gamma"].values.shape == (6, 5) and logs["gamma"].values.max() == pytest.approx(1.0)
    assert logs["gamma"].rows[1:3] == ("node2<-0", "node2<-1") and logs["gamma"].columns == (*OPS, "dummy")
    assert logs["surviving_nodes"] == result.genotype.steps and logs["hessian_seconds"] > 0
    assert logs["w_norm_node2"] == pytest.approx(np.linalg.norm(cell.bayes_w.numpy()[1:3]), rel=1e-6)


@pytest.mark.slow
def test_killed_search_resumes_to_the_same_genotype_and_priors(tmp_path, tiny_corpus):
    """About 40 s on 2 CPU cores."""
    corpus = load_corpus(tiny_corpus)
    full = BayesNasSearch(tiny_config()).search(corpus, tmp_path / "full")
    assert [h["step"] for h in full.history] == [13, 24]                     # an epoch end and the final part
    with pytest.raises(KeyboardInterrupt):
        BayesNasSearch(tiny_config()).search(corpus, tmp_path / "cut", [Kill("train", step=17)])
    resumed = BayesNasSearch(tiny_config()).search(corpus, tmp_path / "cut")
    assert resumed.genotype == full.genotype
    assert_same_checkpoints(tmp_path / "full", tmp_path / "cut")
    assert resumed.genotype.provenance["gamma"] == full.genotype.provenance["gamma"]


@pytest.mark.slow
def test_cli_quick_preset_writes_a_genotype_that_train_accepts(tmp_path, tiny_corpus, capsys):
    """About 15 s on 2 CPU cores."""
    code = main(["search", "--strategy", "bayesnas", "--config", "quick_bayesnas", "--dataset", str(tiny_corpus),
                 "--out", str(tmp_path / "s"), "--lambda-w", "0.15", "--quiet"])
    assert code == 0
    g = load_genotype(tmp_path / "s" / "genotype.json")
    last = json.loads((tmp_path / "s" / "history.jsonl").read_text().splitlines()[-1])
    assert genotype_from_dict(last["genotype"]) == g          # the file holds the cell the search last derived
    gamma = g.provenance["gamma"]
    assert gamma["columns"] == [*OPS, "dummy"] and np.array(gamma["gamma"]).shape == (6, 5)
    assert g == derive_pruned(np.array(gamma["gamma"]), OPS)
    record = json.loads((tmp_path / "s" / "config.json").read_text())
    assert record["config"]["lambda_w"] == 0.15 and record["config"]["steps"] == 3
    code = main(["train", "--genotype", str(tmp_path / "s" / "genotype.json"), "--dataset", str(tiny_corpus),
                 "--out", str(tmp_path / "t"), "--emsize", "8", "--nhid", "8", "--batch-size", "4", "--bptt", "8",
                 "--eval-batch-size", "4", "--test-batch-size", "4", "--max-steps", "3", "--quiet"])
    assert code == 0
    assert "test ppl" in capsys.readouterr().out


@pytest.mark.parametrize("dead, vocab, units, millions", [
    (4, 10_000, 850, 23),      # PTB, lambda_w 0.17: 23M (Table 5.2), 8 nodes
    (6, 10_000, 850, 20),      # PTB, lambda_w 0.20: 20M (Table 5.2, Fig. 5.2), 6 nodes
    (4, 33_278, 700, 33),      # WikiText-2 transfer: 33M (Table 5.3)
    (6, 33_278, 700, 31),      # 31M (Table 5.3)
])
def test_a_pruned_12_node_search_gives_the_published_parameter_counts(dead, vocab, units, millions):
    """A 12-node gamma table whose last ``dead`` nodes lost every incoming edge derives a 12 - dead node cell;
    as the thesis' language model (tied decoder) it has the published size."""
    gamma = np.full((78, 5), 0.01)
    for j in range(1, 13 - dead):
        gamma[j * (j - 1) // 2 + (j - 1), j % 4] = 0.5                 # a chain 0 -> 1 -> ... -> 12 - dead
    genotype = derive_pruned(gamma, OPS)
    assert genotype.steps == 12 - dead
    model = LanguageModel.from_config_objects(vocab, genotype, ModelConfig(emsize=units, nhid=units))
    assert round(model.count_params() / 1e6) == millions
