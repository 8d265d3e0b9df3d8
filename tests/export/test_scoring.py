"""`tfnas export` and `tfnas score`: every format reproduces the trainer's test perplexity.

The scorer uses the run's test_batch_size (4 here) and bptt (8) by default,
the settings the trainer computed result.json's test_ppl with.
"""
import json

import numpy as np
import pytest

from tfnas.cli import main
from tfnas.export import FORMATS, load_export, load_keras_model, score_file

from support import picked_log_probs

KINDS = ("darts_v2", "attention", "lstm")  # as in tests/conftest.py


def cli_perplexity(capsys, *argv) -> float:
    assert main(list(argv)) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("perplexity ")
    return float(line.split()[1])


def test_cli_export_then_score_each_format_matches_trainer(runs, tiny_corpus, tmp_path, capsys):
    run_dir = runs.run("darts_v2")
    out = tmp_path / "exported"
    assert main(["export", str(run_dir), "--format", "all", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert all(f"{fmt}:" in printed for fmt in FORMATS)
    test_ppl = json.loads((run_dir / "result.json").read_text())["test_ppl"]
    for fmt in FORMATS:
        ppl = cli_perplexity(capsys, "score", "--model", str(out / fmt), "--text", str(tiny_corpus / "test.txt"))
        assert ppl == pytest.approx(test_ppl, rel=1e-3), fmt
    # A single format, and the ONNX file itself as --model.
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "only")]) == 0
    assert sorted(p.name for p in (tmp_path / "only").iterdir()) == [".lock", "lock", "onnx"]  # lock: its last holder
    ppl = cli_perplexity(capsys, "score", "--model", str(tmp_path / "only"), "--text", str(tiny_corpus / "test.txt"))
    assert ppl == pytest.approx(test_ppl, rel=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_score_matches_trainer_for_every_model_and_format(runs, tiny_corpus, kind):
    test_ppl = runs.loaded(kind).result["test_ppl"]
    for fmt in FORMATS:
        model = load_export(runs.exports(kind) / fmt)
        result = score_file(model, tiny_corpus / "test.txt")
        assert (result.batch_size, result.bptt) == (4, 8)
        assert abs(result.perplexity / test_ppl - 1) < 1e-3, (fmt, result.perplexity, test_ppl)
        assert result.tokens == (result.tokens // 4) * 4 > 400


def test_keras_file_reloads_to_identical_logits(runs):
    for kind in KINDS:
        model = runs.loaded(kind).model
        reloaded = load_keras_model(runs.exports(kind) / "keras" / "model.keras")
        ids = np.arange(20, dtype=np.int32).reshape(2, 10) % model.vocab_size
        np.testing.assert_array_equal(reloaded.forward(ids).logits.numpy(), model.forward(ids).logits.numpy())
        assert type(reloaded).__name__ == "LanguageModel" and reloaded.get_config() == model.get_config()


def test_step_carries_state_like_one_long_call(runs):
    """For a recurrent model, two calls with the state carried equal one call over the whole sequence."""
    model = load_export(runs.exports("darts_v2") / "onnx")
    ids = np.arange(24, dtype=np.int32).reshape(2, 12) % 31
    whole, _ = model.step(ids)
    first, states = model.step(ids[:, :5])
    second, _ = model.step(ids[:, 5:], states)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-5)


@pytest.mark.parametrize("kind", ["darts_v2", "lstm"])
def test_log_probs_of_each_format_are_the_log_softmax_of_its_logits(runs, kind):
    """Each format scores inside its runtime; the result is log_softmax(logits)[target] (float64 reference)."""
    rng = np.random.default_rng(3)
    ids, targets = rng.integers(0, 31, (3, 9)), rng.integers(0, 31, (3, 9))
    for fmt in FORMATS:
        model = load_export(runs.exports(kind) / fmt)
        states = [np.full(s.shape, 0.3, np.float32) for s in model.initial_state(3)]
        logits, step_states = model.step(ids, states)
        log_probs, score_states = model.log_probs(ids, targets, states)
        assert log_probs.shape == (3, 9) and log_probs.dtype == np.float64
        np.testing.assert_allclose(log_probs, picked_log_probs(logits, targets), atol=1e-5, err_msg=fmt)
        for a, b in zip(step_states, score_states):
            np.testing.assert_allclose(a, b, atol=1e-6, err_msg=fmt)
        assert np.ptp(log_probs) > 0.1  # a constant would not test the gather


def test_log_probs_refuses_targets_that_do_not_fit(runs):
    ids = np.zeros((2, 4), np.int32)
    for fmt in FORMATS:
        model = load_export(runs.exports("darts_v2") / fmt)
        with pytest.raises(ValueError, match=r"targets must have the shape of ids \(2, 4\); received \(2, 3\)"):
            model.log_probs(ids, np.zeros((2, 3), np.int32))
        with pytest.raises(ValueError, match=r"word ids in \[0, 31\); received values from 0 to 31"):
            model.log_probs(ids, np.eye(2, 4, dtype=np.int32) * 31)
        with pytest.raises(ValueError, match=r"received values from -1 to 0"):
            model.log_probs(ids, -np.eye(2, 4, dtype=np.int32))
