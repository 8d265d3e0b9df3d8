"""The WSGI application of `tfnas serve`: TensorFlow Serving's REST routes over one export, plus generation.

Built on Werkzeug (the WSGI library TensorBoard runs on); `tfnas.serving.server`
serves it with waitress. Routes, with ``NAME`` the served model's name:

``GET  /v1/models/NAME``             model status, as TensorFlow Serving answers it
``GET  /v1/models/NAME/metadata``    the export's metadata (``tfnas.json``), its signatures and the limits
``POST /v1/models/NAME:predict``     TensorFlow Serving's predict request (`tfnas.serving.rest`)
``POST /v1/models/NAME:generate``    ``{"prompt", "max_tokens", "temperature", "top_k", "seed",
                                      "start_of_text"}`` -> ``{"text", "tokens", "ids"}``
``GET  /healthz``                    ``{"status": "ok"}``

A bad request gets a JSON ``{"error": "..."}`` with a 4xx status and one
line that says what is wrong; an unexpected failure gets a 500 with its
message, and the server goes on. Requests are parsed, checked and answered
in parallel threads; only the model's calls take a lock, one call at a time
(one `step` of a generation, not the whole of it), and a reply is
serialised outside it, in pieces between which other threads run. When
the server stops (`ServingApp.stopping`), new requests get a 503; when it
stops waiting (`ServingApp.cancelled`), the requests still running end with
a 503 at their next model call or reply piece.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable, Sequence

from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tfnas.data import OutOfVocabularyError
from tfnas.export.exported import ExportedModel, States
from tfnas.export.generate import generate_text
from tfnas.serving.rest import SIGNATURES, Limits, RequestError, Signatures, body_too_large, parse_json, stopped

logger = logging.getLogger("tfnas.serve")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, mimetype="application/json")


class OneCallAtATime(ExportedModel):
    """``model`` with its runtime calls (`step`, `log_probs`, `encode`) taken one at a time under ``lock``, and
    refused with a 503 once ``cancelled`` is set.

    The lock is held for one call, so a long generation lets other requests'
    calls in between its steps; everything else (checking, sampling,
    serialising) runs outside it. Once the server has stopped waiting for
    the requests in flight (``cancelled``), each of them ends at its next
    model call.
    """

    def __init__(self, model: ExportedModel, lock: threading.Lock, cancelled: threading.Event):
        super().__init__(model.path, model.metadata, model.vocab)
        self.format = model.format
        self.model = model
        self.lock = lock
        self.cancelled = cancelled

    def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        if not self.cancelled.is_set():
            with self.lock:
                if not self.cancelled.is_set():
                    return method(*args)
        raise stopped()

    def _step(self, ids, states: States):
        return self._call(self.model.step, ids, states)

    def _log_probs(self, ids, targets, states: States):
        return self._call(self.model.log_probs, ids, targets, states)

    def encode(self, words: Sequence[str]):
        return self._call(self.model.encode, words)


class ServingApp:
    """The WSGI application over one loaded export.

    Args:
        model: the export (`tfnas.export.load_export`).
        name: the model name of the URLs (TensorFlow Serving's ``MODEL_NAME``).
        limits: what one request may ask (`Limits`): rows, tokens (a
            generation's prompt and words included), logits in a reply,
            body bytes.
    """

    def __init__(self, model: ExportedModel, name: str = "tfnas", limits: Limits = Limits()):
        if not name or "/" in name or ":" in name:
            raise ValueError(f"Argument `name` must be a non-empty name without '/' or ':'; received: {name!r}")
        #: Set when the server stops: requests that start from then on get a 503 and the connection closes.
        self.stopping = threading.Event()
        #: Set when the server stops waiting for the requests in flight: each ends with a 503 at its next model call.
        self.cancelled = threading.Event()
        self.model = OneCallAtATime(model, threading.Lock(), self.cancelled)
        self.name = name
        self.limits = limits
        self.signatures = Signatures(self.model, limits)
        self._routes = Map([
            Rule("/healthz", endpoint="health", methods=["GET"]),
            Rule("/v1/models/<name>", endpoint="status", methods=["GET"]),
            Rule("/v1/models/<name>/metadata", endpoint="metadata", methods=["GET"]),
            Rule("/v1/models/<name>:predict", endpoint="predict", methods=["POST"]),
            Rule("/v1/models/<name>:generate", endpoint="generate", methods=["POST"]),
        ])
        self._handlers: dict[str, Callable[..., Response]] = {
            "health": self.health, "status": self.status, "metadata": self.metadata, "predict": self.predict,
            "generate": self.generate}

    # ------------------------------------------------------------- WSGI
    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = self.limits.max_request_bytes
        return self.dispatch(request)(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if self.stopping.is_set():
            response = _json({"error": "the server is stopping; send the request again to a running server"}, 503)
            response.headers["Connection"] = "close"
            return response
        try:
            endpoint, args = self._routes.bind_to_environ(request.environ).match()
            if "name" in args and args["name"] != self.name:
                return _json({"error": f"model {args['name']!r} not found; this server serves {self.name!r}"}, 404)
            return self._handlers[endpoint](request)
        except RequestError as err:
            return _json({"error": str(err)}, err.status)
        except OutOfVocabularyError as err:
            return _json({"error": str(err)}, 400)
        except HTTPException as err:
            return _json({"error": f"{err.name}: {err.description}"}, err.code or 500)
        except Exception as err:  # noqa: BLE001 - the server answers and goes on
            logger.exception("request %s %s failed", request.method, request.path)
            return _json({"error": f"internal error: {type(err).__name__}: {err}"}, 500)

    def _body(self, request: Request) -> Any:
        """The JSON value of the request body (413 over `Limits.max_request_bytes`)."""
        try:
            return parse_json(request.get_data())
        except RequestEntityTooLarge:
            raise body_too_large(self.limits.max_request_bytes) from None

    # ---------------------------------------------------------- routes
    def health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    def status(self, request: Request) -> Response:
        return _json({"model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})

    def metadata(self, request: Request) -> Response:
        return _json({"model_spec": {"name": self.name, "version": "1"}, "signatures": list(SIGNATURES),
                      "states": self.model.state_names, "format": self.model.format,
                      "tfnas": json.loads(self.model.metadata.to_json()),
                      "limits": {"max_batch": self.limits.max_batch, "max_tokens": self.limits.max_tokens,
                                 "max_reply_values": self.limits.max_reply_values,
                                 "max_request_bytes": self.limits.max_request_bytes}})

    def predict(self, request: Request) -> Response:
        prediction = self.signatures.predict(self._body(request))
        return Response(prediction.to_json(self.cancelled.is_set), mimetype="application/json")

    def generate(self, request: Request) -> Response:
        body = self._body(request)
        if not isinstance(body, dict):
            raise RequestError("the request must be a JSON object")
        known = {"prompt", "max_tokens", "temperature", "top_k", "seed", "start_of_text"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise RequestError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        prompt = body.get("prompt", "")
        max_tokens = body.get("max_tokens", 50)
        temperature = body.get("temperature", 1.0)
        top_k, seed = body.get("top_k"), body.get("seed")
        if not isinstance(prompt, str):
            raise RequestError("'prompt' must be a string")
        if not _is_int(max_tokens) or max_tokens < 1:
            raise RequestError(f"'max_tokens' must be a positive integer; received {max_tokens!r}")
        if seed is not None and not (_is_int(seed) and 0 <= seed < 2 ** 63):
            raise RequestError(f"'seed' must be a non-negative integer or null; received {seed!r}")
        start_of_text = bool(body.get("start_of_text", True))
        eos = start_of_text and self.model.vocab.eos_id is not None
        self.limits.check_generation(len(prompt.split()) + eos, max_tokens, eos)
        try:  # temperature and top_k are checked by generate_text (ValueError)
            out = generate_text(self.model, prompt, max_tokens, temperature=temperature, top_k=top_k or None,
                                seed=seed, start_of_text=start_of_text)
        except (OutOfVocabularyError, RequestError):
            raise
        except ValueError as err:
            raise RequestError(str(err)) from None
        return _json({"text": out.text, "tokens": out.tokens, "ids": out.ids})
