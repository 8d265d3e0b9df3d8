"""`CorpusError`: a corpus or vocabulary that tfnas cannot use.

The other errors of `tfnas.data` stay beside what raises them
(`tfnas.data.locate.CorpusNotFoundError`,
`tfnas.data.download.CorpusDownloadError`,
`tfnas.data.checksums.ChecksumMismatchError`,
`tfnas.data.vocab.OutOfVocabularyError`); a file that does not exist is a
`tfnas.errors.PathNotFoundError`. All are `tfnas.errors.TfnasError`: the
``tfnas`` command prints them on one line.
"""
from __future__ import annotations

from tfnas.errors import TfnasError


class CorpusError(TfnasError, ValueError):
    """A corpus or vocabulary file or folder that tfnas cannot use: not UTF-8, without words, malformed, a file
    where a folder is expected, an unknown corpus name, or a split smaller than one batch; the message names
    it."""
