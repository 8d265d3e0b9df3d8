"""Run folders: the record of a train or search run, the one resume check, and reading weights back.

A run folder (``tfnas train --out``, ``tfnas search --out``) holds:

* ``config.json``, the run record: ``{"format": "tfnas-run", "version": 2,
  "kind": "train" | "search", "strategy": <name> | null, "config":
  <the settings as JSON>, "data": <the corpus fingerprint>,
  "tfnas_version": ...}``;
* ``lock`` and ``.lock``: the holder of the folder and its OS lock (`tfnas.runs.lock`);
* ``model.json``: the ``get_config()`` of the model whose weights the
  checkpoints hold (a `LanguageModel`, or a search model);
* ``checkpoints/`` (`tfnas.runs.checkpoint`); a train run also has
  ``best/weights.npz``, the weights of its best validation loss;
* what the trainer or the strategy writes besides (genotype, vocabulary,
  history, trials, results), all through `tfnas.runs.atomic`.

`open_run` is the one resume check of the trainer and of every strategy:
running again on the same folder must be the same kind of run (and the same
strategy) with the same settings, except the fields whose metadata says
``resumable`` (`resumable_fields`: checkpoint cadence, data location,
``max_steps`` ...), on the same data: the record keeps `corpus_fingerprint`
(SHA-256 of the vocabulary and of the token ids), and another corpus (the same
words in another order included) is refused. Folders written by an older
tfnas (a flat ``TrainConfig`` as ``config.json``, or a search without a
record or without a fingerprint) resume when their settings can be read and
checked, and are refused with the reason otherwise.

Pure Python: no TensorFlow.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import reprlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, NamedTuple, Protocol

import numpy as np

from tfnas import __version__
from tfnas.errors import TfnasError
from tfnas.runs.atomic import read_json, write_json
from tfnas.runs.checkpoint import (CheckpointError, CheckpointManager, CorruptCheckpointError, VARIABLES_FILE,
                                   read_arrays)
from tfnas.settings import from_dict

RECORD_FORMAT = "tfnas-run"
RECORD_VERSION = 2
#: The kinds of run: ``tfnas train`` and ``tfnas search``.
KINDS = ("train", "search")
#: Which weights of a run `read_weights` reads: those of the best validation loss, or the newest checkpoint's.
WEIGHTS = ("best", "latest")

#: The files and folders of a run folder.
RECORD_FILE = "config.json"
MODEL_FILE = "model.json"
SEARCH_RESULT_FILE = "search_result.json"
#: A finished training's numbers (`tfnas.lm.trainer.Trainer`): best validation and test perplexity, steps, seconds.
TRAINING_RESULT_FILE = "result.json"
#: The trial records of a black-box search, one JSON line per trial.
TRIALS_FILE = "trials.jsonl"
#: Where a black-box search keeps its children's run folders, ``children/<genotype key>`` (the ``short_training``
#: evaluator's work folder).
CHILDREN = "children"
CHECKPOINTS = "checkpoints"
BEST_WEIGHTS = "best/weights.npz"
#: Where the trainer sets an unreadable ``best/weights.npz`` aside (and rebuilds it from the newest checkpoint).
BEST_SET_ASIDE = "best/corrupt-weights.npz"

#: Where an older tfnas kept a search's settings, when the folder has no record: file -> its JSON to
#: ``(strategy, settings or None)``.
_LEGACY_SEARCH_FILES: dict[str, Callable[[dict[str, Any]], tuple[str | None, dict[str, Any] | None]]] = {
    "search_config.json": lambda data: (data.get("strategy"), {k: v for k, v in data.items() if k != "strategy"}),
    "enas_config.json": lambda data: ("enas", data),
    "wenet_state.json": lambda data: ("wenet", data.get("config")),
}


@dataclass(frozen=True)
class RunRecord:
    """What a run folder says it holds.

    Attributes:
        kind: ``"train"`` or ``"search"``.
        strategy: the strategy of a search, None for training.
        config: the settings, as JSON data (nested configs as mappings).
        source: the file they were read from (``config.json``, or the file
            where an older tfnas kept them).
    """

    kind: str
    strategy: str | None
    config: dict[str, Any]
    source: str = RECORD_FILE
    data: dict[str, Any] | None = None

    def describe(self) -> str:
        """``a `tfnas train` run`` or ``a `darts` search``."""
        return "a `tfnas train` run" if self.kind == "train" else f"a `{self.strategy}` search"


class RunFolderError(TfnasError, ValueError):
    """A run folder tfnas cannot open: its record is not one this tfnas reads, or the folder holds another run
    (another kind, strategy, cell, settings or data) than the one asked for; the message names the folder and
    says what to do."""


def resumable_fields(config_class: type) -> set[str]:
    """The fields of a settings dataclass that may change when a run is resumed.

    They are the fields whose metadata has ``resumable`` true
    (`tfnas.settings.setting`). A nested config (``model``, ``child``) is one
    setting: resumable as a whole or not at all, whatever its own fields
    say, so that e.g. ``child.max_steps`` of a black-box search is checked
    although ``max_steps`` of a training run may change.
    """
    return {f.name for f in dataclasses.fields(config_class) if f.metadata.get("resumable")}


def _plain(config: Any) -> dict[str, Any]:
    """A settings dataclass as JSON data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def setting_differences(old: dict[str, Any], new: dict[str, Any], skip: Collection[str] = (),
                        prefix: str = "") -> list[str]:
    """``key: old -> new`` for every setting that differs (dotted keys inside nested configs), except ``skip``."""
    out = []
    for key in sorted(new):
        name = f"{prefix}{key}"
        before, after = old.get(key), new[key]
        if name in skip or before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            out += setting_differences(before, after, skip, f"{name}.")
        else:
            out.append(f"{name}: {before!r} -> {after!r}")
    return out


def read_record(run_dir: str | Path) -> RunRecord | None:
    """The record of the run in ``run_dir``, or None if it has none.

    Reads ``config.json``; a ``config.json`` without a format (written by
    an older ``tfnas train``) is a flat `TrainConfig`; a folder without
    ``config.json`` may hold the settings where an older tfnas kept a
    search's (``search_config.json``, ``enas_config.json``,
    ``wenet_state.json``).

    Raises:
        JsonFileError: the file is not JSON (one line naming it).
        RunFolderError: one line naming the file: not a JSON object, a record of another version, or a
            record whose ``kind``, ``strategy``, ``config`` or ``data`` is missing or of the wrong type.
    """
    run_dir = Path(run_dir)
    path = run_dir / RECORD_FILE
    if path.exists():
        data = _read_object(path)
        if data.get("format") != RECORD_FORMAT:
            return RunRecord("train", None, data)
        if data.get("version") != RECORD_VERSION:
            raise RunFolderError(f"{path} is a version {data.get('version')} run record; this tfnas reads version "
                                 f"{RECORD_VERSION}: use a new --out folder")
        kind, strategy, config, fingerprint = (data.get(key) for key in ("kind", "strategy", "config", "data"))
        well_formed = {"kind": kind in KINDS,
                       "strategy": isinstance(strategy, str) or (strategy is None and kind != "search"),
                       "config": isinstance(config, dict), "data": fingerprint is None or isinstance(fingerprint, dict)}
        damaged = [name for name, ok in well_formed.items() if not ok]
        if damaged:
            raise RunFolderError(f"{path} is a damaged run record: {', '.join(damaged)} missing or malformed; "
                                 "use a new --out folder")
        return RunRecord(kind, strategy, config, data=fingerprint)
    for name, settings_of in _LEGACY_SEARCH_FILES.items():
        if (run_dir / name).exists():
            strategy, settings = settings_of(_read_object(run_dir / name))
            if settings is not None:
                return RunRecord("search", strategy, settings, name)
    return None


def _read_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; anything else raises a one-line `JsonFileError` or `RunFolderError` naming
    the file."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} is not a run record: it holds {reprlib.repr(data)}, not a JSON object; "
                             "use a new --out folder")
    return data


class CorpusLike(Protocol):
    """What `corpus_fingerprint` reads of a `tfnas.data.Corpus`."""

    vocab: Iterable[str]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def corpus_fingerprint(corpus: CorpusLike) -> dict[str, Any]:
    """The identity of a run's data: SHA-256 of the vocabulary (words in id order) and of the token ids.

    The ids of train, valid and test are hashed as little-endian int64 with
    their lengths (about 6 ms for PTB's 1.1M tokens).
    """
    words = list(corpus.vocab)
    ids_hash, count = hashlib.sha256(), 0
    for split in (corpus.train, corpus.valid, corpus.test):
        ids = np.ascontiguousarray(split, dtype="<i8")
        ids_hash.update(np.int64(ids.size).tobytes())
        ids_hash.update(memoryview(ids).cast("B"))
        count += int(ids.size)
    return {"words": len(words), "vocabulary": hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest(),
            "tokens": count, "token_ids": ids_hash.hexdigest()}


def data_differences(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """What differs between two fingerprints (`corpus_fingerprint`), in words; None if nothing does."""
    if old.get("vocabulary") != new["vocabulary"]:
        return (f"its vocabulary differs: {old.get('words')} words, sha256 {str(old.get('vocabulary'))[:12]} -> "
                f"{new['words']} words, sha256 {new['vocabulary'][:12]}")
    if old.get("token_ids") != new["token_ids"]:
        return (f"its token ids differ: {old.get('tokens')} tokens, sha256 {str(old.get('token_ids'))[:12]} -> "
                f"{new['tokens']} tokens, sha256 {new['token_ids'][:12]}")
    return None


def open_run(run_dir: str | Path, kind: str, strategy: str | None, config: Any,
             data: dict[str, Any] | None = None) -> RunRecord | None:
    """Creates or reopens a run folder and writes its record; returns the record found before (None if new).

    A folder that holds a run may only be reopened by the same kind of run
    (and the same strategy) with the same settings, except the
    `resumable_fields` of ``type(config)``; their new values are recorded.
    The caller holds the folder's `tfnas.runs.lock.RunLock`.

    Args:
        run_dir: the folder (created if needed).
        kind: ``"train"`` or ``"search"``.
        strategy: the strategy's name for a search, None for training.
        config: the run's settings (a settings dataclass).
        data: the `corpus_fingerprint` of the run's corpus; a record that
            has one refuses another (a record without one takes it).

    Raises:
        RunFolderError: the folder holds another kind of run, another
            strategy's search, other settings (every difference is listed
            as ``key: old -> new``), other data, or checkpoints without
            readable settings (written by an older tfnas).
    """
    if kind not in KINDS:
        raise ValueError(f"Argument `kind` must be one of {list(KINDS)}; received: kind={kind!r}")
    run_dir = Path(run_dir)
    new = RunRecord(kind, strategy, _plain(config), data=data)
    old = read_record(run_dir)
    if old is None and (run_dir / CHECKPOINTS).is_dir():
        raise RunFolderError(f"{run_dir} was written by an older tfnas without its settings; they cannot be checked: "
                             "use a new --out folder")
    if old is not None:
        if (old.kind, old.strategy) != (kind, strategy):
            raise RunFolderError(f"{run_dir} holds {old.describe()}, not {new.describe()}; use a new --out folder")
        try:
            saved = _plain(from_dict(type(config), old.config, where=f"{run_dir / old.source}"))
        except (TypeError, ValueError) as err:
            raise RunFolderError(f"{run_dir} holds settings this tfnas cannot read ({err}); "
                                 "use a new --out folder") from None
        changed = setting_differences(saved, new.config, resumable_fields(type(config)))
        if changed:
            raise RunFolderError(f"{run_dir} holds {old.describe()} with another configuration ({', '.join(changed)}); "
                                 "use a new --out folder or the same settings to resume")
        other_data = None if old.data is None or data is None else data_differences(old.data, data)
        if other_data:
            raise RunFolderError(f"{run_dir} holds {old.describe()} on other data ({other_data}); use the corpus it "
                                 "was started on (--dataset, --data-dir) or a new --out folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    kept = data if data is not None else (old.data if old is not None else None)
    write_json(run_dir / RECORD_FILE, {"format": RECORD_FORMAT, "version": RECORD_VERSION, "kind": kind,
                                       "strategy": strategy, "config": new.config, "data": kept,
                                       "tfnas_version": __version__})
    return old


class SavedWeights(NamedTuple):
    """Weights read back from a run folder: the arrays, in the model's order, and the file they came from.

    ``skipped``: one line per newer checkpoint that could not be read (``which="latest"`` falls back).
    """

    arrays: list[np.ndarray]
    path: Path
    skipped: tuple[str, ...] = ()


class MissingWeightsError(CheckpointError):
    """A run folder holds no weights of the kind asked for.

    Attributes:
        latest: the newest checkpoint of the run, or None if it has none.
    """

    def __init__(self, message: str, latest: Path | None):
        super().__init__(message)
        self.latest = latest


def read_weights(run_dir: str | Path, which: str = "best") -> SavedWeights:
    """The weights a run evaluates, read back without building its trainer or strategy.

    Args:
        run_dir: a run folder.
        which: ``"best"`` (``best/weights.npz``: a train run's weights of its
            best validation loss, in the order of the model's trainable
            variables) or ``"latest"`` (the newest readable checkpoint's
            model weights as its writer recorded them: a train run's
            evaluated weights, the averaged ones once NT-ASGD has started; a
            one-shot search's model variables). A newer checkpoint that
            cannot be read is skipped with a warning (`SavedWeights.skipped`).

    Raises:
        MissingWeightsError: no such weights (never evaluated, no
            checkpoint, or a checkpoint of an older tfnas that did not
            record which of its variables are the model's weights).
        CorruptCheckpointError: ``best/weights.npz`` is truncated or
            corrupted, or was so and is set aside (`BEST_SET_ASIDE`; the
            message says how to rebuild it), or every checkpoint is.
        ValueError: unknown ``which``.
    """
    if which not in WEIGHTS:
        raise ValueError(f"Argument `which` must be one of {list(WEIGHTS)}; received: which={which!r}")
    run_dir = Path(run_dir)
    best = run_dir / BEST_WEIGHTS
    manager = CheckpointManager(run_dir / CHECKPOINTS)
    if which == "best" and best.exists():
        try:
            return SavedWeights(read_arrays(best).variables, best)
        except CorruptCheckpointError as err:
            raise CorruptCheckpointError(f"{err}{_rebuild_advice(manager.latest())}") from None
    latest = manager.latest()
    if which == "best":
        if (run_dir / BEST_SET_ASIDE).exists():
            raise CorruptCheckpointError(f"{best} was damaged and set aside as {BEST_SET_ASIDE}"
                                         f"{_rebuild_advice(latest)}")
        if latest is None:
            raise MissingWeightsError(f"{run_dir} has no checkpoint and no {BEST_WEIGHTS}", None)
        raise MissingWeightsError(f"{run_dir} has no {BEST_WEIGHTS}: the run was never evaluated. Its newest "
                                  f"checkpoint is {latest}", latest)
    if latest is None:
        raise MissingWeightsError(f"{run_dir} has no checkpoint ({CHECKPOINTS}/latest is missing)", None)
    skipped: list[str] = []
    for path in manager.candidates():
        try:
            arrays = manager.read_weights(path)
        except CorruptCheckpointError as err:
            skipped.append(f"skipped the unreadable checkpoint {path.name}: {err}")
            warnings.warn(skipped[-1], stacklevel=2)
            continue
        if arrays is None:
            raise MissingWeightsError(f"{path} was written by an older tfnas that did not record which of its "
                                      "variables are the model's weights", path)
        return SavedWeights(arrays, path / VARIABLES_FILE, tuple(skipped))
    raise CorruptCheckpointError(f"no checkpoint of {run_dir} can be read ({'; '.join(skipped)})")


def _rebuild_advice(latest: Path | None) -> str:
    """What to do about damaged best weights of a train run whose newest checkpoint is ``latest``."""
    if latest is None:
        return "; the run has no checkpoint to rebuild it from: run the same `tfnas train` again to train it anew"
    return (f"; run the same `tfnas train` again to rebuild it from the newest checkpoint ({latest}), or export "
            "that checkpoint (--weights latest)")
