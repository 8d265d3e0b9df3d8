"""The strategies of ``tfnas search --strategy``: one static table, name -> class, config class, presets.

No strategy module imports this one; adding a strategy is a row here (and
its module, config subclass, presets and tests).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from tfnas.config import search_config
from tfnas.strategies.base import Strategy
from tfnas.strategies.black_box.nao import NaoConfig, NaoSearch
from tfnas.strategies.black_box.random_search import RandomConfig, RandomSearch
from tfnas.strategies.black_box.reinforce import ReinforceConfig, ReinforceSearch
from tfnas.strategies.one_shot.bayesnas import BayesNasConfig, BayesNasSearch
from tfnas.strategies.one_shot.darts import DartsConfig, DartsSearch, NasabnConfig, NasabnSearch
from tfnas.strategies.one_shot.enas import EnasConfig, EnasSearch
from tfnas.strategies.one_shot.nao_ws import NaoWsConfig, NaoWsSearch
from tfnas.strategies.one_shot.wenet import WenetConfig, WenetSearch


@dataclass(frozen=True)
class StrategySpec:
    """A row of the table: the strategy class, its config class and its presets in ``configs/search/``."""

    name: str
    strategy_class: type[Strategy]
    config_class: type
    presets: tuple[str, ...] = ()

    def make_config(self, overrides: Mapping[str, Any] | None = None, preset: str | None = None) -> Any:
        """The config class's defaults, then ``preset`` (a name of configs/search/ or a YAML file), then ``overrides``."""
        return search_config(self.name, self.config_class, preset, overrides)

    def fields(self) -> set[str]:
        return {f.name for f in dataclasses.fields(self.config_class)}


STRATEGIES: dict[str, StrategySpec] = {spec.name: spec for spec in (
    StrategySpec("darts", DartsSearch, DartsConfig, ("darts_search_ptb", "darts2_search_ptb")),
    StrategySpec("nasabn", NasabnSearch, NasabnConfig,
                 ("nasabn_search_ptb", "nasabn_head_search_ptb", "quick_nasabn")),
    StrategySpec("bayesnas", BayesNasSearch, BayesNasConfig, ("bayesnas_search_ptb", "quick_bayesnas")),
    StrategySpec("enas", EnasSearch, EnasConfig, ("enas_ptb", "quick_enas")),
    StrategySpec("wenet", WenetSearch, WenetConfig, ("wenet_ptb", "quick_wenet")),
    StrategySpec("reinforce", ReinforceSearch, ReinforceConfig, ("reinforce_ptb", "quick_reinforce")),
    StrategySpec("random", RandomSearch, RandomConfig, ("random_ptb", "quick_random")),
    StrategySpec("nao", NaoSearch, NaoConfig, ("nao_ptb", "quick_nao")),
    StrategySpec("nao_ws", NaoWsSearch, NaoWsConfig, ("nao_ws_ptb", "quick_nao_ws")),
)}


def get_strategy(name: str) -> StrategySpec:
    """The row of strategy ``name``; the error lists the known names."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known strategies: {sorted(STRATEGIES)}") from None


def strategy_names() -> list[str]:
    return sorted(STRATEGIES)
