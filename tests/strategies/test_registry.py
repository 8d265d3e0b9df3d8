"""The strategy table: rows named by import path and loaded on use, presets found by their ``strategy:`` key, and a
`TINY_SEARCH` row for every strategy (without it the resume, kill and refusal suites would skip a strategy)."""
import dataclasses
import inspect
import json
import typing

import pytest
from support import TINY_SEARCH, fresh_python, tiny_search_config

from tfnas.compare import load_compare_config
from tfnas.presets import load_preset, preset_names
from tfnas.strategies.base import Strategy
from tfnas.strategies.registry import STRATEGIES, get_strategy, preset_strategy, strategy_names

#: The presets the table listed by hand before they were found from each YAML's ``strategy:`` key (and those of
#: the strategies added since).
FORMER_PRESETS = {
    "darts": ("darts_search_ptb", "darts2_search_ptb"),
    "nasabn": ("nasabn_search_ptb", "nasabn_head_search_ptb", "quick_nasabn"),
    "bayesnas": ("bayesnas_search_ptb", "quick_bayesnas"),
    "enas": ("enas_ptb", "quick_enas"),
    "wenet": ("wenet_ptb", "quick_wenet"),
    "reinforce": ("reinforce_ptb", "quick_reinforce"),
    "random": ("random_ptb", "quick_random", "asha_ptb", "quick_asha"),
    "nao": ("nao_ptb", "quick_nao"),
    "nao_ws": ("nao_ws_ptb", "quick_nao_ws"),
    "rsws": ("quick_rsws", "rsws_search_ptb"),
}


def test_every_strategy_has_a_tiny_search_row_and_every_row_a_strategy():
    assert set(TINY_SEARCH) == set(STRATEGIES)


@pytest.mark.parametrize("name", strategy_names())
def test_tiny_search_row_builds_the_strategys_config(name, tmp_path):
    config = tiny_search_config(name, tmp_path)
    assert type(config) is STRATEGIES[name].config_class and config.dataset == str(tmp_path)


@pytest.mark.parametrize("name", strategy_names())
def test_a_rows_import_paths_load_its_strategy_and_a_config_its_constructor_takes(name):
    spec = STRATEGIES[name]
    strategy_class, config_class = spec.strategy_class, spec.config_class
    assert issubclass(strategy_class, Strategy) and not inspect.isabstract(strategy_class)
    assert strategy_class.name == name
    assert dataclasses.is_dataclass(config_class)
    assert issubclass(config_class, typing.get_type_hints(strategy_class.__init__)["config"])


def test_presets_found_from_their_strategy_key_are_the_former_table():
    assert {name: STRATEGIES[name].presets for name in STRATEGIES} == \
        {name: tuple(sorted(presets)) for name, presets in FORMER_PRESETS.items()}


@pytest.mark.parametrize("preset", preset_names("search"))
def test_every_search_preset_names_a_registered_strategy(preset):
    assert "strategy" in load_preset(preset, "search"), f"configs/search/{preset}.yaml has no `strategy:` key"
    assert preset_strategy(preset) in STRATEGIES
    assert preset in get_strategy(preset_strategy(preset)).presets


@pytest.mark.parametrize("comparison", preset_names("compare"))
def test_every_search_of_a_compare_preset_is_a_registered_strategy_with_one_of_its_presets(comparison):
    for run in load_compare_config(comparison).searches:
        assert run.preset is None or run.preset in get_strategy(run.strategy).presets, run


def test_an_unknown_strategy_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match=r"unknown strategy 'dart'; known strategies: \['bayesnas', 'darts', "):
        get_strategy("dart")


def test_names_and_presets_load_no_strategy_module_until_a_class_is_asked_for():
    printed = fresh_python("""
        import json, sys
        from tfnas.strategies.registry import get_strategy, strategy_names

        def loaded():
            return sorted(m for m in ("tensorflow", "keras", "tfnas.strategies.one_shot.darts") if m in sys.modules)

        spec = get_strategy("darts")
        before = {"names": strategy_names(), "presets": spec.presets, "loaded": loaded()}
        after = {"class": spec.config_class.__name__, "loaded": loaded()}
        print(json.dumps([before, after]))
    """)
    before, after = json.loads(printed.splitlines()[-1])
    assert before == {"names": sorted(FORMER_PRESETS), "presets": sorted(FORMER_PRESETS["darts"]), "loaded": []}
    assert after == {"class": "DartsConfig", "loaded": ["keras", "tensorflow", "tfnas.strategies.one_shot.darts"]}
