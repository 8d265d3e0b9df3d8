"""Dataclass configurations and the YAML presets in ``configs/``."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from tfnas.resources import resource_dir



@dataclass
class ModelConfig:
    """Language model around a cell (DARTS ``rnn/train.py`` defaults).

    ``dropout`` is the locked dropout on the RNN output, ``dropouth`` and
    ``dropoutx`` the cell's variational masks on h and x, ``dropouti`` the
    locked dropout on the embedded input and ``dropoute`` the embedding
    (word) dropout. ``recompute`` recomputes each time step of the cell in
    the backward pass instead of storing its intermediates (`CellRNN`):
    about half the memory of a step for a few per cent of time, the same
    gradients; the search presets turn it on.
    """

    emsize: int = 850
    nhid: int = 850
    dropout: float = 0.75
    dropouth: float = 0.25
    dropoutx: float = 0.75
    dropouti: float = 0.2
    dropoute: float = 0.1
    tie_weights: bool = True
    cell_init_range: float = 0.04
    emb_init_range: float = 0.1
    attention: str | None = None
    recompute: bool = False


@dataclass
class TrainConfig:
    """Training recipe of AWD-LSTM as used by DARTS for evaluation (PTB)."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    dataset: str = "ptb"
    data_dir: str | None = None
    batch_size: int = 64
    eval_batch_size: int = 10
    test_batch_size: int = 1
    bptt: int = 35
    max_seq_len_delta: int = 20
    lr: float = 20.0
    clip: float = 0.25
    wdecay: float = 8e-7
    alpha: float = 0.0
    beta: float = 1e-3
    epochs: int = 8000
    max_steps: int | None = None
    nonmono: int = 5
    seed: int = 1267
    log_interval: int = 50
    eval_interval: int | None = None
    max_eval_batches: int | None = None
    checkpoint_interval: int = 200
    keep_checkpoints: int = 2
    jit_compile: bool = False


T = TypeVar("T")


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Builds a (nested) dataclass, rejecting unknown keys by name."""
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"{where}: unknown key {key!r}; known keys: {sorted(known)}")
        sub = _nested_type(known[key])
        kwargs[key] = from_dict(sub, value, f"{where}.{key}") if sub and isinstance(value, Mapping) else value
    return cls(**kwargs)


def _nested_type(f: dataclasses.Field) -> type | None:
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
    return type(default) if dataclasses.is_dataclass(default) else None


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def find_preset(name_or_path: str) -> Path:
    """A YAML file by path, or a preset name from ``configs/``."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    folder = resource_dir("configs")
    candidate = folder / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    names = sorted(p.stem for p in folder.glob("*.yaml"))
    raise FileNotFoundError(f"config {name_or_path!r} is neither a YAML file nor a preset; presets: {names}")


def load_preset(name_or_path: str) -> dict[str, Any]:
    """The mapping stored in a preset (sections are applied by the caller)."""
    path = find_preset(name_or_path)
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a YAML mapping")
    return data


def merge(config: T, overrides: Mapping[str, Any]) -> T:
    """A copy of ``config`` with ``overrides`` (nested mappings merge)."""
    data = to_dict(config)
    _deep_update(data, overrides)
    return from_dict(type(config), data)


def _deep_update(data: dict, overrides: Mapping[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(data.get(key), dict):
            _deep_update(data[key], value)
        else:
            data[key] = value
