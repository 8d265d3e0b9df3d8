"""Atomic, exactly resumable checkpoints: variables as ``.npz``, the rest as JSON.

A checkpoint is a folder ``<root>/step-<N>/`` with ``variables.npz`` (every
variable in a fixed order, names checked on restore) and ``state.json``
(anything JSON-serialisable: data position, random state, schedules). It is
written into a temporary folder and renamed, then ``<root>/latest`` is
replaced atomically, so a run killed at any moment leaves either the old or
the new checkpoint, never a torn one.

A checkpoint may record which of its variables are the model's weights
(``weights`` of `CheckpointManager.save`: e.g. a trainer's averaged weights
under NT-ASGD, or a search model's variables before its controller's), so
that a reader takes them without knowing how the writer orders its state
(`tfnas.runs.folder.read_weights`).

A checkpoint that cannot be read (a truncated or garbage ``variables.npz``
or ``state.json``, a ``latest`` naming a missing folder: a disk that lost
what it was given, a file edited by hand) raises `CorruptCheckpointError`;
`CheckpointManager.restore_newest` then falls back to the newest older
checkpoint that can be read, sets the unreadable ones aside as
``corrupt-step-N`` and reports them, so that the run's next checkpoints
are not pruned in their favour.

No TensorFlow import: variables are anything with ``numpy()``, ``assign``
and ``shape`` (`Variable`).
"""
from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from tfnas.errors import TfnasError, writing
from tfnas.runs.atomic import read_json, replacing, write_json, write_text

#: The files of a checkpoint folder.
VARIABLES_FILE = "variables.npz"
STATE_FILE = "state.json"


class CheckpointError(TfnasError, RuntimeError):
    """A checkpoint is missing, unreadable or does not fit the model."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file cannot be read: truncated, garbage, or missing from its folder."""


#: What reading a damaged ``.npz`` raises (NumPy reads a file that is not a zip archive as a pickle and refuses).
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


class Variable(Protocol):
    """What a checkpoint needs of a variable (a `tf.Variable` or a Keras variable)."""

    shape: Any

    def numpy(self) -> np.ndarray:
        ...

    def assign(self, value: Any) -> Any:
        ...


@dataclass(frozen=True)
class SavedArrays:
    """The content of an ``.npz`` written by `save_variables`.

    Attributes:
        variables: one array per saved variable, in the order saved.
        names: the variables' names, in the same order.
        extra: the extra arrays, by key.
        weights: the positions in ``variables`` of the model's weights, or
            None if the writer recorded none (or an older tfnas wrote it).
    """

    variables: list[np.ndarray]
    names: list[str]
    extra: dict[str, np.ndarray]
    weights: list[int] | None


def save_variables(path: Path, variables: Sequence[Variable], extra: dict[str, np.ndarray] | None = None,
                   weights: Sequence[int] | None = None) -> None:
    """Writes ``variables`` (and extra arrays) to ``path`` (an .npz file), atomically.

    ``weights``: the positions in ``variables`` of the model's weights, recorded for readers
    (`SavedArrays.weights`).
    """
    arrays = {f"v{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(variables)}
    arrays["__names__"] = np.array([v.path if hasattr(v, "path") else v.name for v in variables])
    if weights is not None:
        arrays["__weights__"] = np.array(weights, dtype=np.int64)
    for key, value in (extra or {}).items():
        arrays[f"x_{key}"] = np.asarray(value)
    with replacing(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _unreadable(path: Path, err: BaseException) -> CorruptCheckpointError:
    """The one-line error of a file that cannot be read (no advice to unpickle a damaged ``.npz``)."""
    why = "not an .npz archive" if "pickle" in str(err) else f"{type(err).__name__}: {err}"
    return CorruptCheckpointError(f"{path} is truncated or corrupted ({why})")


def read_arrays(path: Path) -> SavedArrays:
    """Reads an ``.npz`` written by `save_variables`; `CorruptCheckpointError` if it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            names = [str(n) for n in data["__names__"]]
            return SavedArrays(variables=[data[f"v{i:05d}"] for i in range(len(names))], names=names,
                               extra={key[2:]: data[key] for key in data.files if key.startswith("x_")},
                               weights=[int(i) for i in data["__weights__"]] if "__weights__" in data.files
                               else None)
    except _UNREADABLE as err:
        raise _unreadable(path, err) from None


def assign_arrays(variables: Sequence[Variable], arrays: Sequence[np.ndarray], source: Path) -> None:
    """Assigns ``arrays`` (read from ``source``) to ``variables``, checking their number and shapes."""
    if len(arrays) != len(variables):
        raise CheckpointError(f"{source} holds {len(arrays)} variables but the model has {len(variables)}: "
                              "was it written by another model configuration?")
    for i, (var, value) in enumerate(zip(variables, arrays)):
        if tuple(value.shape) != tuple(var.shape):
            name = var.path if hasattr(var, "path") else var.name
            raise CheckpointError(f"{source}: array {i} has shape {value.shape}, the model's variable {name} "
                                  f"expects {tuple(var.shape)}")
        var.assign(value)


def load_variables(path: Path, variables: Sequence[Variable]) -> dict[str, np.ndarray]:
    """Assigns the arrays in ``path`` to ``variables``; returns the extra arrays."""
    saved = read_arrays(path)
    assign_arrays(variables, saved.variables, path)
    return saved.extra


@dataclass(frozen=True)
class Restored:
    """A checkpoint restored by `CheckpointManager.restore_newest`.

    Attributes:
        path: its folder.
        state: its JSON state.
        extra: its extra arrays.
        skipped: one line per newer checkpoint that could not be read (and
            was set aside as ``corrupt-step-N``), newest first.
    """

    path: Path
    state: dict[str, Any]
    extra: dict[str, np.ndarray]
    skipped: list[str] = field(default_factory=list)


def _step_of(folder: Path) -> int | None:
    """N of a ``step-N`` folder name, else None."""
    head, _, number = folder.name.partition("-")
    return int(number) if head == "step" and number.isdigit() else None


class CheckpointManager:
    """Writes ``step-N`` folders under ``root``, keeps the newest ``keep``."""

    def __init__(self, root: str | Path, keep: int = 2):
        self.root = Path(root)
        self.keep = max(1, int(keep))

    def candidates(self) -> list[Path]:
        """The checkpoints to restore, newest first: the one ``latest`` names, then the older ``step-N`` folders.

        Empty when ``latest`` does not exist (no checkpoint was completed).
        """
        pointer = self.root / "latest"
        if not pointer.exists():
            return []
        named = self.root / pointer.read_text(encoding="utf-8").strip()
        newest = _step_of(named)
        steps = sorted(((s, p) for p in self.root.glob("step-*") if (s := _step_of(p)) is not None), reverse=True)
        older = [p for s, p in steps if newest is None or s < newest]
        return ([named] if newest is not None else []) + older

    def latest(self) -> Path | None:
        """The newest checkpoint folder that is complete on disk (its files may still be damaged), or None."""
        return next((p for p in self.candidates() if (p / STATE_FILE).exists()), None)

    def save(self, step: int, variables: Sequence[Variable], state: dict[str, Any],
             extra: dict[str, np.ndarray] | None = None, weights: Sequence[Variable] | None = None) -> Path:
        """Writes checkpoint ``step-<step>`` and points ``latest`` at it; returns its folder.

        A write that fails (a full disk) removes the half-written folder, leaves ``latest`` naming the previous
        checkpoint, and raises `tfnas.errors.PathAccessError` naming the checkpoint (and the disk's free space).

        Args:
            step: the step number (names the folder).
            variables: every variable to restore, in a fixed order.
            state: JSON-serialisable state.
            extra: arrays that are not variables (e.g. carried hidden states).
            weights: the model's weights among ``variables`` (the same objects), recorded for
                readers of the run (`SavedArrays.weights`).
        """
        positions = {id(v): i for i, v in enumerate(variables)}
        final = self.root / f"step-{step}"
        tmp = self.root / f".tmp-step-{step}"
        with writing(final, "write checkpoint"):
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                tmp.mkdir()
                save_variables(tmp / VARIABLES_FILE, variables, extra,
                               None if weights is None else [positions[id(v)] for v in weights])
                write_json(tmp / STATE_FILE, state)
                shutil.rmtree(final, ignore_errors=True)
                os.replace(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)  # nothing once renamed; a failed write's half
            write_text(self.root / "latest", final.name)
        self._prune()
        return final

    def restore(self, path: Path, variables: Sequence[Variable]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Loads a checkpoint folder; returns ``(state, extra arrays)``.

        Raises:
            CorruptCheckpointError: a file of the folder cannot be read
                (nothing was assigned).
            CheckpointError: the variables do not fit the model.
        """
        if not path.is_dir():
            raise CorruptCheckpointError(f"{path} is missing (named by {self.root / 'latest'})")
        try:
            state = read_json(path / STATE_FILE)
        except (OSError, ValueError) as err:
            raise _unreadable(path / STATE_FILE, err) from None
        if not isinstance(state, dict):
            raise CorruptCheckpointError(f"{path / STATE_FILE} is truncated or corrupted (not a JSON object)")
        return state, load_variables(path / VARIABLES_FILE, variables)

    def restore_newest(self, variables: Sequence[Variable]) -> Restored | None:
        """Restores the newest checkpoint that can be read (see the module docstring); None if there is none.

        Raises:
            CorruptCheckpointError: there are checkpoints, and none can be read.
            CheckpointError: a readable checkpoint does not fit the model.
        """
        skipped: list[tuple[Path, str]] = []
        for path in self.candidates():
            try:
                state, extra = self.restore(path, variables)
            except CorruptCheckpointError as err:
                skipped.append((path, str(err)))
                continue
            for bad, _ in skipped:
                self.set_aside(bad)
            return Restored(path, state, extra, [f"skipped the unreadable checkpoint {bad.name}: {why}"
                                                 for bad, why in skipped])
        if skipped:
            raise CorruptCheckpointError(f"no checkpoint of {self.root} can be read ({'; '.join(w for _, w in skipped)}"
                                         "); use a new --out folder")
        return None

    def set_aside(self, path: Path) -> None:
        """Renames an unreadable checkpoint folder ``step-N`` to ``corrupt-step-N`` (pruning ignores it)."""
        if path.is_dir():
            target = path.with_name(f"corrupt-{path.name}")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(path, target)

    def read_weights(self, path: Path) -> list[np.ndarray] | None:
        """The arrays of the model's weights in checkpoint ``path``, or None if it does not record them."""
        saved = read_arrays(path / VARIABLES_FILE)
        return None if saved.weights is None else [saved.variables[i] for i in saved.weights]

    def _prune(self) -> None:
        """Removes all but the newest ``keep`` checkpoints, and the temporary folders of killed writes."""
        folders = sorted((p for p in self.root.glob("step-*") if p.is_dir() and _step_of(p) is not None),
                         key=_step_of)
        for old in folders[: -self.keep] + list(self.root.glob(".tmp-step-*")):
            shutil.rmtree(old, ignore_errors=True)
