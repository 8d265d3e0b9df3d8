"""TFLite export: the forward pass at a fixed ``[batch, window]``, builtin ops only, optional weight quantisation.

``tf.lite.TFLiteConverter`` cannot turn the dynamic-shape serving functions
into builtin ops (the time loop's ``TensorListReserve`` needs a known element
shape), so the forward pass (`tfnas.export.graphs.forward_fn`) is traced at
fixed shapes: the signature ``window`` (``ids`` int32 ``[batch, window]``, the
states ``hidden_i`` ``[batch, units]`` in, ``logits`` ``[batch, window,
vocab]`` and ``final_hidden_i`` out) and, when ``window > 1``, ``step``, the
same over one token (`tfnas.export.tflite_runtime` runs any shape exactly
with the two). Both are saved in a temporary SavedModel and converted with
``supported_ops = [TFLITE_BUILTINS]`` only: an op without a builtin kernel
fails the conversion (`TfliteConversionError`) instead of falling back on
TensorFlow ops (Flex), which the stock interpreter refuses.

``quantize``:

* ``"float16"``: the weights are stored as float16 (half the file), turned
  back into float32 when the model loads; the arithmetic stays float32.
* ``"int8"``: dynamic-range quantisation: weight tensors of at least 1024
  values are stored as int8 with a scale per output channel, and the
  matrix products quantise their activations on the fly. No representative
  dataset is needed (that is full-integer quantisation, not offered here);
  smaller tensors (biases, a tiny model's matrices) stay float32.

The export is checked against the Keras model at export (`tflite_parity`).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfnas.errors import TfnasError, writing
from tfnas.export.errors import ParityError, TfliteConversionError
from tfnas.export.graphs import forward_fn
from tfnas.export.layout import TFLITE_FILE, metadata_path, staged_folder
from tfnas.export.metadata import IDS_INPUT, VOCAB_FILE, metadata_for, state_input_name
from tfnas.export.run import LoadedRun, state_shapes
from tfnas.lm.model import LanguageModel
from tfnas.export.tflite_runtime import STEP_SIGNATURE, WINDOW_SIGNATURE, TfliteRunner
from tfnas.progress import Progress
from tfnas.settings import AT_LEAST_ONE, OneOf, check_argument

#: The weight quantisations of ``--quantize`` (None: float32 weights).
QUANTIZATIONS: tuple[str, ...] = ("float16", "int8")
#: Default bound of ``max |logits_tflite - logits_keras|`` per quantisation (None: float32), about ten times what
#: was measured on a PTB model (200 units, 10k words, briefly trained; docs/guides/exporting.md): float32 1.9e-6,
#: float16 2.0e-3, int8 4.2e-2.
DEFAULT_TOLERANCES: dict[str | None, float] = {None: 1e-5, "float16": 2e-2, "int8": 0.5}
#: Windows of the parity check: this many whole windows, then a part window of half a window.
PARITY_WINDOWS = 3


def _signature(model, batch: int, length: int) -> tf.types.experimental.ConcreteFunction:
    specs = [tf.TensorSpec([batch, length], tf.int32, IDS_INPUT)]
    specs += [tf.TensorSpec([batch, *shape], tf.float32, state_input_name(i))
              for i, shape in enumerate(state_shapes(model))]
    return tf.function(forward_fn(model), input_signature=specs).get_concrete_function()


def check_options(batch: int, window: int | None, quantize: str | None) -> None:
    """Refuses a ``batch`` or ``window`` that is not an integer >= 1 (window None: the run's bptt) and a
    ``quantize`` other than None, ``"float16"`` or ``"int8"``, with a `tfnas.settings.SettingsError`."""
    check_argument("batch", batch, int, AT_LEAST_ONE)
    check_argument("window", window, int | None, AT_LEAST_ONE)
    check_argument("quantize", quantize, str | None, OneOf(QUANTIZATIONS))


def convert_to_tflite(model: LanguageModel, batch: int, window: int, quantize: str | None = None) -> bytes:
    """The TFLite flatbuffer of ``model.forward`` at ``[batch, window]`` (and ``[batch, 1]``), builtin ops only.

    Args:
        model: a built `LanguageModel`.
        batch: rows per call (>= 1).
        window: tokens per call (>= 1).
        quantize: None, ``"float16"`` or ``"int8"`` (see the module docstring).

    Raises:
        SettingsError: a bad ``batch``, ``window`` or ``quantize``.
        TfliteConversionError: the converter failed, e.g. an op without a
            TFLite builtin kernel (its message names the op).
    """
    check_options(batch, window, quantize)
    signatures = {WINDOW_SIGNATURE: _signature(model, batch, window)}
    if window > 1:
        signatures[STEP_SIGNATURE] = _signature(model, batch, 1)
    module = tf.Module()  # tracks the captured variables, so that the SavedModel holds them
    module.model_variables = list({id(v): v for f in signatures.values() for v in f.variables}.values())
    with tempfile.TemporaryDirectory(prefix="tfnas-tflite-") as folder:
        tf.saved_model.save(module, folder, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=list(signatures))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        try:
            return converter.convert()
        except Exception as err:  # ConverterError and others; the op is named in the message
            first = next((line.strip() for line in str(err).splitlines() if "op" in line and "error" in line),
                         str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
            raise TfliteConversionError(f"TFLite conversion with builtin ops only failed: {first}") from err


@dataclass
class TfliteParity:
    """``max_abs_diff``: largest ``|logits_tflite - logits_keras|``; ``max_abs_state_diff`` of the final states."""

    max_abs_diff: float
    max_abs_state_diff: float
    tokens: int


def parity_ids(run, batch: int, length: int, seed: int = 0) -> np.ndarray:
    """``[batch, length]`` ids: the start of the run's test split cut into ``batch`` rows when its corpus can be
    read from where it was trained, else seeded random ids."""
    from tfnas.data import batchify, load_corpus

    config = run.config
    try:
        test = None if config is None else load_corpus(config.dataset, config.data_dir, download=False).test
    except (TfnasError, OSError):
        test = None
    if test is not None and len(test) >= batch * length and len(run.vocab) == run.model.vocab_size:
        return batchify(np.asarray(test, np.int64), batch)[:, :length].astype(np.int32)
    return np.random.default_rng(seed).integers(0, run.model.vocab_size, (batch, length)).astype(np.int32)


def tflite_parity(model, runner: TfliteRunner, ids: np.ndarray) -> TfliteParity:
    """Compares the TFLite export (`TfliteRunner.run`) with ``model.forward`` (Keras) over ``ids`` ``[B, T]``.

    Both are called on the same windows of ``runner.window`` tokens, each
    with its own state carried from the window before (an attention head
    reads one call); a last part window goes through the runner's ``step``
    path. ``T`` need not be a multiple of the window nor ``B`` of its batch.
    """
    got_states = [np.zeros((ids.shape[0], *s.shape[1:]), np.float32) for s in model.initial_state(1)]
    states, report = None, TfliteParity(0.0, 0.0, int(ids.size))
    for start in range(0, ids.shape[1], runner.window):
        window = ids[:, start:start + runner.window]
        got, got_states = runner.run(window, got_states)
        out = model.forward(window, states, training=False)
        states = out.states
        report.max_abs_diff = max(report.max_abs_diff, float(np.max(np.abs(got - np.asarray(out.logits)))))
        state_diffs = [float(np.max(np.abs(a - np.asarray(b)))) for a, b in zip(got_states, states)]
        report.max_abs_state_diff = max([report.max_abs_state_diff, *state_diffs])
    return report


def export_tflite(run: LoadedRun, out_dir: str | Path, batch: int = 1, window: int | None = None,
                  quantize: str | None = None, check: bool = True, tolerance: float | None = None,
                  progress: Progress | None = None) -> Path:
    """Writes ``out_dir/model.tflite``, ``vocab.txt`` and ``tfnas.json``; returns the model file.

    Args:
        run: a `tfnas.export.LoadedRun`.
        out_dir: the export folder (replaced if it holds an earlier export).
        batch: rows per call of the exported signatures.
        window: tokens per call (None: the run's ``bptt``). A model with an
            attention head needs at least ``bptt`` (generation and scoring
            run windows of ``bptt`` through its head).
        quantize: None, ``"float16"`` or ``"int8"`` weights.
        check: run `tflite_parity` on ``PARITY_WINDOWS`` windows and a half
            one of the run's test text and record the difference.
        tolerance: largest accepted ``max |logits_tflite - logits_keras|``
            (None: `DEFAULT_TOLERANCES` of ``quantize``).
        progress: a `tfnas.progress.Progress` whose note names each stage.

    Raises:
        SettingsError: a bad ``batch``, ``window`` or ``quantize``.
        ExportError: an attention model with ``window < bptt``.
        TfliteConversionError: see `convert_to_tflite`.
        ParityError: ``check`` and the difference exceeds ``tolerance``.
        PathAccessError: a file cannot be written (named).
    """
    from tfnas.export.errors import ExportError

    check_options(batch, window, quantize)
    window = run.bptt if window is None else window
    attention = getattr(run.model.hparams, "attention", None) is not None
    if attention and window < run.bptt:
        raise ExportError(f"a model with an attention head reads windows of its bptt ({run.bptt} tokens) at a time; "
                          f"a TFLite window of {window} cannot hold one: pass --tflite-window {run.bptt} or more")
    tolerance = DEFAULT_TOLERANCES[quantize] if tolerance is None else tolerance
    bar = Progress("tflite", quiet=True) if progress is None else progress
    bar.describe("tflite: converting (builtin ops only)")
    content = convert_to_tflite(run.model, batch, window, quantize)
    parity = None
    if check:
        bar.describe("tflite: parity check against Keras")
        runner = TfliteRunner(content, attention=attention)
        ids = parity_ids(run, batch, PARITY_WINDOWS * window + max(window // 2, 1))
        parity = tflite_parity(run.model, runner, ids)
        if not parity.max_abs_diff <= tolerance:
            raise ParityError(f"the TFLite interpreter and Keras disagree by {parity.max_abs_diff:.3g} (max |logits| "
                              f"difference, weights {quantize or 'float32'}), more than the tolerance {tolerance:g}")
    bar.describe("tflite: saving")
    metadata = metadata_for(run, "tflite", parity_max_abs_diff=None if parity is None else parity.max_abs_diff,
                            tflite_batch=batch, tflite_window=window, quantize=quantize)
    with staged_folder(out_dir) as folder:
        with writing(folder / TFLITE_FILE):
            (folder / TFLITE_FILE).write_bytes(content)
        run.vocab.save(folder / VOCAB_FILE)
        metadata.save(metadata_path("tflite", folder))
    return Path(out_dir) / TFLITE_FILE
