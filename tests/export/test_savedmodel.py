"""SavedModel export: signatures, their defaults, the vocabulary asset, and equality with Keras."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tfnas.export import SIGNATURES

from support import picked_log_probs


def signature_defs(folder: Path):
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((folder / "saved_model.pb").read_bytes())
    return proto.meta_graphs[0].signature_def


@pytest.mark.parametrize("kind", ["darts_v2", "lstm"])
def test_signatures_match_keras_with_and_without_initial_state(runs, kind):
    folder = runs.exports(kind) / "savedmodel"
    model = runs.loaded(kind).model
    n = len(model.initial_state(1))
    names = [f"hidden_{i}" for i in range(n)]
    defs = signature_defs(folder)
    assert set(SIGNATURES) <= set(defs)
    serving = defs["serving_default"]
    assert set(serving.inputs) == {"ids", *names} and set(serving.outputs) == {"logits", *[f"final_{k}" for k in names]}
    assert [d.size for d in serving.inputs["ids"].tensor_shape.dim] == [-1, -1]  # dynamic batch and time
    assert set(serving.defaults) == set(names)  # TF Serving fills omitted states from these
    for name in names:
        assert [d.size for d in serving.defaults[name].tensor_shape.dim] == [1, 16]
        assert not np.any(tf.make_ndarray(serving.defaults[name]))

    loaded = tf.saved_model.load(str(folder))
    rng = np.random.default_rng(0)
    for batch, time in ((1, 6), (3, 11)):
        ids = rng.integers(0, model.vocab_size, (batch, time)).astype(np.int32)
        states = [rng.normal(0, 0.5, (batch, 16)).astype(np.float32) for _ in range(n)]
        ref = model.forward(ids, states)
        out = loaded.signatures["serving_default"](ids=tf.constant(ids), **dict(zip(names, map(tf.constant, states))))
        assert np.max(np.abs(out["logits"].numpy() - ref.logits.numpy())) < 1e-5
        for i in range(n):
            assert np.max(np.abs(out[f"final_hidden_{i}"].numpy() - ref.states[i].numpy())) < 1e-5
        # Without an initial state: the saved function falls back on the zero default.
        zero_ref = model.forward(ids, model.initial_state(batch))
        out0 = loaded.serving_default(tf.constant(ids))
        assert np.max(np.abs(out0["logits"].numpy() - zero_ref.logits.numpy())) < 1e-5
        # score: log p(target) from the same logits.
        targets = rng.integers(0, model.vocab_size, (batch, time)).astype(np.int32)
        scored = loaded.signatures["score"](ids=tf.constant(ids), targets=tf.constant(targets),
                                            **dict(zip(names, map(tf.constant, states))))
        expected = picked_log_probs(ref.logits.numpy(), targets)
        assert np.max(np.abs(scored["log_probs"].numpy() - expected)) < 1e-5


def test_vocabulary_ships_as_asset_with_string_lookup(runs):
    folder = runs.exports("darts_v2") / "savedmodel"
    vocab = runs.loaded("darts_v2").vocab
    assert (folder / "assets" / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1] == list(vocab.words)
    assert (folder / "assets.extra" / "tfnas.json").exists()
    loaded = tf.saved_model.load(str(folder))
    words = tf.constant([["w3", "w4", "<eos>"], ["w28", "no-such-word", "<unk>"]])
    ids = loaded.signatures["lookup"](words=words)["ids"].numpy()
    unk = vocab.unk_id
    assert ids.tolist() == [[vocab.word_to_id("w3"), vocab.word_to_id("w4"), vocab.eos_id], [
        vocab.word_to_id("w28"), unk, unk]]
    back = loaded.signatures["words"](ids=tf.constant(ids))["words"].numpy().astype(str)
    assert back.tolist() == [["w3", "w4", "<eos>"], ["w28", "<unk>", "<unk>"]]
    # Words in, logits out: the served model needs nothing else.
    logits = loaded.serving_default(loaded.lookup(words)["ids"])["logits"]
    assert logits.shape == (2, 3, len(vocab))


def test_saved_model_cli_lists_the_signatures(runs):
    folder = runs.exports("darts_v2") / "savedmodel"
    cli = Path(sys.executable).parent / "saved_model_cli"
    if not cli.exists():
        pytest.skip("saved_model_cli is not installed next to this Python")
    out = subprocess.run([str(cli), "show", "--dir", str(folder), "--all"], capture_output=True, text=True,
                         check=True).stdout
    for key in SIGNATURES:
        assert f"signature_def['{key}']" in out
    assert "inputs['hidden_0']" in out and "outputs['logits']" in out and "outputs['log_probs']" in out
    assert "shape: (-1, -1, 31)" in out  # logits: dynamic batch and time, 31 words


def saved_model_cli_run(folder: Path, signature: str, inputs: dict, tmp: Path) -> dict:
    """Runs ``saved_model_cli run`` (TF1's SignatureDef loader, the path TF Serving loads through)."""
    cli = Path(sys.executable).parent / "saved_model_cli"
    if not cli.exists():
        pytest.skip("saved_model_cli is not installed next to this Python")
    tmp.mkdir()
    for key, value in inputs.items():
        np.save(tmp / f"{key}.npy", value)
    feeds = ";".join(f"{key}={tmp / key}.npy" for key in inputs)
    subprocess.run([str(cli), "run", "--dir", str(folder), "--tag_set", "serve", "--signature_def", signature,
                    "--inputs", feeds, "--outdir", str(tmp / "out")], capture_output=True, text=True, check=True)
    return {p.stem: np.load(p) for p in (tmp / "out").glob("*.npy")}


@pytest.mark.parametrize("kind", ["darts_v2", "lstm_2layers"])
def test_signature_def_loader_serves_with_and_without_states(runs, kind, tmp_path):
    """What TF Serving does: the SignatureDef loader restores the variables; omitted states are zero."""
    folder = runs.exports(kind) / "savedmodel"
    model = runs.loaded(kind).model
    rng = np.random.default_rng(1)
    ids = rng.integers(0, model.vocab_size, (2, 5)).astype(np.int32)
    zero = model.forward(ids, model.initial_state(2))
    out = saved_model_cli_run(folder, "serving_default", {"ids": ids}, tmp_path / "ids_only")
    np.testing.assert_allclose(out["logits"], zero.logits.numpy(), atol=1e-5)
    states = [rng.normal(0, 0.5, (2, 16)).astype(np.float32) for _ in zero.states]
    ref = model.forward(ids, states)
    feeds = {"ids": ids, **{f"hidden_{i}": s for i, s in enumerate(states)}}
    out = saved_model_cli_run(folder, "serving_default", feeds, tmp_path / "states")
    np.testing.assert_allclose(out["logits"], ref.logits.numpy(), atol=1e-5)
    for i, s in enumerate(ref.states):
        np.testing.assert_allclose(out[f"final_hidden_{i}"], s.numpy(), atol=1e-5)
    if kind == "darts_v2":
        out = saved_model_cli_run(folder, "score", {"ids": ids, "targets": ids}, tmp_path / "score")
        np.testing.assert_allclose(out["log_probs"], picked_log_probs(zero.logits.numpy(), ids), atol=1e-5)


@pytest.mark.parametrize("kind", ["darts_v2", "lstm"])
def test_int64_ids_give_the_outputs_of_int32_ids(runs, kind):
    """TextVectorization gives int64 ids: the *_int64 signatures take them and equal the int32 ones exactly."""
    from tfnas.export import INT64_SIGNATURES, load_export

    folder = runs.exports(kind) / "savedmodel"
    defs = signature_defs(folder)
    assert set(INT64_SIGNATURES) <= set(defs)
    assert defs["serving_default_int64"].inputs["ids"].dtype == tf.int64.as_datatype_enum
    assert defs["score_int64"].inputs["targets"].dtype == tf.int64.as_datatype_enum
    assert set(defs["serving_default_int64"].defaults) == set(defs["serving_default"].defaults)
    loaded = tf.saved_model.load(str(folder))
    rng = np.random.default_rng(4)
    ids = rng.integers(0, runs.loaded(kind).model.vocab_size, (2, 7))
    targets = rng.integers(0, runs.loaded(kind).model.vocab_size, (2, 7))
    states = {name: tf.constant(rng.normal(0, 0.5, (2, 16)).astype(np.float32))
              for name in defs["serving_default"].defaults}
    for key, base in INT64_SIGNATURES.items():
        args = {"ids": ids} if key != "score_int64" else {"ids": ids, "targets": targets}
        extra = states if key != "words_int64" else {}
        wide = loaded.signatures[key](**{k: tf.constant(v, tf.int64) for k, v in args.items()}, **extra)
        narrow = loaded.signatures[base](**{k: tf.constant(v, tf.int32) for k, v in args.items()}, **extra)
        assert set(wide) == set(narrow)
        for name in narrow:
            np.testing.assert_array_equal(wide[name].numpy(), narrow[name].numpy(), err_msg=f"{key} {name}")
    # The Python attribute falls back on the zero states as the int32 one does.
    np.testing.assert_array_equal(loaded.serving_default_int64(tf.constant(ids, tf.int64))["logits"].numpy(),
                                  loaded.serving_default(tf.constant(ids, tf.int32))["logits"].numpy())
    # Every format's ExportedModel takes int64 ids as int32 ones.
    for fmt in ("keras", "savedmodel", "onnx", "tflite"):
        lm = load_export(runs.exports(kind) / fmt)
        np.testing.assert_array_equal(lm.step(ids.astype(np.int64))[0], lm.step(ids.astype(np.int32))[0])
