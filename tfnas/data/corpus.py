"""Loading a corpus (vocabulary + encoded train/valid/test splits).

A corpus comes from a named corpus (``ptb``, ``wikitext2``), a folder of
split files (`tfnas.data.locate.split_file_names`), one text file split by
lines (`CorpusOptions.split_ratios`), a tensorflow-datasets dataset
(``tfds:NAME``, `tfnas.data.tfds_text`), or texts given in Python
(`Corpus.from_texts`); `CorpusOptions` say how its text becomes ids. Every
source ends in `build_corpus`, the one place a vocabulary is built and the
splits encoded.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np

from tfnas.data.errors import CorpusError
from tfnas.data.locate import CORPUS_NAMES, CorpusFiles, canonical_corpus_name, find_corpus_files, split_file_names
from tfnas.data.options import CorpusOptions
from tfnas.data.tfds_text import is_tfds_name, tfds_texts
from tfnas.data.tokens import EOS, SPLITS, read_text, tokenize_text
from tfnas.data.vocab import Vocabulary
from tfnas.errors import PathNotFoundError

__all__ = ["Corpus", "CorpusOptions", "SplitText", "build_corpus", "load_corpus", "load_corpus_of",
           "clear_corpus_cache", "split_lines"]

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
        files: the files the splits were read from (one text file split by
            lines: the same file three times).
        options: how the text became ids (``options.tokens``: ``words`` or
            ``chars``).
        source: the resolved folder, text file or ``tfds:`` name it was
            loaded from, which `load_corpus` reads again with ``options``;
            None for texts given in Python.
    """

    name: str
    vocab: Vocabulary
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    files: CorpusFiles | None = None
    options: CorpusOptions = field(default_factory=CorpusOptions)
    source: str | None = None

    @classmethod
    def from_texts(cls, train: str | os.PathLike[str], valid: str | os.PathLike[str],
                   test: str | os.PathLike[str], *, options: CorpusOptions | None = None,
                   name: str = "texts") -> "Corpus":
        """A corpus of three texts: a `str` is the text itself, a `pathlib.Path` (any ``os.PathLike``) a UTF-8
        file to read.

        Example::

            corpus = Corpus.from_texts("the cat sat\n", "the cat\n", Path("test.txt"),
                                       options=CorpusOptions(unk=True))

        Raises:
            PathNotFoundError, PathAccessError: a file does not exist or cannot be read.
            CorpusError: a text without a word, or a file not UTF-8 (named).
            OutOfVocabularyError: a word of valid or test that cannot be mapped (without ``options.unk``).
        """
        texts = {}
        for split, value in zip(SPLITS, (train, valid, test)):
            if isinstance(value, str):
                texts[split] = SplitText(value, f"the {split} text")
            elif isinstance(value, os.PathLike):
                texts[split] = SplitText(read_text(value), f"corpus file {os.fspath(value)!r}", os.fspath(value))
            else:
                raise TypeError(f"Argument `{split}` must be a str (the text) or a path; "
                                f"received: {split}={type(value).__name__}")
        return build_corpus(name, texts, options or CorpusOptions())

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


class SplitText(NamedTuple):
    """The text of one split, with where it comes from for messages: ``label`` (``corpus file '...'``),
    ``path`` (the file, if any) and the number of its first line in that file."""

    text: str
    label: str
    path: str | None = None
    first_line: int = 1


def build_corpus(name: str, texts: Mapping[str, SplitText], options: CorpusOptions,
                 files: CorpusFiles | None = None, source: str | None = None) -> Corpus:
    """The corpus of three split texts: the vocabulary of the training tokens
    (`tfnas.data.Vocabulary.from_tokens` with ``options``), the splits as ids.

    A word of valid or test outside the vocabulary maps to ``<unk>`` when the
    vocabulary has it (the training text holds it, ``options.unk``, or a rare
    word was left out), else it is an `OutOfVocabularyError` naming the file
    and line.

    Raises:
        CorpusError: a split without a word (named).
        OutOfVocabularyError: see above.
    """
    train_text = texts["train"]
    train_tokens = tokenize_text(train_text.text, options.tokens)
    _check_words(train_text.label, "train", any(t != EOS for t in train_tokens))
    vocab = Vocabulary.from_tokens(train_tokens, **options.vocabulary_arguments())
    train = vocab.encode(train_tokens)
    del train_tokens
    arrays = [train]
    for split in SPLITS[1:]:
        part = texts[split]
        ids = vocab.encode_text(part.text, tokens=options.tokens, where=part.path, first_line=part.first_line)
        _check_words(part.label, split, bool(np.any(ids != vocab.eos_id)))
        arrays.append(ids)
    return Corpus(name, vocab, *(_readonly(a) for a in arrays), files, options, source)


def split_lines(text: str, ratios: tuple[float, ...], label: str, path: str | None = None) -> dict[str, SplitText]:
    """``text`` cut by lines into train, valid and test, in this order: of its ``n`` lines, valid and test take
    ``floor(n * ratio + 1/2)`` each (the nearest integer, halves up) and train the first lines before them.

    Raises:
        CorpusError: a split would get no line (``label`` names the text).
    """
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    n = len(lines)
    n_valid, n_test = (int(n * r + 0.5) for r in ratios[1:])
    n_train = n - n_valid - n_test
    if min(n_train, n_valid, n_test) < 1:
        raise CorpusError(f"{label} has {n} lines: too few to split by lines into train, valid and test with "
                          f"split_ratios {list(ratios)} ({n_train}, {n_valid} and {n_test} lines)")
    bounds = (0, n_train, n_train + n_valid, n)
    return {split: SplitText("".join(line + "\n" for line in lines[bounds[i]:bounds[i + 1]]),
                             f"{label} (lines {bounds[i] + 1}-{bounds[i + 1]}, its {split} split)", path, bounds[i] + 1)
            for i, split in enumerate(SPLITS)}


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, key: tuple[tuple[str, int, int], ...], options: CorpusOptions) -> Corpus:
    paths = [Path(path) for path, _, _ in key]
    if len(paths) == 1:  # one text file, split by lines
        label = f"corpus file {str(paths[0])!r}"
        texts = split_lines(read_text(paths[0]), options.split_ratios, label, str(paths[0]))
        files = CorpusFiles(name, paths[0], paths[0], paths[0])
    else:
        files = CorpusFiles(name, *paths)
        texts = {split: SplitText(read_text(path), f"corpus file {str(path)!r}", str(path))
                 for split, path in zip(SPLITS, paths)}
    return build_corpus(name, texts, options, files, str(paths[0] if len(paths) == 1 else files.directory))


@functools.lru_cache(maxsize=4)
def _load_tfds(spec: str, data_dir: str | None, download: bool, options: CorpusOptions) -> Corpus:
    label = f"dataset {spec}"
    found = tfds_texts(spec, data_dir, options.text_feature, download=download)
    if isinstance(found, str):
        texts = split_lines(found, options.split_ratios, f"{label} (its train split)")
    else:
        texts = {split: SplitText(text, f"{label} ({split} split)") for split, text in found.items()}
    return build_corpus(spec, texts, options, source=spec)


def _check_words(label: str, split: str, has_words: bool) -> None:
    """Refuses a split without a word (empty, or blank lines only), naming it: the error would otherwise
    surface later as an unknown word of another split or a batch larger than the split."""
    if not has_words:
        raise CorpusError(f"{label} holds no words: the {split} split needs text")


def clear_corpus_cache() -> None:
    """Forget every corpus loaded so far by :func:`load_corpus`."""
    _load_cached.cache_clear()
    _load_tfds.cache_clear()


def _resolve_files(
    name_or_path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None, download: bool
) -> tuple[str, list[Path]]:
    if isinstance(name_or_path, str) and name_or_path.strip().lower() in CORPUS_NAMES:
        from tfnas.data.download import locate_or_download  # not at import: see tfnas.data.__getattr__

        name = canonical_corpus_name(name_or_path)
        files = locate_or_download(name, data_dir, download=download)
        return name, [getattr(files, split) for split in SPLITS]
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        files = find_corpus_files(path)
        if files is None:
            missing = [s for s in SPLITS if not any((path / f).is_file() for f in split_file_names(s))]
            raise PathNotFoundError(
                f"corpus folder {str(path)!r} lacks a {' and a '.join(missing)} file; it must hold "
                + ", ".join(f"{s}.txt" for s in SPLITS)
                + " (valid may also be validation or dev; .tokens for .txt; or the official ptb.*.txt / "
                "wiki.*.tokens files)"
            )
        return path.resolve().name, [getattr(files, split) for split in SPLITS]
    if path.is_file():
        return path.resolve().stem, [path]
    if isinstance(name_or_path, str) and os.sep not in name_or_path and "/" not in name_or_path:
        raise CorpusError(
            f"unknown corpus name_or_path={name_or_path!r}: not one of {sorted(CORPUS_NAMES)}, not tfds:NAME "
            "and no such folder or file"
        )
    raise PathNotFoundError(f"corpus folder or file name_or_path={str(name_or_path)!r} does not exist")


def load_corpus(
    name_or_path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None, *, download: bool = True,
    options: CorpusOptions | None = None,
) -> Corpus:
    """Load and encode a corpus.

    Args:
        name_or_path: ``"ptb"``, ``"wikitext2"`` (alias ``"wikitext-2"``),
            found with :func:`tfnas.data.locate_corpus`; ``"tfds:NAME"``, a
            tensorflow-datasets dataset (`tfnas.data.tfds_text`); a path to a
            folder with train, valid and test files
            (`tfnas.data.locate.split_file_names`: ``train.txt``,
            ``valid.txt`` / ``validation.txt`` / ``dev.txt``, ``test.txt``,
            or ``.tokens``); or a path to one text file, split by lines with
            ``options.split_ratios`` (names win over paths: write ``./ptb``
            for a folder called ``ptb``).
        data_dir: data directory searched first for a named corpus; the
            tensorflow-datasets data dir of a ``tfds:`` one.
        download: a named corpus found nowhere is downloaded from its
            official location, verified and put in the first data directory
            searched (:func:`tfnas.data.download.locate_or_download`); off
            when False or when ``$TFNAS_NO_DOWNLOAD`` is set. A ``tfds:``
            dataset not prepared yet is prepared (downloaded) by
            tensorflow-datasets.
        options: tokens, vocabulary, split ratios and tfds feature
            (`CorpusOptions`; None: the defaults, the corpus of earlier
            versions).

    Returns:
        The corpus. Results are cached in memory (at most 4 corpora of files
        and 4 of tensorflow-datasets), keyed by the resolved file paths, their
        modification times and sizes (a dataset by its name and data dir) and
        the options; nothing is written to disk.

    Raises:
        CorpusNotFoundError: a named corpus was not found, and downloading it
            was off or failed (one line).
        PathNotFoundError: the folder or file does not exist, or the folder lacks a split.
        CorpusError: unknown name, a split file without a word or not UTF-8, a file too short to split,
            a tensorflow-datasets dataset that cannot be read (named).
        OutOfVocabularyError: valid/test hold a word missing from train and
            the vocabulary has no ``<unk>``.
    """
    options = options if options is not None else CorpusOptions()
    if is_tfds_name(name_or_path):
        where = None if data_dir is None else str(Path(data_dir).expanduser().resolve())
        return _load_tfds(name_or_path, where, bool(download), options)
    name, paths = _resolve_files(name_or_path, data_dir, download)
    key = []
    for path in paths:
        path = path.resolve()
        stat = path.stat()
        key.append((str(path), stat.st_mtime_ns, stat.st_size))
    return _load_cached(name, tuple(key), options)


def check_corpus(corpus: Any) -> Corpus:
    """``corpus`` if it is a `Corpus`; anything else (a ``tf.data.Dataset``, an array) is a `CorpusError` saying
    what to pass instead."""
    if isinstance(corpus, Corpus):
        return corpus
    raise CorpusError(f"a corpus must be a tfnas.data.Corpus, not {type(corpus).__name__}: pass its name ('ptb', "
                      "'wikitext2'), a folder, a text file or 'tfds:NAME' as the data, or "
                      "tfnas.data.Corpus.from_texts(train_text, valid_text, test_text)")


def load_corpus_of(settings: Any) -> Corpus:
    """The corpus a run's settings name: ``dataset``, ``data_dir``, ``download`` and the `CorpusOptions` fields,
    read from a `tfnas.config.RunConfig` or from a mapping (a run record's settings: one an earlier tfnas did not
    record takes its default)."""
    get = settings.get if isinstance(settings, Mapping) else (lambda name, default: getattr(settings, name, default))
    return load_corpus(get("dataset", "ptb"), get("data_dir", None), download=get("download", True),
                       options=CorpusOptions.from_settings(settings))
