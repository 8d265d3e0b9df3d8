"""Flags of the ``tfnas`` command: nested sections merge key by key, and every numeric flag is checked.

A flag with a value outside its interval (a learning rate <= 0, an interval
of 0, a dropout rate of 1, a negative seed ...) exits with argparse's status
2 and one line naming the flag and the value, before anything runs.
"""
import pytest

from tfnas import cli


def config_of(argv):
    return cli.config_from_args(cli.build_parser(argv).parse_args(argv))


def train_argv(*flags):
    return ["train", "--genotype", "darts_v2", "--out", "o", *flags]


def search_argv(strategy, *flags):
    return ["search", "--strategy", strategy, "--out", "o", *flags]


# ----------------------------------------------------------------- item 3: nested sections merge at every depth
def test_a_model_flag_keeps_the_train_presets_other_model_settings():
    config = config_of(train_argv("--config", "quick_train", "--emsize", "64"))
    assert (config.model.emsize, config.model.nhid, config.model.dropout, config.model.emb_init_range) == \
        (64, 200, 0.4, 0.1)


def test_a_model_flag_keeps_the_search_presets_other_model_settings():
    config = config_of(search_argv("enas", "--config", "quick_enas", "--nhid", "32"))
    assert (config.model.nhid, config.model.emsize, config.model.dropout, config.model.dropouth) == (32, 64, 0.3, 0.1)


def test_a_child_flag_keeps_the_presets_other_child_settings():
    config = config_of(search_argv("random", "--config", "quick_random", "--child-max-steps", "7"))
    assert (config.child.max_steps, config.child.log_interval, config.child.model.emsize) == (7, 20, 32)


def test_a_child_model_flag_keeps_the_presets_other_child_and_child_model_settings():
    config = config_of(search_argv("nao", "--config", "quick_nao", "--child-dropout", "0.3"))
    child = config.child
    assert (child.model.dropout, child.model.dropouth, child.model.nhid, child.max_steps) == (0.3, 0.1, 32, 40)


# ----------------------------------------------------------------- item 7: numeric flags are checked
BAD_SETTING_FLAGS = [
    ("--max-steps", "-5", "null or an integer >= 0"), ("--lr", "-1", "a number > 0"), ("--lr", "0", "a number > 0"),
    ("--lr", "nan", "a number > 0"), ("--lr", "inf", "a number > 0"), ("--lr", "fast", "a number > 0"),
    ("--checkpoint-interval", "0", "a positive integer"), ("--log-interval", "0", "a positive integer"),
    ("--dropout", "1", "a number in [0, 1)"), ("--dropouth", "-0.1", "a number in [0, 1)"),
    ("--nhid", "0", "a positive integer"), ("--nhid", "2.5", "a positive integer"),
    ("--seed", "-1", "an integer in [0, 4294967295]"), ("--seed", "4294967296", "an integer in [0, 4294967295]"),
    ("--batch-size", "0", "a positive integer"), ("--eval-interval", "0", "null or a positive integer"),
    ("--max-eval-batches", "0", "null or a positive integer"), ("--keep-checkpoints", "0", "a positive integer"),
    ("--clip", "0", "a number > 0"), ("--wdecay", "-1", "a number >= 0"), ("--nonmono", "-1", "an integer >= 0"),
    ("--epochs", "0", "a positive integer"), ("--bptt", "0", "a positive integer"),
    ("--max-seq-len-delta", "-1", "an integer >= 0"), ("--cell-init-range", "0", "a number > 0"),
]


@pytest.mark.parametrize("flag, value, expected", BAD_SETTING_FLAGS)
def test_a_bad_training_flag_exits_2_on_one_line_naming_the_flag_and_value(flag, value, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        config_of(train_argv(flag, value))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        f"tfnas: error: argument {flag}: must be {expected}; received: {value!r} (see tfnas train --help)"


@pytest.mark.parametrize("strategy, flag, value", [
    ("random", "--child-lr", "-1"), ("random", "--child-dropoutx", "1.5"), ("darts", "--lr", "0"),
    ("darts", "--checkpoint-interval", "0"), ("reinforce", "--controller-lr", "0"),
    ("reinforce", "--baseline-decay", "1"), ("enas", "--temperature", "0"), ("enas", "--entropy-weight", "-1"),
    ("nao", "--child-max-steps", "-5"), ("nao", "--child-seed", "-1"),
])
def test_a_bad_search_flag_exits_2_naming_the_flag(strategy, flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        config_of(search_argv(strategy, flag, value))
    assert exit_info.value.code == 2
    assert f"error: argument {flag}: must be " in capsys.readouterr().err


def test_values_inside_the_intervals_are_accepted():
    config = config_of(train_argv("--max-steps", "0", "--dropout", "0", "--lr", "1e-3", "--seed", "0",
                                  "--max-eval-batches", "none", "--wdecay", "0"))
    assert (config.max_steps, config.model.dropout, config.lr, config.seed, config.max_eval_batches) == \
        (0, 0.0, 1e-3, 0, None)
    assert config_of(search_argv("nao", "--epd-mlp", "16", "8")).epd_mlp == (16, 8)   # parsed as integers


@pytest.mark.parametrize("argv", [
    ["score", "--model", "m", "--text", "t", "--max-batches", "0"],
    ["score", "--model", "m", "--text", "t", "--max-batches", "-1"],
    ["score", "--model", "m", "--text", "t", "--bptt", "0"],
    ["score", "--model", "m", "--text", "t", "--batch-size", "0"],
    ["generate", "--model", "m", "--seed", "-1"],
    ["generate", "--model", "m", "--max-tokens", "-1"],
    ["generate", "--model", "m", "--top-k", "-1"],
    ["generate", "--model", "m", "--temperature", "-1"],
    ["generate", "--model", "m", "--temperature", "nan"],
    ["export", "run", "--out", "e", "--tolerance", "-1"],
    ["export", "run", "--out", "e", "--opset", "0"],
    ["serve", "--model", "m", "--port", "70000"],
    ["serve", "--model", "m", "--max-batch", "0"],
    ["serve", "--model", "m", "--max-tokens", "0"],
])
def test_a_bad_command_flag_exits_2_naming_the_flag_and_value(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert f"error: argument {argv[-2]}: must be " in last
    assert last.endswith(f"; received: {argv[-1]!r} (see tfnas {argv[0]} --help)")


@pytest.mark.parametrize("argv, expected", [
    (["score", "--model", "m", "--text", "t", "--max-batches", "0"], "a positive integer"),
    (["generate", "--model", "m", "--seed", "-1"], "an integer >= 0"),
    (["generate", "--model", "m", "--top-k", "-1"], "an integer >= 0"),
    (["export", "run", "--out", "e", "--tolerance", "-1"], "a number >= 0"),
    (["serve", "--model", "m", "--port", "70000"], "an integer in [0, 65535]"),
])
def test_the_command_flag_error_is_one_line(argv, expected, capsys):
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert capsys.readouterr().err.splitlines()[-1] == \
        f"tfnas: error: argument {argv[-2]}: must be {expected}; received: {argv[-1]!r} (see tfnas {argv[0]} --help)"
