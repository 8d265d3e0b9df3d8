"""Tests of tfnas.data.locate: data-dir resolution and the not-found message."""

from __future__ import annotations

import pytest

from tfnas.data import (
    CorpusNotFoundError,
    canonical_corpus_name,
    data_dir_candidates,
    load_corpus,
    locate_corpus,
    tfds_data_dir,
    tfds_manual_dir,
)


@pytest.fixture
def three_dirs(tmp_path, write_corpus, isolated_data_env):
    """PTB copies in an argument dir, a $TFNAS_DATA dir and the tfds manual dir."""
    arg = write_corpus(tmp_path / "arg" / "ptb", " arg a\n").parent
    env = write_corpus(tmp_path / "env" / "ptb", " env a\n").parent
    tfds_ptb = write_corpus(isolated_data_env / "downloads" / "manual" / "ptb", " tfds a\n")
    return arg, env, tfds_ptb


def test_resolution_order_argument_then_env_then_tfds(three_dirs, monkeypatch) -> None:
    arg, env, tfds_ptb = three_dirs
    monkeypatch.setenv("TFNAS_DATA", str(env))
    assert locate_corpus("ptb", data_dir=arg).train == arg / "ptb" / "train.txt"
    assert locate_corpus("ptb").train == env / "ptb" / "train.txt"
    monkeypatch.delenv("TFNAS_DATA")
    assert locate_corpus("ptb").train == tfds_ptb / "train.txt"
    # The corpus read is the one found first.
    monkeypatch.setenv("TFNAS_DATA", str(env))
    assert load_corpus("ptb", data_dir=arg).vocab.words[0] == "arg"
    assert load_corpus("ptb").vocab.words[0] == "env"


def test_search_falls_through_when_a_dir_lacks_the_corpus(three_dirs, tmp_path, monkeypatch) -> None:
    _, env, _ = three_dirs
    monkeypatch.setenv("TFNAS_DATA", str(env))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert locate_corpus("ptb", data_dir=empty).train == env / "ptb" / "train.txt"


def test_tfds_data_dir_default_and_override(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("TFDS_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert tfds_data_dir() == tmp_path / "tensorflow_datasets"
    assert tfds_manual_dir() == tmp_path / "tensorflow_datasets" / "downloads" / "manual"
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "x"))
    assert tfds_manual_dir() == tmp_path / "x" / "downloads" / "manual"
    labels = [label for label, _ in data_dir_candidates("somewhere")]
    assert labels[0].startswith("data_dir argument") and "tensorflow-datasets" in labels[-1]


def test_env_var_may_list_several_dirs(tmp_path, write_corpus, monkeypatch) -> None:
    second = write_corpus(tmp_path / "b" / "wikitext-2", " w\n").parent
    monkeypatch.setenv("TFNAS_DATA", f"{tmp_path / 'a'}:{second}")
    assert locate_corpus("wikitext2").directory == second / "wikitext-2"


@pytest.mark.parametrize(
    ("name", "folder", "names"),
    [
        ("ptb", "penn", None),
        ("ptb", "simple-examples/data", {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"}),
        ("ptb", ".", None),
        ("wikitext2", "wikitext2", None),
        (
            "wikitext-2",
            "wikitext-2",
            {"train": "wiki.train.tokens", "valid": "wiki.valid.tokens", "test": "wiki.test.tokens"},
        ),
    ],
)
def test_accepted_folder_and_file_names(tmp_path, write_corpus, name, folder, names) -> None:
    write_corpus(tmp_path / folder, " a\n", names=names)
    files = locate_corpus(name, data_dir=tmp_path)
    assert files.directory == tmp_path / folder
    assert files.train.name == (names or {}).get("train", "train.txt")


def test_wikitext_files_directly_in_data_dir_are_not_accepted(tmp_path, write_corpus) -> None:
    write_corpus(tmp_path, " a\n")
    with pytest.raises(CorpusNotFoundError):
        locate_corpus("wikitext2", data_dir=tmp_path)


def test_not_found_message_lists_places_and_expected_files(tmp_path, monkeypatch, isolated_data_env) -> None:
    data_dir = tmp_path / "mydata"
    data_dir.mkdir()
    env_dir = tmp_path / "envdata"
    monkeypatch.setenv("TFNAS_DATA", str(env_dir))
    with pytest.raises(CorpusNotFoundError) as info:
        locate_corpus("ptb", data_dir=data_dir)
    err = info.value
    message = str(err)
    assert isinstance(err, FileNotFoundError)
    assert err.corpus == "ptb"
    for place in (data_dir / "ptb", data_dir / "penn", env_dir, isolated_data_env / "downloads" / "manual"):
        assert str(place) in message
    assert "put train.txt, valid.txt and test.txt" in message
    assert f"in {data_dir / 'ptb'}/" in message
    assert "ptb.train.txt" in message
    assert f"python -m tfnas.data.download ptb --data-dir {data_dir}" in message
    assert "download_corpus('ptb'" in message
    assert data_dir / "ptb" in err.searched


def test_not_found_for_wikitext_names_its_folder(isolated_data_env) -> None:
    with pytest.raises(CorpusNotFoundError) as info:
        load_corpus("wikitext2")
    message = str(info.value)
    assert "1. $TFNAS_DATA: not set" in message
    assert str(isolated_data_env / "downloads" / "manual" / "wikitext-2") + "/" in message
    assert "wiki.train.tokens" in message


def test_canonical_names() -> None:
    assert canonical_corpus_name("PTB") == "ptb"
    assert canonical_corpus_name("wikitext-2") == canonical_corpus_name("wikitext2") == "wikitext2"
    with pytest.raises(ValueError, match="name='wt103'"):
        canonical_corpus_name("wt103")
