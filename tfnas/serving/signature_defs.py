"""The signatures `tfnas serve` answers, declared once: their inputs and outputs, and TensorFlow Serving's
description of them (the ``signature_def`` map of its metadata reply).

The signatures are those of the SavedModel export (`tfnas.export.savedmodel`),
the int64 ones included, declared here from an export's metadata alone (its
vocabulary size and state shapes), so that any export is described as its
SavedModel is. TensorFlow Serving's JSON of a SignatureDef is protobuf's:
int64 sizes as strings, ``-1`` for a dimension of any size, every field
written. The tensor names are those `tf.saved_model.save` gives: an input
``KEY_NAME:0``, an output ``StatefulPartitionedCall_K:I``, with ``K`` the
signature's place among the keys in sorted order (none for the first) and
``I`` the output's among its outputs in sorted order; a test checks the
whole map against a SavedModel export's own SignatureDefs. Their
``defaults`` (the zero states, as tensors) are left out, as is the
SavedModel's ``__saved_model_init_op``, which no request can call: a
client needs only to know which signatures there are and that the states
may be omitted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfnas.export.metadata import IDS_INPUT, INT64_SIGNATURES, ExportMetadata, state_output_name

#: A dimension of any size.
ANY = -1
#: The method of every signature: TensorFlow Serving's predict API.
PREDICT_METHOD = "tensorflow/serving/predict"
#: The ``@type`` of the ``signature_def`` metadata: the protobuf message it holds.
SIGNATURE_DEF_MAP_TYPE = "type.googleapis.com/tensorflow.serving.SignatureDefMap"
#: The name TensorFlow gives the call of the first signature's function; the others add ``_1``, ``_2``, ...
CALL_OP = "StatefulPartitionedCall"


@dataclass(frozen=True)
class TensorSpec:
    """An input or output of a signature.

    Attributes:
        name: its key in a request or reply (``ids``, ``logits``).
        dtype: TensorFlow's name of its type (``DT_INT32``, ``DT_INT64``,
            ``DT_FLOAT``, ``DT_STRING``).
        shape: its dimensions, `ANY` where any size goes.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]

    def tensor_info(self, tensor_name: str) -> dict[str, Any]:
        """TensorFlow Serving's JSON of this tensor's ``TensorInfo``, as the graph tensor ``tensor_name``."""
        return {"dtype": self.dtype,
                "tensor_shape": {"dim": [{"size": str(size), "name": ""} for size in self.shape],
                                 "unknown_rank": False},
                "name": tensor_name}


@dataclass(frozen=True)
class SignatureSpec:
    """One signature: its inputs (the ``optional`` ones, the states, may be left out of a request) and outputs."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    optional: tuple[str, ...] = ()

    @property
    def required(self) -> list[str]:
        """The inputs every request must give, in order."""
        return [t.name for t in self.inputs if t.name not in self.optional]


def signature_specs(metadata: ExportMetadata) -> dict[str, SignatureSpec]:
    """Every signature of an export with ``metadata``, by key: ``serving_default``, ``score``, ``lookup``,
    ``words`` and the int64 ones (`tfnas.export.metadata.INT64_SIGNATURES`)."""
    states = tuple(TensorSpec(s["name"], "DT_FLOAT", (ANY, *s["shape"])) for s in metadata.states)
    finals = tuple(TensorSpec(state_output_name(i), "DT_FLOAT", (ANY, *s["shape"]))
                   for i, s in enumerate(metadata.states))
    optional = tuple(t.name for t in states)

    def taking(dtype: str) -> dict[str, SignatureSpec]:
        ids, targets = TensorSpec(IDS_INPUT, dtype, (ANY, ANY)), TensorSpec("targets", dtype, (ANY, ANY))
        return {
            "serving_default": SignatureSpec(
                (ids, *states), (TensorSpec("logits", "DT_FLOAT", (ANY, ANY, metadata.vocab_size)), *finals),
                optional),
            "score": SignatureSpec((ids, targets, *states),
                                   (TensorSpec("log_probs", "DT_FLOAT", (ANY, ANY)), *finals), optional),
            "words": SignatureSpec((ids,), (TensorSpec("words", "DT_STRING", (ANY, ANY)),))}

    int32, int64 = taking("DT_INT32"), taking("DT_INT64")
    lookup = SignatureSpec((TensorSpec("words", "DT_STRING", (ANY, ANY)),),
                           (TensorSpec(IDS_INPUT, "DT_INT32", (ANY, ANY)),))
    return {**int32, "lookup": lookup, **{key: int64[base] for key, base in INT64_SIGNATURES.items()}}


def signature_def_map(specs: dict[str, SignatureSpec]) -> dict[str, Any]:
    """TensorFlow Serving's JSON of the ``SignatureDefMap`` of ``specs``, with the tensor names that
    `tf.saved_model.save` gives them (see the module docstring)."""
    defs = {}
    for place, key in enumerate(sorted(specs)):
        spec, call = specs[key], CALL_OP + (f"_{place}" if place else "")
        outputs = sorted(spec.outputs, key=lambda t: t.name)
        defs[key] = {"inputs": {t.name: t.tensor_info(f"{key}_{t.name}:0") for t in spec.inputs},
                     "outputs": {t.name: t.tensor_info(f"{call}:{i}") for i, t in enumerate(outputs)},
                     "method_name": PREDICT_METHOD}
    return {"signature_def": defs, "@type": SIGNATURE_DEF_MAP_TYPE}
