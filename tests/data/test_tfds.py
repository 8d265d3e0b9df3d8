"""Tests of tfnas.data.tfds_builders (offline, from a manual dir) and of lazy importing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
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


def test_a_tfds_dataset_by_name_is_the_corpus_of_its_files(tiny_manual_dir, tmp_path) -> None:
    tfds = pytest.importorskip("tensorflow_datasets")
    from tfnas.data import CorpusError, CorpusOptions, load_corpus
    from tfnas.data.tfds_builders import Ptb

    manual, _ = tiny_manual_dir
    with pytest.raises(CorpusError, match=r"dataset tfds:ptb is not prepared in .* download is off"):
        load_corpus("tfds:ptb", tmp_path / "tfds", download=False)
    Ptb(data_dir=str(tmp_path / "tfds")).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    corpus = load_corpus("tfds:ptb", tmp_path / "tfds", download=False)
    files = load_corpus(manual / "ptb")
    assert corpus.vocab == files.vocab and corpus.source == "tfds:ptb"
    assert [corpus.split(s).tolist() for s in ("train", "valid", "test")] == [
        files.split(s).tolist() for s in ("train", "valid", "test")]
    with pytest.raises(CorpusError, match=r"tfds:ptb has no feature 'body' \(text_feature\); its features: text"):
        load_corpus("tfds:ptb", tmp_path / "tfds", download=False, options=CorpusOptions(text_feature="body"))
    with pytest.raises(CorpusError, match="tfds:no_such_dataset_here: tensorflow-datasets has no such dataset"):
        load_corpus("tfds:no_such_dataset_here", tmp_path / "tfds", download=False)


def test_a_tfds_dataset_with_a_train_split_only_is_split_by_lines(tmp_path) -> None:
    tfds = pytest.importorskip("tensorflow_datasets")
    from tfnas.data import CorpusError, CorpusOptions, load_corpus

    class TfnasTinyTrainOnly(tfds.core.GeneratorBasedBuilder):
        """Ten sentences, a train split only, the text in feature ``sentence``."""

        VERSION = tfds.core.Version("1.0.0")

        @tfds.core.utils.classproperty
        @classmethod
        def code_path(cls):  # as tfnas' builders: tfds 4.9 would need importlib_resources to find this file
            from etils import epath

            return epath.Path(__file__)

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, disable_shuffling=True, features=tfds.features.FeaturesDict(
                {"sentence": tfds.features.Text(), "n": tfds.features.Scalar(dtype=np.int32)}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i in range(10):
                yield i, {"sentence": f"s{i % 3}", "n": i}

    TfnasTinyTrainOnly(data_dir=str(tmp_path)).download_and_prepare()
    options = CorpusOptions(text_feature="sentence", split_ratios=(0.8, 0.1, 0.1))
    corpus = load_corpus("tfds:tfnas_tiny_train_only", tmp_path, download=False, options=options)
    # lines s0 s1 s2 s0 s1 s2 s0 s1 | s2 | s0
    assert corpus.vocab.words == ("s0", "<eos>", "s1", "s2")
    assert (corpus.train.tolist()[:6], corpus.valid.tolist(), corpus.test.tolist()) == (
        [0, 1, 2, 1, 3, 1], [3, 1], [0, 1])
    with pytest.raises(CorpusError, match="feature .n. is not text"):
        load_corpus("tfds:tfnas_tiny_train_only", tmp_path, download=False,
                    options=CorpusOptions(text_feature="n"))
