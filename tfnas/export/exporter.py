"""`export_run`: a trained run folder to any set of export formats."""
from __future__ import annotations

from pathlib import Path

from tfnas.export.keras_format import export_keras
from tfnas.export.layout import parse_formats
from tfnas.export.onnx_format import DEFAULT_OPSET, DEFAULT_TOLERANCE, export_onnx
from tfnas.export.run import LoadedRun, load_run
from tfnas.export.savedmodel import export_savedmodel
from tfnas.progress import Progress, ProgressTarget


def export_run(run: str | Path | LoadedRun, out_dir: str | Path, formats: str = "all", weights: str = "best",
               opset: int = DEFAULT_OPSET, check: bool = True,
               tolerance: float = DEFAULT_TOLERANCE, progress: ProgressTarget = False) -> dict[str, Path]:
    """Exports a trained language model; returns ``{format: path}``.

    Each format goes to its own subfolder of ``out_dir``: ``keras/``,
    ``savedmodel/`` and ``onnx/`` (see `tfnas.export.layout`).

    Args:
        run: a run folder (``tfnas train --out``) or a `LoadedRun`.
        out_dir: the export folder.
        formats: ``"keras"``, ``"savedmodel"``, ``"onnx"``, ``"all"`` or a
            comma-separated list.
        weights: ``"best"`` or ``"latest"`` (see `load_run`).
        opset: ONNX opset (>= 17).
        check: check the ONNX model against Keras in onnxruntime.
        tolerance: largest accepted ``max |logits_onnx - logits_keras|``.
        progress: where to show the formats done and the stage running
            (`tfnas.progress.ProgressTarget`).

    Raises:
        UnknownFormatError: an unknown format.
        MissingCheckpointError: the run has no weights to export.
        OnnxConversionError: tf2onnx cannot convert an op (named).
    """
    names = parse_formats(formats)  # before loading anything, so a typo fails fast
    loaded = run if isinstance(run, LoadedRun) else load_run(run, weights)
    out_dir = Path(out_dir)
    paths: dict[str, Path] = {}
    with Progress.to(progress, "export", len(names), "formats") as bar:
        for name in names:
            with bar.stage(name):
                if name == "keras":
                    paths[name] = export_keras(loaded, out_dir / "keras")
                elif name == "savedmodel":
                    paths[name] = export_savedmodel(loaded, out_dir / "savedmodel")
                else:
                    paths[name] = export_onnx(loaded, out_dir / "onnx", opset=opset, check=check,
                                              tolerance=tolerance, progress=bar)
    return paths
