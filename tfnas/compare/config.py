"""The settings of a strategy comparison (`tfnas.compare`) and their YAML presets in ``configs/compare/``."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from tfnas.errors import TfnasError
from tfnas.presets import load_preset
from tfnas.settings import deep_update

#: Baseline cells retrained beside the searches: a known cell's name, or ``lstm`` (keras.layers.LSTM).
DEFAULT_BASELINES = ("darts_v2", "lstm")
#: The random cells' names: ``random-00``, ``random-01`` ...
RANDOM_PREFIX = "random-"


def is_random_cell(name: str) -> bool:
    """Whether ``name`` is a random cell's (``random-`` and digits; a search labelled ``random-s1`` is not)."""
    return name.startswith(RANDOM_PREFIX) and name[len(RANDOM_PREFIX):].isdigit()


class CompareConfigError(TfnasError, ValueError):
    """A comparison preset or override that cannot be used (named in one line)."""


@dataclass(frozen=True)
class StrategyRun:
    """One search of the comparison.

    Attributes:
        strategy: a name of `tfnas.strategies.registry.STRATEGIES`.
        preset: its search preset (a name of ``configs/search/`` or a YAML file), or None for the defaults.
        overrides: settings over the preset (the search budget: ``max_steps``, ``max_trials``, ...).
        label: the row's name and folder (default: the strategy's name).
        group: the strategy row this search counts towards (`CompareConfig.search_runs` sets it to the label of
            the run it repeats with another search seed; default: its own name).
    """

    strategy: str
    preset: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    group: str = ""

    @property
    def name(self) -> str:
        return self.label or self.strategy

    @property
    def strategy_name(self) -> str:
        """The name of the strategy row it counts towards (its `group`, else its own name)."""
        return self.group or self.name


@dataclass(frozen=True)
class CompareConfig:
    """What to compare and how every cell is retrained.

    Attributes:
        dataset: ``ptb``, ``wikitext2`` or a corpus folder (every search and retraining reads it).
        data_dir: where named corpora are (as ``--data-dir``).
        searches: the `StrategyRun`s.
        random_cells: K cells drawn uniformly from `random_space` (`tfnas.spaces.dag.DagSpace`).
        random_steps: nodes of the random cells' space (DARTS' 8).
        random_seed: seed of the random cells (drawn once, kept in the comparison folder).
        baselines: known cells (and ``lstm``) retrained with the same recipe.
        train: the retraining preset (``configs/train/``) and `train_overrides` over it.
        train_overrides: settings over ``train`` (``max_steps``, ``model`` ...).
        seeds: one retraining of every cell per seed (distinct: a repeated seed would count one run twice).
        search_budget_s: the wall-clock budget in seconds of every search (its ``budget_s``, over its preset and
            overrides), so that the strategies are compared at equal cost; None: each search's own limits.
        search_seeds: run every search once per seed (its ``seed``, over its preset and overrides), as
            ``<label>-s<seed>`` (`search_runs`): a strategy's result is then a distribution over its searches, as
            DARTS' 4-seed protocol (Liu et al. 2019, section 3.3) and Sciuto et al. (2020) treat it; empty: each
            search once, with the seed of its settings.
        signal_proxy: measure the hidden-state covariance of every random cell untrained (`tfnas.compare.signals`).
        signal_child_steps: train every random cell as a black-box child to each of these step counts (an ASHA
            schedule's rungs) and check those scores against the retraining (`tfnas.compare.signals`); empty: none.
        signal_child: settings over the black-box children's recipe (`child_config`) for those children.
    """

    dataset: str = "ptb"
    data_dir: str | None = None
    searches: tuple[StrategyRun, ...] = ()
    random_cells: int = 8
    random_steps: int = 8
    random_seed: int = 0
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    train: str | None = "quick_train"
    train_overrides: Mapping[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (1,)
    search_budget_s: float | None = None
    search_seeds: tuple[int, ...] = ()
    signal_proxy: bool = True
    signal_child_steps: tuple[int, ...] = ()
    signal_child: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("seeds", "search_seeds"):
            self._check_seeds(key, getattr(self, key), required=key == "seeds")
        names = [run.name for run in self.search_runs()]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise CompareConfigError(f"searches share the labels {repeated}: give each a distinct `label`")
        clash = sorted(n for n in names if n in self.baselines or is_random_cell(n))
        if clash:
            raise CompareConfigError(f"search labels {clash} are baseline or random-cell names; give them another "
                                     "`label`")
        for name, value, low in (("random_cells", self.random_cells, 0), ("random_steps", self.random_steps, 1),
                                 ("random_seed", self.random_seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise CompareConfigError(f"{name} must be an integer >= {low}; got {value!r}")
        steps = self.signal_child_steps
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in steps) or len(set(steps)) < len(steps):
            raise CompareConfigError(f"signal_child_steps must be a list of distinct integers >= 1; got {list(steps)!r}")
        if not isinstance(self.signal_proxy, bool):
            raise CompareConfigError(f"signal_proxy must be true or false; got {self.signal_proxy!r}")
        budget = self.search_budget_s
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                                   or not 0 < budget < float("inf")):
            raise CompareConfigError(f"search_budget_s must be null or a number of seconds > 0; got {budget!r}")

    @staticmethod
    def _check_seeds(key: str, seeds: Sequence[int], required: bool) -> None:
        if (required and not seeds) or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
            raise CompareConfigError(f"{key} must be a {'non-empty ' if required else ''}list of integers >= 0; "
                                     f"got {list(seeds)!r}")
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            what = "retraining of every cell" if key == "seeds" else "search of every strategy"
            raise CompareConfigError(f"{key} repeat {repeated}: each seed is one {what}, and a repeated one would "
                                     "count the same run twice; give distinct seeds")

    def search_runs(self) -> tuple[StrategyRun, ...]:
        """The searches to run: `searches` as they are, or with `search_seeds` each once per seed, labelled
        ``<label>-s<seed>``, grouped under its label and given that ``seed`` over its overrides."""
        if not self.search_seeds:
            return self.searches
        return tuple(dataclasses.replace(run, label=f"{run.name}-s{seed}", group=run.name,
                                         overrides={**run.overrides, "seed": seed})
                     for run in self.searches for seed in self.search_seeds)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def compare_config(data: Mapping[str, Any], where: str = "comparison settings") -> CompareConfig:
    """A `CompareConfig` from JSON/YAML data, refusing unknown keys by name."""
    known = {f.name for f in dataclasses.fields(CompareConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CompareConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    runs = []
    for i, run in enumerate(_shaped(data, "searches", list, where)):
        if not isinstance(run, Mapping) or "strategy" not in run:
            raise CompareConfigError(f"{where}: searches[{i}] must be a mapping with a `strategy`; got {run!r}")
        extra = sorted(set(run) - {f.name for f in dataclasses.fields(StrategyRun)})
        if extra:
            raise CompareConfigError(f"{where}: searches[{i}] has unknown keys {extra}")
        overrides = _shaped(run, "overrides", dict, where, f"searches[{i}].")
        runs.append(StrategyRun(**{**run, "overrides": dict(overrides)}))
    values = {**data, "searches": tuple(runs)}
    for key in ("baselines", "seeds", "search_seeds", "signal_child_steps"):
        if key in values:
            values[key] = tuple(_shaped(values, key, list, where))
    for key in ("train_overrides", "signal_child"):
        if key in values:
            values[key] = dict(_shaped(values, key, dict, where))
    return CompareConfig(**values)


def _shaped(data: Mapping[str, Any], key: str, shape: type[list] | type[dict], where: str,
            prefix: str = "") -> Sequence[Any] | Mapping[str, Any]:
    """``data[key]`` if it is a list (``shape`` list; a tuple too) or a mapping (``shape`` dict), empty if missing
    or null; anything else (``seeds: 3``, ``baselines: darts_v2``) is a one-line `CompareConfigError`."""
    value = data.get(key)
    if value is None:
        return shape()
    if isinstance(value, (list, tuple) if shape is list else Mapping):
        return value
    raise CompareConfigError(f"{where}: {prefix}{key} must be a {'list' if shape is list else 'mapping'}; "
                             f"got {value!r}")


def load_compare_config(preset: str | Path | None, overrides: Mapping[str, Any] | None = None) -> CompareConfig:
    """A preset of ``configs/compare/`` (by name) or a YAML file, with ``overrides`` merged at every depth."""
    data = load_preset(str(preset), "compare") if preset is not None else {}
    deep_update(data, dict(overrides or {}))
    return compare_config(data, str(preset) if preset is not None else "comparison settings")
