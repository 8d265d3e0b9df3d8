"""`tfnas serve` over real HTTP on 127.0.0.1: TF Serving's predict API, generation, one clear error per bad request."""
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tfnas.export import load_export, score_ids
from tfnas.export.generate import generate_text
from tfnas.serving import Limits, served_version

from serving_support import call, running, saved_signature_defs
from support import picked_log_probs


@pytest.fixture
def server(any_model):
    """A server on a free port over the darts_v2 export (SavedModel, ONNX), in a thread; yields (base URL, model)."""
    with running(any_model, Limits(max_batch=4, max_tokens=64)) as base:
        yield base, any_model


def test_status_health_and_metadata(server):
    base, model = server
    assert call(f"{base}/healthz") == (200, {"status": "ok"})
    status, reply = call(f"{base}/v1/models/ptb/metadata")
    assert status == 200 and reply["tfnas"]["states"] == ["hidden_0"]
    assert reply["tfnas"]["export"]["bptt"] == model.metadata.bptt and reply["tfnas"]["limits"]["max_batch"] == 4
    status, reply = call(f"{base}/v1/models/other:predict", {"inputs": {"ids": [[1]]}})
    assert status == 404 and "this server serves 'ptb'" in reply["error"]


# TensorFlow Serving's replies, from its REST API documentation ("RESTful API": model status, model metadata).
AVAILABLE = {"model_version_status": [
    {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def test_status_and_metadata_are_tensorflow_servings_at_every_model_url(server):
    """``GET /v1/models/NAME[/versions/VERSION]`` and ``.../metadata``; the signature_def map is the one of the
    SavedModel export, whatever the format served."""
    base, model = server
    signature_defs = saved_signature_defs(model.path.parent / "savedmodel")
    for url in (f"{base}/v1/models/ptb", f"{base}/v1/models/ptb/versions/1", f"{base}/v1/models/ptb/versions/001"):
        assert call(url) == (200, AVAILABLE)
        status, reply = call(f"{url}/metadata")
        assert status == 200 and reply["model_spec"] == {"name": "ptb", "signature_name": "", "version": "1"}
        assert reply["metadata"] == {"signature_def": {
            "signature_def": signature_defs, "@type": "type.googleapis.com/tensorflow.serving.SignatureDefMap"}}


@pytest.mark.parametrize("path", ["/v1/models/ptb/versions/2", "/v1/models/ptb/versions/2/metadata",
                                  "/v1/models/ptb/labels/stable", "/v1/models/ptb/labels/stable/metadata"])
def test_another_version_or_a_label_is_not_found(server, path):
    base, _ = server
    status, reply = call(f"{base}{path}")
    expected = "this server has no labels" if "/labels/" in path else "this server serves version 1"
    assert status == 404 and list(reply) == ["error"] and expected in reply["error"]
    assert call(f"{base}{path.removesuffix('/metadata')}:predict", {"instances": [[1]]})[0] == 404


@pytest.mark.parametrize("name, version", [("7", 7), ("0012", 12), (str(2 ** 63 - 1), 2 ** 63 - 1), ("onnx", 1),
                                           ("v2", 1), ("9" * 19, 1), ("\u0663", 1)])
def test_the_version_served_is_the_folder_name_where_it_is_a_version_number(name, version):
    assert served_version(Path("models", "ptb", name)) == version


def test_an_export_in_a_version_folder_is_served_as_that_version(onnx_model, tmp_path):
    """TensorFlow Serving's layout MODEL_BASE/VERSION/: the status, the metadata and the URLs give version 7."""
    folder = shutil.copytree(onnx_model.path, tmp_path / "ptb" / "7")
    with running(load_export(folder)) as base:
        status, reply = call(f"{base}/v1/models/ptb/versions/7")
        assert status == 200 and reply["model_version_status"][0]["version"] == "7"
        assert call(f"{base}/v1/models/ptb/metadata")[1]["model_spec"]["version"] == "7"
        assert call(f"{base}/v1/models/ptb/versions/7:predict", {"instances": [[1, 2]]})[0] == 200
        status, reply = call(f"{base}/v1/models/ptb/versions/1:predict", {"instances": [[1, 2]]})
        assert status == 404 and reply["error"] == "model 'ptb' has no version '1'; this server serves version 7"


def test_predict_equals_the_model_with_and_without_states_in_both_request_forms(server):
    base, model = server
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(model.vocab), (2, 5))
    zero_logits, zero_states = model.step(ids)
    status, reply = call(f"{base}/v1/models/ptb:predict", {"signature_name": "serving_default",
                                                           "inputs": {"ids": ids.tolist()}})
    assert status == 200
    np.testing.assert_allclose(reply["outputs"]["logits"], zero_logits, atol=1e-5)
    np.testing.assert_allclose(reply["outputs"]["final_hidden_0"], zero_states[0], atol=1e-5)
    # The state carried from the first reply: equal to running both segments in one call.
    more = rng.integers(0, len(model.vocab), (2, 3))
    status, reply = call(f"{base}/v1/models/ptb:predict", {"inputs": {
        "ids": more.tolist(), "hidden_0": reply["outputs"]["final_hidden_0"]}})
    whole, _ = model.step(np.concatenate([ids, more], axis=1))
    np.testing.assert_allclose(reply["outputs"]["logits"], whole[:, 5:], atol=1e-4)
    # The row form of TF Serving: one object per row, or the bare value of the one input (ids), at every model URL
    # and under the int64 signature; "predictions" in the reply, one object per row.
    for url, body in ((f"{base}/v1/models/ptb:predict", {"instances": [{"ids": row} for row in ids.tolist()]}),
                      (f"{base}/v1/models/ptb/versions/1:predict", {"instances": ids.tolist()}),
                      (f"{base}/v1/models/ptb:predict", {"signature_name": "serving_default_int64",
                                                         "instances": ids.tolist()})):
        status, reply = call(url, body)
        assert status == 200 and len(reply["predictions"]) == 2
        assert set(reply["predictions"][1]) == {"logits", "final_hidden_0"}
        np.testing.assert_allclose(reply["predictions"][1]["logits"], zero_logits[1], atol=1e-5)
    # The columnar form with the bare value of the one input.
    status, reply = call(f"{base}/v1/models/ptb:predict", {"inputs": ids.tolist()})
    np.testing.assert_allclose(reply["outputs"]["logits"], zero_logits, atol=1e-5)


@pytest.mark.parametrize("body, message", [
    ({"signature_name": "score", "instances": [[1, 2]]},
     "each instance must be an object naming the inputs: signature 'score' has several inputs (ids, targets)"),
    ({"signature_name": "score", "inputs": [[1, 2]]}, "signature 'score' has several inputs (ids, targets)"),
    ({"instances": [[1, 2], {"ids": [1, 2]}]}, "all objects naming the inputs, or all values of 'ids'"),
    ({"instances": []}, "'instances' must be a non-empty list"),
])
def test_bare_values_need_a_signature_of_one_input(server, body, message):
    base, _ = server
    status, reply = call(f"{base}/v1/models/ptb:predict", body)
    assert status == 400 and message in reply["error"]


def test_score_equals_tfnas_score_and_lookup_round_trips(server):
    base, model = server
    words = [["w3", "w4", "w5", "w6", "w7", "w8"], ["w10", "no-such-word", "w12", "w13", "w14", "w15"]]
    # One output: its value without its name ("outputs": [...], "predictions": [row, ...]), as TF Serving answers.
    status, reply = call(f"{base}/v1/models/ptb:predict", {"signature_name": "lookup", "inputs": {"words": words}})
    ids = np.array(reply["outputs"])
    assert ids[1, 1] == model.vocab.unk_id and ids[0, 0] == model.vocab.word_to_id("w3")
    assert call(f"{base}/v1/models/ptb:predict", {"signature_name": "lookup", "instances": words}) == (
        200, {"predictions": ids.tolist()})
    status, reply = call(f"{base}/v1/models/ptb:predict", {"signature_name": "words", "inputs": {"ids": ids.tolist()}})
    assert reply["outputs"][1][:3] == ["w10", "<unk>", "w12"]
    status, reply = call(f"{base}/v1/models/ptb:predict", {"signature_name": "words_int64",
                                                           "instances": [{"ids": row} for row in ids.tolist()]})
    assert reply["predictions"][1][:3] == ["w10", "<unk>", "w12"]
    stream = ids.ravel()
    status, reply = call(f"{base}/v1/models/ptb:predict", {"signature_name": "score", "inputs": {
        "ids": [stream[:-1].tolist()], "targets": [stream[1:].tolist()]}})
    assert status == 200
    logits, _ = model.step(stream[None, :-1])
    np.testing.assert_allclose(reply["outputs"]["log_probs"], picked_log_probs(logits, stream[None, 1:]), atol=1e-5)
    # `tfnas score` on the same stream as one window of one row.
    expected = score_ids(model, stream, batch_size=1, bptt=len(stream) - 1)
    assert -np.mean(reply["outputs"]["log_probs"]) == pytest.approx(expected.loss, rel=1e-5)


def test_generate_equals_tfnas_generate(server):
    base, model = server
    status, reply = call(f"{base}/v1/models/ptb:generate", {"prompt": "w3 w4", "max_tokens": 6, "seed": 5})
    expected = generate_text(model, "w3 w4", 6, seed=5)
    assert status == 200 and reply["ids"] == expected.ids and reply["text"] == expected.text


def test_concurrent_requests_get_their_own_answers(server):
    base, model = server
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, len(model.vocab), (1 + k % 3, 4 + k % 5)) for k in range(12)]

    def ask(ids):
        return call(f"{base}/v1/models/ptb:predict", {"inputs": {"ids": ids.tolist()}})

    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(ask, batches))
    for ids, (status, reply) in zip(batches, replies):
        assert status == 200
        np.testing.assert_allclose(reply["outputs"]["logits"], model.step(ids)[0], atol=1e-5)


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b'{"signature_name": "nope", "inputs": {"ids": [[1]]}}', 400, "unknown signature_name 'nope'"),
    (b'{"inputs": {"ids": [[1, 2], [3]]}}', 400, "rectangular"),
    (b'{"inputs": {"ids": [[1.5]]}}', 400, "must hold integers"),
    (b'{"inputs": {"ids": [[100000]]}}', 400, "word ids in [0, 31)"),
    (b'{"inputs": {"ids": [[1]], "hidden_0": [[0.0, 1.0]]}}', 400, "'hidden_0' must be [1, 16]"),
    (b'{"inputs": {"ids": [[1]], "state": [[0.0]]}}', 400, "unknown 'state'; its inputs are ids, hidden_0 (optional)"),
    (b'{"signature_name": "score", "inputs": {"ids": [[1, 2]]}}', 400, "missing targets"),
    (b'{"inputs": {"ids": [[1]]}, "instances": [{"ids": [1]}]}', 400, "not both"),
    (b'{"inputs": {"ids": [[1], [1], [1], [1], [1]]}}', 413, "batch of 5 rows is over this server's limit of 4"),
])
def test_bad_predict_requests_get_one_clear_error(server, body, status, message):
    base, _ = server
    got, reply = call(f"{base}/v1/models/ptb:predict", raw=body)
    assert got == status and message in reply["error"] and "\n" not in reply["error"]


def test_oversized_and_bad_generation_requests(server):
    base, model = server
    too_long = {"inputs": {"ids": [list(range(1, 31)) * 3]}}
    status, reply = call(f"{base}/v1/models/ptb:predict", too_long)
    assert status == 413 and "90 tokens (rows x time) is over this server's limit of 64" in reply["error"]
    status, reply = call(f"{base}/v1/models/ptb:generate", {"prompt": "w3", "max_tokens": 1000})
    assert status == 413 and "make 1002 tokens, over this server's limit of 64" in reply["error"]
    status, reply = call(f"{base}/v1/models/ptb:generate", {"prompt": "w3", "temperature": -1})
    assert status == 400 and "'temperature' must be a number >= 0" in reply["error"]
    status, reply = call(f"{base}/v1/models/ptb:generate", {"prompt": "w3", "colour": "red"})
    assert status == 400 and "unknown field(s) 'colour'" in reply["error"]
    # The server is still up after all of that.
    assert call(f"{base}/healthz")[0] == 200
