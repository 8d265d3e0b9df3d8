"""Export trained language models and use the exports.

* `load_run` / `export_run`: a run folder of ``tfnas train`` to ``.keras``,
  a SavedModel with serving signatures (vocabulary as an asset), ONNX
  (checked against onnxruntime) and TFLite (builtin ops, fixed windows,
  checked against the TFLite interpreter).
* `load_export`: any export as an `ExportedModel` with
  ``step(ids, states) -> (logits, states)``; `score_file` (perplexity with
  the trainer's windows) and `generate_text` run on it.

Example::

    from tfnas.export import export_run, load_export, score_file

    paths = export_run("runs/ptb", "exports/ptb", formats="all")
    lm = load_export(paths["onnx"].parent)
    print(score_file(lm, "data/ptb/test.txt").perplexity)

The package is callable: ``tfnas.export(run, out)`` is `export` (the Python
API's export; `tfnas.api`).
"""
import sys
import types

from tfnas.export.errors import (ExportError, MissingCheckpointError, OnnxConversionError, ParityError,
                                 TfliteConversionError, UnknownFormatError, VocabularyMismatchError)
from tfnas.export.exported import ExportedModel, KerasExport, OnnxExport, SavedModelExport, TfliteExport, load_export
from tfnas.export.exporter import export, export_run
from tfnas.export.generate import Generation, generate_ids, generate_text, sample_token
from tfnas.export.keras_format import export_keras, load_keras_model
from tfnas.export.layout import FORMATS, detect_format
from tfnas.export.metadata import INT64_SIGNATURES, SIGNATURES, ExportMetadata
from tfnas.export.onnx_format import convert_to_onnx, export_onnx
from tfnas.export.parity import ParityReport, onnx_parity
from tfnas.export.run import LoadedRun, load_run
from tfnas.export.savedmodel import ServingModule, export_savedmodel
from tfnas.export.scoring import ScoreResult, score_file, score_ids
from tfnas.export.tflite_format import convert_to_tflite, export_tflite, tflite_parity

__all__ = [
    "ExportError", "ExportMetadata", "ExportedModel", "FORMATS", "Generation", "INT64_SIGNATURES", "KerasExport",
    "LoadedRun",
    "MissingCheckpointError", "OnnxConversionError", "OnnxExport", "ParityError", "ParityReport", "SIGNATURES",
    "SavedModelExport", "ScoreResult", "ServingModule", "TfliteConversionError", "TfliteExport",
    "UnknownFormatError", "VocabularyMismatchError", "convert_to_onnx", "convert_to_tflite", "detect_format",
    "export", "export_keras", "export_onnx", "export_run", "export_savedmodel", "export_tflite", "generate_ids",
    "generate_text", "load_export", "load_keras_model", "load_run", "onnx_parity", "sample_token", "score_file",
    "score_ids", "tflite_parity",
]


class _CallablePackage(types.ModuleType):
    """This package, which called is `export`: ``tfnas.export`` is both the package and the API function."""

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003 - `export`'s
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
