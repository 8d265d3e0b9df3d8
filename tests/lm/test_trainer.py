"""Trainer: learning happens, NT-ASGD averages, and a killed run resumes exactly."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfnas.callbacks import Callback, History
from tfnas.config import ModelConfig, TrainConfig
from tfnas.data import load_corpus
from tfnas.genotypes.files import load_genotype
from tfnas.lm.trainer import NonFiniteLossError, Trainer
from tfnas.metrics import perplexity
from tfnas.runs.folder import read_weights

from support import Kill, assert_same_checkpoints, latest_checkpoint_arrays

REPO = Path(__file__).resolve().parents[2]


def tiny_config(**kw) -> TrainConfig:
    base = dict(batch_size=4, eval_batch_size=4, test_batch_size=4, bptt=8, lr=5.0, epochs=50, max_steps=12,
                log_interval=1, checkpoint_interval=3, seed=7, model=ModelConfig(
                    emsize=16, nhid=16, dropout=0.2, dropouth=0.1, dropoutx=0.1, dropouti=0.1, dropoute=0.1))
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("cell", ["darts_v2", "lstm"])
def test_killed_run_resumes_to_identical_weights(tmp_path, tiny_corpus, cell):
    genotype = None if cell == "lstm" else load_genotype(REPO / "exported_cells" / "darts_v2.json")
    corpus = load_corpus(tiny_corpus)
    full = Trainer(tiny_config(), genotype, tmp_path / "full", corpus=corpus).fit(evaluate_test=False)
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_config(), genotype, tmp_path / "cut", corpus=corpus,
                callbacks=[Kill("train", step=7)]).fit()
    assert (tmp_path / "cut" / "checkpoints" / "latest").read_text() == "step-6"
    resumed = Trainer(tiny_config(), genotype, tmp_path / "cut", corpus=corpus).fit(evaluate_test=False)
    assert resumed.steps == full.steps == 12
    assert_same_checkpoints(tmp_path / "full", tmp_path / "cut")
    assert resumed.valid_ppl == full.valid_ppl


def test_fit_again_with_more_steps_continues_from_the_newest_checkpoint(tmp_path, tiny_corpus):
    """ASHA's promotions: 6 steps, then `fit` again to 12 (killed at step 10 and resumed on the way), equals 12
    steps in one run evaluated at the same steps (6 and 12: ``eval_interval`` 6), weights and states bit for bit;
    the last step's checkpoint exists after each `fit`. A `fit` to fewer steps than the folder holds (a rung run
    again) trains and evaluates nothing, even between two evaluations."""
    genotype, corpus = load_genotype(REPO / "exported_cells" / "darts_v2.json"), load_corpus(tiny_corpus)

    def fit(folder, max_steps, callbacks=()):
        config = tiny_config(eval_interval=6, checkpoint_interval=4, max_steps=max_steps)
        return Trainer(config, genotype, tmp_path / folder, corpus=corpus, callbacks=callbacks).fit(
            evaluate_test=False)

    def latest(folder):
        return (tmp_path / folder / "checkpoints" / "latest").read_text()

    straight = fit("straight", 12)
    assert fit("rungs", 6).steps == 6 and latest("rungs") == "step-6"
    history = History()
    with pytest.raises(KeyboardInterrupt):
        fit("rungs", 12, [history, Kill("train", step=10)])
    assert "(step 6," in history.events["message"][0]["text"]                      # resumed, not restarted
    assert [e["step"] for e in history.events["train"]] == [7, 8, 9, 10] and latest("rungs") == "step-8"
    lower = fit("rungs", 6)
    assert lower.steps == 8 and [e["step"] for e in lower.history] == [6] and latest("rungs") == "step-8"
    resumed = fit("rungs", 12)
    assert resumed.steps == straight.steps == 12 and latest("rungs") == "step-12"
    assert_same_checkpoints(tmp_path / "straight", tmp_path / "rungs")
    assert resumed.history == straight.history and [e["step"] for e in resumed.history] == [6, 12]


def test_a_budget_stops_training_at_a_step_boundary_and_its_steps_reproduce_it(tmp_path, tiny_corpus, monkeypatch):
    """One second of a test clock per training step: a budget of 4.5 s stops after step 5 of 12."""
    import tfnas.runs.session as session_module

    now = [0.0]
    monkeypatch.setattr(session_module, "monotonic", lambda: now[0])

    class Tick(Callback):
        def on_event(self, kind, logs):
            now[0] += kind == "train"

    genotype, corpus = load_genotype(REPO / "exported_cells" / "darts_v2.json"), load_corpus(tiny_corpus)
    stopped = Trainer(tiny_config(budget_s=4.5), genotype, tmp_path / "budget", corpus=corpus,
                      callbacks=[Tick()]).fit(evaluate_test=False)
    assert stopped.steps == 5 and stopped.seconds == 5.0
    assert json.loads((tmp_path / "budget" / "result.json").read_text())["seconds"] == 5.0
    again = Trainer(tiny_config(max_steps=5), genotype, tmp_path / "steps", corpus=corpus).fit(evaluate_test=False)
    assert again.valid_ppl == stopped.valid_ppl
    assert_same_checkpoints(tmp_path / "budget", tmp_path / "steps")


def test_loss_decreases_and_perplexity_is_exp_loss(tmp_path, tiny_corpus):
    history = History()
    trainer = Trainer(tiny_config(max_steps=200, eval_interval=50, lr=10.0, checkpoint_interval=100), load_genotype(
        REPO / "exported_cells" / "darts_v2.json"), tmp_path / "r", corpus=load_corpus(tiny_corpus),
        callbacks=[history])
    result = trainer.fit()
    evals = history.events["eval"]
    assert evals[-1]["valid_ppl"] < 0.6 * evals[0]["valid_ppl"]
    assert evals[-1]["valid_ppl"] == pytest.approx(np.exp(evals[-1]["valid_loss"]))
    assert result.test_ppl is not None and result.test_ppl < 14  # a uniform guess over 31 words gives 31
    saved = json.loads((tmp_path / "r" / "result.json").read_text())
    assert saved["steps"] == 200 and saved["best_valid_ppl"] == pytest.approx(result.best_valid_ppl)
    assert perplexity(1e9) > 1e300


def test_nt_asgd_switches_and_averages(tmp_path, tiny_corpus):
    # nonmono=0 switches at the first evaluation that is worse than an earlier one.
    trainer = Trainer(tiny_config(max_steps=30, eval_interval=2, nonmono=0, lr=40.0), None, tmp_path / "a",
                      corpus=load_corpus(tiny_corpus))
    snapshots = []

    class Record(Callback):
        def on_event(self, kind, logs):
            if kind == "train" and trainer.asgd:
                snapshots.append([v.numpy().copy() for v in trainer.model.trainable_variables])
    trainer.callbacks.callbacks.append(Record())
    trainer.fit(evaluate_test=False)
    assert trainer.asgd, "validation loss never rose: raise the learning rate of this test"
    count = int(trainer.average_count.numpy())
    assert count == len(snapshots) > 0
    expected = [np.mean([s[i] for s in snapshots], axis=0) for i in range(len(snapshots[0]))]
    for avg, exp in zip(trainer.averages, expected):
        np.testing.assert_allclose(avg.numpy(), exp, rtol=1e-4, atol=1e-6)
    # The checkpoint records the averages as the weights a reader of the run takes (export --weights latest).
    for saved, avg in zip(read_weights(tmp_path / "a", "latest").arrays, trainer.averages, strict=True):
        np.testing.assert_array_equal(saved, avg.numpy())


def test_other_configuration_in_run_folder_is_refused(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    Trainer(tiny_config(max_steps=1), None, tmp_path / "r", corpus=corpus).fit(evaluate_test=False)
    with pytest.raises(ValueError, match=r"another configuration \(model\.dropout: 0\.2 -> 0\.75, .*"
                                         r"model\.emsize: 16 -> 8, model\.nhid: 16 -> 8\); use a new --out folder"):
        Trainer(tiny_config(max_steps=1, model=ModelConfig(emsize=8, nhid=8)), None, tmp_path / "r", corpus=corpus)


def test_a_split_smaller_than_its_batch_is_refused_naming_its_file_before_the_folder_is_written(tmp_path,
                                                                                               tiny_corpus):
    (tiny_corpus / "valid.txt").write_text("w0 w1\n", encoding="utf-8")   # 3 tokens with <eos>
    out = tmp_path / "r"
    out.mkdir()
    with pytest.raises(ValueError) as info:
        Trainer(tiny_config(eval_batch_size=4), None, out, corpus=load_corpus(tiny_corpus))
    assert str(info.value) == (f"the valid split ({(tiny_corpus / 'valid.txt').resolve()}) holds 3 tokens, fewer than "
                               "batch_size=4: add text or lower the batch size")
    assert list(out.iterdir()) == []


def _cli(out, corpus_dir, max_steps):
    return [sys.executable, "-m", "tfnas.cli", "train", "--genotype", "darts_v2", "--dataset", str(corpus_dir),
            "--out", str(out), "--emsize", "16", "--nhid", "16", "--batch-size", "4", "--bptt", "8",
            "--eval-batch-size", "4", "--test-batch-size", "4", "--max-steps", str(max_steps),
            "--checkpoint-interval", "2", "--log-interval", "1", "--seed", "3", "--no-test"]


def test_sigkill_then_resume_matches_uninterrupted_cli_run(tmp_path, tiny_corpus):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(_cli(tmp_path / "full", tiny_corpus, 40), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(_cli(tmp_path / "cut", tiny_corpus, 40), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:  # kill it as soon as it has written a checkpoint beyond step 10
        if line.startswith("[train] step 13 "):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    out = subprocess.run(_cli(tmp_path / "cut", tiny_corpus, 40), check=True, env=env, capture_output=True,
                         text=True).stdout
    assert "resumed from" in out and "step 12" in out
    assert_same_checkpoints(tmp_path / "full", tmp_path / "cut")


def test_train_step_is_traced_once_for_all_bptt_lengths(tmp_path, tiny_corpus):
    trainer = Trainer(tiny_config(max_steps=15, checkpoint_interval=100), load_genotype(
        REPO / "exported_cells" / "darts_v2.json"), tmp_path / "r", corpus=load_corpus(tiny_corpus))
    lengths = set()

    class Lengths(Callback):
        def on_event(self, kind, logs):
            if kind == "train":
                lengths.add(round(logs["lr"] / trainer.config.lr * trainer.config.bptt))
    trainer.callbacks.callbacks.append(Lengths())
    trainer.fit(evaluate_test=False)
    assert len(lengths) >= 3  # the variable BPTT produced several sequence lengths
    assert trainer.train_step.experimental_get_tracing_count() == 1


def test_parameter_count_is_printed_and_recorded(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    messages = []

    class Messages(Callback):
        def on_event(self, kind, logs):
            if kind == "message":
                messages.append(logs["text"])
    result = Trainer(tiny_config(max_steps=1), load_genotype(REPO / "exported_cells" / "darts_v2.json"),
                     tmp_path / "r", corpus=corpus, callbacks=[Messages()]).fit(evaluate_test=False)
    # by hand: tied embedding V x E, W0 (E + H) x 2H, 8 nodes H x 2H each, decoder bias V (DARTS appendix A.1.2)
    v, e, h = len(corpus.vocab), 16, 16
    expected = v * e + (e + h) * 2 * h + 8 * h * 2 * h + v
    assert result.params == expected
    assert json.loads((tmp_path / "r" / "result.json").read_text())["params"] == expected
    assert f"model: {expected:,} parameters" in messages[0]


def test_nt_asgd_trigger_with_a_non_monotone_window(tmp_path, tiny_corpus, monkeypatch):
    # AWD-LSTM: switch when len(history) > nonmono and loss > min(history[:-nonmono]). With nonmono = 2 the
    # losses below first satisfy this at the sixth evaluation: 3.1 > min(5, 4, 3); 3.5 and 3.2 do not.
    losses = iter([5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 3.0])
    trainer = Trainer(tiny_config(nonmono=2), None, tmp_path / "r", corpus=load_corpus(tiny_corpus))
    monkeypatch.setattr(trainer, "evaluate", lambda data, max_batches=None: next(losses))
    switched = []
    for _ in range(7):
        trainer._validate()
        switched.append(trainer.asgd)
    assert switched == [False] * 5 + [True] * 2


def _poison_at(trainer, step):
    """Makes the training step at ``step`` return a NaN loss after writing NaN into the embedding."""
    real = trainer.train_step

    def step_fn(inputs, targets, states, lr, average):
        loss, new_states, norm = real(inputs, targets, states, lr, average)
        if trainer.step + 1 == step and not trainer.rollbacks:
            trainer.model.trainable_variables[0].assign(np.full(trainer.model.trainable_variables[0].shape, np.nan))
            return tf.constant(np.nan, tf.float32), new_states, norm
        return loss, new_states, norm
    trainer.train_step = step_fn


def test_non_finite_loss_rolls_back_to_the_best_weights_and_goes_on(tmp_path, tiny_corpus):
    trainer = Trainer(tiny_config(max_steps=12, eval_interval=2, checkpoint_interval=100), load_genotype(
        REPO / "exported_cells" / "darts_v2.json"), tmp_path / "r", corpus=load_corpus(tiny_corpus))
    _poison_at(trainer, 7)
    seen = {}

    class AtRollback(Callback):
        def on_event(self, kind, logs):
            if kind == "message" and "rolled back" in logs["text"]:
                seen["weights"] = [v.numpy().copy() for v in trainer.model.trainable_variables]
                seen["best"] = read_weights(tmp_path / "r", "best").arrays
            if kind == "train" and "best" in seen:
                seen.setdefault("epoch", logs["epoch"])
    trainer.callbacks.callbacks.append(AtRollback())
    result = trainer.fit(evaluate_test=False)
    assert result.rollbacks == 1 and result.steps == 12
    for now, best in zip(seen["weights"], seen["best"], strict=True):
        np.testing.assert_array_equal(now, best)
    assert seen["epoch"] == 2  # DARTS goes on with the next epoch
    for key, value in latest_checkpoint_arrays(tmp_path / "r").items():
        assert np.isfinite(value).all(), key


@pytest.mark.parametrize("max_rollbacks, step, reason", [
    (0, 7, "0 rollbacks already"), (3, 1, "no evaluated weights to roll back to yet")])
def test_non_finite_loss_stops_when_it_cannot_roll_back(tmp_path, tiny_corpus, max_rollbacks, step, reason):
    trainer = Trainer(tiny_config(max_steps=12, eval_interval=2, checkpoint_interval=3, max_rollbacks=max_rollbacks),
                      None, tmp_path / "r", corpus=load_corpus(tiny_corpus))
    _poison_at(trainer, step)
    with pytest.raises(NonFiniteLossError, match=f"training loss is nan at step {step}; {reason}"):
        trainer.fit(evaluate_test=False)
    if step == 1:  # nothing was checkpointed yet
        assert not (tmp_path / "r" / "checkpoints" / "latest").exists()
        return
    for key, value in latest_checkpoint_arrays(tmp_path / "r").items():
        assert np.isfinite(value).all(), key


def test_killed_two_layer_run_resumes_to_identical_weights_and_states(tmp_path, tiny_corpus):
    """model.nlayers = 2 (Zoph & Le section 4.2 children): the flat state list of both layers (a tree cell: [h, c]
    per layer, four states) is carried across BPTT segments and through a checkpoint, so a killed run resumes
    exactly."""
    genotype = load_genotype(REPO / "exported_cells" / "nascell.json")
    model = ModelConfig(emsize=16, nhid=16, nlayers=2, dropout=0.2, dropouth=0.1, dropoutx=0.1, dropouti=0.1,
                        dropoute=0.1)
    corpus = load_corpus(tiny_corpus)
    full = Trainer(tiny_config(model=model), genotype, tmp_path / "full", corpus=corpus).fit(evaluate_test=False)
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_config(model=model), genotype, tmp_path / "cut", corpus=corpus,
                callbacks=[Kill("train", step=7)]).fit()
    assert (tmp_path / "cut" / "checkpoints" / "latest").read_text() == "step-6"
    cut = latest_checkpoint_arrays(tmp_path / "cut")
    hidden = [cut[f"x_hidden{i}"] for i in range(4)]
    assert "x_hidden4" not in cut
    assert all(h.shape == (4, 16) and np.abs(h).max() > 0 for h in hidden)  # mid-epoch: both layers' states
    resumed = Trainer(tiny_config(model=model), genotype, tmp_path / "cut", corpus=corpus).fit(evaluate_test=False)
    assert resumed.steps == full.steps == 12
    assert_same_checkpoints(tmp_path / "full", tmp_path / "cut")
    assert resumed.valid_ppl == full.valid_ppl
