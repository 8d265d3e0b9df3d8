"""The WSGI application of `tfnas serve`: TensorFlow Serving's REST routes over one export, plus generation.

Built on Werkzeug (the WSGI library TensorBoard runs on); `tfnas.serving.server`
serves it with waitress. Routes, with ``NAME`` the served model's name:

``GET  /v1/models/NAME``             model status, as TensorFlow Serving answers it
``GET  /v1/models/NAME/metadata``    the export's metadata (``tfnas.json``), its signatures and the limits
``POST /v1/models/NAME:predict``     TensorFlow Serving's predict request (`tfnas.serving.rest`)
``POST /v1/models/NAME:generate``    ``{"prompt", "max_tokens", "temperature", "top_k", "seed",
                                      "start_of_text"}`` -> ``{"text", "tokens", "ids"}``
``GET  /healthz``                    ``{"status": "ok"}``

Every answer is JSON. A bad request gets ``{"error": "..."}`` with a 4xx
status and one line that says what is wrong (405 for a route's wrong
method, 404 for an unknown route or model); an unexpected failure (a bug)
gets a 500 with its message, and the server goes on. Requests are parsed,
checked and answered in parallel threads; only the model's calls take a
lock, one call at a time (one `step` of a generation, not the whole of it),
and a reply is serialised outside it, in pieces between which other threads
run. When the server stops (`ServingApp.stopping`), new requests get a 503;
when it stops waiting (`ServingApp.cancelled`), the requests still running
end with a 503 at their next model call or reply piece.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable, Sequence

from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, Bound
from tfnas.data import OutOfVocabularyError
from tfnas.export.exported import ExportedModel, States
from tfnas.export.generate import generate_text
from tfnas.serving.rest import (SIGNATURES, Limits, RequestError, Signatures, body_too_large, listed,
                                parse_json, request_field, shown, stopped)

logger = logging.getLogger("tfnas.serve")

#: The fields of a generate request.
GENERATE_FIELDS = ("max_tokens", "prompt", "seed", "start_of_text", "temperature", "top_k")
#: Longest error message (characters): a longer one is cut, as a word or name of the request can be long.
MAX_ERROR_CHARS = 500
#: Seeds of a generation: NumPy's generator takes any integer >= 0; JSON clients rarely hold more than 63 bits.
SEED = Bound(0, 2 ** 63 - 1)


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, mimetype="application/json")


def _error(message: str, status: int) -> Response:
    """``{"error": message}`` on one line of at most `MAX_ERROR_CHARS` characters."""
    line = " ".join(message.splitlines())
    if len(line) > MAX_ERROR_CHARS:
        line = line[:MAX_ERROR_CHARS - 3] + "..."
    return _json({"error": line}, status)


class _ModelName(BaseConverter):
    """A model name in a URL: no ``/`` and no ``:`` (``NAME:predict`` is the name and a verb)."""

    regex = "[^/:]+"


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
            Rule("/v1/models/<model:name>", endpoint="status", methods=["GET"]),
            Rule("/v1/models/<model:name>/metadata", endpoint="metadata", methods=["GET"]),
            Rule("/v1/models/<model:name>:predict", endpoint="predict", methods=["POST"]),
            Rule("/v1/models/<model:name>:generate", endpoint="generate", methods=["POST"]),
        ], converters={"model": _ModelName})
        self._handlers: dict[str, Callable[[Request], Response]] = {
            "health": self.health, "status": self.status, "metadata": self.metadata, "predict": self.predict,
            "generate": self.generate}

    # ------------------------------------------------------------- WSGI
    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = self.limits.max_request_bytes
        return self.dispatch(request)(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if self.stopping.is_set():
            response = _error("the server is stopping; send the request again to a running server", 503)
            response.headers["Connection"] = "close"
            return response
        try:
            endpoint, args = self._routes.bind_to_environ(request.environ).match()
            if "name" in args and args["name"] != self.name:
                return _error(f"model {shown(args['name'])} not found; this server serves {self.name!r}", 404)
            return self._handlers[endpoint](request)
        except RequestError as err:
            return _error(str(err), err.status)
        except OutOfVocabularyError as err:
            return _error(str(err), 400)
        except HTTPException as err:
            response = _error(f"{err.name}: {err.description}", err.code or 500)
            if isinstance(err, MethodNotAllowed) and err.valid_methods:
                response.headers["Allow"] = ", ".join(err.valid_methods)
            return response
        except Exception as err:  # noqa: BLE001 - the server answers and goes on
            logger.exception("request %s %s failed", request.method, request.path)
            return _error(f"internal error: {type(err).__name__}: {err}", 500)

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
        limits = self.limits
        return _json({"model_spec": {"name": self.name, "version": "1"}, "signatures": list(SIGNATURES),
                      "states": self.model.state_names, "format": self.model.format,
                      "tfnas": json.loads(self.model.metadata.to_json()),
                      "limits": {"max_batch": limits.max_batch, "max_tokens": limits.max_tokens,
                                 "max_reply_values": limits.max_reply_values,
                                 "max_request_bytes": limits.max_request_bytes}})

    def predict(self, request: Request) -> Response:
        prediction = self.signatures.predict(self._body(request))
        return Response(prediction.to_json(self.cancelled.is_set), mimetype="application/json")

    def generate(self, request: Request) -> Response:
        body = self._body(request)
        if not isinstance(body, dict):
            raise RequestError("the request must be a JSON object")
        unknown = set(body) - set(GENERATE_FIELDS)
        if unknown:
            raise RequestError(f"unknown field(s) {listed(unknown)}; known: {', '.join(GENERATE_FIELDS)}")
        prompt = request_field(body, "prompt", "", str)
        max_tokens = request_field(body, "max_tokens", 50, int, AT_LEAST_ONE)
        temperature = request_field(body, "temperature", 1.0, float, NON_NEGATIVE)
        top_k = request_field(body, "top_k", None, int | None, NON_NEGATIVE)
        seed = request_field(body, "seed", None, int | None, SEED)
        start_of_text = request_field(body, "start_of_text", True, bool)
        eos = start_of_text and self.model.vocab.eos_id is not None
        self.limits.check_generation(len(prompt.split()) + eos, max_tokens, eos)
        try:
            out = generate_text(self.model, prompt, max_tokens, temperature=temperature, top_k=top_k or None,
                                seed=seed, start_of_text=start_of_text)
        except (OutOfVocabularyError, RequestError):
            raise
        except ValueError as err:  # an empty prompt without <eos> to start from
            raise RequestError(str(err)) from None
        return _json({"text": out.text, "tokens": out.tokens, "ids": out.ids})
