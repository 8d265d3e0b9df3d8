"""Parity of an ONNX export with the Keras model, in onnxruntime.

Random ids are run through both, twice in a row with the final state of the
first call carried into the second (each side carries its own), for several
batch sizes and lengths; the report holds the largest absolute difference of
the logits and of the states.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from tfnas.export.metadata import IDS_INPUT, state_input_name, state_output_name
from tfnas.lm.model import LanguageModel

#: (batch, time) cases checked by default: two lengths, two batch sizes.
DEFAULT_CASES: tuple[tuple[int, int], ...] = ((1, 5), (3, 17))
#: NumPy type of an onnxruntime input type (`onnxruntime.NodeArg.type`) an ``ids`` input can have.
_ONNX_INTEGERS = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


@dataclass
class ParityReport:
    """``max_abs_diff``: largest ``|logits_onnx - logits_keras|`` over all cases and calls."""

    max_abs_diff: float
    max_abs_state_diff: float
    cases: list[dict] = field(default_factory=list)


def ort_session(model_or_path):
    """An onnxruntime CPU session from a ``ModelProto`` or a file path."""
    import onnxruntime as ort

    source = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) else str(model_or_path)
    options = ort.SessionOptions()
    # Idle worker threads sleep instead of spinning between runs, leaving the cores to the caller.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The state inputs are optional (initializers that are also inputs); onnxruntime warns about each one
    # at load time, which is expected, so only errors are logged.
    options.log_severity_level = 3
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def onnx_parity(model: LanguageModel, onnx_model: onnx.ModelProto | str | Path,
                cases: Sequence[tuple[int, int]] = DEFAULT_CASES, calls: int = 2, seed: int = 0) -> ParityReport:
    """Compares ``model.forward`` (Keras, inference) with the ONNX model in onnxruntime.

    Args:
        model: the `LanguageModel`.
        onnx_model: its ONNX export (a ``ModelProto`` or a path), its ``ids``
            input int64 or int32 (the ids are fed as that type).
        cases: ``(batch, time)`` shapes to run.
        calls: consecutive calls per case, the state carried between them.
        seed: seed of the random ids.
    """
    session = ort_session(onnx_model)
    ids_dtype = _ONNX_INTEGERS[next(i.type for i in session.get_inputs() if i.name == IDS_INPUT)]
    rng = np.random.default_rng(seed)
    n_states = len(model.initial_state(1))
    outputs = ["logits"] + [state_output_name(i) for i in range(n_states)]
    report = ParityReport(0.0, 0.0)
    for batch, time in cases:
        keras_states = [np.asarray(s) for s in model.initial_state(batch)]
        onnx_states = [s.copy() for s in keras_states]
        for call in range(calls):
            ids = rng.integers(0, model.vocab_size, (batch, time)).astype(np.int32)
            ref = model.forward(ids, keras_states, training=False)
            got = session.run(outputs, {IDS_INPUT: ids.astype(ids_dtype),
                                           **{state_input_name(i): s for i, s in enumerate(onnx_states)}})
            keras_states = [np.asarray(s) for s in ref.states]
            onnx_states = got[1:]
            logit_diff = float(np.max(np.abs(got[0] - np.asarray(ref.logits))))
            state_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(onnx_states, keras_states))
            report.cases.append({"batch": batch, "time": time, "call": call, "logits": logit_diff,
                                 "states": state_diff})
            report.max_abs_diff = max(report.max_abs_diff, logit_diff)
            report.max_abs_state_diff = max(report.max_abs_state_diff, state_diff)
    return report
