"""SavedModel export with serving signatures and the vocabulary as an asset.

Signatures (all with a dynamic batch and time axis; ``hidden_i`` are the
recurrent states, ``[batch, units]``; the LSTM has ``hidden_0`` = h and
``hidden_1`` = c; with ``nlayers`` layers the states of layer 2 follow
those of layer 1, and so on, `tfnas.export.metadata.state_input_name`):

``serving_default``
    inputs ``ids`` (int32 ``[B, T]``) and optionally ``hidden_i``; outputs
    ``logits`` (``[B, T, V]``) and ``final_hidden_i``.
``score``
    inputs ``ids``, ``targets`` (int32 ``[B, T]``) and optionally
    ``hidden_i``; outputs ``log_probs`` (``[B, T]``, ``log p(targets |
    ids)``) and ``final_hidden_i``.
``lookup``
    input ``words`` (string ``[B, T]``); output ``ids`` (int32): the id of
    each word, ``<unk>``'s id for an unknown word, or -1 when the
    vocabulary has no ``<unk>``.
``words``
    input ``ids``; output ``words`` (string): the inverse of ``lookup``
    (an empty string for an id out of range).
``serving_default_int64``, ``score_int64``, ``words_int64``
    the same with int64 ``ids`` and ``targets`` (what
    ``keras.layers.TextVectorization`` gives), cast to int32 inside: the
    same outputs. A SignatureDef input has one dtype, so each dtype has its
    key (`INT64_SIGNATURES`).

The state inputs default to a zero row ``[1, units]`` (stored in the
SignatureDef's ``defaults``, which TensorFlow Serving uses when a request
omits them, as does ``saved_model_cli run``); a state whose batch axis is
1 is broadcast to the batch of ``ids``. In Python, ``tf.saved_model.load(path)``
also offers the same four functions as attributes
(``loaded.serving_default(ids)``, ``loaded.score(ids, targets)``,
``loaded.lookup(words)``, ...) where the states may be left out; the
restored ``loaded.signatures[...]`` (TensorFlow's Python object path, which
ignores SignatureDef defaults) need every input.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable, Sequence

import tensorflow as tf

from tfnas.errors import writing
from tfnas.export.graphs import forward_fn, ids_spec, score_fn, state_specs, with_int32_ids, zero_states
from tfnas.export.layout import metadata_path, staged_folder
from tfnas.export.metadata import INT64_SIGNATURES, SIGNATURES, VOCAB_FILE, metadata_for
from tfnas.lm.model import LanguageModel


def _with_optional(impl: Callable, required: Sequence[str], optional: Sequence[str], defaults: Sequence,
                   name: str) -> Callable:
    """``impl(*args)`` behind a Python signature whose trailing arguments default to tensors.

    `tf.saved_model.save` records tensor defaults of a signature function in
    ``SignatureDef.defaults``; this builds such a function for any number of
    states.
    """
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = inspect.Signature([inspect.Parameter(n, kind) for n in required]
                                  + [inspect.Parameter(n, kind, default=d) for n, d in zip(optional, defaults)])

    def function(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return impl(*bound.arguments.values())

    function.__signature__ = signature
    function.__name__ = name
    return function


def captured_variables(functions: Sequence[tf.types.experimental.PolymorphicFunction]) -> list[tf.Variable]:
    """The `tf.Variable` objects the traced ``functions`` read, each once, in order of first use."""
    found: dict[int, tf.Variable] = {}
    for function in functions:
        for variable in function.get_concrete_function().variables:
            found.setdefault(id(variable), variable)
    return list(found.values())


class ServingModule(tf.Module):
    """The object a SavedModel export saves: the model's variables, two lookup tables and seven functions.

    The Keras model is captured by the functions, not tracked as a child,
    so only its variables (and no Keras-generated signature) are saved.
    They are tracked as the `tf.Variable` objects the traced functions
    capture (`captured_variables`), not as Keras variables: only then does
    the SignatureDef loader that TensorFlow Serving and ``saved_model_cli
    run`` use restore them (with Keras variables it fails with "Could not
    find variable ..."; Keras' own ``ExportArchive`` tracks them the same
    way).

    Args:
        model: a built `LanguageModel` (or anything with ``forward`` and
            ``initial_state`` like it).
        vocab_path: the vocabulary file; it becomes the asset ``vocab.txt``.
        unk_id: the id unknown words map to (-1 when there is no ``<unk>``).
    """

    def __init__(self, model: LanguageModel, vocab_path: str | Path, unk_id: int | None):
        super().__init__(name="tfnas_language_model")
        vocab_path = str(vocab_path)
        self.word_to_id = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(vocab_path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                          tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
            default_value=tf.constant(-1 if unk_id is None else unk_id, tf.int64))
        self.id_to_word = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(vocab_path, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
                                          tf.string, tf.lookup.TextFileIndex.WHOLE_LINE),
            default_value="")
        specs = state_specs(model)
        names = [s.name for s in specs]
        defaults = zero_states(model)
        for dtype, suffix in ((tf.int32, ""), (tf.int64, "_int64")):
            forward, score = forward_fn(model), score_fn(model)
            if dtype == tf.int64:
                forward, score = with_int32_ids(forward, 1), with_int32_ids(score, 2)
            setattr(self, f"serving_default{suffix}", tf.function(
                _with_optional(forward, ["ids"], names, defaults, f"serving_default{suffix}"),
                input_signature=[ids_spec(dtype=dtype)] + specs))
            setattr(self, f"score{suffix}", tf.function(
                _with_optional(score, ["ids", "targets"], names, defaults, f"score{suffix}"),
                input_signature=[ids_spec(dtype=dtype), ids_spec("targets", dtype)] + specs))
            setattr(self, f"words{suffix}", tf.function(self._words, input_signature=[ids_spec(dtype=dtype)]))
        self.lookup = tf.function(self._lookup, input_signature=[tf.TensorSpec([None, None], tf.string, "words")])
        self.model_variables = captured_variables([self.serving_default, self.score, self.serving_default_int64,
                                                   self.score_int64])

    def _lookup(self, words):
        return {"ids": tf.cast(self.word_to_id.lookup(words), tf.int32)}

    def _words(self, ids):
        return {"words": self.id_to_word.lookup(tf.cast(ids, tf.int64))}

    def signatures(self) -> dict[str, tf.types.experimental.PolymorphicFunction]:
        return {key: getattr(self, key) for key in (*SIGNATURES, *INT64_SIGNATURES)}


def export_savedmodel(run, out_dir: str | Path) -> Path:
    """Writes a SavedModel of ``run`` (a `tfnas.export.LoadedRun`) to ``out_dir``; returns the folder.

    The vocabulary is the asset ``assets/vocab.txt``; the metadata goes to
    ``assets.extra/tfnas.json`` (ignored by TensorFlow Serving). The folder is
    written whole under a temporary name, then renamed
    (`tfnas.export.layout.staged_folder`).

    Raises:
        PathAccessError: a file cannot be written (named; a full disk with its free space).
    """
    with staged_folder(out_dir) as folder:
        staging = folder / "assets.extra"
        with writing(staging):
            staging.mkdir()
        vocab_path = staging / VOCAB_FILE  # read by the table initialisers, copied into assets/
        run.vocab.save(vocab_path)
        module = ServingModule(run.model, vocab_path, run.vocab.unk_id)
        with writing(folder):  # TensorFlow's error of a full disk too
            tf.saved_model.save(module, str(folder), signatures=module.signatures())
            vocab_path.unlink()
        metadata_for(run, "savedmodel").save(metadata_path("savedmodel", folder))
    return Path(out_dir)
