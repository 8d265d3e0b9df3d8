"""Errors a user can fix print one line that names the file (or the flag) and the problem, before anything is
written; bugs keep their traceback."""
import ast
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tfnas import cli
from tfnas.export.generate import generate_ids, prompt_ids
from tfnas.export.scoring import score_ids
from tfnas.data import load_corpus
from tfnas.runs.folder import read_record
from tfnas.strategies.registry import get_strategy

from support import TINY_SEARCH, tiny_search_config

PACKAGE = Path(cli.__file__).resolve().parent


def one_line_error(argv, capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tfnas: error: "), err
    return err.removeprefix("tfnas: error: ").rstrip("\n")


def train_argv(out, *flags):
    return ["train", "--genotype", "darts_v2", "--out", str(out), "--dataset", "no-such-corpus-folder", *flags]


# ----------------------------------------------------------------- item 11: config files and --out
def test_a_yaml_syntax_error_names_the_file_and_line_and_writes_nothing(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("lr: 3\n  bptt: [\n", encoding="utf-8")
    out = tmp_path / "run"
    assert one_line_error(train_argv(out, "--config", str(config)), capsys) == \
        f"{config}, line 2, column 7: not valid YAML: mapping values are not allowed here"
    assert not out.exists()


@pytest.mark.parametrize("text, message", [
    ("lr: fast\n", "lr must be a number > 0; received: 'fast'"),
    ("model:\n  dropout: 1.5\n", "model.dropout must be a number in [0, 1); received: 1.5"),
    ("model: 5\n", "model must be a mapping of settings; received: 5"),
    ("max_steps: -5\n", "max_steps must be null or an integer >= 0; received: -5"),
    ("checkpoint_interval: 0\n", "checkpoint_interval must be a positive integer; received: 0"),
])
def test_a_wrong_value_in_a_yaml_config_names_the_file_and_setting_and_writes_nothing(tmp_path, capsys, text,
                                                                                       message):
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    out = tmp_path / "run"
    assert one_line_error(train_argv(out, "--config", str(config)), capsys) == f"{config}: {message}"
    assert not out.exists()


def test_a_wrong_value_in_a_search_preset_names_the_file(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("strategy: random\nchild:\n  lr: -1\n", encoding="utf-8")
    argv = ["search", "--strategy", "random", "--out", str(tmp_path / "s"), "--config", str(config)]
    assert one_line_error(argv, capsys) == f"{config}: child.lr must be a number > 0; received: -1"


def test_out_naming_a_file_is_refused_on_one_line(tmp_path, capsys):
    out = tmp_path / "afile"
    out.write_text("x", encoding="utf-8")
    assert one_line_error(train_argv(out), capsys) == f"--out {out} is a file, not a folder"
    argv = ["search", "--strategy", "random", "--out", str(out)]
    assert one_line_error(argv, capsys) == f"--out {out} is a file, not a folder"


def test_out_in_a_read_only_folder_is_refused_on_one_line(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = cli.os.access
    monkeypatch.setattr(cli.os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    assert one_line_error(train_argv(locked / "run"), capsys) == \
        f"--out {locked / 'run'}: cannot write in {locked} (permission denied)"
    assert one_line_error(train_argv(locked), capsys) == f"--out {locked}: cannot write in {locked} (permission denied)"


# ----------------------------------------------------------------- item 13: run records, genotypes, prompts
@pytest.mark.parametrize("name", ["config.json", "search_config.json"])
def test_a_truncated_run_record_names_the_file(tmp_path, name):
    (tmp_path / name).write_text('{"format": "tfnas-run", "kind": "tr', encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^{tmp_path / name} is not valid JSON: Unterminated string"):
        read_record(tmp_path)


def test_a_truncated_config_json_stops_tfnas_train_on_one_line(tmp_path, capsys, tiny_corpus):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text('{"format": "tfnas-run", "ver', encoding="utf-8")
    argv = ["train", "--genotype", "darts_v2", "--out", str(out), "--dataset", str(tiny_corpus)]
    assert one_line_error(argv, capsys).startswith(f"{out / 'config.json'} is not valid JSON: ")


def test_a_corpus_split_without_words_stops_tfnas_train_before_anything_is_written(tmp_path, capsys, tiny_corpus):
    (tiny_corpus / "train.txt").write_text("\n", encoding="utf-8")
    out = tmp_path / "run"
    argv = ["train", "--genotype", "darts_v2", "--out", str(out), "--dataset", str(tiny_corpus)]
    assert one_line_error(argv, capsys) == \
        f"corpus file {str(tiny_corpus / 'train.txt')!r} holds no words: the train split needs text"
    assert not out.exists()


def test_a_deeply_nested_genotype_file_names_the_file(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert one_line_error(["show", str(deep)], capsys) == \
        f"{deep}: genotype is not valid JSON: nested too deeply"


def test_a_genotype_over_the_node_limit_is_refused_before_anything_is_built(tmp_path, capsys):
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"nodes": [["tanh", i] for i in range(10_000)]}), encoding="utf-8")
    assert "holds 10000 nodes; tfnas builds cells of at most 128 nodes" in one_line_error(["show", str(big)], capsys)


def fake_model(eos_id=None):
    vocab = SimpleNamespace(eos_id=eos_id)
    return SimpleNamespace(vocab=vocab, encode=lambda words: np.zeros(len(words), np.int64),
                           metadata=SimpleNamespace(test_batch_size=1, bptt=4, attention=None))


def test_an_empty_prompt_without_start_of_text_says_the_prompt_is_empty():
    with pytest.raises(ValueError, match=r"^the prompt is empty: give words to continue, or start from <eos> "
                                         r"\(without --no-start\)$"):
        prompt_ids(fake_model(eos_id=0), "  ", start_of_text=False)
    with pytest.raises(ValueError, match="the prompt is empty and the vocabulary has no <eos> to start from"):
        prompt_ids(fake_model(), "", start_of_text=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"seed": -1}, "seed must be null or an integer >= 0; received: seed=-1"),
    ({"seed": 1.5}, "seed must be null or an integer >= 0; received: seed=1.5"),
    ({"max_tokens": -1}, "max_tokens must be an integer >= 0; received: max_tokens=-1"),
    ({"top_k": 0}, "top_k must be null or a positive integer; received: top_k=0"),
    ({"temperature": float("nan")}, "temperature must be a number >= 0; received: temperature=nan"),
])
def test_generation_arguments_are_checked_first(kwargs, message):
    with pytest.raises(ValueError) as info:
        generate_ids(fake_model(), [0], **{"max_tokens": 3, **kwargs})
    assert str(info.value) == message


@pytest.mark.parametrize("kwargs, message", [
    ({"max_batches": 0}, "Argument `max_batches` must be null or a positive integer; received: max_batches=0"),
    ({"max_batches": -1}, "Argument `max_batches` must be null or a positive integer; received: max_batches=-1"),
    ({"bptt": 0}, "Argument `bptt` must be null or a positive integer; received: bptt=0"),
    ({"batch_size": 0}, "Argument `batch_size` must be null or a positive integer; received: batch_size=0"),
])
def test_scoring_arguments_are_checked_first(kwargs, message):
    with pytest.raises(ValueError) as info:
        score_ids(fake_model(), np.arange(20) % 3, **kwargs)
    assert str(info.value) == message


# ----------------------------------------------------------------- item 12: RuntimeError is a bug
def test_every_runtime_error_of_tfnas_is_a_tfnas_error_and_none_is_raised_bare():
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", None)) for b in node.bases}
                if "RuntimeError" in bases:
                    assert bases & {"TfnasError", "CheckpointError", "ExportError"}, f"{path}: {node.name}"
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                assert getattr(node.exc.func, "id", None) != "RuntimeError", f"{path}:{node.lineno}"


@pytest.mark.parametrize("strategy", sorted(TINY_SEARCH))
def test_a_split_smaller_than_a_batch_is_refused_naming_its_file_before_the_folder_is_written(strategy, tmp_path,
                                                                                             tiny_corpus):
    """One-shot searches check their batches, black-box ones their children's (which would all fail)."""
    (tiny_corpus / "valid.txt").write_text("w0 w1\n", encoding="utf-8")   # 3 tokens with <eos>
    out = tmp_path / "s"
    out.mkdir()
    batches = {"batch_size": 4, "eval_batch_size": 4}
    black_box = "child" in get_strategy(strategy).fields()
    config = tiny_search_config(strategy, tiny_corpus, **({"child": batches} if black_box else batches))
    with pytest.raises(ValueError, match=r"^the valid split \(.*valid\.txt\) holds 3 tokens, fewer than batch_size=4"):
        get_strategy(strategy).strategy_class(config).search(load_corpus(tiny_corpus), out)
    assert list(out.iterdir()) == []
