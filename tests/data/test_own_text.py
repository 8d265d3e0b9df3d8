"""Your own text: split names, one file split by lines, texts in Python, vocabulary options, characters, settings.

Every expectation is written out by hand from the tiny texts of the test.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from tfnas.config import CORPUS_SETTINGS, TrainConfig
from tfnas.data import (Corpus, CorpusError, CorpusOptions, OutOfVocabularyError, Vocabulary, join_tokens,
                        load_corpus, load_corpus_of, tokenize_text)
from tfnas.errors import PathNotFoundError
from tfnas.runs.folder import RunFolderError, corpus_fingerprint, open_run
from tfnas.settings import SettingsError


def ids(corpus: Corpus) -> tuple[list[int], list[int], list[int]]:
    return corpus.train.tolist(), corpus.valid.tolist(), corpus.test.tolist()


# ----------------------------------------------------------------- defaults: the corpus and fingerprint of before
def test_default_options_keep_the_ids_and_the_fingerprint_computed_before_the_options_existed(
        tmp_path, write_corpus) -> None:
    folder = write_corpus(tmp_path / "c", " the cat sat\n\n a dog <unk> the\n", " the dog\n zebra\n", " a cat\n")
    corpus = load_corpus(folder)
    assert corpus.vocab.words == ("the", "cat", "sat", "<eos>", "a", "dog", "<unk>")
    assert ids(corpus) == ([0, 1, 2, 3, 3, 4, 5, 6, 0, 3], [0, 5, 3, 6, 3], [4, 1, 3])
    # computed with tfnas at commit aedce6c, before CorpusOptions
    assert corpus_fingerprint(corpus) == {
        "words": 7, "tokens": 18,
        "vocabulary": "55066e69359288a9f57e75a1657ddef4d413c921a204c614581d88e92518a5e8",
        "token_ids": "1e1bb2bd2a30a0bf1f358eeb24c834a08a3a0a8a7b072762c1de1b2c92c9489c"}
    assert load_corpus_of(TrainConfig(dataset=str(folder))) is corpus  # the default settings: the same options
    assert load_corpus_of({"dataset": str(folder), "data_dir": None}) is corpus  # a record of before


# ------------------------------------------------------------------------------------------- folders and files
@pytest.mark.parametrize("names", [
    {"valid": "validation.txt"}, {"valid": "dev.txt"}, {"train": "train.tokens", "valid": "dev.tokens",
                                                        "test": "test.tokens"}])
def test_a_folder_may_name_its_splits_with_the_usual_names(tmp_path, write_corpus, names) -> None:
    folder = write_corpus(tmp_path / "c", " a b\n", " b\n", " a\n", names=names)
    corpus = load_corpus(folder)
    assert ids(corpus) == ([0, 1, 2], [1, 2], [0, 2])
    assert corpus.files.valid.name == names["valid"]


def test_valid_txt_wins_over_dev_txt(tmp_path, write_corpus) -> None:
    folder = write_corpus(tmp_path / "c", " a b\n", " b\n", " a\n")
    (folder / "dev.txt").write_text(" a a\n", encoding="utf-8")
    assert load_corpus(folder).valid.tolist() == [1, 2]


def test_a_folder_without_a_split_names_it_and_the_accepted_names(tmp_path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "train.txt").write_text(" a\n", encoding="utf-8")
    (folder / "test.txt").write_text(" a\n", encoding="utf-8")
    with pytest.raises(PathNotFoundError, match=r"'.*c' lacks a valid file; .*validation or dev") as err:
        load_corpus(folder)
    assert "\n" not in str(err.value)


def test_one_text_file_is_split_by_lines_with_the_ratios(tmp_path) -> None:
    path = tmp_path / "book.txt"
    path.write_text("".join(f"w{i}\n" for i in range(10)), encoding="utf-8")
    corpus = load_corpus(path, options=CorpusOptions(split_ratios=(0.8, 0.1, 0.1), unk=True))
    # 10 lines: valid and test 1 each (the last two), train the first 8; <unk> appended after w0..w7 and <eos>
    assert corpus.vocab.words == ("w0", "<eos>", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "<unk>")
    assert corpus.valid.tolist() == [9, 1] and corpus.test.tolist() == [9, 1]
    assert corpus.train.tolist()[:4] == [0, 1, 2, 1]
    assert corpus.source == str(path.resolve()) and corpus.name == "book"


def test_split_counts_round_halves_up(tmp_path) -> None:
    path = tmp_path / "fifty.txt"
    path.write_text("a\n" * 50, encoding="utf-8")
    corpus = load_corpus(path)  # 0.9/0.05/0.05 of 50 lines: 2.5 -> 3 lines each for valid and test, 44 for train
    assert (corpus.train.size, corpus.valid.size, corpus.test.size) == (88, 6, 6)


def test_a_file_too_short_to_split_is_named(tmp_path) -> None:
    path = tmp_path / "short.txt"
    path.write_text("a b\nc d\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"corpus file '.*short.txt' has 2 lines: too few .* \(2, 0 and 0 lines\)"):
        load_corpus(path)


def test_an_unknown_word_of_a_split_file_is_named_with_its_line_in_the_file(tmp_path) -> None:
    path = tmp_path / "book.txt"
    path.write_text("a\n" * 8 + "a zebra\nb\n", encoding="utf-8")
    with pytest.raises(OutOfVocabularyError, match=r"'zebra' .*file '.*book.txt', line 9\)"):
        load_corpus(path, options=CorpusOptions(split_ratios=(0.8, 0.1, 0.1)))


def test_from_texts_takes_strings_as_text_and_paths_as_files(tmp_path) -> None:
    test_file = tmp_path / "t.txt"
    test_file.write_text("c a\n", encoding="utf-8")
    corpus = Corpus.from_texts("a b\nb\n", "b a\n", test_file, options=CorpusOptions(unk=True))
    assert corpus.vocab.words == ("a", "b", "<eos>", "<unk>")
    assert ids(corpus) == ([0, 1, 2, 1, 2], [1, 0, 2], [3, 0, 2])
    assert corpus.source is None
    with pytest.raises(CorpusError, match="the valid text holds no words"):
        Corpus.from_texts("a\n", "\n\n", "a\n")
    with pytest.raises(PathNotFoundError, match="missing.txt"):
        Corpus.from_texts("a\n", "a\n", tmp_path / "missing.txt")
    with pytest.raises(TypeError, match="`test` must be a str"):
        Corpus.from_texts("a\n", "a\n", 3)


# ----------------------------------------------------------------------------------------------------- vocabulary
TRAIN = "b a b a c c d\n"  # counts: b 2, a 2, c 2, d 1, <eos> 1; first seen in this order


@pytest.mark.parametrize("options, words, train_ids", [
    ({}, ("b", "a", "c", "d", "<eos>"), [0, 1, 0, 1, 2, 2, 3, 4]),
    ({"min_count": 2}, ("b", "a", "c", "<eos>", "<unk>"), [0, 1, 0, 1, 2, 2, 4, 3]),
    # 4 entries: <eos> and <unk> kept, 2 of the three words seen twice, the first seen (b, a)
    ({"max_vocab": 4}, ("b", "a", "<eos>", "<unk>"), [0, 1, 0, 1, 3, 3, 3, 2]),
    ({"max_vocab": 5}, ("b", "a", "c", "d", "<eos>"), [0, 1, 0, 1, 2, 2, 3, 4]),  # fits: nothing left out
    ({"min_count": 2, "max_vocab": 4}, ("b", "a", "<eos>", "<unk>"), [0, 1, 0, 1, 3, 3, 3, 2]),
    ({"unk": True}, ("b", "a", "c", "d", "<eos>", "<unk>"), [0, 1, 0, 1, 2, 2, 3, 4]),
    ({"min_count": 3}, ("<eos>", "<unk>"), [1, 1, 1, 1, 1, 1, 1, 0]),
])
def test_vocabulary_options(options, words, train_ids) -> None:
    corpus = Corpus.from_texts(TRAIN, "a\n", "b\n", options=CorpusOptions(**options))
    assert corpus.vocab.words == words
    assert corpus.train.tolist() == train_ids


def test_a_training_unk_keeps_its_place_and_is_never_left_out() -> None:
    vocab = Vocabulary.from_tokens(["x", "<unk>", "x", "y", "<eos>"], min_count=2)
    assert vocab.words == ("x", "<unk>", "<eos>")


def test_unk_maps_unknown_words_of_valid_and_test_which_are_otherwise_refused_with_file_and_line(
        tmp_path, write_corpus) -> None:
    folder = write_corpus(tmp_path / "c", " a b\n", " a\n b zebra\n", " a\n")
    with pytest.raises(OutOfVocabularyError, match=r"'zebra' .*valid.txt', line 2\)"):
        load_corpus(folder)
    corpus = load_corpus(folder, options=CorpusOptions(unk=True))
    assert corpus.vocab.words == ("a", "b", "<eos>", "<unk>")
    assert corpus.valid.tolist() == [0, 2, 1, 3, 2]


@pytest.mark.parametrize("arguments, message", [
    ({"split_ratios": (0.5, 0.5)}, "three positive numbers"),
    ({"split_ratios": (0.9, 0.1, 0.1)}, "summing to 1"),
    ({"split_ratios": (1.0, 0.0, 0.0)}, "split_ratios`? must be a list of numbers > 0"),
    ({"max_vocab": 2}, "max_vocab`? must be null or an integer >= 3"),
    ({"min_count": 0}, "min_count`? must be a positive integer"),
    ({"tokens": "bytes"}, "'words', 'chars'"),
])
def test_bad_options_are_refused_on_one_line(arguments, message) -> None:
    with pytest.raises(SettingsError, match=message):
        CorpusOptions(**arguments)
    with pytest.raises(SettingsError, match=message):
        TrainConfig(**arguments)


# ----------------------------------------------------------------------------------------------------- characters
def test_characters_are_tokens_and_whitespace_has_names() -> None:
    assert tokenize_text("a b\tc\n\nd", "chars") == ["a", "<space>", "b", "<U+0009>", "c", "<eos>", "<eos>", "d",
                                                      "<eos>"]
    assert tokenize_text("é\u00a0<unk>\n", "chars") == ["é", "<U+00A0>", "<", "u", "n", "k", ">", "<eos>"]
    assert tokenize_text("", "chars") == []


def test_join_tokens_joins_characters_without_spaces_and_words_with_them() -> None:
    chars = ["a", "<space>", "b", "<U+0009>", "c", "<eos>", "d"]
    assert join_tokens(chars, "chars") == "a b\tc\nd"
    assert join_tokens(["the", "cat", "<eos>", "a"], "words") == "the cat\na"
    assert join_tokens(tokenize_text(" two  spaces\n", "chars"), "chars") == " two  spaces\n"


def test_a_character_level_corpus(tmp_path) -> None:
    corpus = Corpus.from_texts("ab a\n", "ba\n", "a b\n", options=CorpusOptions(tokens="chars"))
    assert corpus.vocab.words == ("a", "b", "<space>", "<eos>")
    assert ids(corpus) == ([0, 1, 2, 0, 3], [1, 0, 3], [0, 2, 1, 3])
    assert corpus.options.tokens == "chars"
    with pytest.raises(OutOfVocabularyError, match="'c'"):
        Corpus.from_texts("ab\n", "c\n", "a\n", options=CorpusOptions(tokens="chars"))


# ------------------------------------------------------------------------------------------ settings and resume
def test_the_options_are_settings_that_a_resume_may_not_change(tmp_path) -> None:
    config = TrainConfig(min_count=2, tokens="chars", split_ratios=(0.8, 0.1, 0.1))
    assert config.corpus_options() == CorpusOptions(tokens="chars", min_count=2, split_ratios=(0.8, 0.1, 0.1))
    assert set(config.corpus_settings()) == set(CORPUS_SETTINGS)
    open_run(tmp_path / "run", "train", None, config)
    with pytest.raises(RunFolderError, match=r"min_count: 2 -> 3"):
        open_run(tmp_path / "run", "train", None, TrainConfig(min_count=3, tokens="chars",
                                                              split_ratios=(0.8, 0.1, 0.1)))


def test_a_record_of_before_the_options_resumes_with_their_defaults(tmp_path) -> None:
    open_run(tmp_path / "run", "train", None, TrainConfig())
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    for name in ("tokens", "min_count", "max_vocab", "unk", "split_ratios", "text_feature"):
        del record["config"][name]
    (tmp_path / "run" / "config.json").write_text(json.dumps(record))
    open_run(tmp_path / "run", "train", None, TrainConfig())  # no refusal
    with pytest.raises(RunFolderError, match="unk: False -> True"):
        open_run(tmp_path / "run", "train", None, TrainConfig(unk=True))


def test_the_cli_has_a_flag_per_option_and_search_children_take_the_searchs(tmp_path, capsys) -> None:
    from tfnas.cli import build_parser, config_from_args, main

    argv = ["train", "--genotype", "lstm", "--out", str(tmp_path / "o"), "--dataset", "book.txt", "--tokens", "chars",
            "--min-count", "2", "--max-vocab", "100", "--unk", "--split-ratios", "0.8", "0.1", "0.1",
            "--text-feature", "body"]
    config = config_from_args(build_parser(argv).parse_args(argv))
    assert config.corpus_options() == CorpusOptions("chars", 2, 100, True, (0.8, 0.1, 0.1), "body")
    with pytest.raises(SystemExit):
        main(["search", "--strategy", "random", "--help"])
    search = capsys.readouterr().out
    assert "--min-count" in search and "--child-max-steps" in search and "--child-min-count" not in search


def test_a_shipped_evaluator_reloads_a_split_file_corpus_with_its_options(tmp_path) -> None:
    import pickle

    from tfnas.evaluation.evaluators import ShortTrainingEvaluator

    path = tmp_path / "book.txt"
    path.write_text("ab\n" * 20, encoding="utf-8")
    config = TrainConfig(dataset="ptb", tokens="chars", batch_size=1, eval_batch_size=1, test_batch_size=1)
    corpus = load_corpus(path, options=config.corpus_options())
    shipped = pickle.loads(pickle.dumps(ShortTrainingEvaluator(config, corpus)))
    reloaded = shipped._corpus()
    assert reloaded.vocab.words == ("a", "b", "<eos>") and reloaded.options.tokens == "chars"
    assert all(np.array_equal(x, y) for x, y in zip(ids(reloaded), ids(corpus)))
