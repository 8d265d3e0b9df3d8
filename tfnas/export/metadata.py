"""The small JSON file (``tfnas.json``) that travels with every export.

It records what a consumer needs besides the weights: the vocabulary's size
and SHA-256 (so a swapped ``vocab.txt`` is caught), the ids of ``<eos>`` and
``<unk>``, the names and shapes of the recurrent states, the evaluation
settings of the run (``bptt``, ``test_batch_size``) so that ``tfnas score``
uses the trainer's windows by default, and the kind of token the model reads
(``tokens``: ``words``, or ``chars`` for a character-level model, whose
prompts and scored texts are split into characters and whose generated text
is joined without spaces: `tfnas.data.tokens`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from tfnas.data import Vocabulary
from tfnas.errors import access_error, shown, writing
from tfnas.export.errors import ExportError, VocabularyMismatchError

#: File name of the metadata (next to ``model.onnx`` / ``model.keras``; in ``assets.extra/`` of a SavedModel).
METADATA_FILE = "tfnas.json"
#: File name of the vocabulary shipped with every export (one word per line, line ``i`` is id ``i - 1``).
VOCAB_FILE = "vocab.txt"
#: Version of the layout of `ExportMetadata`.
METADATA_VERSION = 1
#: Name of the token-id input of every exported graph (``[batch, time]``, int32).
IDS_INPUT = "ids"
#: The signature keys of a SavedModel export, which `tfnas serve` answers on any export (ids int32).
SIGNATURES: tuple[str, ...] = ("serving_default", "score", "lookup", "words")
#: The signature keys that take int64 ids and targets, each with the int32 signature it equals.
INT64_SIGNATURES: dict[str, str] = {"serving_default_int64": "serving_default", "score_int64": "score",
                                    "words_int64": "words"}


def state_input_name(i: int) -> str:
    """Name of the ``i``-th initial-state input (``hidden_0``, ``hidden_1``, ...).

    ``i`` indexes `LanguageModel.initial_state`: the states layer after
    layer, so a one-layer model keeps its names and a model with ``nlayers``
    layers of ``k`` states each has ``hidden_0`` ... ``hidden_{k*nlayers-1}``,
    layer ``l`` (from 0) owning ``hidden_{k*l}`` ... ``hidden_{k*l+k-1}`` (a
    two-layer LSTM: ``h, c`` of layer 0 are ``hidden_0, hidden_1``, those of
    layer 1 ``hidden_2, hidden_3``).

    The word ``state`` is avoided on purpose: tf2onnx's loop rewriter fails on
    graph inputs called ``state``.
    """
    return f"hidden_{i}"


def state_output_name(i: int) -> str:
    """Name of the ``i``-th final-state output (``final_hidden_0``, ...)."""
    return f"final_hidden_{i}"


def vocab_sha256(vocab: Vocabulary) -> str:
    """SHA-256 of the vocabulary file as `Vocabulary.save` writes it."""
    return hashlib.sha256("".join(w + "\n" for w in vocab.words).encode("utf-8")).hexdigest()


@dataclass
class ExportMetadata:
    """What an export declares about itself (see the module docstring).

    ``states`` is a list of ``{"name": "hidden_0", "shape": [units]}`` (the
    shape without the batch axis); ``attention`` is the name of the model's
    attention head, or None. An attention head reads only the tokens of the
    current call (one BPTT window); ``tfnas generate`` uses this to rebuild
    the window at each step. ``run_dir`` and ``weights`` name where the
    model came from, ``model_sha256`` what it is
    (`tfnas.export.LoadedRun.model_sha256`; None in an export of a tfnas
    before it): the formats of an export folder share it. A TFLite export
    records its fixed shapes (``tflite_batch`` rows, ``tflite_window``
    tokens per call) and its weight quantisation (``quantize``: None,
    ``"float16"`` or ``"int8"``); ``parity_max_abs_diff`` is the difference
    to Keras measured at export (ONNX, TFLite).
    """

    format: str
    vocab_size: int
    vocab_sha256: str
    eos_id: int | None
    unk_id: int | None
    states: list[dict[str, Any]]
    bptt: int
    test_batch_size: int
    attention: str | None = None
    tokens: str = "words"
    genotype: dict[str, Any] | None = None
    run_dir: str | None = None
    weights: str | None = None
    model_sha256: str | None = None
    test_ppl: float | None = None
    opset: int | None = None
    parity_max_abs_diff: float | None = None
    tflite_batch: int | None = None
    tflite_window: int | None = None
    quantize: str | None = None
    tfnas_version: str = ""
    version: int = METADATA_VERSION

    @property
    def state_names(self) -> list[str]:
        return [s["name"] for s in self.states]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = "metadata") -> "ExportMetadata":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as err:  # ValueError: malformed, or an integer longer than Python reads
            raise ExportError(f"{where} is not valid JSON: {err}") from None
        version = data.get("version") if isinstance(data, dict) else type(data).__name__
        if type(version) is not int or version != METADATA_VERSION:  # true and 1.0 equal 1 in Python
            raise ExportError(f"{where} has metadata version {shown(version)}; this tfnas reads version "
                              f"{METADATA_VERSION}: export the run again")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str | Path) -> Path:
        """Writes the metadata to ``path``; a write that fails raises `tfnas.errors.PathAccessError` naming it."""
        path = Path(path)
        with writing(path):
            path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ExportMetadata":
        path = Path(path)
        if not path.exists():
            raise ExportError(f"{path} is missing: the export is incomplete (export the run again)")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise access_error("read export metadata", path, err) from err
        except UnicodeDecodeError as err:
            raise ExportError(f"{path} is not valid JSON: {err}") from None
        return cls.from_json(text, where=str(path))

    def check_vocabulary(self, vocab: Vocabulary, where: str) -> None:
        """Raises `VocabularyMismatchError` unless ``vocab`` is the one this export was made with."""
        if len(vocab) != self.vocab_size or vocab_sha256(vocab) != self.vocab_sha256:
            raise VocabularyMismatchError(
                f"{where} ({len(vocab)} words, sha256 {vocab_sha256(vocab)[:12]}) is not the vocabulary the "
                f"model was trained with ({self.vocab_size} words, sha256 {self.vocab_sha256[:12]})")


def metadata_for(run, fmt: str, **extra_fields: Any) -> ExportMetadata:
    """The metadata of ``run`` (a `tfnas.export.run.LoadedRun`) exported as ``fmt``."""
    from tfnas import __version__
    from tfnas.export.run import state_shapes

    model = run.model
    hparams = getattr(model, "hparams", None)
    result = run.result or {}
    return ExportMetadata(
        format=fmt,
        vocab_size=len(run.vocab),
        vocab_sha256=vocab_sha256(run.vocab),
        eos_id=run.vocab.eos_id,
        unk_id=run.vocab.unk_id,
        states=[{"name": state_input_name(i), "shape": list(shape)}
                for i, shape in enumerate(state_shapes(model))],
        bptt=run.bptt,
        test_batch_size=run.test_batch_size,
        attention=getattr(hparams, "attention", None),
        tokens=run.config.tokens if run.config is not None else "words",
        genotype=None if run.genotype is None else run.genotype.to_dict(),
        run_dir=str(run.run_dir),
        weights=str(run.weights),
        model_sha256=run.model_sha256,
        test_ppl=result.get("test_ppl"),
        tfnas_version=__version__,
        **extra_fields,
    )


def check_same_vocabulary(model_vocab: Vocabulary, other: Vocabulary, where: str) -> None:
    """Raises `VocabularyMismatchError`, naming the first difference, unless ``other == model_vocab``."""
    if other == model_vocab:
        return
    for i, (mine, theirs) in enumerate(zip(model_vocab.words, other.words)):
        if mine != theirs:
            first = f"line {i + 1} is {theirs!r}, the model's is {mine!r}"
            break
    else:
        first = "one is a prefix of the other"
    raise VocabularyMismatchError(
        f"{where} differs from the model's vocabulary ({first}; {len(other)} vs {len(model_vocab)} words): "
        "the text was prepared for another model")
