"""Loading a trained run folder into a `LanguageModel` with its evaluated weights.

A run folder is what `tfnas.lm.Trainer` writes (``tfnas train --out RUN``):
``config.json``, ``model.json`` (``LanguageModel.get_config()``),
``genotype.json``, ``vocab.txt``, ``checkpoints/``, ``best/weights.npz``
and ``result.json``. Only `LanguageModel`'s public interface is used, so any
cell the model accepts (genotype cells, the LSTM baseline, attention heads,
future cells) loads the same way.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfnas.config import TrainConfig
from tfnas.data import Vocabulary
from tfnas.errors import PathNotFoundError
from tfnas.export.errors import ExportError, MissingCheckpointError
from tfnas.runs.atomic import read_json
from tfnas.runs.checkpoint import assign_arrays
from tfnas.runs.folder import (MODEL_FILE, TRAINING_RESULT_FILE, TRIALS_FILE, WEIGHTS, MissingWeightsError, read_record,
                               read_weights)
from tfnas.lm.model import LanguageModel
from tfnas.settings import from_dict


@dataclass
class LoadedRun:
    """A run folder loaded for export.

    Attributes:
        run_dir: the folder.
        model: the `LanguageModel` with the loaded weights.
        vocab: the training vocabulary (``vocab.txt``).
        config: the training recipe (``config.json``), or None if absent.
        genotype: the cell's genotype (``model.genotype``: a DAG or a tree
            genotype), or None for the LSTM baseline.
        result: ``result.json`` as a dict (``test_ppl`` etc.), or None.
        weights: the file the weights came from.
    """

    run_dir: Path
    model: LanguageModel
    vocab: Vocabulary
    config: TrainConfig | None
    genotype: Any
    result: dict[str, Any] | None
    weights: Path

    @property
    def bptt(self) -> int:
        """The evaluation window of the run (35 when the run has no config)."""
        return self.config.bptt if self.config is not None else TrainConfig().bptt

    @property
    def test_batch_size(self) -> int:
        """The batch size the trainer's test perplexity was computed with."""
        return self.config.test_batch_size if self.config is not None else TrainConfig().test_batch_size

    @functools.cached_property
    def model_sha256(self) -> str:
        """SHA-256 of what the model computes: its settings (without layer names or the genotype's provenance),
        its vocabulary and its weights (dtype, shape and bytes of each). Two loads of a run's weights share it,
        wherever the folder lies; other weights or another run differ. Every export records it
        (`tfnas.export.ExportMetadata.model_sha256`), so an export folder holds the formats of one model."""
        digest = hashlib.sha256(json.dumps(_architecture(self.model.get_config()), sort_keys=True,
                                           default=str).encode("utf-8"))
        digest.update("\n".join(self.vocab.words).encode("utf-8"))
        for variable in self.model.trainable_variables:
            array = variable.numpy()
            digest.update(f"{array.dtype.str}{array.shape}".encode("ascii"))
            digest.update(array.tobytes())
        return digest.hexdigest()


def _architecture(config: Any) -> Any:
    """A model's config without what does not change its outputs: layer names and a genotype's provenance."""
    if isinstance(config, dict):
        return {key: _architecture(value) for key, value in config.items() if key not in ("name", "provenance")}
    if isinstance(config, (list, tuple)):
        return [_architecture(value) for value in config]
    return config


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except ValueError as err:
        raise ExportError(str(err)) from None


def _build_model(run_dir: Path, vocab: Vocabulary) -> LanguageModel:
    model_json = run_dir / MODEL_FILE
    if not model_json.exists():
        raise ExportError(f"{run_dir} has no model.json (LanguageModel.get_config(), written by tfnas train); "
                          "it is not a complete run folder")
    model = LanguageModel.from_config(_read_json(model_json))
    model.build_weights()
    if model.vocab_size != len(vocab):
        raise ExportError(f"{run_dir}: the model has {model.vocab_size} words but vocab.txt has {len(vocab)}")
    return model


def _load_weights(run_dir: Path, model: LanguageModel, which: str) -> Path:
    """Assigns the run's ``which`` weights (`tfnas.runs.folder.read_weights`) to the model; returns their file."""
    try:
        saved = read_weights(run_dir, which)
    except MissingWeightsError as err:
        if err.latest is None:
            advice = f": train it first (tfnas train --out {run_dir})"
        elif which == "best":
            advice = ("; export that one with weights='latest' (tfnas export --weights latest) or train on until "
                      "an evaluation")
        else:
            advice = "; export its best weights instead (weights='best', tfnas export --weights best)"
        raise MissingCheckpointError(f"{err}{advice}") from None
    assign_arrays(model.trainable_variables, saved.arrays, saved.path)
    return saved.path


def load_run(run_dir: str | Path, weights: str = "best") -> LoadedRun:
    """Loads a run folder into a `LanguageModel` ready to export.

    Args:
        run_dir: the run folder (``tfnas train --out``).
        weights: ``"best"`` (``best/weights.npz``, the weights the trainer
            reported its test perplexity with) or ``"latest"`` (the weights
            the newest checkpoint records as evaluated: the averaged ones
            once NT-ASGD has started); both read by
            `tfnas.runs.folder.read_weights`.

    Raises:
        PathNotFoundError: the folder does not exist.
        MissingCheckpointError: the run has no weights of that kind.
        ExportError: the folder is not a run folder or is inconsistent.
        ValueError: unknown ``weights``.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"Argument `weights` must be one of {list(WEIGHTS)}; received: weights={weights!r}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PathNotFoundError(f"run folder {str(run_dir)!r} does not exist")
    record = read_record(run_dir)
    if record is None and not (run_dir / MODEL_FILE).exists():
        raise ExportError(f"{run_dir} is not a tfnas run folder (it has no config.json or model.json); "
                          "pass the --out folder of tfnas train")
    if record is not None and record.kind != "train":
        children = (f" (or one of its children: tfnas export {run_dir} --trial best, or a trial's number)"
                    if (run_dir / TRIALS_FILE).exists() else "")
        raise ExportError(f"{run_dir} holds {record.describe()}, not a `tfnas train` run; "
                          f"pass the --out folder of tfnas train{children}")
    vocab_path = run_dir / "vocab.txt"
    if not vocab_path.exists():
        raise MissingCheckpointError(f"{run_dir} has no vocab.txt and no checkpoint: train it first "
                                     f"(tfnas train --out {run_dir})")
    vocab = Vocabulary.load(vocab_path)
    config = from_dict(TrainConfig, record.config) if record is not None else None
    model = _build_model(run_dir, vocab)
    source = _load_weights(run_dir, model, weights)
    result_path = run_dir / TRAINING_RESULT_FILE
    result = _read_json(result_path) if result_path.exists() else None
    return LoadedRun(run_dir, model, vocab, config, model.genotype, result, source)


def state_shapes(model: LanguageModel) -> list[tuple[int, ...]]:
    """The shapes (without the batch axis) of the model's recurrent states, from ``initial_state``."""
    return [tuple(int(d) for d in s.shape[1:]) for s in model.initial_state(1)]
