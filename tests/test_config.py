"""Settings: published defaults, inherited help, merging at every depth, presets that hold only differences."""
import dataclasses
import re

import pytest
import yaml

from tfnas.config import ModelConfig, TrainConfig
from tfnas.errors import TfnasError
from tfnas.policies.controller import ControllerConfig
from tfnas.presets import (PresetError, PresetNotFoundError, load_preset, preset_dir, preset_names, search_config,
                           train_config)
from tfnas.settings import (AT_LEAST_ONE, RATE, Bound, SettingsError, check_argument, from_dict, merge, setting,
                            settings)
from tfnas.strategies.black_box.loop import BlackBoxConfig
from tfnas.strategies.black_box.nao import NaoConfig
from tfnas.strategies.black_box.reinforce import ReinforceConfig
from tfnas.strategies.one_shot.darts import DartsConfig, NasabnConfig
from tfnas.strategies.one_shot.enas import EnasConfig
from tfnas.strategies.one_shot.loop import OneShotConfig
from tfnas.strategies.one_shot.nao_ws import NaoWsConfig
from tfnas.strategies.one_shot.wenet import WenetConfig
from tfnas.strategies.registry import STRATEGIES

CONFIG_CLASSES = [TrainConfig, ModelConfig] + [spec.config_class for spec in STRATEGIES.values()]


def leaves(data, prefix=""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_darts_evaluation_defaults_are_the_papers():
    """Liu et al., ICLR 2019, appendix A.2.2 (PTB evaluation)."""
    c = TrainConfig()
    assert (c.model.emsize, c.model.nhid, c.batch_size, c.bptt, c.lr, c.clip, c.wdecay) == (850, 850, 64, 35, 20.0,
                                                                                           0.25, 8e-7)
    assert (c.model.dropout, c.model.dropouth, c.model.dropoutx, c.model.dropouti, c.model.dropoute) == (
        0.75, 0.25, 0.75, 0.2, 0.1)
    assert (c.beta, c.epochs, c.seed) == (1e-3, 8000, 1267)


def test_darts_search_defaults_are_the_papers():
    """Liu et al., appendix A.1.2 (PTB search)."""
    c = DartsConfig()
    assert (c.steps, c.model.emsize, c.model.nhid, c.batch_size, c.lr, c.wdecay, c.clip) == (8, 300, 300, 256, 20.0,
                                                                                            5e-7, 0.25)
    assert (c.arch_lr, c.arch_wdecay, c.epochs, c.order) == (3e-3, 1e-3, 50, 1)
    assert (c.model.dropouti, c.model.dropout, c.model.dropouth, c.model.dropoutx) == (0.2, 0.75, 0.25, 0.75)
    n = NasabnConfig()      # NASABN section IV-B: 5 learned nodes, the dot head fixed, not searched
    assert not n.search_attention and n.model.attention == "dot" and n.steps == 5


def test_enas_and_zoph_le_defaults_are_the_papers():
    e = EnasConfig()        # Pham et al., section 3.1
    assert (e.steps, e.lr, e.clip, e.batch_size, e.bptt, e.epochs) == (12, 20.0, 0.25, 64, 35, 150)
    assert (e.controller_units, e.controller_lr, e.controller_init_range) == (100, 3.5e-4, 0.1)
    assert (e.temperature, e.tanh_constant, e.entropy_weight, e.reward, e.reward_c) == (5.0, 2.5, 1e-4, "inv", 80.0)
    assert e.model.cell_init_range == 0.05
    r = ReinforceConfig()   # Zoph & Le, section 4.2
    assert (r.controller_units, r.controller_layers, r.controller_lr, r.controller_init_range) == (35, 2, 5e-4, 0.08)
    assert (r.entropy_weight, r.baseline_decay) == (0.0, 0.95)
    assert (r.space, r.base, r.reward, r.trials_per_round) == ("tree", 8, "inv_square", 10)


def test_wenet_defaults_are_the_papers():
    w = WenetConfig()       # Huang & Xiang, PTB settings
    assert (w.pool_size, w.network_batch, w.seed_size, w.steps) == (10_000, 100, 20, 8)
    assert (w.model.emsize, w.model.nhid, w.batch_size, w.bptt) == (200, 200, 20, 35)
    assert (w.epochs, w.first_node, w.init_noise) == (2, "darts", 0.0)  # Algorithm 2 line 8; section 4.2


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_every_setting_has_help(cls):
    missing = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("help")]
    assert not missing


def test_a_redeclared_default_keeps_the_base_fields_help_and_resumable_flag():
    base = {f.name: f for f in dataclasses.fields(TrainConfig)}
    one_shot = {f.name: f for f in dataclasses.fields(OneShotConfig)}
    assert OneShotConfig().batch_size == 256 and TrainConfig().batch_size == 64
    assert one_shot["batch_size"].metadata == base["batch_size"].metadata
    assert one_shot["max_steps"].metadata["resumable"] and not one_shot["seed"].metadata["resumable"]
    wenet = {f.name: f for f in dataclasses.fields(WenetConfig)}
    assert not wenet["max_steps"].metadata["resumable"]          # a per-round cap: part of what is searched

    @settings
    class Child(TrainConfig):
        lr: float = 1.0
        extra: int = setting(3, help="an extra setting", resumable=True)

    fields = {f.name: f for f in dataclasses.fields(Child)}
    assert fields["lr"].metadata["help"] == base["lr"].metadata["help"] and fields["extra"].metadata["resumable"]


def test_merge_is_deep_at_every_level():
    config = merge(BlackBoxConfig(), {"child": {"model": {"dropout": 0.5}}})
    merged = merge(config, {"child": {"model": {"nhid": 7}, "max_steps": 9}})
    assert (merged.child.model.nhid, merged.child.model.dropout, merged.child.max_steps) == (7, 0.5, 9)
    assert merged.child.model.emsize == config.child.model.emsize


def test_a_preset_and_a_nested_flag_merge_key_by_key():
    config = search_config("random", STRATEGIES["random"].config_class, "quick_random",
                           {"child": {"model": {"nhid": 48}}})
    assert config.child.model.nhid == 48 and config.child.model.emsize == 32       # emsize from the preset
    assert config.child.max_steps == 40
    trained = train_config("quick_train", {"model": {"nhid": 100}})
    assert (trained.model.nhid, trained.model.dropout, trained.model.emsize) == (100, 0.4, 200)


def test_unknown_keys_and_other_strategies_presets_are_refused():
    with pytest.raises(ValueError, match=r"config: unknown key 'model.nhidd'"):
        from_dict(TrainConfig, {"model": {"nhidd": 3}})
    with pytest.raises(ValueError, match="preset 'quick_wenet' is for strategy 'wenet', not 'darts'"):
        search_config("darts", DartsConfig, "quick_wenet")
    with pytest.raises(FileNotFoundError, match="train presets: .*quick_train"):
        train_config("no_such_preset")


@pytest.mark.parametrize("kind, name", [(k, n) for k in ("search", "train") for n in preset_names(k)])
def test_presets_hold_only_what_differs_from_the_defaults_and_cite_it(kind, name):
    data = load_preset(name, kind)
    strategy = data.pop("strategy", None)
    assert (strategy is None) == (kind == "train")
    defaults = TrainConfig() if kind == "train" else STRATEGIES[strategy].config_class()
    default_values = dict(leaves(dataclasses.asdict(defaults)))
    repeated = [key for key, value in leaves(data) if key != "dataset" and default_values[key] == value]
    assert not repeated, f"{name} repeats defaults: {repeated}"
    text = (preset_dir(kind) / f"{name}.yaml").read_text(encoding="utf-8")
    assert text.startswith("#"), "a preset starts with a comment saying where its values come from"
    assert yaml.safe_load(text) is not None


# ----------------------------------------------------------------- values are checked where they are read
@pytest.mark.parametrize("config_class, data, message", [
    (TrainConfig, {"lr": -1}, "lr must be a number > 0; received: -1"),
    (TrainConfig, {"lr": "fast"}, "lr must be a number > 0; received: 'fast'"),
    (TrainConfig, {"lr": True}, "lr must be a number > 0; received: True"),
    (TrainConfig, {"lr": float("inf")}, "lr must be a number > 0; received: inf"),
    (TrainConfig, {"max_steps": -5}, "max_steps must be null or an integer >= 0; received: -5"),
    (TrainConfig, {"checkpoint_interval": 0}, "checkpoint_interval must be a positive integer; received: 0"),
    (TrainConfig, {"log_interval": 0}, "log_interval must be a positive integer; received: 0"),
    (TrainConfig, {"nhid": 3}, "unknown key 'nhid'"),
    (TrainConfig, {"model": {"dropoute": 1.0}}, "model.dropoute must be a number in [0, 1); received: 1.0"),
    (TrainConfig, {"model": {"nhid": 2.0}}, "model.nhid must be a positive integer; received: 2.0"),
    (TrainConfig, {"model": [1]}, "model must be a mapping of settings; received: [1]"),
    (TrainConfig, {"model": {"attention": 3}},
     "model.attention must be null or one of 'none', 'dot', 'general', 'additive', 'multihead'; received: 3"),
    (TrainConfig, {"jit_compile": "yes"}, "jit_compile must be true or false; received: 'yes'"),
    (TrainConfig, {"seed": 2**32}, "seed must be an integer in [0, 4294967295]; received: 4294967296"),
    (BlackBoxConfig, {"child": {"model": {"nlayers": 0}}},
     "child.model.nlayers must be a positive integer; received: 0"),
    (BlackBoxConfig, {"child": {"eval_batch_size": -1}}, "child.eval_batch_size must be a positive integer"),
    (ReinforceConfig, {"controller_lr": 0.0}, "controller_lr must be a number > 0; received: 0.0"),
    (ReinforceConfig, {"baseline_decay": 1}, "baseline_decay must be a number in [0, 1); received: 1"),
    (EnasConfig, {"tanh_constant": -2.5}, "tanh_constant must be null or a number > 0; received: -2.5"),
    (DartsConfig, {"ops": "tanh"}, "ops must be a list of strings; received: 'tanh'"),
    (DartsConfig, {"wdecay": -1e-7}, "wdecay must be a number >= 0; received: -1e-07"),
    (WenetConfig, {"lr": 0}, "lr must be a number > 0; received: 0"),
])
def test_a_value_outside_its_type_or_interval_is_refused_on_one_line_naming_it(config_class, data, message):
    with pytest.raises(ValueError) as info:
        from_dict(config_class, data, where="preset.yaml")
    assert str(info.value).startswith(f"preset.yaml: {message}") and "\n" not in str(info.value)
    with pytest.raises(ValueError, match=re.escape(message)):       # merged into defaults as well
        merge(config_class(), data)


def test_every_setting_of_config_py_that_is_a_number_has_an_interval():
    for cls in (ModelConfig, TrainConfig, ControllerConfig):
        for f in dataclasses.fields(cls):
            if f.type in ("int", "float", "int | None", "float | None"):
                assert isinstance(f.metadata.get("check"), Bound), f"{cls.__name__}.{f.name}"


def test_a_redeclared_default_keeps_the_interval_of_the_base_field():
    checks = {f.name: f.metadata.get("check") for f in dataclasses.fields(OneShotConfig)}
    assert checks["batch_size"] == AT_LEAST_ONE and checks["checkpoint_interval"] == AT_LEAST_ONE


def test_one_check_for_settings_arguments_and_strategies():
    assert check_argument("units", 4, int, AT_LEAST_ONE) == 4
    with pytest.raises(ValueError, match=r"^Argument `rate` must be a number in \[0, 1\); received: rate=1.0$"):
        check_argument("rate", 1.0, float, RATE)
    with pytest.raises(ValueError, match=r"^bptt must be a positive integer; received: bptt=0$"):
        TrainConfig(bptt=0)
    with pytest.raises(ValueError, match=r"^dropout must be a number in \[0, 1\); received: dropout=1.0$"):
        ModelConfig(dropout=1.0)
    assert str(Bound(0, 1)) == "in [0, 1]" and str(Bound(0, open_low=True)) == "> 0"


def test_yaml_reads_exponents_without_a_dot_as_numbers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nwdecay: 5E-7\nmodel:\n  nhid: 1_000\n", encoding="utf-8")
    config = train_config(str(path))
    assert (config.lr, config.wdecay, config.model.nhid) == (1e-3, 5e-7, 1000)


@pytest.mark.parametrize("text, message", [
    ("lr: 3\n  bptt: [\n", "c.yaml, line 2, column 7: not valid YAML: mapping values are not allowed here"),
    ("lr: [1\n", "c.yaml, line 2, column 1: not valid YAML: expected ',' or ']', but got '<stream end>'"),
    ("- 1\n", "c.yaml: a config must be a YAML mapping of settings; received: [1]"),
    ("lr: 0\n", "c.yaml: lr must be a number > 0; received: 0"),
    ("[" * 10_000 + "]" * 10_000, "c.yaml: not valid YAML: nested too deeply"),
])
def test_a_bad_yaml_file_is_refused_on_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        train_config(str(path))
    assert str(info.value) == f"{tmp_path}/{message}"


@pytest.mark.parametrize("refused, error, message", [
    (lambda _: from_dict(TrainConfig, {"model": {"nhidd": 3}}), SettingsError, "unknown key 'model.nhidd'"),
    (lambda _: from_dict(TrainConfig, {"model": [1]}), SettingsError, "model must be a mapping of settings"),
    (lambda _: merge(TrainConfig(), {"lr": -1}), SettingsError, "lr must be a number > 0"),
    (lambda _: TrainConfig(bptt=0), SettingsError, "bptt must be a positive integer"),
    (lambda _: check_argument("units", 0, int, AT_LEAST_ONE), SettingsError, "Argument `units` must be"),
    (lambda _: WenetConfig(first_node="wenet", norm="batch"), SettingsError, "needs init_noise > 0"),
    (lambda _: DartsConfig(attention_candidates=()), SettingsError, "attention_candidates must be distinct"),
    (lambda _: BlackBoxConfig(evaluator="oracle"), SettingsError, "evaluator must be one of"),
    (lambda _: NaoConfig(epd_decoder_hidden=64), SettingsError, "epd_decoder_hidden must equal epd_hidden"),
    (lambda _: NaoWsConfig(pool_size=10, new_archs=20), SettingsError, "must not exceed pool_size"),
    (lambda _: train_config("no_such_preset"), PresetNotFoundError, "train presets: "),
    (lambda _: search_config("darts", DartsConfig, "quick_wenet"), PresetError, "is for strategy 'wenet'"),
    (lambda path: train_config(str(path)), PresetError, "not valid YAML"),
], ids=["unknown-key", "not-a-mapping", "merge", "config", "argument", "wenet", "darts", "black-box", "epd",
        "nao-ws", "no-preset", "other-strategy", "bad-yaml"])
def test_settings_and_preset_errors_are_user_errors_and_still_value_errors(tmp_path, refused, error, message):
    """`SettingsError` and `PresetError` are `TfnasError`s (the command prints them on one line) and `ValueError`s
    (as before); a preset that is not found is also a `FileNotFoundError`."""
    path = tmp_path / "c.yaml"
    path.write_text("lr: [1\n", encoding="utf-8")
    with pytest.raises(error, match=re.escape(message)) as info:
        refused(path)
    assert isinstance(info.value, TfnasError) and isinstance(info.value, ValueError)
    assert isinstance(info.value, FileNotFoundError) == (error is PresetNotFoundError)
