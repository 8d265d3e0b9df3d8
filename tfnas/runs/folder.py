"""Run folders: the record of a train or search run, the one resume check, and reading weights back.

A run folder (``tfnas train --out``, ``tfnas search --out``) holds:

* ``config.json``, the run record: ``{"format": "tfnas-run", "version": 2,
  "kind": "train" | "search", "strategy": <name> | null, "config":
  <the settings as JSON>, "tfnas_version": ...}``;
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
``max_steps`` ...). Folders written by an older tfnas (a flat ``TrainConfig``
as ``config.json``, or a search without a record) resume when their settings
can be read and checked, and are refused with the reason otherwise.

Pure Python: no TensorFlow.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from tfnas import __version__
from tfnas.config import from_dict
from tfnas.runs.atomic import read_json, write_json
from tfnas.runs.checkpoint import CheckpointError, CheckpointManager, VARIABLES_FILE, read_arrays

RECORD_FORMAT = "tfnas-run"
RECORD_VERSION = 2
#: The kinds of run: ``tfnas train`` and ``tfnas search``.
KINDS = ("train", "search")
#: Which weights of a run `read_weights` reads: those of the best validation loss, or the newest checkpoint's.
WEIGHTS = ("best", "latest")

#: The files and folders of a run folder.
RECORD_FILE = "config.json"
MODEL_FILE = "model.json"
CHECKPOINTS = "checkpoints"
BEST_WEIGHTS = "best/weights.npz"

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

    def describe(self) -> str:
        """``a `tfnas train` run`` or ``a `darts` search``."""
        return "a `tfnas train` run" if self.kind == "train" else f"a `{self.strategy}` search"


def resumable_fields(config_class: type) -> set[str]:
    """The fields of a settings dataclass that may change when a run is resumed.

    They are the fields whose metadata has ``resumable`` true
    (`tfnas.config.setting`). A nested config (``model``, ``child``) is one
    setting: resumable as a whole or not at all, whatever its own fields
    say, so that e.g. ``child.max_steps`` of a black-box search is checked
    although ``max_steps`` of a training run may change.
    """
    return {f.name for f in dataclasses.fields(config_class) if f.metadata.get("resumable")}


def _plain(config: Any) -> dict[str, Any]:
    """A settings dataclass as JSON data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _differences(old: dict[str, Any], new: dict[str, Any], skip: set[str], prefix: str = "") -> list[str]:
    """``key: old -> new`` for every setting that differs (dotted keys inside nested configs), except ``skip``."""
    out = []
    for key in sorted(new):
        name = f"{prefix}{key}"
        before, after = old.get(key), new[key]
        if name in skip or before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            out += _differences(before, after, skip, f"{name}.")
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
    """
    run_dir = Path(run_dir)
    path = run_dir / RECORD_FILE
    if path.exists():
        data = read_json(path)
        if data.get("format") != RECORD_FORMAT:
            return RunRecord("train", None, data)
        if data.get("version") != RECORD_VERSION:
            raise ValueError(f"{path} is a version {data.get('version')} run record; this tfnas reads version "
                             f"{RECORD_VERSION}: use a new --out folder")
        return RunRecord(data["kind"], data["strategy"], data["config"])
    for name, settings_of in _LEGACY_SEARCH_FILES.items():
        if (run_dir / name).exists():
            strategy, settings = settings_of(read_json(run_dir / name))
            if settings is not None:
                return RunRecord("search", strategy, settings, name)
    return None


def open_run(run_dir: str | Path, kind: str, strategy: str | None, config: Any) -> RunRecord | None:
    """Creates or reopens a run folder and writes its record; returns the record found before (None if new).

    A folder that holds a run may only be reopened by the same kind of run
    (and the same strategy) with the same settings, except the
    `resumable_fields` of ``type(config)``; their new values are recorded.

    Args:
        run_dir: the folder (created if needed).
        kind: ``"train"`` or ``"search"``.
        strategy: the strategy's name for a search, None for training.
        config: the run's settings (a settings dataclass).

    Raises:
        ValueError: the folder holds another kind of run, another
            strategy's search, other settings (every difference is listed
            as ``key: old -> new``), or checkpoints without readable
            settings (written by an older tfnas).
    """
    if kind not in KINDS:
        raise ValueError(f"Argument `kind` must be one of {list(KINDS)}; received: kind={kind!r}")
    run_dir = Path(run_dir)
    new = RunRecord(kind, strategy, _plain(config))
    old = read_record(run_dir)
    if old is None and (run_dir / CHECKPOINTS).is_dir():
        raise ValueError(f"{run_dir} was written by an older tfnas without its settings; they cannot be checked: "
                         "use a new --out folder")
    if old is not None:
        if (old.kind, old.strategy) != (kind, strategy):
            raise ValueError(f"{run_dir} holds {old.describe()}, not {new.describe()}; use a new --out folder")
        try:
            saved = _plain(from_dict(type(config), old.config, where=f"{run_dir / old.source}"))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{run_dir} holds settings this tfnas cannot read ({err}); "
                             "use a new --out folder") from None
        changed = _differences(saved, new.config, resumable_fields(type(config)))
        if changed:
            raise ValueError(f"{run_dir} holds {old.describe()} with another configuration ({', '.join(changed)}); "
                             "use a new --out folder or the same settings to resume")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / RECORD_FILE, {"format": RECORD_FORMAT, "version": RECORD_VERSION, "kind": kind,
                                       "strategy": strategy, "config": new.config, "tfnas_version": __version__})
    return old


class SavedWeights(NamedTuple):
    """Weights read back from a run folder: the arrays, in the model's order, and the file they came from."""

    arrays: list[np.ndarray]
    path: Path


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
            variables) or ``"latest"`` (the newest checkpoint's model weights
            as its writer recorded them: a train run's evaluated weights, the
            averaged ones once NT-ASGD has started; a one-shot search's
            model variables).

    Raises:
        MissingWeightsError: no such weights (never evaluated, no
            checkpoint, or a checkpoint of an older tfnas that did not
            record which of its variables are the model's weights).
        ValueError: unknown ``which``.
    """
    if which not in WEIGHTS:
        raise ValueError(f"Argument `which` must be one of {list(WEIGHTS)}; received: which={which!r}")
    run_dir = Path(run_dir)
    best = run_dir / BEST_WEIGHTS
    if which == "best" and best.exists():
        return SavedWeights(read_arrays(best).variables, best)
    manager = CheckpointManager(run_dir / CHECKPOINTS)
    latest = manager.latest()
    if which == "best":
        if latest is None:
            raise MissingWeightsError(f"{run_dir} has no checkpoint and no {BEST_WEIGHTS}", None)
        raise MissingWeightsError(f"{run_dir} has no {BEST_WEIGHTS}: the run was never evaluated. Its newest "
                                  f"checkpoint is {latest}", latest)
    if latest is None:
        raise MissingWeightsError(f"{run_dir} has no checkpoint ({CHECKPOINTS}/latest is missing)", None)
    arrays = manager.read_weights(latest)
    if arrays is None:
        raise MissingWeightsError(f"{latest} was written by an older tfnas that did not record which of its "
                                  "variables are the model's weights", latest)
    return SavedWeights(arrays, latest / VARIABLES_FILE)
