"""What one request may ask of `tfnas serve` (issue 26 items 2 and 3): a generation's prompt counts against the
token limit, a reply of logits is bounded and written in pieces, and small requests go on being answered beside a
maximal one."""
import json
import threading
import time
import urllib.request

import numpy as np
import pytest

from tfnas.serving import Limits, RequestError, ServerSettings
from tfnas.serving.rest import Prediction

from serving_support import PATIENCE, call, running


def test_a_generation_counts_its_prompt_against_the_token_limit(onnx_model):
    with running(onnx_model, Limits(max_tokens=64)) as base:
        url = f"{base}/v1/models/ptb:generate"
        # <eos>, 50 prompt words and 13 words to write: 64 tokens, the limit.
        status, reply = call(url, {"prompt": "w3 " * 50, "max_tokens": 13, "seed": 1})
        assert status == 200 and len(reply["ids"]) == 13
        status, reply = call(url, {"prompt": "w3 " * 50, "max_tokens": 14})
        assert status == 413 and reply["error"] == (
            "the prompt (51 tokens with <eos>) and max_tokens 14 make 65 tokens, over this server's limit of 64 "
            "(tfnas serve --max-tokens)")
        # The 800 KB prompt, which asked for 200,001 x vocabulary logits before, is refused unrun.
        status, reply = call(url, {"prompt": "w3 " * 200_000, "max_tokens": 1})
        assert status == 413 and "make 200002 tokens, over this server's limit of 64" in reply["error"]
        assert call(url, {"prompt": "w3 " * 200_000, "max_tokens": 1, "start_of_text": False})[0] == 413


def test_a_reply_of_logits_is_bounded(onnx_model):
    vocab = len(onnx_model.vocab)
    with running(onnx_model, Limits(max_reply_values=4 * 10 * vocab)) as base:
        url = f"{base}/v1/models/ptb:predict"
        assert call(url, {"inputs": {"ids": [[1] * 10] * 4}})[0] == 200
        message = (f"a reply of {4 * 11 * vocab} logits (4 rows x 11 steps x {vocab} words) is over this server's "
                   f"limit of {4 * 10 * vocab} values (tfnas serve --max-reply-values); ask for fewer steps, or "
                   "for the 'score' signature")
        assert call(url, {"inputs": {"ids": [[1] * 11] * 4}}) == (413, {"error": message})
        assert call(url, {"instances": [{"ids": [1] * 11}] * 4}) == (413, {"error": message})
        # Scores are one value per token: not bounded by the logits.
        status, reply = call(url, {"signature_name": "score", "inputs": {"ids": [[1] * 11] * 4,
                                                                         "targets": [[2] * 11] * 4}})
        assert status == 200 and np.shape(reply["outputs"]["log_probs"]) == (4, 11)
    # The request, 64 x 64 ids (the default token limit) on a 10,000-word vocabulary, is refused by default.
    with pytest.raises(RequestError, match="a reply of 40960000 logits .* over this server's limit of 1048576"):
        Limits().check_reply(64, 64, 10_000)


@pytest.mark.parametrize("maximal", ["predict", "generate"])
def test_small_requests_are_answered_beside_a_maximal_one(onnx_model, maximal):
    """A maximal request (a reply of 64 x 512 x 31 logits, or 3,000 words generated) in flight, small requests sent
    one after the other wait for one model call of it, not for all of it (its serialisation, its other steps)."""
    rows, steps = 64, 512
    limits = Limits(max_batch=rows, max_tokens=rows * steps, max_reply_values=rows * steps * len(onnx_model.vocab))
    with running(onnx_model, limits, ServerSettings(threads=4)) as base:
        if maximal == "predict":
            url, body = f"{base}/v1/models/ptb:predict", {"inputs": {"ids": np.resize(np.arange(30), (rows, steps))
                                                                     .tolist()}}
        else:
            url, body = f"{base}/v1/models/ptb:generate", {"prompt": "w3", "max_tokens": 3000, "seed": 0}
        took: dict[str, float] = {}

        def ask_maximal() -> None:
            start = time.monotonic()
            with urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode()),
                                        timeout=PATIENCE) as reply:
                reply.read()  # not parsed: json.loads would hold the interpreter lock the server threads need
            took["maximal"] = time.monotonic() - start

        thread = threading.Thread(target=ask_maximal)
        thread.start()
        latencies = []
        while thread.is_alive() and len(latencies) < 1000:
            start = time.monotonic()
            assert call(f"{base}/v1/models/ptb:predict", {"inputs": {"ids": [[1, 2]]}})[0] == 200
            latencies.append(time.monotonic() - start)
        thread.join(PATIENCE)
    print(f"{maximal}: maximal request {took['maximal']:.2f} s; {len(latencies)} small requests beside it, "
          f"median {np.median(latencies):.3f} s, longest {max(latencies):.3f} s")
    assert max(latencies) < took["maximal"] / 2  # before: about all of it (the first waited for the lock)


@pytest.mark.parametrize("shape", [(3,), (2, 3), (4, 9000), (2, 3, 12000), (40_000,), (1, 1, 0)])
def test_a_reply_is_the_json_of_its_arrays_written_in_pieces(shape):
    rng = np.random.default_rng(0)
    outputs = {"logits": rng.normal(size=shape).astype(np.float32),
               "words": np.array([["a", "\u00e9"]] * shape[0], object)}
    assert Prediction(outputs, rows=False).to_json() == json.dumps(
        {"outputs": {k: v.tolist() for k, v in outputs.items()}}).encode()
    assert Prediction(outputs, rows=True).to_json() == json.dumps(
        {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(shape[0])]}).encode()
    # One output: its value without its name, as TF Serving answers.
    logits = {"logits": outputs["logits"]}
    assert Prediction(logits, rows=False).to_json() == json.dumps({"outputs": outputs["logits"].tolist()}).encode()
    assert Prediction(logits, rows=True).to_json() == json.dumps({"predictions": outputs["logits"].tolist()}).encode()
