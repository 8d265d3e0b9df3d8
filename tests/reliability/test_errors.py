"""Errors a user can fix print one line that names the file (or the flag) and the problem, before anything is
written; bugs keep their traceback."""
import ast
import errno
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tfnas import cli
from tfnas.errors import TfnasError
from tfnas.config import ModelConfig
from tfnas.export.generate import generate_ids, prompt_ids
from tfnas.export.scoring import score_ids
from tfnas.data import load_corpus
from tfnas.runs.folder import read_record
from tfnas.settings import SettingsError
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
    for argv in (["search", "--strategy", "random", "--out", str(out)],
                 ["export", str(tmp_path / "run"), "--out", str(out)],
                 ["compare", "--config", "cpu_ptb", "--out", str(out)]):
        assert one_line_error(argv, capsys) == f"--out {out} is a file, not a folder"
    argv = ["compare", "--config", "cpu_ptb", "--out", str(tmp_path / "c"), "--ship-cells", str(out / "cells")]
    assert one_line_error(argv, capsys) == f"--ship-cells {out / 'cells'}: {out} is a file, not a folder"


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
                           metadata=SimpleNamespace(test_batch_size=1, bptt=4, attention=None, tokens="words"))


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


# ----------------------------------------------------------------- issue 24 item 4: user errors are TfnasError
def test_a_missing_genotype_file_or_unknown_cell_is_refused_on_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere.json"
    assert one_line_error(["show", str(missing)], capsys) == f"genotype file not found: {missing}"
    assert one_line_error(["show", "no_such_cell"], capsys).startswith(
        "genotype 'no_such_cell' is neither a file nor a known cell; known cells: ['darts_v1', ")


def test_a_drawing_of_an_unknown_format_is_refused_on_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot program: the built-in drawing's formats
    drawing = tmp_path / "cell.xyz"
    assert one_line_error(["show", "darts_v2", "--draw", str(drawing)], capsys) == \
        f"cannot draw {drawing}: the built-in drawing (graphviz's dot is not installed) writes no 'xyz' format; " \
        "use .png, .svg, .pdf or .gv"
    assert not drawing.exists()


def test_an_unreadable_corpus_file_is_refused_on_one_line_naming_it(tmp_path, capsys, tiny_corpus, monkeypatch):
    train = tiny_corpus / "train.txt"
    read_text = Path.read_text

    def denied(path, *args, **kwargs):
        if path == train:
            raise PermissionError(13, "Permission denied", str(path))
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", denied)
    argv = ["train", "--genotype", "darts_v2", "--out", str(tmp_path / "run"), "--dataset", str(tiny_corpus)]
    assert one_line_error(argv, capsys) == f"cannot read corpus file {str(train)!r}: Permission denied"


def test_a_word_missing_from_train_without_unk_is_refused_on_one_line(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for split, text in (("train", "a b c\n"), ("valid", "a b\nc zebra\n"), ("test", "c b a\n")):
        (corpus / f"{split}.txt").write_text(text, encoding="utf-8")
    argv = ["train", "--genotype", "darts_v2", "--out", str(tmp_path / "run"), "--dataset", str(corpus)]
    assert one_line_error(argv, capsys) == (
        "word 'zebra' is not in the vocabulary (4 words) and the vocabulary has no '<unk>' token to map it to "
        f"(file {str(corpus / 'valid.txt')!r}, line 2)")


def test_a_run_record_of_another_version_stops_tfnas_train_on_one_line(tmp_path, capsys, tiny_corpus):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text('{"format": "tfnas-run", "version": 1}', encoding="utf-8")
    argv = ["train", "--genotype", "darts_v2", "--out", str(out), "--dataset", str(tiny_corpus)]
    assert one_line_error(argv, capsys) == \
        f"{out / 'config.json'} is a version 1 run record; this tfnas reads version 2: use a new --out folder"


@pytest.mark.parametrize("tf_config, message", [
    (None, "distribute=multi_worker needs the TF_CONFIG environment variable (the cluster and this worker's task, "
           "https://www.tensorflow.org/guide/distributed_training#TF_CONFIG)"),
    ('{"cluster": ', "the TF_CONFIG environment variable is not valid JSON: Expecting value: line 1 column 13 "
                     "(char 12)"),
])
def test_multi_worker_without_a_readable_tf_config_is_refused_on_one_line(tmp_path, capsys, monkeypatch, tf_config,
                                                                          message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    out = tmp_path / "run"
    assert one_line_error(train_argv(out, "--distribute", "multi_worker"), capsys) == message
    assert not out.exists()


def test_a_missing_export_is_refused_on_one_line(tmp_path, capsys):
    missing = tmp_path / "export"
    for argv in (["score", "--model", str(missing), "--text", "t.txt"], ["generate", "--model", str(missing)],
                 ["serve", "--model", str(missing)]):
        assert one_line_error(argv, capsys) == f"export {str(missing)!r} does not exist"


def test_a_text_too_short_to_score_and_an_empty_prompt_are_refused_on_one_line(tmp_path, capsys, monkeypatch):
    import tfnas.export

    monkeypatch.setattr(tfnas.export, "load_export", lambda path: fake_model(eos_id=0))
    text = tmp_path / "one.txt"
    text.write_text("\n", encoding="utf-8")
    assert one_line_error(["score", "--model", "m", "--text", str(text)], capsys) == \
        f"{text} holds 1 token(s); scoring needs at least 2"
    assert one_line_error(["generate", "--model", "m", "--no-start"], capsys) == \
        "the prompt is empty: give words to continue, or start from <eos> (without --no-start)"


def test_a_model_name_with_a_slash_is_refused_before_the_export_is_loaded(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--model", "nowhere", "--name", "a/b"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        "tfnas: error: argument --name: must be a non-empty name without '/' or ':'; received: 'a/b' " \
        "(see tfnas serve --help)"


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


# ----------------------------------------------------------------- issue 26 item 21: the attention head
TINY_TRAIN = ("--nhid", "8", "--emsize", "8", "--bptt", "5", "--batch-size", "4", "--eval-batch-size", "4",
              "--test-batch-size", "4", "--max-steps", "2", "--max-eval-batches", "2", "--quiet", "--no-test")
HEADS = "null or one of 'none', 'dot', 'general', 'additive', 'multihead'"


def test_an_unknown_attention_head_names_the_flag_or_file_before_the_run_folder_is_written(tmp_path, capsys,
                                                                                         tiny_corpus):
    """``--attention bogus`` and ``model: {attention: bogus}`` are refused on one line naming the flag or the file,
    and leave no run folder, so the corrected command then runs in the same ``--out``."""
    out = tmp_path / "run"
    argv = ["train", "--genotype", "darts_v2", "--out", str(out), "--dataset", str(tiny_corpus), *TINY_TRAIN]
    with pytest.raises(SystemExit) as exited:
        cli.main(argv + ["--attention", "bogus"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        f"tfnas: error: argument --attention: must be {HEADS}; received: 'bogus' (see tfnas train --help)"
    assert not out.exists()
    config = tmp_path / "head.yaml"
    config.write_text("model:\n  attention: bogus\n", encoding="utf-8")
    assert one_line_error(argv + ["--config", str(config)], capsys) == \
        f"{config}: model.attention must be {HEADS}; received: 'bogus'"
    assert not out.exists()
    search = ["search", "--strategy", "darts", "--out", str(out), "--dataset", str(tiny_corpus), "--config",
              str(config)]
    assert one_line_error(search, capsys) == f"{config}: model.attention must be {HEADS}; received: 'bogus'"
    assert not out.exists()
    with pytest.raises(SettingsError, match=rf"^attention must be {HEADS}; received: attention='bogus'$"):
        ModelConfig(attention="bogus")
    assert cli.main(argv + ["--attention", "dot"]) == 0
    assert read_record(out).config["model"]["attention"] == "dot"


# ----------------------------------------------------------------- issue 26 item 18: a full disk
def full_disk(file, **arrays):
    file.write(b"PK\x03\x04 cut short")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_in_training_names_the_file_on_one_line(tmp_path, capsys, tiny_corpus, monkeypatch):
    """``[Errno 28] No space left on device`` with a traceback was all ``tfnas train`` said: now one line names the
    file being written and the disk, and no cut-short file is left under its name."""
    monkeypatch.setattr(np, "savez", full_disk)
    out = tmp_path / "run"
    argv = ["train", "--genotype", "darts_v2", "--out", str(out), "--dataset", str(tiny_corpus), *TINY_TRAIN]
    best = out / "best" / "weights.npz"
    assert re.fullmatch(rf"cannot write {re.escape(repr(str(best)))}: No space left on device \(\d+\.\d MB free on "
                        rf"the disk holding {re.escape(repr(str(best.parent)))}\); free space on that disk and run "
                        r"again", one_line_error(argv, capsys))
    assert list(best.parent.iterdir()) == []


@pytest.mark.parametrize("strategy", ["darts", "random"])
def test_a_full_disk_in_a_search_names_the_checkpoint(tmp_path, tiny_corpus, monkeypatch, strategy):
    monkeypatch.setattr(np, "savez", full_disk)
    out = tmp_path / "s"
    with pytest.raises(TfnasError, match=rf"^cannot write checkpoint '{re.escape(str(out / 'checkpoints'))}/step-\d+': "
                                         r"No space left on device \(\d+\.\d MB free on the disk holding "):
        get_strategy(strategy).strategy_class(tiny_search_config(strategy, tiny_corpus)).search(
            load_corpus(tiny_corpus), out)
    assert [p.name for p in (out / "checkpoints").iterdir()] == []
