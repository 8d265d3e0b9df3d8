"""Tests of tfnas.data.tfds_builders (offline, from a manual dir) and of lazy importing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tfnas.data import CHECKSUMS, ChecksumMismatchError
from tfnas.data.checksums import FileChecksum, count_tokens, sha256_file

REPO = Path(__file__).resolve().parents[2]


def test_import_tfnas_data_does_not_import_or_register_tfds() -> None:
    code = (
        "import sys, tfnas.data, tfnas.data.tfds_builders as tb\n"
        "print('tensorflow_datasets' in sys.modules, tb._BUILDERS is None)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["False", "True"]


@pytest.fixture
def tiny_manual_dir(tmp_path, write_corpus, monkeypatch):
    """A tiny 'ptb' in a tfds manual dir, with CHECKSUMS patched to match it."""
    lines = {"train": " the cat\n\n a dog <unk>\n", "valid": " the dog\n", "test": " a\n cat\n"}
    folder = write_corpus(tmp_path / "manual" / "ptb", lines["train"], lines["valid"], lines["test"])
    patched = {}
    for split in ("train", "valid", "test"):
        path = folder / f"{split}.txt"
        patched[split] = FileChecksum(f"ptb.{split}.txt", path.stat().st_size, count_tokens(path), sha256_file(path))
    monkeypatch.setitem(CHECKSUMS, "ptb", patched)
    return tmp_path / "manual", lines


def test_ptb_builder_reads_lines_in_order_from_the_manual_dir(tiny_manual_dir, tmp_path) -> None:
    tfds = pytest.importorskip("tensorflow_datasets")
    from tfnas.data.tfds_builders import Ptb, Wikitext2, register_builders

    assert (Ptb.name, Wikitext2.name) == ("ptb", "wikitext2")
    assert register_builders() == {"ptb": Ptb, "wikitext2": Wikitext2}  # idempotent
    assert tfds.builder_cls("ptb") is Ptb

    manual, lines = tiny_manual_dir
    builder = Ptb(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    splits = builder.info.splits
    assert (splits["train"].num_examples, splits["validation"].num_examples, splits["test"].num_examples) == (3, 1, 2)
    texts = [ex["text"].decode("utf-8") for ex in tfds.as_numpy(builder.as_dataset(split="train"))]
    assert texts == lines["train"].splitlines()


def test_ptb_builder_rejects_files_that_do_not_match_the_table(tiny_manual_dir, tmp_path) -> None:
    tfds = pytest.importorskip("tensorflow_datasets")
    from tfnas.data.tfds_builders import Ptb

    manual, _ = tiny_manual_dir
    (manual / "ptb" / "valid.txt").write_text(" the cat\n", encoding="utf-8")  # same size, other bytes
    builder = Ptb(data_dir=str(tmp_path / "tfds2"))
    with pytest.raises(ChecksumMismatchError, match="valid.txt"):
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
