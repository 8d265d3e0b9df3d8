"""Tests of tfnas.data.vocab and tfnas.data.tokens."""

from __future__ import annotations

import numpy as np
import pytest

from tfnas.data import EOS, UNK, OutOfVocabularyError, Vocabulary, read_tokens, tokenize_text


def test_tokenize_appends_eos_to_every_line_including_blank_and_unterminated() -> None:
    assert tokenize_text(" a b\n\nc") == ["a", "b", EOS, EOS, "c", EOS]
    assert tokenize_text("") == []
    # Same as the reference per-line reader.
    text = " x  y \n\n z\n"
    reference = [w for line in text.splitlines() for w in line.split() + [EOS]]
    assert tokenize_text(text) == reference


def test_read_tokens_missing_file_names_it(tmp_path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_tokens(missing)


def test_vocabulary_is_first_appearance_order_with_eos() -> None:
    vocab = Vocabulary.from_tokens(tokenize_text("b a b\nc a\n"))
    assert vocab.words == ("b", "a", EOS, "c")
    assert len(vocab) == 4
    assert vocab.eos_id == 2
    assert vocab.unk_id is None
    assert vocab.word_to_id("c") == 3
    assert vocab.id_to_word(1) == "a"


def test_encode_decode_roundtrip_and_dtype() -> None:
    vocab = Vocabulary(["x", "y", EOS])
    ids = vocab.encode(["y", "x", EOS, "y"])
    assert ids.dtype == np.int64
    assert ids.tolist() == [1, 0, 2, 1]
    assert vocab.decode(ids) == ["y", "x", EOS, "y"]
    assert vocab.decode([]) == []


def test_unknown_word_maps_to_unk_when_present() -> None:
    vocab = Vocabulary(["a", UNK, EOS])
    assert vocab.unk_id == 1
    assert vocab.encode(["a", "zzz", "qqq"]).tolist() == [0, 1, 1]
    assert vocab.word_to_id("zzz") == 1


def test_unknown_word_without_unk_raises_naming_the_word() -> None:
    vocab = Vocabulary(["a", EOS])
    with pytest.raises(OutOfVocabularyError, match="'zzz'") as info:
        vocab.encode(["a", "zzz"])
    assert isinstance(info.value, ValueError)
    assert info.value.word == "zzz"
    with pytest.raises(OutOfVocabularyError, match="'q'"):
        vocab.word_to_id("q")


def test_unk_none_disables_mapping_even_with_unk() -> None:
    vocab = Vocabulary(["a", UNK])
    with pytest.raises(OutOfVocabularyError, match="unk=None"):
        vocab.encode(["b"], unk=None)


def test_encode_file_error_names_file_and_line(tmp_path) -> None:
    vocab = Vocabulary(["a", "b", EOS])
    path = tmp_path / "valid.txt"
    path.write_text(" a b\n a\n b oops a\n", encoding="utf-8")
    with pytest.raises(OutOfVocabularyError) as info:
        vocab.encode_file(path)
    assert info.value.line == 3
    assert info.value.path == str(path)
    assert "line 3" in str(info.value) and "valid.txt" in str(info.value) and "'oops'" in str(info.value)


def test_encode_rejects_a_plain_string() -> None:
    with pytest.raises(TypeError, match="split"):
        Vocabulary(["a"]).encode("a")


def test_id_to_word_and_decode_reject_out_of_range() -> None:
    vocab = Vocabulary(["a", "b"])
    with pytest.raises(ValueError, match="i=2"):
        vocab.id_to_word(2)
    with pytest.raises(ValueError, match="i=-1"):
        vocab.id_to_word(-1)
    with pytest.raises(ValueError, match=r"ids\[1\]=5"):
        vocab.decode([0, 5])


def test_invalid_words_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary(["a", "b", "a"])
    with pytest.raises(ValueError, match="whitespace"):
        Vocabulary(["a b"])


def test_save_load_roundtrip_preserves_order_and_utf8(tmp_path) -> None:
    vocab = Vocabulary(["zebra", "été", UNK, EOS, "日本"])
    path = tmp_path / "vocab.txt"
    vocab.save(path)
    assert path.read_text(encoding="utf-8") == "zebra\nété\n<unk>\n<eos>\n日本\n"
    loaded = Vocabulary.load(path)
    assert loaded == vocab
    assert loaded.words == vocab.words
    assert loaded != Vocabulary(["été", "zebra", UNK, EOS, "日本"])
    assert hash(loaded) == hash(vocab)


def test_load_errors_name_file_and_line(tmp_path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("a\nb\na\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lines 1 and 3"):
        Vocabulary.load(path)
    path.write_text("a\n\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        Vocabulary.load(path)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        Vocabulary.load(tmp_path / "missing.txt")
