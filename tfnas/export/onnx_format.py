"""ONNX export through tf2onnx, with dynamic batch and time axes and the state as input and output.

The graph has the inputs ``ids`` (int64 ``[batch, time]``, cast to int32
inside: int64 is what ONNX's own index inputs, NumPy's default integer and
``keras.layers.TextVectorization`` use) and ``hidden_i``
(float32 ``[batch, units]``, a row of batch 1 is broadcast; every state of
every layer, layer after layer, `tfnas.export.metadata.state_input_name`;
optional: each has a zero row ``[1, units]`` as its initializer, which
onnxruntime uses when a feed omits it),
and the outputs ``logits`` (``[batch, time, vocab]``) and ``final_hidden_i``.
An ONNX input has one element type, so the same graph with int32 ``ids``
is written beside it as ``model_int32.onnx``
(`tfnas.export.onnx_graph.retyped_input`); both read their weights from
one file, ``model.onnx.data`` (ONNX external data), so the weights are
stored once. ``vocab.txt`` and ``tfnas.json`` are written next to them; the
metadata is also stored in each model's ``metadata_props`` under ``tfnas``.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import tensorflow as tf

from tfnas.errors import writing
from tfnas.export.errors import OnnxConversionError, ParityError
from tfnas.export.graphs import forward_fn, ids_spec, state_specs, with_int32_ids
from tfnas.export.layout import ONNX_DATA_FILE, ONNX_FILE, ONNX_INT32_FILE, metadata_path, staged_folder
from tfnas.export.metadata import IDS_INPUT, VOCAB_FILE, metadata_for
from tfnas.export.onnx_graph import MIN_OPSET, hoist_loop_invariants, nonstandard_nodes, retyped_input
from tfnas.export.run import LoadedRun, state_shapes
from tfnas.lm.model import LanguageModel
from tfnas.progress import Progress

#: Default and lowest supported ONNX opset.
DEFAULT_OPSET = MIN_OPSET
#: Default bound of ``max |logits_onnx - logits_keras|`` checked after an export.
DEFAULT_TOLERANCE = 1e-5


class _Collect(logging.Handler):
    """Keeps tf2onnx's log lines so that a failure can name the op that caused it."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


class _DropTableWarning(logging.Filter):
    """Hides TensorFlow's "Issue encountered when serializing table_initializer" warning.

    tf2onnx exports the default graph's collections, which hold the lookup
    tables of any SavedModel export made earlier in the process; TensorFlow
    warns that it cannot serialise them, which does not affect the ONNX graph.
    """

    def filter(self, record):
        return not record.getMessage().startswith("Issue encountered when serializing table_initializer")


def _name_dims(model: onnx.ModelProto) -> None:
    """Symbolic names for the dynamic axes: ``batch`` and ``time``."""
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        names = ["batch", "time"] if value.name in (IDS_INPUT, "logits") else ["batch"]
        for dim, name in zip(dims, names):
            if not dim.HasField("dim_value"):
                dim.dim_param = name


def _default_states(proto: onnx.ModelProto, model) -> None:
    """Makes every state input optional: a zero row ``[1, *shape]`` as its initializer (ONNX IR >= 4)."""
    for spec, shape in zip(state_specs(model), state_shapes(model)):
        proto.graph.initializer.append(onnx.numpy_helper.from_array(np.zeros([1, *shape], np.float32), spec.name))


def convert_to_onnx(model: LanguageModel, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Converts ``model.forward`` (inference) to ONNX, its ``ids`` input int64.

    The time loop's captured weights are read from the outer scope
    (`tfnas.export.onnx_graph.hoist_loop_invariants`), so onnxruntime
    pre-packs them once instead of carrying them through every step.

    Args:
        model: a built `LanguageModel` (any cell, any head).
        opset: the ONNX opset, at least 17.

    Raises:
        OnnxConversionError: tf2onnx failed, or left TensorFlow ops without
            an ONNX equivalent (the message and ``err.ops`` name them).
    """
    import tf2onnx

    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"Argument `opset` must be an integer >= {MIN_OPSET}; received: opset={opset!r}")
    specs = [ids_spec(dtype=tf.int64)] + state_specs(model)
    function = tf.function(with_int32_ids(forward_fn(model), 1), input_signature=specs)
    collect = _Collect()
    logger = logging.getLogger("tf2onnx")
    logger.addHandler(collect)
    quiet = _DropTableWarning()
    tf.get_logger().addFilter(quiet)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=opset)
    except Exception as err:  # tf2onnx raises many kinds; the op is in its message or its log
        unsupported = [line for line in collect.lines if "not supported" in line or "Unsupported" in line]
        hint = f"; tf2onnx reported: {' | '.join(unsupported)}" if unsupported else ""
        raise OnnxConversionError(f"ONNX conversion failed ({type(err).__name__}: {err}){hint}") from err
    finally:
        logger.removeHandler(collect)
        tf.get_logger().removeFilter(quiet)
    bad = nonstandard_nodes(proto)
    if bad:
        ops = sorted(Counter(n.op_type for n in bad))
        nodes = [f"{n.name} ({n.op_type})" for n in bad]
        raise OnnxConversionError(
            f"ONNX conversion failed: tf2onnx has no ONNX equivalent for the TensorFlow op"
            f"{'s' if len(ops) > 1 else ''} {', '.join(ops)} at opset {opset} (node{'s' if len(nodes) > 1 else ''} "
            f"{', '.join(nodes[:5])}{', ...' if len(nodes) > 5 else ''}); rewrite that part of the model "
            "with supported ops or try a newer --opset", ops=ops, nodes=nodes)
    hoist_loop_invariants(proto)
    _name_dims(proto)
    _default_states(proto, model)
    return proto


def export_onnx(run: LoadedRun, out_dir: str | Path, opset: int = DEFAULT_OPSET, check: bool = True,
                tolerance: float = DEFAULT_TOLERANCE, progress: Progress | None = None) -> Path:
    """Writes ``out_dir/model.onnx`` (int64 ids), ``model_int32.onnx`` (int32 ids), their weights
    ``model.onnx.data``, ``vocab.txt`` and ``tfnas.json``; returns the int64 model's file.

    Args:
        run: a `tfnas.export.LoadedRun`.
        out_dir: the export folder (replaced if it holds an earlier export).
        opset: ONNX opset (>= 17).
        check: run both graphs in onnxruntime against Keras
            (`tfnas.export.parity.onnx_parity`) and record the larger
            difference in the metadata.
        tolerance: largest accepted ``max |logits_onnx - logits_keras|``.
        progress: a `tfnas.progress.Progress` whose note names each stage
            (conversion, parity check, saving); `export_run` passes its own.

    Raises:
        OnnxConversionError: see `convert_to_onnx`.
        ParityError: ``check`` and the difference exceeds ``tolerance``.
        PathAccessError: a file cannot be written (named; a full disk with
            its free space). The folder is written whole under a temporary
            name, then renamed (`tfnas.export.layout.staged_folder`).
    """
    from tfnas.export.parity import onnx_parity

    bar = Progress("onnx", quiet=True) if progress is None else progress
    bar.describe("onnx: converting with tf2onnx")
    proto = convert_to_onnx(run.model, opset)
    diff = None
    if check:
        bar.describe("onnx: parity check in onnxruntime")
        int32_proto = retyped_input(proto, IDS_INPUT, onnx.TensorProto.INT32)
        diff = max(onnx_parity(run.model, graph).max_abs_diff for graph in (proto, int32_proto))
        if not diff <= tolerance:
            raise ParityError(f"onnxruntime and Keras disagree by {diff:.3g} (max |logits| difference), "
                              f"more than the tolerance {tolerance:g}")
    bar.describe("onnx: saving")
    metadata = metadata_for(run, "onnx", opset=opset, parity_max_abs_diff=diff)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "tfnas", metadata.to_json()
    with staged_folder(out_dir) as folder:
        with writing(folder / ONNX_FILE):
            # Moves the weights out of ``proto`` into the data file; the int32 copy made after refers to them there.
            onnx.save_model(proto, str(folder / ONNX_FILE), save_as_external_data=True,
                            all_tensors_to_one_file=True, location=ONNX_DATA_FILE)
        with writing(folder / ONNX_INT32_FILE):
            onnx.save_model(retyped_input(proto, IDS_INPUT, onnx.TensorProto.INT32), str(folder / ONNX_INT32_FILE))
        run.vocab.save(folder / VOCAB_FILE)
        metadata.save(metadata_path("onnx", folder))
    return Path(out_dir) / ONNX_FILE
