"""The strategies of ``tfnas search --strategy``: one static table, name -> strategy class and config class.

Each row names its classes by import path (``"package.module:Class"``);
a class is imported when first asked for, so that listing the names (as
``tfnas --help`` does) loads no strategy module, and with them no
TensorFlow. A strategy's presets are the YAML files of ``configs/search/``
whose ``strategy:`` key names it.

No strategy module imports this one; adding a strategy is a row here (and
its module, config subclass, presets and tests).
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Mapping

from tfnas.errors import TfnasError
from tfnas.presets import load_preset, preset_names, search_config
from tfnas.strategies.base import Strategy


class UnknownStrategyError(TfnasError, ValueError):
    """A strategy name that is not a row of `STRATEGIES`; the message lists the known names."""


def load_class(path: str) -> type:
    """The class at import path ``"package.module:Class"``, importing its module."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def preset_strategy(preset: str) -> str | None:
    """The strategy a search preset (a name of ``configs/search/``) names in its ``strategy:`` key."""
    return load_preset(preset, "search").get("strategy")


@dataclass(frozen=True)
class StrategySpec:
    """A row of the table: the strategy's name and the import paths of its strategy class and config class."""

    name: str
    strategy_path: str
    config_path: str

    @property
    def strategy_class(self) -> type[Strategy]:
        """The `Strategy` subclass (its module is imported on first use)."""
        return load_class(self.strategy_path)

    @property
    def config_class(self) -> type:
        """The settings dataclass (its module is imported on first use)."""
        return load_class(self.config_path)

    @property
    def presets(self) -> tuple[str, ...]:
        """The presets of ``configs/search/`` whose ``strategy:`` key names this strategy, sorted."""
        return tuple(p for p in preset_names("search") if preset_strategy(p) == self.name)

    def make_config(self, overrides: Mapping[str, Any] | None = None, preset: str | None = None) -> Any:
        """The config class's defaults, then ``preset`` (a name of configs/search/ or a YAML file), then ``overrides``."""
        return search_config(self.name, self.config_class, preset, overrides)

    def fields(self) -> set[str]:
        """The names of the config class's fields."""
        return {f.name for f in dataclasses.fields(self.config_class)}


STRATEGIES: dict[str, StrategySpec] = {spec.name: spec for spec in (
    StrategySpec("darts", "tfnas.strategies.one_shot.darts:DartsSearch",
                 "tfnas.strategies.one_shot.darts:DartsConfig"),
    StrategySpec("nasabn", "tfnas.strategies.one_shot.darts:NasabnSearch",
                 "tfnas.strategies.one_shot.darts:NasabnConfig"),
    StrategySpec("bayesnas", "tfnas.strategies.one_shot.bayesnas:BayesNasSearch",
                 "tfnas.strategies.one_shot.bayesnas:BayesNasConfig"),
    StrategySpec("enas", "tfnas.strategies.one_shot.enas:EnasSearch",
                 "tfnas.strategies.one_shot.enas:EnasConfig"),
    StrategySpec("wenet", "tfnas.strategies.one_shot.wenet:WenetSearch",
                 "tfnas.strategies.one_shot.wenet:WenetConfig"),
    StrategySpec("reinforce", "tfnas.strategies.black_box.reinforce:ReinforceSearch",
                 "tfnas.strategies.black_box.reinforce:ReinforceConfig"),
    StrategySpec("random", "tfnas.strategies.black_box.random_search:RandomSearch",
                 "tfnas.strategies.black_box.random_search:RandomConfig"),
    StrategySpec("nao", "tfnas.strategies.black_box.nao:NaoSearch",
                 "tfnas.strategies.black_box.nao:NaoConfig"),
    StrategySpec("nao_ws", "tfnas.strategies.one_shot.nao_ws:NaoWsSearch",
                 "tfnas.strategies.one_shot.nao_ws:NaoWsConfig"),
    StrategySpec("rsws", "tfnas.strategies.one_shot.rsws:RswsSearch",
                 "tfnas.strategies.one_shot.rsws:RswsConfig"),
)}


def get_strategy(name: str) -> StrategySpec:
    """The row of strategy ``name``; the error lists the known names."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownStrategyError(f"unknown strategy {name!r}; known strategies: {sorted(STRATEGIES)}") from None


def strategy_names() -> list[str]:
    """The names of the strategies, sorted (no strategy module is imported)."""
    return sorted(STRATEGIES)
