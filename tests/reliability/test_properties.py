"""Property tests of what reads user input: genotype files, config files and dicts, the numeric flags.

Any input gives a result or one clear error: a `TfnasError` whose message is one line (what the command prints
on one line), or argparse's exit status 2; never another exception. A result holds only values its fields accept.
"""
import dataclasses
import json
import typing

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from tfnas import cli
from tfnas.config import TrainConfig
from tfnas.errors import TfnasError
from tfnas.genotypes.base import MAX_NODES
from tfnas.genotypes.files import genotype_from_dict, load_genotype
from tfnas.presets import search_config, train_config
from tfnas.settings import conforms, from_dict, nested_class
from tfnas.strategies.registry import STRATEGIES

#: The errors of the config readers (`tfnas.settings`, `tfnas.presets`): user errors, as the genotype reader's.
CONFIG_ERRORS = (TfnasError,)
FEW = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def one_line(err: BaseException, kinds: tuple[type[BaseException], ...] = (TfnasError,)) -> None:
    assert isinstance(err, kinds), f"{type(err).__name__}: {err}"
    assert "\n" not in str(err) and str(err), repr(str(err))


def assert_fields_conform(config) -> None:
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if nested_class(type(config), f.name):
            assert_fields_conform(value)
        else:
            assert conforms(hints[f.name], f.metadata.get("check"), value), (f.name, value)


# ----------------------------------------------------------------- genotype reader
DAG_FIELDS = ["format", "version", "space", "nodes", "first_node", "first_activation", "output", "attention",
              "provenance", "base", "inject", "inject_node", "cell_node"]
node_lists = st.lists(st.lists(st.sampled_from(["tanh", "relu", "add", "identity", 0, 1, 2, -1, None]),
                               min_size=0, max_size=3), max_size=6)
genotype_like = st.dictionaries(st.sampled_from(DAG_FIELDS),
                                node_lists | json_values | st.sampled_from(["dag", "tree", 1, "tfnas-genotype"]),
                                max_size=6)


@FEW
@given(data=genotype_like | json_values)
def test_any_json_value_is_a_genotype_or_one_clear_error(data):
    try:
        genotype = genotype_from_dict(data)
    except Exception as err:  # noqa: BLE001 - the property is about which exceptions
        one_line(err)
    else:
        assert genotype_from_dict(genotype.to_dict()) == genotype


@FEW
@given(text=st.text(max_size=40) | (genotype_like | json_values).map(json.dumps))
@example(text='{"\\n": null}')  # found by hypothesis: a field name with a newline broke the line
def test_any_genotype_file_is_read_or_refused_on_one_line_naming_it(tmp_path, text):
    path = tmp_path / "g.json"
    path.write_text(text, encoding="utf-8")
    try:
        load_genotype(path)
    except Exception as err:  # noqa: BLE001
        one_line(err)
        assert str(path) in str(err)


# ----------------------------------------------------------------- config loader
def settings_like(cls, depth=0):
    """Mappings whose keys are mostly ``cls``'s fields (nested sections included) and whose values are anything."""
    names = [f.name for f in dataclasses.fields(cls)]
    values = json_values | st.integers(-3, 3) | st.floats(-2, 2) | st.sampled_from([None, "none", [1, 2], "tanh"])

    def value_of(name):
        sub = nested_class(cls, name)
        return settings_like(sub, depth + 1) | values if sub is not None and depth < 2 else values

    known = st.sampled_from(names).flatmap(lambda name: st.tuples(st.just(name), value_of(name)))
    return st.lists(known | st.tuples(st.text(max_size=6), values), max_size=5).map(dict)


CONFIG_CLASSES = [TrainConfig] + [spec.config_class for spec in STRATEGIES.values()]


@FEW
@given(data=st.data())
@pytest.mark.parametrize("config_class", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_any_mapping_is_a_config_of_accepted_values_or_one_clear_error(config_class, data):
    values = data.draw(settings_like(config_class))
    try:
        config = from_dict(config_class, values)
    except Exception as err:  # noqa: BLE001
        one_line(err, CONFIG_ERRORS)
    else:
        assert_fields_conform(config)


yaml_texts = st.one_of(
    st.text(max_size=60),
    st.lists(st.tuples(st.sampled_from(["lr", "model", "  nhid", "child", "  max_steps", "seed", "bptt", "- "]),
                       st.sampled_from([": ", ":", " "]),
                       st.sampled_from(["1e-3", "fast", "-1", "0", "[1, 2", "{a: 1}", "2024-13-01", ".inf",
                                        "!!python/object:os.system", "&a [*a]", "null", "'x"])),
             max_size=5).map(lambda rows: "\n".join("".join(row) for row in rows)),
)


@FEW
@given(text=yaml_texts)
def test_any_yaml_file_is_a_config_or_one_clear_error_naming_it(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    for build in (lambda: train_config(str(path)),
                  lambda: search_config("random", STRATEGIES["random"].config_class, str(path))):
        try:
            config = build()
        except Exception as err:  # noqa: BLE001
            one_line(err, CONFIG_ERRORS)
            assert str(path) in str(err)
        else:
            assert_fields_conform(config)


# ----------------------------------------------------------------- numeric flags
def numeric_flags(argv):
    parser = cli.build_parser(argv)
    flags = parser.parse_args([*argv, "--out", "o"]).setting_flags
    return [flag for flag in flags
            if typing.get_args(flag.kind)[:1] in ((int,), (float,)) or flag.kind in (int, float)]


COMMANDS = [["train", "--genotype", "darts_v2"]] + [["search", "--strategy", name] for name in sorted(STRATEGIES)]
flag_texts = st.one_of(st.text(max_size=12), st.integers(-10**12, 10**12).map(str),
                       st.floats(allow_nan=True, allow_infinity=True).map(repr),
                       st.sampled_from(["none", "null", "0", "-0", "1e400", "0x10", "1_000", " 7 ", "nan", "-inf"]))


@settings(FEW, max_examples=25)  # per command: 250 parses in all
@given(data=st.data())
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[-1])
def test_any_value_of_a_numeric_flag_is_accepted_checked_or_refused_on_one_line(command, data, capsys):
    flag = data.draw(st.sampled_from(numeric_flags(command)))
    text = data.draw(flag_texts)
    argv = [*command, "--out", "o", f"--{flag.name.replace('_', '-')}={text}"]
    try:
        config = cli.config_from_args(cli.build_parser(argv).parse_args(argv))
    except SystemExit as exit_info:
        assert exit_info.code == 2
        assert f"argument --{flag.name.replace('_', '-')}" in capsys.readouterr().err.splitlines()[-1]
    except Exception as err:  # noqa: BLE001
        one_line(err, CONFIG_ERRORS)
    else:
        assert_fields_conform(config)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_search_of_more_nodes_than_a_genotype_may_hold_is_refused(name):
    with pytest.raises(ValueError, match=rf"^config: steps must be an integer in \[1, {MAX_NODES}\]; received: "
                                         rf"{MAX_NODES + 1}$"):
        search_config(name, STRATEGIES[name].config_class, None, {"steps": MAX_NODES + 1})
