"""Typed settings: dataclass fields with help text, a resumable flag and an interval, read and merged with checks.

Every setting is a dataclass field with metadata: ``help`` (shown by
``tfnas ... --help``, with the paper value it stands for) and ``resumable``
(whether it may change when a run is resumed on the same folder; everything
else is part of what the run computes and is checked, `tfnas.runs.folder`).
Subclasses change a default by redeclaring the field with a plain value;
`settings` copies the help and the resumable flag from the base class, so
each setting is described once.

Every value is checked where it is read (`from_dict`, hence `merge`,
presets, flags and run records): against its field's type, a number
against the field's `Bound` (``setting(..., check=AT_LEAST_ONE)``) and a name
against its `OneOf` (``setting(..., check=OneOf(ATTENTION_HEADS))``). A value
that fails raises one `SettingsError` line naming the file, the setting and
the value. The same check (`conforms`, `expected`) types the command's flags
and validates the arguments of layers and export functions (`check_argument`).

The configs of runs and models built with it are in `tfnas.config`; their
YAML presets in `tfnas.presets`.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, Iterator, Mapping, TypeVar

from tfnas.errors import TfnasError, shown

T = TypeVar("T")


class SettingsError(TfnasError, ValueError):
    """A setting a user gave that cannot be used: an unknown key, a value of the wrong type or outside its
    interval, settings that do not fit together (one line naming the source, the setting and the value)."""


@dataclass(frozen=True)
class Bound:
    """The interval a number must lie in: ``low <= value`` (``<`` when ``open_low``) and ``value <= high``
    (``<`` when ``open_high``); None leaves that side unbounded."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def holds(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.open_low else value >= self.low)
        return above and (self.high is None or (value < self.high if self.open_high else value <= self.high))

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.open_low else '['}{self.low}, {self.high}{')' if self.open_high else ']'}"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {self.low}"
        return f"{'<' if self.open_high else '<='} {self.high}" if self.high is not None else ""


@dataclass(frozen=True)
class OneOf:
    """The names a string setting may take (``names``, in the order messages list them)."""

    names: tuple[str, ...]

    def holds(self, value: str) -> bool:
        return value in self.names

    def __str__(self) -> str:
        return f"one of {', '.join(map(repr, self.names))}"


#: What a setting's values are checked against: the interval of a number, the names of a string.
Check = Bound | OneOf

#: Counts that may be zero (retries, extra lengths).
NON_NEGATIVE = Bound(0)
#: Sizes, intervals, batches: integers >= 1.
AT_LEAST_ONE = Bound(1)
#: Learning rates, ranges, clips: numbers > 0.
POSITIVE = Bound(0, open_low=True)
#: Dropout rates and decays: [0, 1).
RATE = Bound(0, 1, open_high=True)
#: Seeds (NumPy's global seed, set by ``keras.utils.set_random_seed``, is below 2**32).
SEED = Bound(0, 2**32 - 1)


def conforms(kind: Any, bound: Check | None, value: Any) -> bool:
    """Whether ``value`` is of type ``kind`` (``int``, ``float``, ``bool``, ``str``, ``X | None``,
    ``tuple[X, ...]``, a settings dataclass) and, for a number, inside ``bound`` (a `Bound`), for a string, one of
    its names (a `OneOf`). Floats must be finite."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return value is None or any(conforms(a, bound, value) for a in args if a is not type(None))
    if typing.get_origin(kind) is tuple:
        return isinstance(value, (list, tuple)) and all(conforms(args[0], bound, v) for v in value)
    if kind is bool:
        return isinstance(value, bool)
    if kind is str:
        return isinstance(value, str) and (bound is None or bound.holds(value))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return isinstance(value, (kind, Mapping))
    if kind is int:
        number = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        try:
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        except OverflowError:  # an int too large for a float
            number = False
    else:
        return True
    return number and (bound is None or bound.holds(value))


def expected(kind: Any, bound: Check | None = None) -> str:
    """What `conforms` accepts, in words: ``a positive integer``, ``null or a number in [0, 1)``."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return "null or " + " or ".join(expected(a, bound) for a in args if a is not type(None))
    if typing.get_origin(kind) is tuple:
        if args[0] is int and bound == AT_LEAST_ONE:
            return "a list of positive integers"
        noun = {int: "integers", float: "numbers", str: "strings"}.get(args[0], "values")
        return f"a list of {noun} {bound}" if bound is not None else f"a list of {noun}"
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return "a mapping of settings"
    if kind is int and bound == AT_LEAST_ONE:
        return "a positive integer"
    if kind is str and bound is not None:
        return str(bound)
    noun = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(kind, "a value")
    if kind is float and bound is None:
        return "a finite number"
    return f"{noun} {bound}" if bound is not None and kind in (int, float) else noun


def check_argument(name: str, value: Any, kind: Any, bound: Check | None = None, label: str | None = None) -> Any:
    """``value`` if it `conforms`; else a `SettingsError` naming the argument, Keras-style:
    ``Argument `units` must be a positive integer; received: units=0`` (``label`` replaces
    ``Argument `units```)."""
    if not conforms(kind, bound, value):
        raise SettingsError(f"{label or f'Argument `{name}`'} must be {expected(kind, bound)}; "
                            f"received: {name}={shown(value)}")
    return value


def setting(default: Any = MISSING, *, help: str, resumable: bool = False,
            factory: Callable[[], Any] | None = None, check: Check | None = None) -> Any:
    """A dataclass field with its help text, whether it may change on resume, and the interval of a number or the
    names of a string (``check``)."""
    metadata = {"help": help, "resumable": resumable, "check": check}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def settings(cls: type[T]) -> type[T]:
    """``@dataclass`` that gives a redeclared field (a new default) the metadata of the base class's field
    (a field redeclared with `setting` keeps the base field's interval unless it gives its own)."""
    cls = dataclass(cls)
    for f in fields(cls):
        for base in cls.__mro__[1:]:
            inherited = getattr(base, "__dataclass_fields__", {}).get(f.name)
            if inherited is not None and inherited.metadata:
                if not f.metadata:
                    f.metadata = types.MappingProxyType(dict(inherited.metadata))
                elif f.metadata.get("check") is None:  # redeclared with new help: the interval stays
                    f.metadata = types.MappingProxyType({**f.metadata, "check": inherited.metadata.get("check")})
                break
    return cls


def check_settings(config: Any) -> None:
    """Refuses a setting of ``config`` outside its field's type and interval (``setting(check=...)``) on one
    line naming it: what `from_dict` checks in presets, flags and run records, for a config built directly
    (``TrainConfig(lr=-1.0)``). `RunConfig` and `ModelConfig` (and so every config) call it on creation."""
    hints = type_hints(type(config))
    for f in dataclasses.fields(config):
        bound = f.metadata.get("check")
        if bound is not None:
            check_argument(f.name, getattr(config, f.name), hints[f.name], bound, label=f.name)


def field_help(f: dataclasses.Field) -> str:
    """The help text of a settings field ('' if it has none)."""
    return f.metadata.get("help", "")


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Builds a (nested) settings dataclass, checking every value (`conforms`) before the class sees it.

    Raises:
        SettingsError: one line ``"<where>: <setting> must be <expected>; received: <value>"`` (``where``
            names the file or source), or an unknown key with the known ones.
    """
    return _from_dict(cls, data, where, "")


def _from_dict(cls: type[T], data: Any, where: str, path: str) -> T:
    if not isinstance(data, Mapping):
        raise SettingsError(f"{where}: {path.rstrip('.') or 'a config'} must be a mapping of settings; "
                            f"received: {shown(data)}")
    known = {f.name: f for f in fields(cls)}
    hints = type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise SettingsError(f"{where}: unknown key {f'{path}{key}' if isinstance(key, str) else key!r}; "
                                f"known keys{f' of {path[:-1]}' if path else ''}: {sorted(known)}")
        check = known[key].metadata.get("check")
        if not conforms(hints[key], check, value):
            raise SettingsError(f"{where}: {path}{key} must be {expected(hints[key], check)}; "
                                f"received: {shown(value)}")
        sub = nested_class(cls, key)
        kwargs[key] = _from_dict(sub, value, where, f"{path}{key}.") if sub and isinstance(value, Mapping) else value
    return cls(**kwargs)


@functools.lru_cache(maxsize=None)
def type_hints(cls: type) -> Mapping[str, Any]:
    """The field types of settings class ``cls`` (`typing.get_type_hints`, computed once per class)."""
    return types.MappingProxyType(typing.get_type_hints(cls))


def nested_class(cls: type, name: str) -> type | None:
    """The settings dataclass of field ``name`` of ``cls``, or None if it is a plain value."""
    hint = type_hints(cls).get(name)
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def to_dict(config: Any) -> dict[str, Any]:
    """The settings as plain JSON-compatible data (tuples become lists)."""
    return _plain(dataclasses.asdict(config))


def flat_settings(config: Any) -> dict[str, Any]:
    """Every setting of a settings dataclass (`to_dict`), those of a nested section or mapping as dotted names
    (``model.nhid``), in declaration order."""

    def flatten(data: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
        for name, value in data.items():
            if isinstance(value, dict):
                yield from flatten(value, f"{prefix}{name}.")
            else:
                yield prefix + name, value

    return dict(flatten(to_dict(config), ""))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def merge(config: T, overrides: Mapping[str, Any], where: str = "config") -> T:
    """A copy of ``config`` with ``overrides``; nested mappings merge at every depth; values are checked
    (errors name ``where``)."""
    data = dataclasses.asdict(config)
    deep_update(data, overrides)
    return from_dict(type(config), data, where)


def deep_update(data: dict, overrides: Mapping[str, Any]) -> None:
    """Updates ``data`` in place; a mapping merges into a mapping key by key, at every depth."""
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(data.get(key), dict):
            deep_update(data[key], value)
        else:
            data[key] = value
