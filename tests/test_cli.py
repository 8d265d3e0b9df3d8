"""The ``tfnas`` command: flags generated from the config fields, their parsing, which errors exit 2, and the
commands that run without loading TensorFlow."""
import contextlib
import dataclasses
import importlib
import importlib.metadata
import io
import json
import re
import subprocess
import sys
import textwrap

import pytest
from support import REPOSITORY, fresh_python, run_without_tensorflow

import tfnas
from tfnas import cli
from tfnas.config import TrainConfig
from tfnas.errors import TfnasError
from tfnas.genotypes import resolve_genotype
from tfnas.strategies.registry import STRATEGIES


def flag_paths(config_class):
    return {flag.path for flag in cli.setting_flags(config_class)}


def field_paths(config_class, prefix="", nested=False):
    out = set()
    for f in dataclasses.fields(config_class):
        sub = cli.nested_class(config_class, f.name)
        if sub is not None:
            out |= field_paths(sub, f"{prefix}{f.name}.", nested=True)
        elif not (nested and f.name in cli.PARENT_SETTINGS):
            out.add(f"{prefix}{f.name}")
    return out


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_setting_of_a_strategy_is_a_flag(name):
    assert flag_paths(STRATEGIES[name].config_class) == field_paths(STRATEGIES[name].config_class)


def test_every_training_setting_is_a_flag():
    assert flag_paths(TrainConfig) == field_paths(TrainConfig)


def test_strategy_help_lists_its_settings_with_their_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["search", "--strategy", "wenet", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert ("--pool-size INT T: random networks in the pool (Algorithm 1; tfnas draws them distinct) "
            "(default: 10000)") in text
    assert "--nhid INT hidden units of the cell (default: 200)" in text             # WeNet's model, not 850
    assert "--order" not in text                                                    # a DARTS setting


def parse(argv):
    args = cli.build_parser(argv).parse_args(argv)
    return args, cli.overrides_from_args(args, args.setting_flags)


def test_flags_parse_to_nested_typed_overrides():
    _, overrides = parse(["search", "--strategy", "darts", "--out", "o", "--nhid", "32", "--max-steps", "none",
                          "--ops", "none", "tanh", "--no-recompute", "--lr", "2.5"])
    assert overrides == {"model": {"nhid": 32, "recompute": False}, "max_steps": None, "ops": ["none", "tanh"],
                         "lr": 2.5}
    _, overrides = parse(["search", "--strategy", "random", "--out", "o", "--child-max-steps", "3",
                          "--child-nhid", "16", "--max-trials", "4"])
    assert overrides == {"child": {"max_steps": 3, "model": {"nhid": 16}}, "max_trials": 4}


def test_a_flag_of_another_strategy_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse(["search", "--strategy", "random", "--out", "o", "--order", "2"])
    assert "unrecognized arguments: --order 2" in capsys.readouterr().err


def test_user_errors_exit_2_on_one_line_and_bugs_keep_their_traceback(monkeypatch, tmp_path, capsys):
    assert cli.main(["search", "--strategy", "simulated-annealing", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown strategy 'simulated-annealing'" in err

    def fail(kind):
        def command(args):
            raise kind("boom")
        return command

    monkeypatch.setattr(cli, "cmd_show", fail(TfnasError))
    assert cli.main(["show", "darts_v2"]) == 2
    monkeypatch.setattr(cli, "cmd_show", fail(RuntimeError))
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["show", "darts_v2"])


@pytest.mark.parametrize("bug", [ValueError, OSError])
def test_a_value_or_os_error_inside_a_command_is_a_bug_that_propagates(monkeypatch, capsys, bug):
    """Only a `TfnasError` is the user's: a `ValueError` or `OSError` that no user input caused (here raised by
    a function the command calls, as a bug inside TensorFlow would be) leaves `main` with its traceback."""
    import tfnas.genotypes

    def broken(name):
        raise bug("boom")

    monkeypatch.setattr(tfnas.genotypes, "resolve_genotype", broken)
    with pytest.raises(bug, match="^boom$"):
        cli.main(["show", "darts_v2"])
    assert "tfnas: error" not in capsys.readouterr().err


def test_the_command_prints_a_bugs_traceback_and_exits_1():
    done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys

        import tfnas.genotypes
        from tfnas.cli import main

        def broken(name):
            raise ValueError("boom")

        tfnas.genotypes.resolve_genotype = broken
        sys.exit(main(["show", "darts_v2"]))
    """)], cwd=REPOSITORY, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):\n"), done.stderr
    assert done.stderr.rstrip().endswith("ValueError: boom") and "tfnas: error" not in done.stderr


def test_show_describes_dag_and_tree_genotypes(capsys):
    assert cli.main(["show", "darts_v2"]) == 0
    out = capsys.readouterr().out
    assert "  first node: darts (tanh)\n  node 1: sigmoid(0)\n  node 2: relu(1)" in out
    assert "  output: mean of nodes [1, 2, 3, 4, 5, 6, 7, 8]" in out
    assert cli.main(["show", "nascell"]) == 0
    assert "tree of base 8 (15 nodes, root 14)" in capsys.readouterr().out


def test_show_draw_falls_back_to_the_built_in_drawing_without_dot(capsys, monkeypatch, tmp_path):
    """Issue 28 item 4: graphviz's ``dot`` missing, ``--draw`` writes matplotlib's drawing of the cell."""
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert cli.main(["show", "darts_v2", "--draw", str(tmp_path / "cell.png")]) == 0
    assert f"drawing: {tmp_path / 'cell.png'}" in capsys.readouterr().out
    assert (tmp_path / "cell.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"     # the PNG signature


def test_help_runs_without_tensorflow():
    code, out = run_without_tensorflow(["--help"])
    assert code == 0 and out.startswith("usage: tfnas")
    assert all(f"\n    {name} " in out for name in COMMANDS) and "--version" in out
    code, out = run_without_tensorflow(["search", "--help"])
    assert code == 0 and "one of bayesnas, darts, enas, nao, nao_ws, nasabn, random, reinforce, rsws, wenet" in " ".join(
        out.split())


def test_version_is_the_packages_and_runs_without_tensorflow():
    assert run_without_tensorflow(["--version"]) == (0, f"tfnas {importlib.metadata.version('tfnas')}\n")
    assert importlib.metadata.version("tfnas") == tfnas.__version__


def test_show_runs_without_tensorflow_and_prints_what_it_prints_in_process(tmp_path, capsys):
    path = resolve_genotype("enas").save(tmp_path / "enas.json")
    for name in ("darts_v2", str(path)):
        assert cli.main(["show", name]) == 0
        expected = capsys.readouterr().out
        assert expected.startswith(f"genotype: {name}\n") and "  attention: none\n" in expected
        assert run_without_tensorflow(["show", name]) == (0, expected)


COMMANDS = ("train", "search", "show", "results", "export", "score", "generate", "serve", "compare")


def test_every_help_loads_no_tensorflow_and_describes_its_command_once():
    """``tfnas --help`` describes the tool, not the module; each command's ``--help`` starts with the line that
    ``tfnas --help`` lists it with, as a sentence, and none loads TensorFlow."""
    printed = fresh_python("""
        import contextlib, io, json, sys
        from tfnas.cli import main

        outs = {}
        for argv in [["--help"]] + [[name, "--help"] for name in sys.argv[1:]]:
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                main(argv)
            outs[argv[0]] = out.getvalue()
        print(json.dumps({"outs": outs, "loaded": [m for m in ("tensorflow", "keras") if m in sys.modules]}))
    """, *COMMANDS)
    result = json.loads(printed.splitlines()[-1])
    assert result["loaded"] == []
    top = result["outs"].pop("--help")
    assert cli.DESCRIPTION in " ".join(top.split()) and "``" not in top
    listed, name = {}, None
    for line in top.split("\noptions:")[0].splitlines():
        if re.match(r"    \w", line):
            name, summary = line.split(maxsplit=1)
            listed[name] = summary
        elif name and line.startswith("      "):
            listed[name] += " " + line.strip()
    assert set(listed) == set(COMMANDS) == set(result["outs"])
    for name, out in result["outs"].items():
        paragraphs = [" ".join(p.split()) for p in out.split("\n\n")]
        assert paragraphs[0].startswith(f"usage: tfnas {name} ")
        summary = listed[name]
        assert paragraphs[1] == f"{summary[0].upper()}{summary[1:]}.", name


def help_entries(argv):
    """``{"--flag": "its help, on one line"}`` of ``tfnas argv --help``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.main([*argv, "--help"])
    entries = {}
    for chunk in out.getvalue().split("\n  -")[1:]:
        text = "-" + " ".join(chunk.split())
        entries[text.split(" ")[0]] = text
    return entries


def test_help_lists_presets_and_allowed_values_and_one_default_per_flag():
    train = help_entries(["train"])
    presets = sorted(p.stem for p in (REPOSITORY / "configs" / "train").glob("*.yaml"))
    assert train["--config"] == f"--config CONFIG a preset ({', '.join(presets)}) or a YAML file"
    heads = ["none", "dot", "general", "additive", "multihead"]
    assert train["--attention"].startswith(f"--attention {{{','.join(heads)},null}} attention head")
    assert train["--tokens"].startswith("--tokens {words,chars} ")
    assert train["--eval-interval"] == "--eval-interval INT steps between evaluations (default: every epoch)"
    darts = help_entries(["search", "--strategy", "darts"])
    assert darts["--config"] == "--config CONFIG a preset (darts2_search_ptb, darts_search_ptb) or a YAML file"
    for argv in (["train"], ["search", "--strategy", "darts"], ["search", "--strategy", "wenet"]):
        assert [flag for flag, text in help_entries(argv).items() if text.count("(default:") > 1] == []


@pytest.mark.parametrize("argv, message", [
    (["train", "--genotype", "darts_v2", "--out", "o", "--lr", "-1"],
     "argument --lr: must be a number > 0; received: '-1' (see tfnas train --help)"),
    (["train", "--genotype", "darts_v2"], "the following arguments are required: --out (see tfnas train --help)"),
    (["search", "--strategy", "random", "--out", "o", "--order", "2"],
     "unrecognized arguments: --order 2 (see tfnas search --help)"),
    (["show", "darts_v2", "--verb"], "unrecognized arguments: --verb (see tfnas show --help)"),
    ([], "the following arguments are required: COMMAND (see tfnas --help)"),
])
def test_a_flag_error_is_one_line_with_where_to_read_more(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr() == ("", f"tfnas: error: {message}\n")


def test_verbose_is_a_flag_of_the_command_and_of_each_subcommand(capsys):
    for argv in (["--verbose", "show", "enas"], ["show", "enas", "--verbose"], ["show", "enas"]):
        assert cli.main(argv) == 0
        assert capsys.readouterr().out.startswith("genotype: enas\n")
    assert cli.build_parser().parse_args(["--verbose", "show", "enas"]).verbose is True
    assert cli.build_parser().parse_args(["show", "enas", "--verbose"]).verbose is True
    assert cli.build_parser().parse_args(["show", "enas"]).verbose is False


class FakeSearch:
    """A strategy that finds DARTS V2 at once."""

    def __init__(self, config):
        self.config = config

    def search(self, corpus, out, callbacks):
        from tfnas.strategies.base import SearchResult

        return SearchResult(resolve_genotype("darts_v2"), metrics={"steps": 3, "valid_ppl": 123.456})


def test_quiet_search_prints_one_summary_line(monkeypatch, tmp_path, tiny_corpus, capsys):
    spec = STRATEGIES["random"]
    fake = type("Spec", (), {"name": spec.name, "config_class": spec.config_class, "presets": spec.presets,
                             "strategy_class": FakeSearch})
    monkeypatch.setitem(STRATEGIES, "random", fake)
    argv = ["search", "--strategy", "random", "--dataset", str(tiny_corpus), "--out", str(tmp_path / "s")]
    summary = f"search done: 3 steps | valid ppl 123.46 | genotype written to {tmp_path / 's' / 'genotype.json'}\n"
    assert cli.main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().out == summary
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.endswith(summary) and out.startswith("genotype: {")
    assert json.loads(out.removeprefix("genotype: ").removesuffix(summary)) == json.loads(
        resolve_genotype("darts_v2").to_json())


@pytest.mark.parametrize("flags, message", [
    (["--plot", "p.png"], "--plot needs matplotlib: pip install 'tfnas[compare]'"),
    (["--executor", "ray"], "--executor ray needs ray: pip install 'tfnas[ray]'"),
])
def test_a_missing_optional_package_is_named_before_any_work(monkeypatch, tmp_path, capsys, flags, message):
    for module in ("matplotlib", "ray"):
        monkeypatch.setitem(sys.modules, module, None)  # an import of it raises ImportError
    out = tmp_path / "comparison"
    assert cli.main(["compare", "--config", "cpu_ptb", "--out", str(out), *flags]) == 2
    assert capsys.readouterr() == ("", f"tfnas: error: {message}\n")
    assert not out.exists()


def test_a_drawing_that_needs_dot_is_refused_before_anything_is_printed(monkeypatch, tmp_path, capsys):
    cell_graph = importlib.import_module("tfnas.viz.cell_graph")   # tfnas.viz.cell_graph is also a function
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot program
    monkeypatch.setattr(cell_graph, "has_matplotlib", lambda: False)  # nor the built-in drawing
    assert cli.main(["show", "darts_v2", "--draw", str(tmp_path / "cell.png")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "graphviz's 'dot' program" in err and "DOT source (.gv)" in err
    assert cli.main(["show", "darts_v2", "--draw", str(tmp_path / "cell.gv")]) == 0
    assert capsys.readouterr().out.endswith(f"drawing: {tmp_path / 'cell.gv'}\n")
    assert (tmp_path / "cell.gv").read_text().startswith("digraph cell {")


def tiny_train(tmp_path, corpus, *flags):
    """``tfnas train`` of one step on ``corpus`` in a fresh interpreter (the way a user runs it)."""
    argv = ["train", "--genotype", "darts_v2", "--out", str(tmp_path / f"run{len(flags)}"), "--dataset", str(corpus),
            "--max-steps", "1", "--emsize", "8", "--nhid", "8", "--batch-size", "4", "--eval-batch-size", "4",
            "--test-batch-size", "4", "--bptt", "8", "--max-eval-batches", "1", "--quiet", *flags]
    return subprocess.run([sys.executable, "-m", "tfnas.cli", *argv], cwd=REPOSITORY, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_a_training_prints_its_summary_and_tensorflows_start_up_lines_only_with_verbose(tmp_path, tiny_corpus):
    quiet, verbose = tiny_train(tmp_path, tiny_corpus), tiny_train(tmp_path, tiny_corpus, "--verbose")
    assert quiet.returncode == verbose.returncode == 0, quiet.stderr + verbose.stderr
    assert quiet.stdout.startswith("done: 1 steps | ") and quiet.stdout.count("\n") == 1
    assert quiet.stderr == ""
    assert "absl::InitializeLog()" in verbose.stderr or "oneDNN" in verbose.stderr, verbose.stderr
