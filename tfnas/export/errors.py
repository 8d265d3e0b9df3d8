"""Errors of `tfnas.export`: each names what is wrong and what to do about it.

They derive from `tfnas.errors.TfnasError`, so the ``tfnas`` command
prints them on one line (exit status 2) instead of a traceback.
"""
from __future__ import annotations

from typing import Sequence

from tfnas.errors import TfnasError


class ExportError(TfnasError, RuntimeError):
    """Base class of the errors raised while exporting or loading an export."""


class MissingCheckpointError(ExportError):
    """A run folder holds no weights to export (never evaluated, or never trained)."""


class UnknownFormatError(ExportError, ValueError):
    """An export format (or an export folder) that tfnas does not know."""


class OnnxConversionError(ExportError):
    """tf2onnx could not turn the model into standard ONNX.

    Attributes:
        ops: the TensorFlow op types left without an ONNX equivalent (may be
            empty when tf2onnx failed before reaching a single op).
        nodes: the graph nodes of those ops, as ``"name (OpType)"``.
    """

    def __init__(self, message: str, ops: Sequence[str] = (), nodes: Sequence[str] = ()):
        super().__init__(message)
        self.ops = tuple(ops)
        self.nodes = tuple(nodes)


class ParityError(ExportError):
    """An exported model disagrees with the Keras model beyond the tolerance."""


class VocabularyMismatchError(ExportError, ValueError):
    """The vocabulary of an export differs from the one it was checked against."""


class InputTextError(TfnasError, ValueError):
    """A text to score or a prompt that a model cannot take (too few tokens, empty); the message says what to
    give instead."""


class TfliteConversionError(ExportError):
    """The TFLite converter could not turn the model into TFLite builtin ops (the message names the op)."""
