"""YAML presets: the files of ``configs/search``, ``configs/train`` and ``configs/compare``, read and merged.

A preset (``configs/train/*.yaml``, ``configs/search/*.yaml``) holds only
what differs from the defaults of its config class (`tfnas.config`, the
strategies' configs); `apply_preset` merges it with `tfnas.settings.merge`,
which checks every value. A preset that cannot be found or read raises one
`PresetError` line naming the file.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from tfnas.config import TrainConfig
from tfnas.errors import TfnasError
from tfnas.resources import resource_dir
from tfnas.settings import from_dict, merge, shown

T = TypeVar("T")

#: The folders of ``configs/``: presets of ``tfnas search`` and of ``tfnas train``.
PRESET_KINDS = ("search", "train", "compare")


class PresetError(TfnasError, ValueError):
    """A preset or YAML file of settings that cannot be used: not valid YAML, not a mapping, or a search preset
    of another strategy (one line naming the file)."""


class PresetNotFoundError(PresetError, FileNotFoundError):
    """A preset name that is neither a YAML file nor a preset of its kind (the message lists the presets)."""


def preset_dir(kind: str) -> Path:
    """``configs/search``, ``configs/train`` or ``configs/compare`` (shipped with the package)."""
    if kind not in PRESET_KINDS:
        raise ValueError(f"Argument `kind` must be one of {list(PRESET_KINDS)}; received: kind={kind!r}")
    return resource_dir("configs") / kind


def preset_names(kind: str) -> list[str]:
    """The presets of ``kind`` (``search`` or ``train``)."""
    return sorted(p.stem for p in preset_dir(kind).glob("*.yaml"))


def find_preset(name_or_path: str, kind: str) -> Path:
    """A YAML file by path, or a preset name from ``configs/<kind>/``.

    Raises:
        PresetNotFoundError: neither (a `FileNotFoundError`; the message lists the presets of ``kind``).
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = preset_dir(kind) / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    raise PresetNotFoundError(f"config {name_or_path!r} is neither a YAML file nor a {kind} preset; "
                              f"{kind} presets: {preset_names(kind)}")


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML that reads ``1e-3`` as a number, as YAML 1.2 does (PyYAML's YAML 1.1 needs ``1.0e-3``)."""


_YamlLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(\d[\d_]*\.?\d*|\.\d+)[eE][-+]?\d+$"),
                                  list("-+0123456789."))


def parse_yaml(text: str | bytes) -> Any:
    """The value of YAML ``text`` as presets read it (`_YamlLoader`: ``1e-3`` is a number)."""
    return yaml.load(text, Loader=_YamlLoader)


def load_preset(name_or_path: str, kind: str) -> dict[str, Any]:
    """The mapping stored in a preset or YAML file (applied with `merge` by the caller).

    Raises:
        PresetError: not YAML (one line: the file, line and column, the problem) or not a mapping.
    """
    path = find_preset(name_or_path, kind)
    try:
        data = parse_yaml(path.read_bytes())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise PresetError(" ".join(f"{where}: not valid YAML: {problem}".split())) from None
    except RecursionError:
        raise PresetError(f"{path}: not valid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as err:  # a value YAML recognises but Python refuses (2024-13-01)
        raise PresetError(f"{path}: not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PresetError(f"{path}: a config must be a YAML mapping of settings; received: {shown(data)}")
    return data


def apply_preset(config: T, name_or_path: str, kind: str, strategy: str | None = None) -> T:
    """``config`` merged with a preset or YAML file of ``kind``; errors name the file. A search preset
    that names another strategy than ``strategy`` is refused."""
    path = find_preset(name_or_path, kind)
    data = load_preset(str(path), kind)
    named = data.pop("strategy", None) if kind == "search" else None
    if named is not None and named != strategy:
        raise PresetError(f"preset {name_or_path!r} is for strategy {named!r}, not {strategy!r}")
    return merge(config, data, where=str(path))


def search_config(strategy: str, config_class: type[T], preset: str | None = None,
                  overrides: Mapping[str, Any] | None = None) -> T:
    """``config_class`` defaults, then a search preset of ``strategy`` (refused if for another), then ``overrides``."""
    config = from_dict(config_class, {}, where=f"{strategy} config")
    if preset:
        config = apply_preset(config, preset, "search", strategy)
    return merge(config, overrides or {})


def train_config(preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """`TrainConfig` defaults, then a train preset (name or YAML file), then ``overrides``."""
    config = TrainConfig()
    if preset:
        config = apply_preset(config, preset, "train")
    return merge(config, overrides or {})
