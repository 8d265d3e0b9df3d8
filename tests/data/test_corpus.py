"""Tests of tfnas.data.corpus, on the shared corpora and on tiny corpora."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from tfnas.data import (
    EOS,
    UNK,
    VOCAB_SIZES,
    OutOfVocabularyError,
    clear_corpus_cache,
    load_corpus,
)


@pytest.mark.parametrize(
    ("name", "counts", "vocab_size"),
    [
        ("ptb", (929_589, 73_760, 82_430), 10_000),
        ("wikitext2", (2_088_628, 217_646, 245_569), 33_278),
        ("wikitext-2", (2_088_628, 217_646, 245_569), 33_278),
    ],
)
def test_shared_corpus_token_counts_and_vocab_size(shared_data_dir, name, counts, vocab_size) -> None:
    corpus = load_corpus(name, data_dir=shared_data_dir)
    assert (corpus.train.size, corpus.valid.size, corpus.test.size) == counts
    assert len(corpus.vocab) == vocab_size == VOCAB_SIZES[corpus.name]
    assert corpus.name == name.replace("-", "")
    for split in (corpus.train, corpus.valid, corpus.test):
        assert split.dtype == np.int64 and split.ndim == 1
        assert 0 <= split.min() and split.max() < len(corpus.vocab)
    assert corpus.vocab.unk_id is not None  # both corpora contain <unk>
    # Every line ends with <eos>; the last token of each split is <eos>.
    assert corpus.train[-1] == corpus.valid[-1] == corpus.test[-1] == corpus.vocab.eos_id


def test_ptb_first_line_and_encoding_matches_reference_reader(shared_data_dir) -> None:
    corpus = load_corpus("ptb", data_dir=shared_data_dir)
    path = shared_data_dir / "ptb" / "valid.txt"
    reference = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            reference += line.split() + [EOS]
    assert corpus.vocab.decode(corpus.valid) == reference
    assert corpus.vocab.words[:3] == ("aer", "banknote", "berlitz")


def test_cache_returns_same_object_and_is_fast(shared_data_dir) -> None:
    first = load_corpus("wikitext2", data_dir=shared_data_dir)
    start = time.perf_counter()
    again = load_corpus("wikitext-2", data_dir=shared_data_dir)
    assert again is first
    assert time.perf_counter() - start < 0.5
    assert not first.train.flags.writeable  # shared arrays are read-only


def test_uncached_wikitext2_load_takes_seconds_not_minutes(shared_data_dir) -> None:
    clear_corpus_cache()
    start = time.perf_counter()
    corpus = load_corpus("wikitext2", data_dir=shared_data_dir)
    elapsed = time.perf_counter() - start
    assert corpus.train.size == 2_088_628
    assert elapsed < 5.0, f"loading WikiText-2 took {elapsed:.1f}s"


def test_tiny_corpus_from_path_maps_unseen_words_to_unk(tmp_path, write_corpus) -> None:
    folder = write_corpus(tmp_path / "tiny", " the cat <unk>\n the dog\n", " the bird\n", " a cat\n")
    corpus = load_corpus(folder)
    assert corpus.name == "tiny"
    assert corpus.vocab.words == ("the", "cat", UNK, EOS, "dog")
    assert corpus.train.tolist() == [0, 1, 2, 3, 0, 4, 3]
    assert corpus.valid.tolist() == [0, 2, 3]  # bird -> <unk>
    assert corpus.test.tolist() == [2, 1, 3]  # a -> <unk>
    assert corpus.split("validation") is corpus.valid


def test_tiny_corpus_without_unk_raises_oov_with_file_and_line(tmp_path, write_corpus) -> None:
    folder = write_corpus(tmp_path / "nounk", " x y\n y x\n", " x\n y\n x zebra\n", " x\n")
    with pytest.raises(OutOfVocabularyError) as info:
        load_corpus(folder)
    message = str(info.value)
    assert "'zebra'" in message and "valid.txt" in message and "line 3" in message


@pytest.mark.parametrize("split", ["train", "valid", "test"])
@pytest.mark.parametrize("text", ["", "\n\n"])
def test_a_split_without_words_is_named_with_its_file(tmp_path, write_corpus, split, text) -> None:
    texts = {"train": " a b\n", "valid": " a\n", "test": " b\n", split: text}
    folder = write_corpus(tmp_path / "empty", texts["train"], texts["valid"], texts["test"])
    with pytest.raises(ValueError) as info:
        load_corpus(folder)
    assert str(info.value) == (f"corpus file {str(folder / f'{split}.txt')!r} holds no words: "
                               f"the {split} split needs text")


def test_cache_is_invalidated_when_a_file_changes(tmp_path, write_corpus) -> None:
    folder = write_corpus(tmp_path / "c", " a b\n", " a\n", " b\n")
    first = load_corpus(folder)
    (folder / "train.txt").write_text(" a b c\n", encoding="utf-8")
    stat = (folder / "train.txt").stat()
    os.utime(folder / "train.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = load_corpus(folder)
    assert second is not first
    assert len(second.vocab) == 4 and len(first.vocab) == 3


def test_path_errors_name_the_argument(tmp_path, write_corpus) -> None:
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "train.txt").write_text(" a\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="valid.txt, test.txt"):
        load_corpus(folder)
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        load_corpus(tmp_path / "does-not-exist")
    with pytest.raises(ValueError, match="'penntreebank'"):
        load_corpus("penntreebank")
    with pytest.raises(ValueError, match="unknown split"):
        load_corpus(write_corpus(tmp_path / "ok", " a\n")).split("dev")
