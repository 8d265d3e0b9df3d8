"""`tfnas serve` over real HTTP on 127.0.0.1: TF Serving's predict API, generation, one clear error per bad request."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tfnas.export import score_ids
from tfnas.export.generate import generate_text
from tfnas.serving import Limits

from serving_support import call, running
from support import picked_log_probs


@pytest.fixture
def server(any_model):
    """A server on a free port over the darts_v2 export (SavedModel, ONNX), in a thread; yields (base URL, model)."""
    with running(any_model, Limits(max_batch=4, max_tokens=64)) as base:
        yield base, any_model


def test_status_health_and_metadata(server):
    base, model = server
    assert call(f"{base}/healthz") == (200, {"status": "ok"})
    status, reply = call(f"{base}/v1/models/ptb")
    assert status == 200 and reply["model_version_status"][0]["state"] == "AVAILABLE"
    status, reply = call(f"{base}/v1/models/ptb/metadata")
    assert status == 200 and reply["states"] == ["hidden_0"] and reply["tfnas"]["bptt"] == model.metadata.bptt
    status, reply = call(f"{base}/v1/models/other:predict", {"inputs": {"ids": [[1]]}})
    assert status == 404 and "this server serves 'ptb'" in reply["error"]


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
    # The row form of TF Serving: one object per row, "predictions" in the reply.
    status, reply = call(f"{base}/v1/models/ptb:predict", {"instances": [{"ids": row} for row in ids.tolist()]})
    assert status == 200 and len(reply["predictions"]) == 2
    np.testing.assert_allclose(reply["predictions"][1]["logits"], zero_logits[1], atol=1e-5)


def test_score_equals_tfnas_score_and_lookup_round_trips(server):
    base, model = server
    words = [["w3", "w4", "w5", "w6", "w7", "w8"], ["w10", "no-such-word", "w12", "w13", "w14", "w15"]]
    status, reply = call(f"{base}/v1/models/ptb:predict", {"signature_name": "lookup", "inputs": {"words": words}})
    ids = np.array(reply["outputs"]["ids"])
    assert ids[1, 1] == model.vocab.unk_id and ids[0, 0] == model.vocab.word_to_id("w3")
    status, reply = call(f"{base}/v1/models/ptb:predict", {"signature_name": "words", "inputs": {"ids": ids.tolist()}})
    assert reply["outputs"]["words"][1][:3] == ["w10", "<unk>", "w12"]
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
