"""Every number a strategy reads has an interval, checked in presets, flags, run records and direct construction.

A learning rate <= 0, a rate or probability outside [0, 1], a negative retry count or a search of more nodes
than a genotype may hold is refused on one line naming the setting, before the search counts or builds anything.
"""
import dataclasses
import time
import typing

import pytest

from tfnas import cli
from tfnas.genotypes.base import MAX_NODES
from tfnas.settings import Bound, expected, type_hints
from tfnas.strategies.one_shot.darts import DartsConfig
from tfnas.strategies.one_shot.wenet import WenetConfig
from tfnas.strategies.registry import STRATEGIES


def numeric(kind) -> bool:
    return kind in (int, float) or any(numeric(a) for a in typing.get_args(kind))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_number_of_a_strategy_config_has_an_interval(name):
    cls = STRATEGIES[name].config_class
    hints = type_hints(cls)
    unbounded = [f.name for f in dataclasses.fields(cls)
                 if numeric(hints[f.name]) and not isinstance(f.metadata.get("check"), Bound)]
    assert unbounded == []


def bad_flags(name):
    """``(flag, value, kind, check)`` for every learning rate (-1), rate or probability (1.5) and retry count (-1)
    among the flags of strategy ``name``."""
    for flag in cli.setting_flags(STRATEGIES[name].config_class):
        field = flag.path.rsplit(".", 1)[-1]
        if field.endswith("lr") or field.endswith("retries"):
            yield f"--{flag.name.replace('_', '-')}", "-1", flag.kind, flag.check
        elif isinstance(flag.check, Bound) and flag.check.high == 1:
            yield f"--{flag.name.replace('_', '-')}", "1.5", flag.kind, flag.check


BAD_FLAGS = [(name, *case) for name in sorted(STRATEGIES) for case in bad_flags(name)]


def test_each_strategy_has_a_learning_rate_a_rate_and_a_retry_count_to_refuse():
    for name in STRATEGIES:
        flags = {flag for strategy, flag, *_ in BAD_FLAGS if strategy == name}
        assert any(f.endswith("-lr") or f == "--lr" for f in flags), name
        assert any(f.endswith("-retries") for f in flags), name
        assert any(value == "1.5" for strategy, _, value, *_ in BAD_FLAGS if strategy == name), name


@pytest.mark.parametrize("strategy, flag, value, kind, check", BAD_FLAGS,
                         ids=[f"{s}{f}={v}" for s, f, v, *_ in BAD_FLAGS])
def test_a_bad_learning_rate_rate_or_retry_count_flag_exits_2_on_one_line_naming_it(strategy, flag, value, kind,
                                                                                     check, capsys):
    argv = ["search", "--strategy", strategy, "--out", "o", flag, value]
    with pytest.raises(SystemExit) as exit_info:
        cli.config_from_args(cli.build_parser(argv).parse_args(argv))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        f"tfnas: error: argument {flag}: must be {expected(kind, check)}; received: {value!r} (see tfnas search --help)"


def test_a_wenet_search_of_a_million_nodes_is_refused_at_once(capsys):
    """WeNet's config counts the cells of its space; a million nodes took minutes before the bound."""
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["search", "--strategy", "wenet", "--out", "o", "--steps", "1000000"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        f"tfnas: error: argument --steps: must be an integer in [1, {MAX_NODES}]; received: '1000000' " \
        "(see tfnas search --help)"
    with pytest.raises(ValueError, match=rf"^steps must be an integer in \[1, {MAX_NODES}\]; received: steps=1000000$"):
        WenetConfig(steps=1_000_000)
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("config_class, kwargs, message", [
    (DartsConfig, {"arch_lr": -1.0}, "arch_lr must be a number > 0; received: arch_lr=-1.0"),
    (DartsConfig, {"order": 3}, r"order must be an integer in \[1, 2\]; received: order=3"),
    (DartsConfig, {"nan_retries": -1}, "nan_retries must be an integer >= 0; received: nan_retries=-1"),
    (WenetConfig, {"adam_beta2": 1.0}, r"adam_beta2 must be a number in \[0, 1\); received: adam_beta2=1.0"),
    (WenetConfig, {"max_steps": 0}, "max_steps must be null or a positive integer; received: max_steps=0"),
    (STRATEGIES["enas"].config_class, {"lr_decay": 0.0}, r"lr_decay must be a number in \(0, 1\]; received: "),
    (STRATEGIES["nao"].config_class, {"epd_mlp": (16, 0)}, r"epd_mlp must be a list of positive integers; "),
    (STRATEGIES["random"].config_class, {"trial_retries": -1}, "trial_retries must be an integer >= 0; "),
    (STRATEGIES["nao_ws"].config_class, {"new_archs": -1}, "new_archs must be an integer >= 0; "),
])
def test_a_config_built_directly_is_checked_as_a_preset_is(config_class, kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}") as info:
        config_class(**kwargs)
    assert "\n" not in str(info.value)
