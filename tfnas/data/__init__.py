"""Language-modelling data for tfnas: corpora, vocabularies and BPTT batching.

Quick start::

    from tfnas.data import load_corpus, batchify, BPTTIterator

    corpus = load_corpus("ptb")                 # or "wikitext2", a folder, a text file, "tfds:NAME"
    corpus = load_corpus("my_text.txt", options=CorpusOptions(tokens="chars", min_count=2))
    train = batchify(corpus.train, batch_size=64)
    for inputs, targets, seq_len, lr_scale in BPTTIterator(train, bptt=35, seed=0):
        ...

Where corpora are looked for is described in :mod:`tfnas.data.locate`; a
named corpus found nowhere is downloaded on first use
(:func:`tfnas.data.download.locate_or_download`).
Importing this package does not import tensorflow-datasets; its builders live
in :mod:`tfnas.data.tfds_builders` and are registered by
:func:`register_tfds_builders` (``Ptb`` and ``Wikitext2`` are also reachable
as lazy attributes of this package).
"""

from __future__ import annotations

from typing import Any

from tfnas.data.batching import BPTTIterator, Segment, batchify, epoch_iterator
from tfnas.data.checksums import (
    CHECKSUMS,
    SOURCES,
    VOCAB_SIZES,
    ChecksumMismatchError,
    FileChecksum,
)
from tfnas.data.corpus import Corpus, check_corpus, clear_corpus_cache, load_corpus, load_corpus_of
from tfnas.data.options import CorpusOptions
from tfnas.data.errors import CorpusError
from tfnas.data.locate import (
    ENV_VAR,
    CorpusFiles,
    CorpusNotFoundError,
    canonical_corpus_name,
    data_dir_candidates,
    find_corpus_files,
    locate_corpus,
    tfds_data_dir,
    tfds_manual_dir,
)
from tfnas.data.tokens import EOS, SPACE, TOKEN_KINDS, UNK, join_tokens, read_tokens, tokenize_text
from tfnas.data.verify import verify_corpus
from tfnas.data.vocab import OutOfVocabularyError, Vocabulary

__all__ = [
    "BPTTIterator",
    "CHECKSUMS",
    "ChecksumMismatchError",
    "Corpus",
    "CorpusDownloadError",
    "CorpusError",
    "CorpusOptions",
    "CorpusFiles",
    "CorpusNotFoundError",
    "ENV_VAR",
    "EOS",
    "FileChecksum",
    "OutOfVocabularyError",
    "SOURCES",
    "SPACE",
    "Segment",
    "TOKEN_KINDS",
    "UNK",
    "VOCAB_SIZES",
    "Vocabulary",
    "batchify",
    "canonical_corpus_name",
    "check_corpus",
    "clear_corpus_cache",
    "data_dir_candidates",
    "download_corpus",
    "epoch_iterator",
    "find_corpus_files",
    "join_tokens",
    "load_corpus",
    "load_corpus_of",
    "locate_corpus",
    "read_tokens",
    "register_tfds_builders",
    "tfds_data_dir",
    "tfds_manual_dir",
    "tokenize_text",
    "verify_corpus",
]


def register_tfds_builders() -> dict[str, type]:
    """Import tensorflow-datasets and register the ``ptb`` and ``wikitext2`` builders.

    Returns ``{"ptb": Ptb, "wikitext2": Wikitext2}``; calling it again is a no-op.
    """
    from tfnas.data.tfds_builders import register_builders

    return register_builders()


def __getattr__(attr: str) -> Any:
    # tfnas.data.download is imported on first use only, so that
    # `python -m tfnas.data.download` does not find it already imported.
    if attr in ("download_corpus", "CorpusDownloadError"):
        from tfnas.data import download

        return getattr(download, attr)
    # Ptb / Wikitext2 are defined (and registered with tfds) on first access only.
    if attr in ("Ptb", "Wikitext2"):
        from tfnas.data import tfds_builders

        return getattr(tfds_builders, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
