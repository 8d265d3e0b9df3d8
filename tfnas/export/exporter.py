"""`export_run`: a trained run folder to any set of export formats, in an export folder that holds one model.

The export folder (``--out``) is locked for the whole export
(`tfnas.runs.lock.RunLock`: ``OUT/lock`` names the holder), so a second
export into it at the same time is refused with the first one's PID. Every
format records the model it holds (`tfnas.export.ExportMetadata.model_sha256`);
an export of another model into a folder holding an export is refused, so
that the formats of two runs (or of two sets of weights of one run) never
sit side by side, unless ``replace`` is given: then every format folder there
(``keras/``, ``savedmodel/``, ``onnx/``, ``tflite/``) is removed first and the folder
ends up holding this export's formats only. More formats of the same model
join those there. Each format is written under a temporary name and renamed
whole (`tfnas.export.layout.staged_folder`).
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from tfnas.errors import writing
from tfnas.export.errors import ExportError
from tfnas.export.keras_format import export_keras
from tfnas.export.layout import FORMATS, is_export, metadata_path, parse_formats, remove
from tfnas.export.metadata import ExportMetadata
from tfnas.export.onnx_format import DEFAULT_OPSET, DEFAULT_TOLERANCE, export_onnx
from tfnas.export.run import LoadedRun, load_run
from tfnas.export.savedmodel import export_savedmodel
from tfnas.export.tflite_format import check_options, export_tflite
from tfnas.progress import Progress, ProgressTarget
from tfnas.runs.lock import RunLock


def export(run: str | os.PathLike[str] | LoadedRun, out_dir: str | os.PathLike[str], formats: str = "keras", *,
           verbose: int = 1, **options: Any) -> dict[str, Path]:
    """`export_run` for the Python API (``tfnas.export(run, out)``, the package called): ``formats`` defaults to
    ``"keras"``, progress shows unless ``verbose`` is 0; ``run`` is also a ``tfnas.TrainRun`` (a path-like);
    ``options`` are `export_run`'s (``weights``, ``opset``, ``quantize``, ...). A ``.keras`` export loads with
    ``keras.saving.load_model`` after ``import tfnas``."""
    return export_run(run, out_dir, formats=formats, progress=verbose > 0, **options)


def export_run(run: str | Path | LoadedRun, out_dir: str | Path, formats: str = "all", weights: str = "best",
               opset: int = DEFAULT_OPSET, check: bool = True, tolerance: float | None = None,
               progress: ProgressTarget = False, replace: bool = False, tflite_batch: int = 1,
               tflite_window: int | None = None, quantize: str | None = None) -> dict[str, Path]:
    """Exports a trained language model; returns ``{format: path}``.

    Each format goes to its own subfolder of ``out_dir``: ``keras/``,
    ``savedmodel/``, ``onnx/`` and ``tflite/`` (see `tfnas.export.layout`). The folder is
    locked while the export runs, and holds the exports of one model (see
    the module docstring).

    Args:
        run: a run folder (``tfnas train --out``) or a `LoadedRun`.
        out_dir: the export folder.
        formats: ``"keras"``, ``"savedmodel"``, ``"onnx"``, ``"tflite"``,
            ``"all"`` or a comma-separated list.
        weights: ``"best"`` or ``"latest"`` (see `load_run`).
        opset: ONNX opset (>= 17).
        check: check the ONNX model against Keras in onnxruntime and the
            TFLite model in the TFLite interpreter.
        tolerance: largest accepted ``max |logits_exported - logits_keras|``
            (None: 1e-5 for ONNX, the default of the quantisation for TFLite,
            `tfnas.export.tflite_format.DEFAULT_TOLERANCES`).
        progress: where to show the formats done and the stage running
            (`tfnas.progress.ProgressTarget`).
        replace: replace the exports of another model in ``out_dir``: every
            format folder there is removed before this export's are written
            (other files are left alone).
        tflite_batch: the rows per call of the TFLite export, see
            `tfnas.export.tflite_format.export_tflite`.
        tflite_window: the tokens per call of the TFLite export (None: the
            run's ``bptt``).
        quantize: the TFLite export's weights (None, ``"float16"``,
            ``"int8"``).

    Raises:
        UnknownFormatError: an unknown format.
        SettingsError: a bad ``tflite_batch``, ``tflite_window`` or ``quantize`` (before anything is loaded).
        MissingCheckpointError: the run has no weights to export.
        OnnxConversionError: tf2onnx cannot convert an op (named).
        RunLockedError: another process exports into ``out_dir`` (named).
        ExportError: ``out_dir`` holds an export of another model and
            ``replace`` is not given (both named; nothing is written).
        PathAccessError: a file cannot be written (named; a full disk with
            its free space); the formats written before stay, and the one
            being written keeps its earlier export.
        TfliteConversionError: an op without a TFLite builtin kernel (named).
    """
    names = parse_formats(formats)  # before loading anything, so a typo fails fast
    if "tflite" in names:
        check_options(tflite_batch, tflite_window, quantize)
    loaded = run if isinstance(run, LoadedRun) else load_run(run, weights)  # its errors before anything is written
    out_dir = Path(out_dir)
    paths: dict[str, Path] = {}
    with RunLock(out_dir):
        _make_room(out_dir, loaded, replace)
        with Progress.to(progress, "export", len(names), "formats") as bar:
            for name in names:
                with bar.stage(name):
                    if name == "keras":
                        paths[name] = export_keras(loaded, out_dir / "keras")
                    elif name == "savedmodel":
                        paths[name] = export_savedmodel(loaded, out_dir / "savedmodel")
                    elif name == "onnx":
                        paths[name] = export_onnx(loaded, out_dir / "onnx", opset=opset, check=check,
                                                  tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
                                                  progress=bar)
                    else:
                        paths[name] = export_tflite(loaded, out_dir / "tflite", batch=tflite_batch,
                                                    window=tflite_window, quantize=quantize, check=check,
                                                    tolerance=tolerance, progress=bar)
    return paths


def _make_room(out_dir: Path, run: LoadedRun, replace: bool) -> None:
    """Refuses (or, with ``replace``, removes) the exports of another model in ``out_dir``, and removes the
    leftovers of a killed export. The caller holds the folder's lock."""
    others = _exports_of_other_models(out_dir, run.model_sha256)
    if others and not replace:
        held = "; ".join(f"{source} in {', '.join(fmts)}" for source, fmts in others.items())
        raise ExportError(f"{out_dir} holds {held}; this export is of {run.run_dir} ({run.weights}, model sha256 "
                          f"{run.model_sha256[:12]}): formats of two models would sit side by side. Pass --replace "
                          "(replace=True) to replace the folder's exports whole, or choose another --out folder")
    for fmt in FORMATS:
        folder = out_dir / fmt
        aside = folder.with_name(f".{fmt}.old")
        with writing(folder, "replace"):
            remove(folder.with_name(f".{fmt}.tmp"))
            remove(aside)
            if replace and folder.is_dir() and is_export(folder):
                os.replace(folder, aside)  # the format goes at once, whole; then its files
                remove(aside)


def _exports_of_other_models(out_dir: Path, model_sha256: str) -> dict[str, list[str]]:
    """The formats exported in ``out_dir`` of another model than ``model_sha256``, by what they are an export of."""
    others: dict[str, list[str]] = defaultdict(list)
    for fmt in FORMATS:
        folder = out_dir / fmt
        if not (folder.is_dir() and is_export(folder)):
            continue
        try:
            meta = ExportMetadata.load(metadata_path(fmt, folder))
        except ExportError:
            others["an export whose metadata cannot be read"].append(fmt)
            continue
        if meta.model_sha256 is None:
            others[f"an export of {meta.run_dir} made by tfnas {meta.tfnas_version or '(unknown)'}, which did not "
                   "record its model"].append(fmt)
        elif meta.model_sha256 != model_sha256:
            others[f"an export of {meta.run_dir} ({meta.weights}, model sha256 {meta.model_sha256[:12]})"].append(fmt)
    return dict(others)
