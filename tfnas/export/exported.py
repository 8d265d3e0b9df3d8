"""`ExportedModel`: one interface over a SavedModel, an ONNX, a ``.keras`` and a TFLite export.

Scoring and generation only need ``step(ids, states) -> (logits, states)``,
the vocabulary and the metadata, so they run the same on every format::

    from tfnas.export import load_export

    lm = load_export("exports/ptb/onnx")        # or .../savedmodel, .../keras, .../tflite
    logits, states = lm.step(ids)                # ids: int [batch, time]
    logits, states = lm.step(more_ids, states)   # carry the state on
"""
from __future__ import annotations

import abc
import functools
from pathlib import Path
from typing import Sequence

import numpy as np

from tfnas.data import Vocabulary
from tfnas.export.layout import KERAS_FILE, ONNX_FILE, TFLITE_FILE, detect_format, metadata_path
from tfnas.export.metadata import IDS_INPUT, VOCAB_FILE, ExportMetadata, state_output_name

States = list  # list of float32 arrays [batch, *shape], in the order of metadata.states


class ExportedModel(abc.ABC):
    """A language model loaded from an export.

    Attributes:
        path: the export folder.
        format: ``"savedmodel"``, ``"onnx"``, ``"keras"`` or ``"tflite"``.
        metadata: the `ExportMetadata` (``tfnas.json``).
        vocab: the vocabulary shipped with the export (checked against the
            metadata's SHA-256 on load).
    """

    format: str = ""

    def __init__(self, path: Path, metadata: ExportMetadata, vocab: Vocabulary):
        self.path = Path(path)
        self.metadata = metadata
        self.vocab = vocab

    # ----------------------------------------------------------- states
    @property
    def state_names(self) -> list[str]:
        return self.metadata.state_names

    def initial_state(self, batch_size: int) -> States:
        """Zero states for ``batch_size`` sequences."""
        return [np.zeros((batch_size, *s["shape"]), np.float32) for s in self.metadata.states]

    def _states(self, ids: np.ndarray, states: States | None) -> States:
        if states is None:
            return self.initial_state(ids.shape[0])
        if len(states) != len(self.metadata.states):
            raise ValueError(f"this model has {len(self.metadata.states)} states "
                             f"({', '.join(self.state_names)}); received {len(states)}")
        return [np.asarray(s, np.float32) for s in states]

    @staticmethod
    def _ids(ids) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be an integer array [batch, time]; received shape {ids.shape}, "
                             f"dtype {ids.dtype}")
        return ids.astype(np.int32)

    def _finals(self, out: dict) -> States:
        """The final states (NumPy) from a TensorFlow output dict (``final_hidden_i``)."""
        return [out[state_output_name(i)].numpy() for i in range(len(self.state_names))]

    # ------------------------------------------------------------ model
    def step(self, ids: np.ndarray, states: States | None = None) -> tuple[np.ndarray, States]:
        """Logits ``[batch, time, vocab]`` for ``ids`` and the final states.

        Args:
            ids: int ``[batch, time]``.
            states: the states to start from (None: zeros).
        """
        ids = self._ids(ids)
        return self._step(ids, self._states(ids, states))

    @abc.abstractmethod
    def _step(self, ids: np.ndarray, states: States) -> tuple[np.ndarray, States]:
        """Runs the model (``ids`` int32, states complete)."""

    def log_probs(self, ids, targets, states: States | None = None) -> tuple[np.ndarray, States]:
        """``log p(targets[b, t] | ids[b, :t+1])`` (float64 ``[batch, time]``) and the final states.

        Computed inside the format's runtime (the logits never leave it).
        """
        ids, targets = self._ids(ids), self._ids(targets)
        if targets.shape != ids.shape:
            raise ValueError(f"targets must have the shape of ids {ids.shape}; received {targets.shape}")
        if targets.size and not 0 <= targets.min() <= targets.max() < len(self.vocab):
            raise ValueError(f"targets must be word ids in [0, {len(self.vocab)}); received values from "
                             f"{targets.min()} to {targets.max()}")
        return self._log_probs(ids, targets, self._states(ids, states))

    @abc.abstractmethod
    def _log_probs(self, ids: np.ndarray, targets: np.ndarray, states: States) -> tuple[np.ndarray, States]:
        """Runs the model and its scoring head (``ids`` and ``targets`` int32, states complete)."""

    # ------------------------------------------------------- vocabulary
    def encode(self, words: Sequence[str]) -> np.ndarray:
        """Ids of ``words`` (``<unk>``'s id for unknown words, -1 when the vocabulary has no ``<unk>``)."""
        words = list(words)
        if self.vocab.unk_id is not None:
            return self.vocab.encode(words)
        return np.fromiter((self.vocab.word_to_id(w) if w in self.vocab else -1 for w in words), np.int64,
                           len(words))

    def decode(self, ids: Sequence[int]) -> list[str]:
        return self.vocab.decode(np.asarray(ids, np.int64))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, vocab={len(self.vocab)}, "
                f"states={self.state_names}, attention={self.metadata.attention})")


class SavedModelExport(ExportedModel):
    """A SavedModel export, run through its ``serving_default`` / ``score`` / ``lookup`` functions."""

    format = "savedmodel"

    def __init__(self, path: Path, metadata: ExportMetadata, vocab: Vocabulary):
        import tensorflow as tf

        super().__init__(path, metadata, vocab)
        self._tf = tf
        self.loaded = tf.saved_model.load(str(path))

    def _inputs(self, ids, states) -> dict:
        tf = self._tf
        return {IDS_INPUT: tf.constant(ids),
                **{name: tf.constant(s) for name, s in zip(self.state_names, states)}}


    def _step(self, ids, states):
        out = self.loaded.signatures["serving_default"](**self._inputs(ids, states))
        return out["logits"].numpy(), self._finals(out)

    def _log_probs(self, ids, targets, states):
        out = self.loaded.signatures["score"](targets=self._tf.constant(targets), **self._inputs(ids, states))
        return out["log_probs"].numpy().astype(np.float64), self._finals(out)

    def encode(self, words):
        """Ids from the model's own ``lookup`` signature (the vocabulary asset).

        A word that is not valid Unicode (a lone surrogate) goes in as its
        surrogate-escaped bytes, which no vocabulary word equals: it is
        unknown, as in the other formats."""
        words = [w.encode("utf-8", "surrogatepass") for w in words]
        if not words:
            return np.zeros((0,), np.int64)
        out = self.loaded.signatures["lookup"](words=self._tf.constant([words]))
        return out["ids"].numpy()[0].astype(np.int64)


class OnnxExport(ExportedModel):
    """An ONNX export, run in onnxruntime (CPU)."""

    format = "onnx"

    def __init__(self, path: Path, metadata: ExportMetadata, vocab: Vocabulary):
        from tfnas.export.parity import ort_session

        super().__init__(path, metadata, vocab)
        self.session = ort_session(path / ONNX_FILE)
        self._outputs = ["logits"] + [state_output_name(i) for i in range(len(self.state_names))]

    @functools.cached_property
    def head(self):
        """The onnxruntime session of `tfnas.export.onnx_graph.log_prob_head` (made on first scoring)."""
        from tfnas.export.onnx_graph import log_prob_head
        from tfnas.export.parity import ort_session

        return ort_session(log_prob_head())

    def _feeds(self, ids, states) -> dict:
        return {IDS_INPUT: ids.astype(np.int64), **dict(zip(self.state_names, states))}

    def _step(self, ids, states):
        got = self.session.run(self._outputs, self._feeds(ids, states))
        return got[0], list(got[1:])

    def _log_probs(self, ids, targets, states):
        from onnxruntime import OrtValue

        from tfnas.export.onnx_graph import HEAD_LOG_PROBS, HEAD_LOGITS, HEAD_TARGETS

        # The logits stay an onnxruntime value between the model and the head: no copy.
        feeds = {name: OrtValue.ortvalue_from_numpy(value) for name, value in self._feeds(ids, states).items()}
        got = self.session.run_with_ort_values(self._outputs, feeds)
        feeds = {HEAD_LOGITS: got[0], HEAD_TARGETS: OrtValue.ortvalue_from_numpy(targets.astype(np.int64))}
        log_probs = self.head.run([HEAD_LOG_PROBS], feeds)[0]
        return log_probs.astype(np.float64), [v.numpy() for v in got[1:]]


class KerasExport(ExportedModel):
    """A ``.keras`` export, run with `LanguageModel.forward` inside a `tf.function`."""

    format = "keras"

    def __init__(self, path: Path, metadata: ExportMetadata, vocab: Vocabulary):
        import tensorflow as tf

        from tfnas.export.graphs import forward_fn, score_fn
        from tfnas.export.keras_format import load_keras_model

        super().__init__(path, metadata, vocab)
        self.model = load_keras_model(path / KERAS_FILE)
        self._forward = tf.function(forward_fn(self.model), reduce_retracing=True)
        self._score = tf.function(score_fn(self.model), reduce_retracing=True)

    def _step(self, ids, states):
        out = self._forward(ids, *states)
        return out["logits"].numpy(), self._finals(out)

    def _log_probs(self, ids, targets, states):
        out = self._score(ids, targets, *states)
        return out["log_probs"].numpy().astype(np.float64), self._finals(out)


class TfliteExport(ExportedModel):
    """A TFLite export, run in ``tf.lite.Interpreter`` through `tfnas.export.tflite_runtime.TfliteRunner`.

    Any batch and length run exactly through the export's fixed windows (the
    runner's docstring says how); a model with an attention head takes at
    most ``metadata.tflite_window`` tokens per call. The TFLite model holds
    the forward pass only, so ``log p(target)`` is the float64 log-softmax of
    its logits, computed in NumPy.
    """

    format = "tflite"

    def __init__(self, path: Path, metadata: ExportMetadata, vocab: Vocabulary):
        from tfnas.export.tflite_runtime import TfliteRunner

        super().__init__(path, metadata, vocab)
        self.runner = TfliteRunner(path=path / TFLITE_FILE, attention=metadata.attention is not None)

    def _step(self, ids, states):
        return self.runner.run(ids, states)

    def _log_probs(self, ids, targets, states):
        logits, finals = self.runner.run(ids, states)
        logits = logits.astype(np.float64)
        top = logits.max(axis=-1, keepdims=True)
        log_norm = np.log(np.exp(logits - top).sum(axis=-1)) + top[..., 0]
        return np.take_along_axis(logits, targets[..., None], axis=-1)[..., 0] - log_norm, finals


_BACKENDS: dict[str, type[ExportedModel]] = {"savedmodel": SavedModelExport, "onnx": OnnxExport,
                                             "keras": KerasExport, "tflite": TfliteExport}


def load_export(path: str | Path) -> ExportedModel:
    """Loads an export made by `tfnas.export.export_run` (``tfnas export``).

    Args:
        path: the export folder (``DIR/savedmodel``, ``DIR/onnx``,
            ``DIR/keras``, ``DIR/tflite``), its model file, or the ``--out`` folder when it
            holds a single export.

    Raises:
        FileNotFoundError, UnknownFormatError: no export at ``path``.
        VocabularyMismatchError: the shipped vocabulary is not the one the
            model was exported with.
    """
    fmt, folder = detect_format(path)
    metadata = ExportMetadata.load(metadata_path(fmt, folder))
    vocab_path = folder / "assets" / VOCAB_FILE if fmt == "savedmodel" else folder / VOCAB_FILE
    vocab = Vocabulary.load(vocab_path)
    metadata.check_vocabulary(vocab, where=f"vocabulary file {vocab_path}")
    return _BACKENDS[fmt](folder, metadata, vocab)
