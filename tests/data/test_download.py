"""Tests of tfnas.data.checksums, tfnas.data.verify and tfnas.data.download (no network: file:// URLs)."""

from __future__ import annotations

import dataclasses
import os
import tarfile
import time
import urllib.error
import urllib.request
import zipfile

import pytest

from tfnas.data import (
    CHECKSUMS,
    SOURCES,
    ChecksumMismatchError,
    CorpusDownloadError,
    download_corpus,
    locate_corpus,
    verify_corpus,
)
from tfnas.data.checksums import ArchiveSource, CorpusSource, sha256_file
from tfnas.data.download import STALE_AFTER, WORK_PREFIX
from tfnas.data.download import main as download_main


def _no_network(*args, **kwargs):
    raise urllib.error.URLError("network is unreachable (test)")


def test_checksum_table_covers_all_splits() -> None:
    assert set(CHECKSUMS) == {"ptb", "wikitext2"}
    for splits in CHECKSUMS.values():
        assert set(splits) == {"train", "valid", "test"}
    assert CHECKSUMS["wikitext2"]["train"].sha256 is None  # never invented
    assert CHECKSUMS["wikitext2"]["train"].size == 10_797_148
    assert all(len(info.sha256) == 64 for info in CHECKSUMS["ptb"].values())


def test_verify_shared_corpora(shared_data_dir) -> None:
    ptb = verify_corpus(shared_data_dir / "ptb")
    assert ptb == {split: "size and sha256 ok" for split in ("train", "valid", "test")}
    wiki = verify_corpus(shared_data_dir / "wikitext-2", "wikitext-2")
    assert wiki["valid"] == wiki["test"] == "size and sha256 ok"
    assert wiki["train"].startswith("size and token count ok")


def test_verify_reports_every_bad_file(tmp_path, write_corpus) -> None:
    write_corpus(tmp_path / "ptb", " a\n")
    with pytest.raises(ChecksumMismatchError) as info:
        verify_corpus(tmp_path / "ptb", "ptb")
    message = str(info.value)
    assert message.count("expected") == 3
    assert "ptb.train.txt" in message and "5101618" in message
    with pytest.raises(ValueError, match="name="):
        verify_corpus(tmp_path / "ptb")  # cannot infer: sizes match nothing


def test_download_without_network_gives_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    with pytest.raises(CorpusDownloadError) as info:
        download_corpus("ptb", data_dir=tmp_path)
    message = str(info.value)
    assert isinstance(info.value, OSError)
    for url in list(SOURCES["ptb"].file_urls["train"]) + [a.url for a in SOURCES["ptb"].archives]:
        assert url in message
    assert "network is unreachable" in message
    assert info.value.advice == "retry with internet access"  # the one failure this advice fits
    assert f"into {tmp_path / 'ptb'}/" in message
    assert not (tmp_path / "ptb").exists()  # nothing left behind


def test_the_download_command_exits_1_on_a_user_error(tmp_path, monkeypatch, capsys) -> None:
    """Its errors are `TfnasError`s: an unknown name, every source failing, a folder it cannot create."""
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    blocker = tmp_path / "afile"
    blocker.write_text("x", encoding="utf-8")
    for argv, start in ((["nope", "--data-dir", str(tmp_path)], "error: unknown corpus name='nope'"),
                        (["ptb", "--data-dir", str(tmp_path)], "error: could not download the ptb corpus; tried:"),
                        (["ptb", "--data-dir", str(blocker)], f"error: cannot create the corpus folder "
                                                             f"{str(blocker / 'ptb')!r}: ")):
        with pytest.raises(SystemExit) as info:
            download_main(argv)
        assert info.value.code == 1 and capsys.readouterr().err.startswith(start)


def test_download_ptb_from_file_mirrors_verifies_and_places_files(shared_data_dir, tmp_path, monkeypatch) -> None:
    mirrors = {
        split: ((shared_data_dir / "ptb" / f"{split}.txt").as_uri(),) for split in ("train", "valid", "test")
    }
    monkeypatch.setitem(SOURCES, "ptb", CorpusSource(file_urls=mirrors))
    files = download_corpus("ptb", data_dir=tmp_path)
    assert files.directory == tmp_path / "ptb"
    for split in ("train", "valid", "test"):
        assert sha256_file(getattr(files, split)) == CHECKSUMS["ptb"][split].sha256
    assert locate_corpus("ptb", data_dir=tmp_path) == files
    assert sorted(p.name for p in (tmp_path / "ptb").iterdir()) == ["test.txt", "train.txt", "valid.txt"]
    # Already there and verified: no network needed.
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    assert download_corpus("ptb", data_dir=tmp_path) == files


def test_download_ptb_falls_back_to_the_archive(shared_data_dir, tmp_path, monkeypatch) -> None:
    archive = tmp_path / "simple-examples.tgz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for split in ("train", "valid", "test"):
            tar.add(shared_data_dir / "ptb" / f"{split}.txt", arcname=f"./simple-examples/data/ptb.{split}.txt")
    broken = {split: ((tmp_path / "missing.txt").as_uri(),) for split in ("train", "valid", "test")}
    monkeypatch.setitem(
        SOURCES, "ptb", CorpusSource(file_urls=broken, archives=(ArchiveSource(archive.as_uri()),))
    )
    files = download_corpus("ptb", data_dir=tmp_path / "data")
    assert sha256_file(files.test) == CHECKSUMS["ptb"]["test"].sha256


def test_download_rejects_a_corrupted_file(shared_data_dir, tmp_path, monkeypatch) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes((shared_data_dir / "ptb" / "valid.txt").read_bytes().replace(b"the", b"teh", 1))
    mirrors = {split: ((shared_data_dir / "ptb" / f"{split}.txt").as_uri(),) for split in ("train", "test")}
    mirrors["valid"] = (bad.as_uri(),)
    monkeypatch.setitem(SOURCES, "ptb", CorpusSource(file_urls=mirrors))
    with pytest.raises(CorpusDownloadError, match="SHA-256"):
        download_corpus("ptb", data_dir=tmp_path / "data")
    assert not (tmp_path / "data" / "ptb" / "valid.txt").exists()


def test_download_wikitext2_zip_and_cli(shared_data_dir, tmp_path, monkeypatch, capsys) -> None:
    archive = tmp_path / "wikitext-2-v1.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for split in ("train", "valid", "test"):
            zf.write(shared_data_dir / "wikitext-2" / f"{split}.txt", f"wikitext-2/wiki.{split}.tokens")
    monkeypatch.setitem(
        SOURCES,
        "wikitext2",
        dataclasses.replace(SOURCES["wikitext2"], archives=(ArchiveSource((tmp_path / "gone.zip").as_uri()),
                                                            ArchiveSource(archive.as_uri()))),
    )
    assert download_main(["wikitext-2", "--data-dir", str(tmp_path / "data")]) == 0
    assert str(tmp_path / "data" / "wikitext-2") in capsys.readouterr().out
    report = verify_corpus(tmp_path / "data" / "wikitext-2")
    assert report["valid"] == "size and sha256 ok"


def test_default_download_dir_is_env_then_tfds_manual(tmp_path, monkeypatch, isolated_data_env) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    with pytest.raises(CorpusDownloadError, match=str(isolated_data_env / "downloads" / "manual" / "ptb")):
        download_corpus("ptb")
    monkeypatch.setenv("TFNAS_DATA", str(tmp_path / "env"))
    with pytest.raises(CorpusDownloadError, match=str(tmp_path / "env" / "ptb")):
        download_corpus("ptb")


@pytest.mark.parametrize("setting, value", [("timeout", 0.0), ("min_rate", -1.0), ("rate_window", float("nan")),
                                            ("min_rate", float("inf"))])
def test_download_limits_out_of_range_are_refused_before_any_request(setting, value, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    with pytest.raises(ValueError, match=f"^{setting} must be a finite number "):
        download_corpus("ptb", data_dir=tmp_path, **{setting: value})
    assert not (tmp_path / "ptb").exists()


def test_stale_work_folders_are_removed_but_not_new_ones_nor_links(shared_data_dir, tmp_path, monkeypatch) -> None:
    """A work folder no process holds is removed once unchanged for STALE_AFTER seconds (the moment between its
    creation and its lock is spared); a symbolic link with the prefix is neither followed nor removed."""
    mirrors = {split: ((shared_data_dir / "ptb" / f"{split}.txt").as_uri(),) for split in ("train", "valid", "test")}
    monkeypatch.setitem(SOURCES, "ptb", CorpusSource(file_urls=mirrors))
    target = tmp_path / "data" / "ptb"
    old, new, elsewhere = target / f"{WORK_PREFIX}old", target / f"{WORK_PREFIX}new", tmp_path / "elsewhere"
    for folder in (old, new, elsewhere):
        folder.mkdir(parents=True)
        (folder / "train.txt").write_text("partial")
    link = target / f"{WORK_PREFIX}link"
    link.symlink_to(elsewhere, target_is_directory=True)
    earlier = time.time() - STALE_AFTER - 1
    for path in (old, elsewhere):
        os.utime(path, (earlier, earlier))
    download_corpus("ptb", data_dir=tmp_path / "data")
    assert sorted(p.name for p in target.iterdir()) == sorted([new.name, link.name, "test.txt", "train.txt",
                                                                "valid.txt"])
    assert sorted(p.name for p in elsewhere.iterdir()) == ["train.txt"]


def test_a_file_that_is_no_archive_is_named_on_one_line(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "simple-examples.tgz"
    fake.write_bytes(b"<html>moved</html>")
    monkeypatch.setitem(SOURCES, "ptb", CorpusSource(archives=(ArchiveSource(fake.as_uri()),)))
    with pytest.raises(CorpusDownloadError) as info:
        download_corpus("ptb", data_dir=tmp_path / "data")
    assert info.value.tried == [f"{fake.as_uri()}: simple-examples.tgz is neither a zip nor a tar archive"]
    assert info.value.advice == "the official locations served files that differ from the official ones"
    assert "\nThe official locations served files that differ from the official ones.\n" in str(info.value)
