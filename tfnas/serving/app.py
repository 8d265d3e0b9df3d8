"""The WSGI application of `tfnas serve`: TensorFlow Serving's REST routes over one export, plus generation.

Built on Werkzeug (the WSGI library TensorBoard runs on); `tfnas.serving.server`
serves it with waitress. Routes, with ``NAME`` the served model's name and
``MODEL`` either ``/v1/models/NAME`` or, as in TensorFlow Serving,
``/v1/models/NAME/versions/VERSION`` (the one version served, `served_version`)
or ``/v1/models/NAME/labels/LABEL`` (none: this server has no version labels,
as TensorFlow Serving without a labels configuration):

``GET  MODEL``                 model status, as TensorFlow Serving answers it (``model_version_status``)
``GET  MODEL/metadata``        TensorFlow Serving's metadata reply (``model_spec``, and ``metadata.signature_def``
                               of `tfnas.serving.signature_defs`), with tfnas' own under ``tfnas``: the export's
                               metadata (``tfnas.json``), its format and states, and the limits
``POST MODEL:predict``         TensorFlow Serving's predict request (`tfnas.serving.rest`)
``POST MODEL:generate``        ``{"prompt", "max_tokens", "temperature", "top_k", "seed",
                               "start_of_text"}`` -> ``{"text", "tokens", "ids"}``
``GET  /healthz``              ``{"status": "ok"}``

Every answer is JSON. A bad request gets ``{"error": "..."}`` with a 4xx
status and one line that says what is wrong (405 for a route's wrong
method, 404 for an unknown route, model, version or label); an unexpected
failure (a bug) gets a 500 with its message, and the server goes on. Requests are parsed,
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
from pathlib import Path
from typing import Any, Callable, Sequence

from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, Bound
from tfnas.data import OutOfVocabularyError
from tfnas.export.exported import ExportedModel, States
from tfnas.export.generate import generate_text
from tfnas.serving.rest import (Limits, RequestError, Signatures, body_too_large, listed, parse_json, request_field,
                                shown, stopped)
from tfnas.serving.signature_defs import signature_def_map

logger = logging.getLogger("tfnas.serve")

#: The fields of a generate request.
GENERATE_FIELDS = ("max_tokens", "prompt", "seed", "start_of_text", "temperature", "top_k")
#: Longest error message (characters): a longer one is cut, as a word or name of the request can be long.
MAX_ERROR_CHARS = 500
#: Seeds of a generation: NumPy's generator takes any integer >= 0; JSON clients rarely hold more than 63 bits.
SEED = Bound(0, 2 ** 63 - 1)
#: Largest model version: TensorFlow Serving's versions are int64.
MAX_VERSION = 2 ** 63 - 1
#: The model URLs of TensorFlow Serving, each followed by nothing, ``/metadata``, ``:predict`` or ``:generate``.
MODEL_URLS = ("/v1/models/<name:name>", "/v1/models/<name:name>/versions/<version:version>",
              "/v1/models/<name:name>/labels/<name:label>")


def served_version(folder: Path) -> int:
    """The version an export in ``folder`` is served as: the folder's name where it is one, as in TensorFlow
    Serving's layout ``MODEL_BASE/VERSION/`` (digits, at most `MAX_VERSION`), else 1."""
    name = folder.name
    return int(name) if name.isascii() and name.isdigit() and int(name) <= MAX_VERSION else 1


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, mimetype="application/json")


def _error(message: str, status: int) -> Response:
    """``{"error": message}`` on one line of at most `MAX_ERROR_CHARS` characters."""
    line = " ".join(message.splitlines())
    if len(line) > MAX_ERROR_CHARS:
        line = line[:MAX_ERROR_CHARS - 3] + "..."
    return _json({"error": line}, status)


class _Name(BaseConverter):
    """A model name or version label in a URL: no ``/`` and no ``:`` (``NAME:predict`` is the name and a verb)."""

    regex = "[^/:]+"


class _Version(BaseConverter):
    """A model version in a URL: digits, kept as written (``007`` is version 7)."""

    regex = "[0-9]+"


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
        model: the export (`tfnas.export.load_export`); it is served as
            version `served_version` of its folder.
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
        #: The model version of the URLs and replies.
        self.version = served_version(model.path)
        self.limits = limits
        self.signatures = Signatures(self.model, limits)
        self._routes = Map([Rule("/healthz", endpoint="health", methods=["GET"])] + [
            Rule(url + suffix, endpoint=endpoint, methods=[method]) for url in MODEL_URLS
            for suffix, endpoint, method in (("", "status", "GET"), ("/metadata", "metadata", "GET"),
                                             (":predict", "predict", "POST"), (":generate", "generate", "POST"))],
            converters={"name": _Name, "version": _Version})
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
            not_served = self._not_served(args)
            if not_served:
                return _error(not_served, 404)
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

    def _not_served(self, args: dict[str, str]) -> str | None:
        """Why the model, version or label of a URL is not served here (None when it is)."""
        if "name" in args and args["name"] != self.name:
            return f"model {shown(args['name'])} not found; this server serves {self.name!r}"
        if "version" in args and (args["version"].lstrip("0") or "0") != str(self.version):
            return (f"model {self.name!r} has no version {shown(args['version'])}; this server serves version "
                    f"{self.version}")
        if "label" in args:
            return (f"model {self.name!r} has no version label {shown(args['label'])}; this server has no labels "
                    f"(ask /v1/models/{self.name}/versions/{self.version})")
        return None

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
            {"version": str(self.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})

    def metadata(self, request: Request) -> Response:
        limits = self.limits
        return _json({
            "model_spec": {"name": self.name, "signature_name": "", "version": str(self.version)},
            "metadata": {"signature_def": signature_def_map(self.signatures.specs)},
            "tfnas": {"export": json.loads(self.model.metadata.to_json()), "format": self.model.format,
                      "states": self.model.state_names,
                      "limits": {"max_batch": limits.max_batch, "max_tokens": limits.max_tokens,
                                 "max_reply_values": limits.max_reply_values,
                                 "max_request_bytes": limits.max_request_bytes}}})

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
