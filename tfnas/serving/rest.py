"""TensorFlow Serving's REST predict API over any export: request checking and the signatures.

A request body is the JSON TensorFlow Serving takes (``POST
/v1/models/NAME:predict``): ``{"signature_name": S, "inputs": {...}}`` (the
columnar form; the reply is ``{"outputs": {...}}``) or ``{"signature_name":
S, "instances": [...]}`` (the row form, one object per row; the reply is
``{"predictions": [...]}``, one object per row too). Where a signature has one
required input, ``"inputs"`` may be its value and each instance the value
of its row (``{"instances": [[1, 2, 3]]}``: ``ids`` ``[[1, 2, 3]]``); where
it has one output, the reply holds its value without its name
(``{"outputs": [[...]]}``, ``{"predictions": [[...], ...]}``), as
TensorFlow Serving answers. The signatures are those of the SavedModel
export (`tfnas.export.savedmodel`; declared in
`tfnas.serving.signature_defs`), computed here on any export format
through `tfnas.export.ExportedModel`:

``serving_default``
    ``ids`` int ``[B, T]``, optional states ``hidden_i`` ``[B or 1, ...]``
    -> ``logits`` ``[B, T, V]`` and ``final_hidden_i``.
``score``
    ``ids``, ``targets`` int ``[B, T]``, optional states -> ``log_probs``
    ``[B, T]`` (``log p(targets | ids)``) and ``final_hidden_i``.
``lookup``
    ``words`` string ``[B, T]`` -> ``ids`` (``<unk>``'s id for an unknown
    word, -1 when the vocabulary has none).
``words``
    ``ids`` -> ``words`` (an empty string for an id out of range).
``serving_default_int64``, ``score_int64``, ``words_int64``
    the same as the first, ``score`` and ``words`` (JSON has one kind of
    integer).

Every malformed request raises `RequestError` with one line that says what
is wrong; nothing here knows about HTTP beyond the status code it suggests.
Nothing recurses over the request: any JSON value is a reply or a
`RequestError`, whatever its nesting (a property test sends them).
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from tfnas import errors
from tfnas.export.exported import ExportedModel
from tfnas.export.metadata import IDS_INPUT, INT64_SIGNATURES, state_output_name
from tfnas.serving.signature_defs import SignatureSpec, signature_specs
from tfnas.settings import Bound, check_argument

DEFAULT_SIGNATURE = "serving_default"
#: Levels of nesting an input may have (the inputs are [batch, time] or [batch, units]).
MAX_RANK = 8
#: Values serialised in one piece of a reply: the reply is written piece by piece, and between two pieces the
#: interpreter lock goes to the other requests' threads (`json.dumps` holds it throughout; 2**14 values take
#: about 15 ms).
REPLY_PIECE_VALUES = 2 ** 14

def shown(value: Any) -> str:
    """A request's value in a message: `tfnas.errors.shown`, cut at 40 characters."""
    return errors.shown(value, width=40)


def listed(names: Any, most: int = 8) -> str:
    """``'a', 'b', ...``: the first ``most`` of ``names`` (sorted), each `shown`."""
    names = sorted(names)
    return ", ".join([shown(n) for n in names[:most]] + (["..."] if len(names) > most else []))


class RequestError(ValueError):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """Bounds on one request, each named with its ``tfnas serve`` flag in the 413 that refuses it.

    Attributes:
        max_batch: rows of one request.
        max_tokens: rows x time of one request, and the tokens of one
            generation: its prompt (with ``<eos>``) plus the words it writes.
        max_reply_values: logits in one ``serving_default`` reply (rows x
            time x vocabulary): about 21 bytes of JSON and 1 us of
            serialisation each, 2**20 makes at most ~22 MB and ~1 s.
        max_request_bytes: bytes of a request body.
    """

    max_batch: int = 64
    max_tokens: int = 4096
    max_reply_values: int = 2 ** 20
    max_request_bytes: int = 16 * 2 ** 20

    def __post_init__(self):
        for name in ("max_batch", "max_tokens", "max_reply_values", "max_request_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Argument `{name}` must be a positive integer; received: {name}={value!r}")

    def check(self, shape: tuple[int, ...]) -> None:
        batch, tokens = shape[0], int(np.prod(shape))
        if batch > self.max_batch:
            raise RequestError(f"batch of {batch} rows is over this server's limit of {self.max_batch} "
                               "(tfnas serve --max-batch)", 413)
        if tokens > self.max_tokens:
            raise RequestError(f"{tokens} tokens (rows x time) is over this server's limit of {self.max_tokens} "
                               "(tfnas serve --max-tokens)", 413)

    def check_reply(self, rows: int, steps: int, vocab: int) -> None:
        """Refuses a reply of ``rows x steps x vocab`` logits over ``max_reply_values``."""
        values = rows * steps * vocab
        if values > self.max_reply_values:
            raise RequestError(f"a reply of {values} logits ({rows} rows x {steps} steps x {vocab} words) is over "
                               f"this server's limit of {self.max_reply_values} values (tfnas serve "
                               "--max-reply-values); ask for fewer steps, or for the 'score' signature", 413)

    def check_generation(self, prompt_tokens: int, max_tokens: int, eos: bool) -> None:
        """Refuses a generation whose prompt (``prompt_tokens``, ``<eos>`` included when ``eos``) and words to
        write make more than ``max_tokens`` tokens."""
        total = prompt_tokens + max_tokens
        if total > self.max_tokens:
            raise RequestError(f"the prompt ({prompt_tokens} tokens{' with <eos>' if eos else ''}) and max_tokens "
                               f"{max_tokens} make {total} tokens, over this server's limit of {self.max_tokens} "
                               "(tfnas serve --max-tokens)", 413)


def stopped() -> RequestError:
    """The 503 of a request still running when the server stops waiting for it."""
    return RequestError("the server stopped before this request ended; send it again to a running server", 503)


def body_too_large(limit: int) -> RequestError:
    """The 413 of a request body over ``limit`` bytes (`Limits.max_request_bytes`)."""
    return RequestError(f"the request body is over this server's limit of {limit} bytes "
                        "(tfnas serve --max-request-bytes)", 413)


def request_field(request: Mapping[str, Any], name: str, default: Any, kind: Any,
                  bound: Bound | None = None) -> Any:
    """``request[name]`` (``default`` when absent), refused with a `RequestError` unless it is of ``kind`` and
    inside ``bound`` (`tfnas.settings.check_argument`: a bool is not a number, a string not a bool)."""
    try:
        return check_argument(name, request.get(name, default), kind, bound, label=f"'{name}'")
    except ValueError as err:
        raise RequestError(str(err)) from None


def parse_json(body: bytes) -> Any:
    """The JSON value of a request body."""
    try:
        return json.loads(body.decode("utf-8"))
    except RecursionError:
        raise RequestError("request body is nested too deeply to be read") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, an integer of over 4300 digits
        raise RequestError(f"request body is not valid JSON: {err}") from None


def _nested(name: str, value: Any) -> tuple[tuple[int, ...], list[Any]]:
    """The shape of a rectangular nested list and its leaves in order, read level by level (no recursion);
    `RequestError` if its rows differ in length or it is nested deeper than `MAX_RANK`."""
    shape: list[int] = []
    level = [value]
    while level and isinstance(level[0], list):
        if len(shape) == MAX_RANK:
            raise RequestError(f"input {name!r} is nested deeper than {MAX_RANK} levels")
        lengths = {len(v) if isinstance(v, list) else -1 for v in level}
        if len(lengths) > 1:
            raise RequestError(f"input {name!r} must be a rectangular nested list (every row of the same length)")
        shape.append(lengths.pop())
        level = [x for v in level for x in v]
    if any(isinstance(v, list) for v in level):
        raise RequestError(f"input {name!r} must be a rectangular nested list (every row of the same length)")
    return tuple(shape), level


#: What each kind of input may hold, and the NumPy type it becomes.
_KINDS = {"int": ((int,), np.int64, "integers (word ids)"), "float": ((int, float), np.float32, "numbers"),
          "str": ((str,), object, "strings")}


def _array(name: str, value: Any, kind: str) -> np.ndarray:
    """``value`` (a nested list) as an array of ``kind``: ``"int"``, ``"float"`` or ``"str"``."""
    shape, leaves = _nested(name, value)
    types, dtype, what = _KINDS[kind]
    if not all(isinstance(x, types) and not isinstance(x, bool) for x in leaves):
        raise RequestError(f"input {name!r} must hold {what}")
    out = np.empty(len(leaves), dtype)
    try:
        out[:] = leaves
    except OverflowError:
        raise RequestError(f"input {name!r} holds a number out of range") from None
    if kind == "float" and not np.all(np.isfinite(out)):
        raise RequestError(f"input {name!r} holds a value that is not finite")
    return out.reshape(shape)


def _columns(request: Mapping[str, Any], name: str, required: list[str]) -> tuple[dict[str, Any], bool]:
    """The named inputs of a request to signature ``name`` (columnar), and whether it came in the row
    (``instances``) form. Where the signature has one ``required`` input, ``inputs`` may be its value and each
    instance the value of its row."""
    single = required[0] if len(required) == 1 else None
    if "inputs" in request and "instances" in request:
        raise RequestError("give either 'inputs' or 'instances', not both")
    if "inputs" in request:
        inputs = request["inputs"]
        if isinstance(inputs, dict):
            return inputs, False
        if single is None:
            raise RequestError(f"'inputs' must be an object mapping input names to nested lists: signature "
                               f"{name!r} has several inputs ({', '.join(required)})")
        return {single: inputs}, False
    if "instances" in request:
        rows = request["instances"]
        if not isinstance(rows, list) or not rows:
            raise RequestError("'instances' must be a non-empty list, one item per row")
        if all(isinstance(r, dict) for r in rows):
            names = set(rows[0])
            if any(set(r) != names for r in rows):
                raise RequestError("every instance must name the same inputs")
            return {key: [r[key] for r in rows] for key in names}, True
        if single is None:
            raise RequestError(f"each instance must be an object naming the inputs: signature {name!r} has "
                               f"several inputs ({', '.join(required)})")
        if any(isinstance(r, dict) for r in rows):
            raise RequestError(f"the instances must be all objects naming the inputs, or all values of {single!r}")
        return {single: rows}, True
    raise RequestError("the request needs 'inputs' (or 'instances')")


@dataclass(frozen=True)
class Prediction:
    """The outputs of a predict request, and whether it came in the row form (``instances``)."""

    outputs: dict[str, np.ndarray]
    rows: bool = False

    def to_json(self, cancelled: Callable[[], bool] = lambda: False) -> bytes:
        """The reply: ``{"outputs": {name: nested list}}``, or ``{"predictions": [{name: row}, ...]}`` for the row
        form; with one output, its nested list without its name (``{"outputs": [...]}``, ``{"predictions":
        [row, ...]}``). Byte for byte as `json.dumps` writes it, made in pieces of at most `REPLY_PIECE_VALUES`
        values; `stopped` is raised between two pieces once ``cancelled()`` is true."""
        key = '{"predictions": ' if self.rows else '{"outputs": '
        if len(self.outputs) == 1:
            value = _pieces_of_array(np.asarray(next(iter(self.outputs.values()))))
        elif self.rows:
            count = len(next(iter(self.outputs.values())))
            value = _pieces_of_list(_pieces_of_object({k: v[i] for k, v in self.outputs.items()})
                                    for i in range(count))
        else:
            value = _pieces_of_object(self.outputs)
        reply = itertools.chain([key], value, ["}"])
        pieces = []
        for piece in reply:
            if cancelled():
                raise stopped()
            pieces.append(piece)
        return "".join(pieces).encode()


def _pieces_of_list(items: Iterator[Iterator[str]]) -> Iterator[str]:
    """A JSON list of the items, each given as its pieces."""
    yield "["
    for i, pieces in enumerate(items):
        if i:
            yield ", "
        yield from pieces
    yield "]"


def _pieces_of_object(arrays: Mapping[str, np.ndarray]) -> Iterator[str]:
    """A JSON object of nested lists, in pieces."""
    yield "{"
    for i, (key, value) in enumerate(arrays.items()):
        yield (", " if i else "") + json.dumps(key) + ": "
        yield from _pieces_of_array(np.asarray(value))
    yield "}"


def _pieces_of_array(value: np.ndarray) -> Iterator[str]:
    """``json.dumps(value.tolist())`` in pieces of at most `REPLY_PIECE_VALUES` values."""
    if value.ndim == 0 or value.size <= REPLY_PIECE_VALUES:
        yield json.dumps(value.tolist())
    elif value.ndim == 1:
        for start in range(0, len(value), REPLY_PIECE_VALUES):
            yield ("[" if start == 0 else ", ") + json.dumps(value[start:start + REPLY_PIECE_VALUES].tolist())[1:-1]
        yield "]"
    else:
        yield from _pieces_of_list(_pieces_of_array(row) for row in value)


class Signatures:
    """The signatures over ``model`` (`tfnas.export.metadata.SIGNATURES` and the int64 ones), with its states
    optional and ``limits`` on every request."""

    def __init__(self, model: ExportedModel, limits: Limits = Limits()):
        self.model = model
        self.limits = limits
        #: Each signature's inputs and outputs, by key.
        self.specs: dict[str, SignatureSpec] = signature_specs(model.metadata)
        run = {"serving_default": self._serving_default, "score": self._score, "lookup": self._lookup,
               "words": self._words}
        self._run: dict[str, Callable[[dict[str, Any]], dict[str, np.ndarray]]] = {
            **run, **{key: run[base] for key, base in INT64_SIGNATURES.items()}}

    def predict(self, request: Any) -> Prediction:
        """The outputs of a predict request (a parsed JSON value; other keys than ``signature_name``, ``inputs``
        and ``instances`` are ignored, as TensorFlow Serving ignores them)."""
        if not isinstance(request, dict):
            raise RequestError("the request must be a JSON object")
        name = request_field(request, "signature_name", DEFAULT_SIGNATURE, str)
        if name not in self._run:
            raise RequestError(f"unknown signature_name {shown(name)}; this model has {', '.join(self._run)}")
        spec = self.specs[name]
        required, optional = spec.required, list(spec.optional)
        inputs, rows = _columns(request, name, required)
        missing = [k for k in required if k not in inputs]
        unknown = set(inputs) - set(required) - set(optional)
        if missing or unknown:
            what = "; ".join(part for part in (
                f"missing {', '.join(missing)}" if missing else "", f"unknown {listed(unknown)}" if unknown else "")
                if part)
            allowed = ", ".join(required + [f"{k} (optional)" for k in optional])
            raise RequestError(f"signature {name!r}: {what}; its inputs are {allowed}")
        return Prediction(self._run[name](inputs), rows)

    # ------------------------------------------------------------ inputs
    def _ids(self, inputs: dict[str, Any], name: str = IDS_INPUT) -> np.ndarray:
        ids = _array(name, inputs[name], "int")
        if ids.ndim != 2 or 0 in ids.shape:
            raise RequestError(f"input {name!r} must be [batch, time] with at least one id; received shape "
                               f"{list(ids.shape)}")
        self.limits.check(ids.shape)
        vocab = len(self.model.vocab)
        if ids.min() < 0 or ids.max() >= vocab:
            raise RequestError(f"input {name!r} must hold word ids in [0, {vocab}); received values from "
                               f"{ids.min()} to {ids.max()}")
        return ids.astype(np.int32)

    def _states(self, inputs: dict[str, Any], batch: int) -> list[np.ndarray]:
        """The states of the request (zero where omitted), each broadcast from batch 1 to ``batch``."""
        states = self.model.initial_state(batch)
        for i, (name, spec) in enumerate(zip(self.model.state_names, self.model.metadata.states)):
            if name not in inputs:
                continue
            value = _array(name, inputs[name], "float")
            shape = tuple(spec["shape"])
            if value.ndim != 1 + len(shape) or value.shape[1:] != shape or value.shape[0] not in (1, batch):
                rows = "1" if batch == 1 else f"{batch} or 1"
                raise RequestError(f"input {name!r} must be [{rows}, {', '.join(map(str, shape))}]; "
                                   f"received shape {list(value.shape)}")
            states[i] = np.broadcast_to(value, (batch, *shape)).astype(np.float32)
        return states

    def _with_states(self, result: np.ndarray, key: str, states: list[np.ndarray]) -> dict[str, np.ndarray]:
        return {key: result, **{state_output_name(i): s for i, s in enumerate(states)}}

    # -------------------------------------------------------- signatures
    def _serving_default(self, inputs):
        ids = self._ids(inputs)
        self.limits.check_reply(*ids.shape, len(self.model.vocab))
        logits, states = self.model.step(ids, self._states(inputs, ids.shape[0]))
        return self._with_states(np.asarray(logits, np.float32), "logits", states)

    def _score(self, inputs):
        ids, targets = self._ids(inputs), self._ids(inputs, "targets")
        if targets.shape != ids.shape:
            raise RequestError(f"input 'targets' must have the shape of 'ids' {list(ids.shape)}; received "
                               f"{list(targets.shape)}")
        log_probs, states = self.model.log_probs(ids, targets, self._states(inputs, ids.shape[0]))
        return self._with_states(np.asarray(log_probs, np.float32), "log_probs", states)

    def _lookup(self, inputs):
        words = _array("words", inputs["words"], "str")
        if words.ndim != 2 or 0 in words.shape:
            raise RequestError(f"input 'words' must be [batch, time] with at least one word; received shape "
                               f"{list(words.shape)}")
        self.limits.check(words.shape)
        return {"ids": self.model.encode(list(words.ravel())).reshape(words.shape).astype(np.int32)}

    def _words(self, inputs):
        ids = _array(IDS_INPUT, inputs[IDS_INPUT], "int")
        if ids.ndim != 2:
            raise RequestError(f"input 'ids' must be [batch, time]; received shape {list(ids.shape)}")
        self.limits.check(ids.shape)
        vocab = len(self.model.vocab)
        valid = (ids >= 0) & (ids < vocab)
        words = np.array(self.model.decode(np.where(valid, ids, 0).ravel()), dtype=object).reshape(ids.shape)
        return {"words": np.where(valid, words, "")}
