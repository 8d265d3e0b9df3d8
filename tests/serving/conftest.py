"""Fixtures of the serving tests: the exports of the tiny darts_v2 run, each loaded once per session."""
from pathlib import Path

import pytest

from tfnas.export import ExportedModel, load_export

_LOADED: dict[Path, ExportedModel] = {}


def loaded(path: Path) -> ExportedModel:
    """``load_export(path)``, once per path and session (the servers of the tests only read the model)."""
    if path not in _LOADED:
        _LOADED[path] = load_export(path)
    return _LOADED[path]


@pytest.fixture
def onnx_model(runs) -> ExportedModel:
    """The ONNX export of the tiny darts_v2 run (vocabulary of 31 words with <eos> and <unk>, one state
    ``hidden_0`` of 16 units)."""
    return loaded(runs.exports("darts_v2") / "onnx")


@pytest.fixture(params=["savedmodel", "onnx"])
def any_model(request, runs) -> ExportedModel:
    """The SavedModel and the ONNX export of the tiny darts_v2 run."""
    return loaded(runs.exports("darts_v2") / request.param)
