"""Atomic, exactly resumable checkpoints: variables as ``.npz``, the rest as JSON.

A checkpoint is a folder ``<root>/step-<N>/`` with ``variables.npz`` (every
variable in a fixed order, names checked on restore) and ``state.json``
(anything JSON-serialisable: data position, random state, schedules). It is
written into a temporary folder and renamed, then ``<root>/latest`` is
replaced atomically, so a run killed at any moment leaves either the old or
the new checkpoint, never a torn one.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not fit the model."""


def save_variables(path: Path, variables: Sequence[tf.Variable], extra: dict[str, np.ndarray] | None = None) -> None:
    """Writes ``variables`` (and extra arrays) to ``path`` (an .npz file)."""
    arrays = {f"v{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(variables)}
    arrays["__names__"] = np.array([v.path if hasattr(v, "path") else v.name for v in variables])
    for key, value in (extra or {}).items():
        arrays[f"x_{key}"] = np.asarray(value)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_variables(path: Path, variables: Sequence[tf.Variable]) -> dict[str, np.ndarray]:
    """Assigns the arrays in ``path`` to ``variables``; returns the extra arrays."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot read {path}: {err}") from None
    count = len(data["__names__"])
    if count != len(variables):
        raise CheckpointError(f"{path} holds {count} variables but the model has {len(variables)}: "
                              "was it written by another model configuration?")
    for i, var in enumerate(variables):
        value = data[f"v{i:05d}"]
        if tuple(value.shape) != tuple(var.shape):
            raise CheckpointError(f"{path}: variable {data['__names__'][i]} has shape {value.shape}, "
                                  f"the model expects {tuple(var.shape)}")
        var.assign(value)
    return {key[2:]: data[key] for key in data.files if key.startswith("x_")}


class CheckpointManager:
    """Writes ``step-N`` folders under ``root``, keeps the newest ``keep``."""

    def __init__(self, root: str | Path, keep: int = 2):
        self.root = Path(root)
        self.keep = max(1, int(keep))

    def latest(self) -> Path | None:
        pointer = self.root / "latest"
        if not pointer.exists():
            return None
        target = self.root / pointer.read_text(encoding="utf-8").strip()
        if not (target / "state.json").exists():
            raise CheckpointError(f"{pointer} names {target}, which is not a complete checkpoint")
        return target

    def save(self, step: int, variables: Sequence[tf.Variable], state: dict[str, Any],
             extra: dict[str, np.ndarray] | None = None) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"step-{step}"
        tmp = self.root / f".tmp-step-{step}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_variables(tmp / "variables.npz", variables, extra)
        (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer_tmp = self.root / ".latest.tmp"
        pointer_tmp.write_text(final.name, encoding="utf-8")
        os.replace(pointer_tmp, self.root / "latest")
        self._prune()
        return final

    def restore(self, path: Path, variables: Sequence[tf.Variable]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Loads a checkpoint folder; returns ``(state, extra arrays)``."""
        try:
            state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise CheckpointError(f"cannot read {path / 'state.json'}: {err}") from None
        return state, load_variables(path / "variables.npz", variables)

    def _prune(self) -> None:
        folders = sorted((p for p in self.root.glob("step-*") if p.is_dir()),
                         key=lambda p: int(p.name.split("-")[1]))
        for old in folders[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
