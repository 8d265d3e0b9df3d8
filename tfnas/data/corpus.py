"""Loading a corpus (vocabulary + encoded train/valid/test splits)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfnas.data.errors import CorpusError
from tfnas.data.locate import CORPUS_NAMES, CorpusFiles, canonical_corpus_name, find_corpus_files
from tfnas.data.tokens import EOS, SPLITS, read_tokens
from tfnas.data.vocab import Vocabulary
from tfnas.errors import PathNotFoundError

__all__ = ["Corpus", "load_corpus", "clear_corpus_cache"]

_SPLIT_ALIASES = {"train": "train", "valid": "valid", "validation": "valid", "test": "test"}


@dataclass(frozen=True, eq=False)
class Corpus:
    """A tokenised corpus.

    Attributes:
        name: canonical corpus name (``ptb``, ``wikitext2``), or the folder
            name for a corpus loaded from a path.
        vocab: vocabulary built from the training split.
        train, valid, test: 1-D read-only ``int64`` id arrays (``<eos>`` after
            every line). They are shared between callers through a cache:
            copy them before modifying.
        files: the files the splits were read from.
    """

    name: str
    vocab: Vocabulary
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    files: CorpusFiles | None = None

    def split(self, split: str) -> np.ndarray:
        """The id array of ``split`` (``train``, ``valid``/``validation`` or ``test``).

        Raises:
            ValueError: unknown split name.
        """
        key = _SPLIT_ALIASES.get(str(split).lower())
        if key is None:
            raise ValueError(
                f"unknown split={split!r}; expected one of {sorted(_SPLIT_ALIASES)}"
            )
        return getattr(self, key)

    def __repr__(self) -> str:
        return (
            f"Corpus(name={self.name!r}, vocab={len(self.vocab)} words, "
            f"train={self.train.size}, valid={self.valid.size}, test={self.test.size} tokens)"
        )


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, key: tuple[tuple[str, int, int], ...]) -> Corpus:
    paths = [Path(path) for path, _, _ in key]
    files = CorpusFiles(name, *paths)
    train_tokens = read_tokens(files.train)
    _check_words(files.train, "train", any(t != EOS for t in train_tokens))
    vocab = Vocabulary.from_tokens(train_tokens)
    train = vocab.encode(train_tokens)
    del train_tokens
    valid = vocab.encode_file(files.valid)
    _check_words(files.valid, "valid", bool(np.any(valid != vocab.eos_id)))
    test = vocab.encode_file(files.test)
    _check_words(files.test, "test", bool(np.any(test != vocab.eos_id)))
    return Corpus(name, vocab, _readonly(train), _readonly(valid), _readonly(test), files)


def _check_words(path: Path, split: str, has_words: bool) -> None:
    """Refuses a split file without a word (empty, or blank lines only), naming it: the error would otherwise
    surface later as an unknown word of another split or a batch larger than the split."""
    if not has_words:
        raise CorpusError(f"corpus file {str(path)!r} holds no words: the {split} split needs text")


def clear_corpus_cache() -> None:
    """Forget every corpus loaded so far by :func:`load_corpus`."""
    _load_cached.cache_clear()


def _resolve_files(
    name_or_path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None, download: bool
) -> tuple[str, CorpusFiles]:
    if isinstance(name_or_path, str) and name_or_path.strip().lower() in CORPUS_NAMES:
        from tfnas.data.download import locate_or_download  # not at import: see tfnas.data.__getattr__

        name = canonical_corpus_name(name_or_path)
        return name, locate_or_download(name, data_dir, download=download)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        files = find_corpus_files(path)
        if files is None:
            missing = [s for s in SPLITS if not (path / f"{s}.txt").is_file()]
            raise PathNotFoundError(
                f"corpus folder {str(path)!r} lacks {', '.join(f'{s}.txt' for s in missing)}; "
                "it must hold train.txt, valid.txt and test.txt "
                "(or the official ptb.*.txt / wiki.*.tokens files)"
            )
        return path.resolve().name, files
    if path.exists():
        raise CorpusError(
            f"name_or_path={str(name_or_path)!r} is a file; pass the folder holding "
            "train.txt, valid.txt and test.txt"
        )
    if isinstance(name_or_path, str) and os.sep not in name_or_path and "/" not in name_or_path:
        raise CorpusError(
            f"unknown corpus name_or_path={name_or_path!r}: not one of {sorted(CORPUS_NAMES)} "
            "and no such folder"
        )
    raise PathNotFoundError(f"corpus folder name_or_path={str(name_or_path)!r} does not exist")


def load_corpus(
    name_or_path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None, *, download: bool = True
) -> Corpus:
    """Load and encode a corpus.

    Args:
        name_or_path: ``"ptb"``, ``"wikitext2"`` (alias ``"wikitext-2"``),
            found with :func:`tfnas.data.locate_corpus`; or a path to a folder
            with ``train.txt``, ``valid.txt`` and ``test.txt`` (names win over
            paths: write ``./ptb`` for a folder called ``ptb``).
        data_dir: data directory searched first for a named corpus.
        download: a named corpus found nowhere is downloaded from its
            official location, verified and put in the first data directory
            searched (:func:`tfnas.data.download.locate_or_download`); off
            when False or when ``$TFNAS_NO_DOWNLOAD`` is set.

    Returns:
        The corpus. Results are cached in memory (at most 4 corpora), keyed by
        the resolved file paths, their modification times and sizes; nothing
        is written to disk.

    Raises:
        CorpusNotFoundError: a named corpus was not found, and downloading it
            was off or failed (one line).
        PathNotFoundError: the folder does not exist or lacks a split.
        CorpusError: unknown name, a file instead of a folder, or a split file without a word or not UTF-8
            (named).
        OutOfVocabularyError: valid/test hold a word missing from train and
            the vocabulary has no ``<unk>``.
    """
    name, files = _resolve_files(name_or_path, data_dir, download)
    key = []
    for split in SPLITS:
        path = getattr(files, split).resolve()
        stat = path.stat()
        key.append((str(path), stat.st_mtime_ns, stat.st_size))
    return _load_cached(name, tuple(key))
