"""Typed settings: the base dataclasses, their help text, the YAML presets in ``configs/``, merging.

Every setting is a dataclass field with metadata: ``help`` (shown by
``tfnas ... --help``, with the paper value it stands for) and ``resumable``
(whether it may change when a run is resumed on the same folder; everything
else is part of what the run computes and is checked, `tfnas.runs.folder`).
Subclasses change a default by redeclaring the field with a plain value;
`settings` copies the help and the resumable flag from the base class, so
each setting is described once.

The hierarchy::

    RunConfig                 dataset, data location, seed, checkpoints
    ├── LMRunConfig           + a language model trained with BPTT and clipped SGD
    │   ├── TrainConfig       + NT-ASGD and evaluation  (tfnas train)
    │   └── OneShotConfig     + warm-up, NaN retries     (strategies/one_shot)
    └── BlackBoxConfig        + space, trials, evaluator (strategies/black_box)

Presets (``configs/train/*.yaml``, ``configs/search/*.yaml``) hold only
what differs from these defaults.

Every value is checked where it is read (`from_dict`, hence `merge`,
presets, flags and run records): against its field's type, and a number
against the field's `Bound` (``setting(..., check=AT_LEAST_ONE)``). A value
that fails raises one `ValueError` line naming the file, the setting and the
value. The same check (`conforms`, `expected`) types the command's flags and
validates the arguments of layers and export functions (`check_argument`).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
import reprlib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import yaml

from tfnas.resources import resource_dir

T = TypeVar("T")

#: The folders of ``configs/``: presets of ``tfnas search`` and of ``tfnas train``.
PRESET_KINDS = ("search", "train", "compare")


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


def conforms(kind: Any, bound: Bound | None, value: Any) -> bool:
    """Whether ``value`` is of type ``kind`` (``int``, ``float``, ``bool``, ``str``, ``X | None``,
    ``tuple[X, ...]``, a settings dataclass) and, for a number, inside ``bound``. Floats must be finite."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return value is None or any(conforms(a, bound, value) for a in args if a is not type(None))
    if typing.get_origin(kind) is tuple:
        return isinstance(value, (list, tuple)) and all(conforms(args[0], bound, v) for v in value)
    if kind in (bool, str):
        return isinstance(value, kind)
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


def expected(kind: Any, bound: Bound | None = None) -> str:
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
    noun = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(kind, "a value")
    if kind is float and bound is None:
        return "a finite number"
    return f"{noun} {bound}" if bound is not None and kind in (int, float) else noun


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def _shown(value: Any) -> str:
    """``repr(value)``, cut short for long strings and containers."""
    return _REPR.repr(value)


def check_argument(name: str, value: Any, kind: Any, bound: Bound | None = None, label: str | None = None) -> Any:
    """``value`` if it `conforms`; else a `ValueError` naming the argument, Keras-style:
    ``Argument `units` must be a positive integer; received: units=0`` (``label`` replaces
    ``Argument `units```)."""
    if not conforms(kind, bound, value):
        raise ValueError(f"{label or f'Argument `{name}`'} must be {expected(kind, bound)}; "
                         f"received: {name}={_shown(value)}")
    return value


def setting(default: Any = MISSING, *, help: str, resumable: bool = False,
            factory: Callable[[], Any] | None = None, check: Bound | None = None) -> Any:
    """A dataclass field with its help text, whether it may change on resume, and the interval of a number."""
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


@settings
class ModelConfig:
    """Language model around a cell.

    Defaults: the DARTS evaluation model (Liu et al., ICLR 2019, appendix
    A.2.2 and ``rnn/train.py``): emsize = nhid = 850; one recurrent layer;
    dropouts 0.75 (output), 0.25 (h), 0.75 (x), 0.2 (input), 0.1
    (embedding); cell weights and the embedding in U(-0.04, 0.04) (DARTS
    ``RNNModel.init_weights`` and the cell's initialisation); a tied decoder
    (AWD-LSTM, Merity et al. 2018).

    ``nlayers > 1`` stacks cells as AWD-LSTM does (Zoph & Le, ICLR 2017,
    section 4.2, train two-layer children): each layer has its own weights
    and states, and ``dropouth`` is also the locked dropout on the output of
    every layer but the last (``dropout`` stays on the last one).
    """

    emsize: int = setting(850, help="embedding size", check=AT_LEAST_ONE)
    nhid: int = setting(850, help="hidden units of the cell", check=AT_LEAST_ONE)
    nlayers: int = setting(1, help="stacked recurrent layers, each with its own weights (DARTS: 1; Zoph & Le "
                                   "section 4.2 children: 2)", check=AT_LEAST_ONE)
    dropout: float = setting(0.75, help="locked dropout on the RNN output", check=RATE)
    dropouth: float = setting(0.25, help="variational dropout on h inside the cell (and locked dropout between "
                                         "layers when nlayers > 1)", check=RATE)
    dropoutx: float = setting(0.75, help="variational dropout on x inside the cell", check=RATE)
    dropouti: float = setting(0.2, help="locked dropout on the embedded input", check=RATE)
    dropoute: float = setting(0.1, help="embedding (word) dropout", check=RATE)
    tie_weights: bool = setting(True, help="tie the decoder to the embedding (AWD-LSTM)")
    cell_init_range: float = setting(0.04, help="cell weights ~ U(-r, r)", check=POSITIVE)
    emb_init_range: float = setting(0.04, help="embedding ~ U(-r, r) (DARTS RNNModel.init_weights: 0.04)",
                                    check=POSITIVE)
    attention: str | None = setting(None, help="attention head on the RNN output (NASABN), or null")
    recompute: bool = setting(False, help="recompute each time step in the backward pass (less memory, same "
                                          "gradients)")

    def __post_init__(self) -> None:
        check_settings(self)


@settings
class RunConfig:
    """What every run has: the corpus, the seed and the checkpoint cadence."""

    dataset: str = setting("ptb", help="ptb, wikitext2 or a folder with train/valid/test.txt")
    data_dir: str | None = setting(None, help="where the corpora are (else $TFNAS_DATA, then the tfds manual "
                                              "folder)", resumable=True)
    download: bool = setting(True, help="download a named corpus (ptb, wikitext2) from its official location "
                                        "when it is found nowhere (also off with TFNAS_NO_DOWNLOAD=1)",
                             resumable=True)
    seed: int = setting(1267, help="seed of every random choice", check=SEED)
    checkpoint_interval: int = setting(200, help="steps between checkpoints", resumable=True, check=AT_LEAST_ONE)
    keep_checkpoints: int = setting(2, help="checkpoints kept on disk", resumable=True, check=AT_LEAST_ONE)

    def __post_init__(self) -> None:
        check_settings(self)


@settings
class LMRunConfig(RunConfig):
    """A language model trained with variable-length BPTT and clipped SGD (AWD-LSTM as used by DARTS).

    The defaults are `TrainConfig`'s (DARTS evaluation); `OneShotConfig`
    redeclares those that differ in search.
    """

    model: ModelConfig = setting(help="the language model", factory=ModelConfig)
    batch_size: int = setting(64, help="training batch", check=AT_LEAST_ONE)
    eval_batch_size: int = setting(10, help="validation batch", check=AT_LEAST_ONE)
    bptt: int = setting(35, help="BPTT length", check=AT_LEAST_ONE)
    max_seq_len_delta: int = setting(20, help="longest extra BPTT length drawn", check=NON_NEGATIVE)
    lr: float = setting(20.0, help="SGD learning rate", check=POSITIVE)
    clip: float = setting(0.25, help="gradient-norm clip", check=POSITIVE)
    wdecay: float = setting(8e-7, help="L2 weight decay", check=NON_NEGATIVE)
    alpha: float = setting(0.0, help="activation regularisation (AR) weight", check=NON_NEGATIVE)
    beta: float = setting(1e-3, help="temporal activation regularisation (slowness) weight", check=NON_NEGATIVE)
    epochs: int = setting(8000, help="epochs", resumable=True, check=AT_LEAST_ONE)
    max_steps: int | None = setting(None, help="stop after this many steps", resumable=True, check=NON_NEGATIVE)
    log_interval: int = setting(50, help="steps between progress lines", resumable=True, check=AT_LEAST_ONE)
    max_eval_batches: int | None = setting(None, help="evaluate on the first N windows only", resumable=True,
                                           check=AT_LEAST_ONE)
    jit_compile: bool = setting(False, help="compile the step with XLA", resumable=True)


@settings
class TrainConfig(LMRunConfig):
    """Training recipe of AWD-LSTM as used by DARTS for evaluation (PTB).

    Defaults (Liu et al., ICLR 2019, appendix A.2.2 and ``rnn/train.py``):
    batch 64 (eval 10, test 1), BPTT 35 (+ up to 20, AWD-LSTM), SGD lr 20,
    clip 0.25, weight decay 8e-7, slowness (TAR) 1e-3, 8000 epochs, seed
    1267; NT-ASGD with a non-monotone interval of 5 (AWD-LSTM).
    """

    test_batch_size: int = setting(1, help="test batch", resumable=True, check=AT_LEAST_ONE)
    nonmono: int = setting(5, help="NT-ASGD non-monotone interval", check=NON_NEGATIVE)
    eval_interval: int | None = setting(None, help="steps between evaluations (default: every epoch)",
                                        resumable=True, check=AT_LEAST_ONE)
    max_rollbacks: int = setting(3, help="non-finite training losses survived by rolling back to the best "
                                         "weights (DARTS rnn/train.py; the limit is tfnas')", resumable=True,
                                 check=NON_NEGATIVE)
    distribute: str = setting("none", help="data parallelism: none, mirrored (the GPUs of this machine) or "
                                           "multi_worker (the machines of TF_CONFIG)", resumable=True)
    mixed_precision: bool = setting(False, help="compute in bfloat16 (CPU) or float16 with loss scaling (GPU); "
                                                "float32 weights, softmax and loss (tfnas.lm.precision)")

    def split_batch_sizes(self) -> dict[str, int]:
        """The batch of each split a training reads: ``{"train": batch_size, "valid": ..., "test": ...}``."""
        return {"train": self.batch_size, "valid": self.eval_batch_size, "test": self.test_batch_size}


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Builds a (nested) settings dataclass, checking every value (`conforms`) before the class sees it.

    Raises:
        ValueError: one line ``"<where>: <setting> must be <expected>; received: <value>"`` (``where``
            names the file or source), or an unknown key with the known ones.
    """
    return _from_dict(cls, data, where, "")


def _from_dict(cls: type[T], data: Any, where: str, path: str) -> T:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: {path.rstrip('.') or 'a config'} must be a mapping of settings; "
                         f"received: {_shown(data)}")
    known = {f.name: f for f in fields(cls)}
    hints = type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"{where}: unknown key {f'{path}{key}' if isinstance(key, str) else key!r}; "
                             f"known keys{f' of {path[:-1]}' if path else ''}: {sorted(known)}")
        check = known[key].metadata.get("check")
        if not conforms(hints[key], check, value):
            raise ValueError(f"{where}: {path}{key} must be {expected(hints[key], check)}; received: {_shown(value)}")
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


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def preset_dir(kind: str) -> Path:
    """``configs/search``, ``configs/train`` or ``configs/compare`` (shipped with the package)."""
    if kind not in PRESET_KINDS:
        raise ValueError(f"Argument `kind` must be one of {list(PRESET_KINDS)}; received: kind={kind!r}")
    return resource_dir("configs") / kind


def preset_names(kind: str) -> list[str]:
    """The presets of ``kind`` (``search`` or ``train``)."""
    return sorted(p.stem for p in preset_dir(kind).glob("*.yaml"))


def find_preset(name_or_path: str, kind: str) -> Path:
    """A YAML file by path, or a preset name from ``configs/<kind>/``."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = preset_dir(kind) / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(f"config {name_or_path!r} is neither a YAML file nor a {kind} preset; "
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
        ValueError: not YAML (one line: the file, line and column, the problem) or not a mapping.
    """
    path = find_preset(name_or_path, kind)
    try:
        data = parse_yaml(path.read_bytes())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ValueError(" ".join(f"{where}: not valid YAML: {problem}".split())) from None
    except RecursionError:
        raise ValueError(f"{path}: not valid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as err:  # a value YAML recognises but Python refuses (2024-13-01)
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a YAML mapping of settings; received: {_shown(data)}")
    return data


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


def apply_preset(config: T, name_or_path: str, kind: str, strategy: str | None = None) -> T:
    """``config`` merged with a preset or YAML file of ``kind``; errors name the file. A search preset
    that names another strategy than ``strategy`` is refused."""
    path = find_preset(name_or_path, kind)
    data = load_preset(str(path), kind)
    named = data.pop("strategy", None) if kind == "search" else None
    if named is not None and named != strategy:
        raise ValueError(f"preset {name_or_path!r} is for strategy {named!r}, not {strategy!r}")
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
