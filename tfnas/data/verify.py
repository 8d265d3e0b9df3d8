"""Verifying a corpus folder against the official checksums.

:func:`verify_corpus` finds the three split files of a corpus in a folder
(:mod:`tfnas.data.locate`) and checks each one against
:data:`tfnas.data.checksums.CHECKSUMS` (:func:`tfnas.data.checksums.verify_file`).
"""

from __future__ import annotations

import os
from pathlib import Path

from tfnas.data.checksums import CHECKSUMS, ChecksumMismatchError, verify_file
from tfnas.data.errors import CorpusError
from tfnas.data.locate import canonical_corpus_name, find_corpus_files, find_in_data_dir
from tfnas.errors import PathNotFoundError

__all__ = ["verify_corpus"]


def verify_corpus(directory: str | os.PathLike[str], name: str | None = None) -> dict[str, str]:
    """Verify the train/valid/test files of a corpus folder against :data:`CHECKSUMS`.

    Args:
        directory: folder holding the three splits (``train.txt`` ... or the
            official file names), or a data dir holding such a folder (see
            :func:`tfnas.data.find_corpus_files`).
        name: ``"ptb"`` or ``"wikitext2"``; inferred from the size of the
            training file when omitted.

    Returns:
        split -> description of what was verified.

    Raises:
        PathNotFoundError: the folder does not exist or lacks one of the splits.
        CorpusError: ``name`` is unknown, or cannot be inferred.
        ChecksumMismatchError: at least one file differs (all are listed).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise PathNotFoundError(f"corpus directory {str(directory)!r} does not exist")
    if name is not None:
        names = [canonical_corpus_name(name)]
    else:
        names = list(CHECKSUMS)
    candidates = []
    for candidate in names:
        files = find_corpus_files(directory, candidate) or find_in_data_dir(directory, candidate)
        if files is not None:
            candidates.append((candidate, files))
    if not candidates:
        raise PathNotFoundError(
            f"no complete corpus (train, valid and test files) found in {str(directory)!r}"
        )
    if name is None:
        matching = [
            (c, f) for c, f in candidates if f.train.stat().st_size == CHECKSUMS[c]["train"].size
        ]
        if len(matching) != 1:
            raise CorpusError(
                f"cannot infer which corpus {str(directory)!r} holds from its training file "
                f"size; pass name= one of {sorted(CHECKSUMS)}"
            )
        candidates = matching
    corpus, files = candidates[0]
    report: dict[str, str] = {}
    problems: list[str] = []
    for split, expected in CHECKSUMS[corpus].items():
        try:
            report[split] = verify_file(getattr(files, split), expected)
        except ChecksumMismatchError as err:
            problems.append(str(err))
    if problems:
        raise ChecksumMismatchError(
            f"{corpus} files in {str(files.directory)!r} do not match the official ones:\n  "
            + "\n  ".join(problems)
        )
    return report
