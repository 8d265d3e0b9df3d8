"""Reading word-level corpus files into token lists.

The convention is the one of the AWD-LSTM / DARTS language-model code: every
line of a text file is split on whitespace and followed by one end-of-sentence
token, i.e. ``line.split() + ["<eos>"]`` for every line (blank lines included,
they become a lone ``<eos>``).

The whole file is tokenised with a couple of C-level string operations instead
of a Python loop over lines, which keeps reading WikiText-2 (2M tokens) well
under a second.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from tfnas.data.errors import CorpusError
from tfnas.errors import PathNotFoundError, access_error

__all__ = ["EOS", "UNK", "SPLITS", "tokenize_text", "read_tokens", "iter_line_tokens"]

#: End-of-sentence token appended to every line.
EOS = "<eos>"
#: Unknown-word token used by the preprocessed PTB and WikiText corpora.
UNK = "<unk>"
#: Names of the three splits of a corpus, in order.
SPLITS = ("train", "valid", "test")


def tokenize_text(text: str) -> list[str]:
    """Split ``text`` into tokens, with :data:`EOS` after every line.

    Equivalent to ``[w for line in text.splitlines() for w in line.split() + [EOS]]``
    for ``\\n`` line breaks (the only ones left after Python's universal-newline
    decoding), but without per-line Python overhead.

    Args:
        text: the contents of a corpus file.

    Returns:
        The list of tokens. An empty text gives an empty list; a final line
        without a trailing newline still gets its :data:`EOS`.
    """
    if not text:
        return []
    if not text.endswith("\n"):
        text += "\n"
    return text.replace("\n", f" {EOS} ").split()


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PathNotFoundError(f"corpus file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise PathNotFoundError(
            f"corpus file {str(path)!r} is a directory, expected a text file"
        ) from None
    except OSError as err:
        raise access_error("read corpus file", path, err) from err
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"corpus file {str(path)!r} is not valid UTF-8 (byte {err.start}): {err.reason}"
        ) from None


def read_tokens(path: str | os.PathLike[str]) -> list[str]:
    """Read a UTF-8 corpus file and return its tokens (see :func:`tokenize_text`).

    Raises:
        PathNotFoundError: when ``path`` does not exist or is a folder (the message names it).
        PathAccessError: when ``path`` cannot be read.
        CorpusError: when the file is not valid UTF-8.
    """
    return tokenize_text(_read_text(Path(path)))


def iter_line_tokens(path: str | os.PathLike[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, line.split() + [EOS])`` for each line of ``path``.

    Line numbers start at 1. This is the slow, per-line reader; it is used to
    report where a problem (such as an out-of-vocabulary word) is located.
    """
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise PathNotFoundError(f"corpus file {str(path)!r} does not exist") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.split() + [EOS]
