"""`tfnas.serving.signature_defs` against the SignatureDefs a SavedModel export holds, read from its
``saved_model.pb`` and written as JSON by protobuf's own printer with every field (as TensorFlow Serving writes
its metadata reply)."""
import pytest

from tfnas.export import SIGNATURES, ExportMetadata
from tfnas.export.layout import metadata_path
from tfnas.serving.signature_defs import SIGNATURE_DEF_MAP_TYPE, signature_def_map, signature_specs

from serving_support import saved_signature_defs


@pytest.mark.parametrize("kind", ["darts_v2", "lstm"])
def test_the_signature_defs_are_those_of_the_savedmodel_export(runs, kind):
    """One state (darts_v2) and two (the LSTM's h and c): every key, dtype, shape, tensor name and method."""
    folder = runs.exports(kind) / "savedmodel"
    described = signature_def_map(signature_specs(ExportMetadata.load(metadata_path("savedmodel", folder))))
    assert described["@type"] == SIGNATURE_DEF_MAP_TYPE
    assert described["signature_def"] == saved_signature_defs(folder)


def test_the_states_are_the_optional_inputs(onnx_model):
    specs = signature_specs(onnx_model.metadata)
    assert set(SIGNATURES) < set(specs)
    assert specs["serving_default"].required == ["ids"] and specs["serving_default"].optional == ("hidden_0",)
    assert specs["score_int64"].required == ["ids", "targets"]
    assert specs["lookup"].required == ["words"] and specs["words"].required == ["ids"]
