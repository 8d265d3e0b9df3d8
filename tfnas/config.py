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
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import yaml

from tfnas.resources import resource_dir

T = TypeVar("T")

#: The folders of ``configs/``: presets of ``tfnas search`` and of ``tfnas train``.
PRESET_KINDS = ("search", "train")


def setting(default: Any = MISSING, *, help: str, resumable: bool = False,
            factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field with its help text and whether it may change on resume."""
    metadata = {"help": help, "resumable": resumable}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def settings(cls: type[T]) -> type[T]:
    """``@dataclass`` that gives a redeclared field (a new default) the metadata of the base class's field."""
    cls = dataclass(cls)
    for f in fields(cls):
        if f.metadata:
            continue
        for base in cls.__mro__[1:]:
            inherited = getattr(base, "__dataclass_fields__", {}).get(f.name)
            if inherited is not None and inherited.metadata:
                f.metadata = types.MappingProxyType(dict(inherited.metadata))
                break
    return cls


def check_ints(config: Any, names: tuple[str, ...], minimum: int = 1) -> None:
    """Refuses a setting among ``names`` that is not an integer >= ``minimum``, with one line naming it."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be {what}; received: {value!r}")


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

    emsize: int = setting(850, help="embedding size")
    nhid: int = setting(850, help="hidden units of the cell")
    nlayers: int = setting(1, help="stacked recurrent layers, each with its own weights (DARTS: 1; Zoph & Le "
                                   "section 4.2 children: 2)")
    dropout: float = setting(0.75, help="locked dropout on the RNN output")
    dropouth: float = setting(0.25, help="variational dropout on h inside the cell (and locked dropout between "
                                         "layers when nlayers > 1)")
    dropoutx: float = setting(0.75, help="variational dropout on x inside the cell")
    dropouti: float = setting(0.2, help="locked dropout on the embedded input")
    dropoute: float = setting(0.1, help="embedding (word) dropout")
    tie_weights: bool = setting(True, help="tie the decoder to the embedding (AWD-LSTM)")
    cell_init_range: float = setting(0.04, help="cell weights ~ U(-r, r)")
    emb_init_range: float = setting(0.04, help="embedding ~ U(-r, r) (DARTS RNNModel.init_weights: 0.04)")
    attention: str | None = setting(None, help="attention head on the RNN output (NASABN), or null")
    recompute: bool = setting(False, help="recompute each time step in the backward pass (less memory, same "
                                          "gradients)")


@settings
class RunConfig:
    """What every run has: the corpus, the seed and the checkpoint cadence."""

    dataset: str = setting("ptb", help="ptb, wikitext2 or a folder with train/valid/test.txt")
    data_dir: str | None = setting(None, help="where the corpora are (else $TFNAS_DATA, then the tfds manual "
                                              "folder)", resumable=True)
    download: bool = setting(True, help="download a named corpus (ptb, wikitext2) from its official location "
                                        "when it is found nowhere (also off with TFNAS_NO_DOWNLOAD=1)",
                             resumable=True)
    seed: int = setting(1267, help="seed of every random choice")
    checkpoint_interval: int = setting(200, help="steps between checkpoints", resumable=True)
    keep_checkpoints: int = setting(2, help="checkpoints kept on disk", resumable=True)


@settings
class LMRunConfig(RunConfig):
    """A language model trained with variable-length BPTT and clipped SGD (AWD-LSTM as used by DARTS).

    The defaults are `TrainConfig`'s (DARTS evaluation); `OneShotConfig`
    redeclares those that differ in search.
    """

    model: ModelConfig = setting(help="the language model", factory=ModelConfig)
    batch_size: int = setting(64, help="training batch")
    eval_batch_size: int = setting(10, help="validation batch")
    bptt: int = setting(35, help="BPTT length")
    max_seq_len_delta: int = setting(20, help="longest extra BPTT length drawn")
    lr: float = setting(20.0, help="SGD learning rate")
    clip: float = setting(0.25, help="gradient-norm clip")
    wdecay: float = setting(8e-7, help="L2 weight decay")
    alpha: float = setting(0.0, help="activation regularisation (AR) weight")
    beta: float = setting(1e-3, help="temporal activation regularisation (slowness) weight")
    epochs: int = setting(8000, help="epochs", resumable=True)
    max_steps: int | None = setting(None, help="stop after this many steps", resumable=True)
    log_interval: int = setting(50, help="steps between progress lines", resumable=True)
    max_eval_batches: int | None = setting(None, help="evaluate on the first N windows only", resumable=True)
    jit_compile: bool = setting(False, help="compile the step with XLA", resumable=True)


@settings
class TrainConfig(LMRunConfig):
    """Training recipe of AWD-LSTM as used by DARTS for evaluation (PTB).

    Defaults (Liu et al., ICLR 2019, appendix A.2.2 and ``rnn/train.py``):
    batch 64 (eval 10, test 1), BPTT 35 (+ up to 20, AWD-LSTM), SGD lr 20,
    clip 0.25, weight decay 8e-7, slowness (TAR) 1e-3, 8000 epochs, seed
    1267; NT-ASGD with a non-monotone interval of 5 (AWD-LSTM).
    """

    test_batch_size: int = setting(1, help="test batch", resumable=True)
    nonmono: int = setting(5, help="NT-ASGD non-monotone interval")
    eval_interval: int | None = setting(None, help="steps between evaluations (default: every epoch)",
                                        resumable=True)
    max_rollbacks: int = setting(3, help="non-finite training losses survived by rolling back to the best "
                                         "weights (DARTS rnn/train.py; the limit is tfnas')", resumable=True)
    distribute: str = setting("none", help="data parallelism: none, mirrored (the GPUs of this machine) or "
                                           "multi_worker (the machines of TF_CONFIG)", resumable=True)
    mixed_precision: bool = setting(False, help="compute in bfloat16 (CPU) or float16 with loss scaling (GPU); "
                                                "float32 weights, softmax and loss (tfnas.lm.precision)")


@settings
class ControllerConfig:
    """The LSTM controller and its REINFORCE training, mixed into the configs of REINFORCE and ENAS.

    Defaults: Zoph & Le (ICLR 2017, section 4.1): 2 layers of 35 units,
    weights in U(-0.08, 0.08), Adam lr 6e-4 (their CIFAR-10 value;
    `ReinforceConfig` redeclares section 4.2's PTB lr 5e-4 and no entropy
    bonus); no logit temperature or tanh constant; an
    exponential-moving-average baseline (decay 0.95, a tfnas choice) and an
    entropy bonus of 1e-4 (ENAS' value, kept by `EnasConfig`).
    """

    controller_units: int = setting(35, help="LSTM units of the controller")
    controller_layers: int = setting(2, help="LSTM layers of the controller")
    controller_lr: float = setting(6e-4, help="Adam learning rate of the controller")
    controller_init_range: float = setting(0.08, help="controller weights ~ U(-r, r)")
    temperature: float | None = setting(None, help="logits / T before the tanh constant (ENAS), or null")
    tanh_constant: float | None = setting(None, help="logits C * tanh(logits / T) (ENAS), or null")
    entropy_weight: float = setting(1e-4, help="weight of the entropy bonus")
    baseline_decay: float = setting(0.95, help="decay d of the moving-average baseline b <- d b + (1 - d) R")


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Builds a (nested) settings dataclass, rejecting unknown keys by name."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping of settings; received {data!r}")
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"{where}: unknown key {key!r}; known keys: {sorted(known)}")
        sub = nested_class(cls, key)
        kwargs[key] = from_dict(sub, value, f"{where}.{key}") if sub and isinstance(value, Mapping) else value
    return cls(**kwargs)


def nested_class(cls: type, name: str) -> type | None:
    """The settings dataclass of field ``name`` of ``cls``, or None if it is a plain value."""
    hint = typing.get_type_hints(cls).get(name)
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
    """``configs/search`` or ``configs/train`` (shipped with the package)."""
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


def load_preset(name_or_path: str, kind: str) -> dict[str, Any]:
    """The mapping stored in a preset or YAML file (applied with `merge` by the caller)."""
    path = find_preset(name_or_path, kind)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a YAML mapping")
    return data


def merge(config: T, overrides: Mapping[str, Any]) -> T:
    """A copy of ``config`` with ``overrides``; nested mappings merge at every depth."""
    data = dataclasses.asdict(config)
    deep_update(data, overrides)
    return from_dict(type(config), data)


def deep_update(data: dict, overrides: Mapping[str, Any]) -> None:
    """Updates ``data`` in place; a mapping merges into a mapping key by key, at every depth."""
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(data.get(key), dict):
            deep_update(data[key], value)
        else:
            data[key] = value


def search_config(strategy: str, config_class: type[T], preset: str | None = None,
                  overrides: Mapping[str, Any] | None = None) -> T:
    """``config_class`` defaults, then a search preset of ``strategy`` (refused if for another), then ``overrides``."""
    data = load_preset(preset, "search") if preset else {}
    named = data.pop("strategy", None)
    if named is not None and named != strategy:
        raise ValueError(f"preset {preset!r} is for strategy {named!r}, not {strategy!r}")
    return merge(merge(from_dict(config_class, {}, where=f"{strategy} config"), data), overrides or {})


def train_config(preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """`TrainConfig` defaults, then a train preset (name or YAML file), then ``overrides``."""
    config = TrainConfig()
    if preset:
        config = merge(config, load_preset(preset, "train"))
    return merge(config, overrides or {})
