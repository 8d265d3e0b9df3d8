"""TFLite export: builtin ops only, fixed windows run exactly at any shape, scores and generations equal to the
SavedModel's, quantised weights within their stated tolerance, the CLI flags and parity line."""
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from tfnas.cli import main
from tfnas.export import (ExportMetadata, TfliteConversionError, convert_to_tflite, export_tflite, generate_ids,
                          load_export, score_file)
from tfnas.export.tflite_format import DEFAULT_TOLERANCES
from tfnas.export.tflite_runtime import TfliteRunner, interpreter
from tfnas.lm.model import LanguageModel
from tfnas.settings import SettingsError


def op_names(path) -> set[str]:
    return {op["op_name"] for op in interpreter(path=path)._get_ops_details()}


@pytest.mark.parametrize("kind", ["darts_v2", "attention", "lstm"])
def test_fixed_signatures_of_builtin_ops_only(runs, kind):
    path = runs.exports(kind) / "tflite" / "model.tflite"
    names = op_names(path)
    assert names and not any(n.startswith("Flex") or n in ("CUSTOM", "DELEGATE") for n in names), names
    assert "WHILE" in names or kind == "lstm"  # the time loop stays a loop (a builtin WHILE)
    runner = TfliteRunner(path=path)
    assert (runner.batch, runner.window) == (1, 8)  # batch 1 and the run's bptt by default
    signatures = runner.interpreter.get_signature_list()
    assert set(signatures) == {"window", "step"}
    n = len(runs.loaded(kind).model.initial_state(1))
    assert sorted(signatures["step"]["inputs"]) == sorted(["ids"] + [f"hidden_{i}" for i in range(n)])
    meta = ExportMetadata.load(path.parent / "tfnas.json")
    assert (meta.format, meta.tflite_batch, meta.tflite_window, meta.quantize) == ("tflite", 1, 8, None)
    assert meta.parity_max_abs_diff < 1e-5


class _SvdModel:
    """A model whose forward pass uses an op without a TFLite builtin kernel (SVD)."""

    vocab_size = 5

    def initial_state(self, batch):
        return [tf.zeros((batch, 3))]

    def forward(self, ids, states, training=False):
        x = tf.one_hot(ids, 3) + states[0][:, None, :]
        s = tf.linalg.svd(tf.matmul(x, x, transpose_a=True), compute_uv=False)
        return SimpleNamespace(logits=tf.tile(s[:, None, :], [1, tf.shape(ids)[1], 1]), states=[s])


def test_an_op_without_builtin_kernel_fails_the_conversion():
    with pytest.raises(TfliteConversionError, match="builtin ops only failed.*Svd"):
        convert_to_tflite(_SvdModel(), 1, 4)


def test_bad_options_are_refused():
    for kwargs, message in (({"batch": 0, "window": 4}, "`batch` must be a positive integer; received: batch=0"),
                            ({"batch": 1, "window": 2.0}, "`window` must be"),
                            ({"batch": 1, "window": 4, "quantize": "int4"},
                             "`quantize` must be null or one of .float16., .int8.; received: quantize=.int4.")):
        with pytest.raises(SettingsError, match=message):
            convert_to_tflite(_SvdModel(), **kwargs)


@pytest.mark.parametrize("kind", ["darts_v2", "lstm_2layers"])
def test_any_batch_and_length_match_one_keras_call(runs, tmp_path, kind):
    """Rows in groups of the export's batch (the last padded), whole windows, then the step signature."""
    loaded = runs.loaded(kind)
    export_tflite(loaded, tmp_path / "t", batch=2, window=3)
    lm = load_export(tmp_path / "t")
    rng = np.random.default_rng(0)
    for batch, time in ((3, 8), (1, 2), (2, 6)):
        ids = rng.integers(0, loaded.model.vocab_size, (batch, time)).astype(np.int32)
        states = [rng.normal(0, 0.5, s.shape).astype(np.float32) for s in lm.initial_state(batch)]
        ref = loaded.model.forward(ids, states)
        logits, finals = lm.step(ids, states)
        assert logits.shape == (batch, time, loaded.model.vocab_size)
        assert np.abs(logits - ref.logits.numpy()).max() < 1e-5
        for got, want in zip(finals, ref.states):
            assert np.abs(got - want.numpy()).max() < 1e-5


def test_attention_pads_a_short_call_and_refuses_a_long_one(runs, tmp_path):
    loaded = runs.loaded("attention")
    lm = load_export(runs.exports("attention") / "tflite")  # window 8 = bptt
    ids = np.random.default_rng(1).integers(0, loaded.model.vocab_size, (2, 5)).astype(np.int32)
    ref = loaded.model.forward(ids)  # the head reads the 5 tokens of this call
    logits, finals = lm.step(ids)
    assert np.abs(logits - ref.logits.numpy()).max() < 1e-5
    assert max(np.abs(a - b.numpy()).max() for a, b in zip(finals, ref.states)) < 1e-5
    with pytest.raises(ValueError, match="at most 8 tokens per call through its attention head.*received 9"):
        lm.step(np.zeros((1, 9), np.int32))
    with pytest.raises(Exception, match="attention head reads windows of its bptt \\(8 tokens\\).*--tflite-window 8"):
        export_tflite(loaded, tmp_path / "short", window=4)


@pytest.mark.parametrize("kind", ["darts_v2", "attention"])
def test_scores_and_generations_equal_the_savedmodels(runs, tiny_corpus, kind):
    """Windows of 6 (the tflite window is 8: every window is a part window) and 7; the text ends in a part window."""
    tflite = load_export(runs.exports(kind) / "tflite")
    saved = load_export(runs.exports(kind) / "savedmodel")
    for batch_size, bptt in ((3, 6), (4, 7)):
        a = score_file(tflite, tiny_corpus / "test.txt", batch_size=batch_size, bptt=bptt)
        b = score_file(saved, tiny_corpus / "test.txt", batch_size=batch_size, bptt=bptt)
        assert a.tokens == b.tokens and a.windows * bptt > a.tokens // batch_size  # a last part window
        assert a.loss == pytest.approx(b.loss, rel=1e-6)
    prompt = [saved.vocab.eos_id, 3, 4, 5, 6, 7, 8, 9, 10, 11]  # longer than a window
    for top_k, seed in ((1, None), (None, 5)):
        assert generate_ids(tflite, prompt, 12, top_k=top_k, seed=seed) == generate_ids(saved, prompt, 12,
                                                                                        top_k=top_k, seed=seed)


def bigger_run(runs):
    """The darts_v2 run's vocabulary with a 64-unit model: its 64 x 128 cell matrix (>= 1024 values) is one that
    dynamic-range quantisation stores in int8."""
    loaded = runs.loaded("darts_v2")
    model = LanguageModel(loaded.model.vocab_size, loaded.genotype, emsize=64, nhid=64, seed=3, cell_init_range=0.3,
                          emb_init_range=0.3)
    model.build_weights()
    return dataclasses.replace(loaded, model=model)


@pytest.mark.parametrize("quantize", ["float16", "int8"])
def test_quantised_weights_within_their_tolerance(runs, tmp_path, quantize):
    run = bigger_run(runs)
    plain = export_tflite(run, tmp_path / "plain", window=4)
    small = export_tflite(run, tmp_path / quantize, window=4, quantize=quantize)
    meta, plain_meta = (ExportMetadata.load(p.parent / "tfnas.json") for p in (small, plain))
    assert meta.quantize == quantize and plain_meta.quantize is None
    assert plain_meta.parity_max_abs_diff < 1e-5
    # Measured by the export: quantised, so not float32's agreement, but within the stated bound.
    assert 1e-5 < meta.parity_max_abs_diff <= DEFAULT_TOLERANCES[quantize]
    assert small.stat().st_size < 0.75 * plain.stat().st_size
    ids = np.random.default_rng(2).integers(0, run.model.vocab_size, (2, 7)).astype(np.int32)
    logits, _ = load_export(small.parent).step(ids)
    diff = np.abs(logits - run.model.forward(ids).logits.numpy()).max()
    assert 1e-5 < diff <= DEFAULT_TOLERANCES[quantize]
    with pytest.raises(Exception, match="disagree by .* more than the tolerance 1e-07"):
        export_tflite(run, tmp_path / "strict", window=4, quantize=quantize, tolerance=1e-7)


def test_cli_flags_parity_line_and_serve_refusal(runs, tmp_path, capsys):
    run_dir = runs.run("darts_v2")
    out = tmp_path / "e"
    assert main(["export", str(run_dir), "--format", "tflite,onnx", "--out", str(out), "--tflite-window", "4",
                 "--tflite-batch", "2", "--quantize", "float16", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    tflite_line = next(line for line in lines if line.startswith("tflite:"))
    assert "batch 2, window 4, float16 weights; parity: max |logits| difference" in tflite_line
    assert "(TFLite interpreter vs Keras)" in tflite_line
    assert any(line.startswith("onnx:") and "(onnxruntime vs Keras)" in line for line in lines)
    meta = json.loads((out / "tflite" / "tfnas.json").read_text())
    assert (meta["tflite_batch"], meta["tflite_window"], meta["quantize"]) == (2, 4, "float16")
    assert float(tflite_line.split("difference ")[1].split()[0]) == pytest.approx(meta["parity_max_abs_diff"],
                                                                                 rel=1e-2)
    with pytest.raises(SystemExit):
        main(["export", str(run_dir), "--format", "tflite", "--out", str(tmp_path / "f"), "--tflite-window", "0"])
    assert "argument --tflite-window: must be a positive integer; received: '0'" in capsys.readouterr().err
    assert main(["serve", "--model", str(out / "tflite")]) == 2
    assert "is a TFLite export, which tfnas serve does not serve" in capsys.readouterr().err
