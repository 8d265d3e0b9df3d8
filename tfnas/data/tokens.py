"""Reading corpus files into token lists, and joining tokens back into text.

Two kinds of token (`TOKEN_KINDS`, the ``tokens`` setting):

* ``words`` (the default): the convention of the AWD-LSTM / DARTS
  language-model code: every line of a text file is split on whitespace and
  followed by one end-of-sentence token, i.e. ``line.split() + ["<eos>"]`` for
  every line (blank lines included, they become a lone ``<eos>``).
* ``chars``: every character of a line is a token, then ``<eos>``. A
  vocabulary word cannot hold whitespace, so a space is the token
  :data:`SPACE` (``<space>``) and any other whitespace character ``c`` the
  token ``<U+`` its code point in hexadecimal ``>`` (``<U+0009>`` for a tab). Being
  longer than one character, these names never collide with a character of
  the text. Leading and trailing spaces of a line are tokens like any other.

`join_tokens` is the inverse used by generation: words joined by a space,
characters joined with nothing, ``<eos>`` a line break.

The whole file is tokenised with a couple of C-level string operations instead
of a Python loop over lines, which keeps reading WikiText-2 (2M tokens) well
under a second.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from tfnas.data.errors import CorpusError
from tfnas.errors import PathNotFoundError, access_error

__all__ = ["EOS", "UNK", "SPACE", "SPLITS", "TOKEN_KINDS", "char_tokens", "tokenize_text", "read_text", "read_tokens",
           "join_tokens"]

#: End-of-sentence token appended to every line.
EOS = "<eos>"
#: Unknown-word token used by the preprocessed PTB and WikiText corpora.
UNK = "<unk>"
#: Names of the three splits of a corpus, in order.
SPLITS = ("train", "valid", "test")
#: The kinds of token a text is split into (the ``tokens`` setting): whitespace-separated words, or characters.
TOKEN_KINDS = ("words", "chars")
#: The token of a space in character-level text.
SPACE = "<space>"

_WHITESPACE_NAME = re.compile(r"<U\+([0-9A-F]{4,6})>")


def _char_token(char: str) -> str:
    if not char.isspace():
        return char
    return SPACE if char == " " else f"<U+{ord(char):04X}>"


def char_tokens(line: str) -> list[str]:
    """The characters of ``line`` as tokens: a space is :data:`SPACE`, other whitespace its code point token (``<U+0009>`` for a tab)."""
    return [_char_token(c) for c in line]


def _check_kind(tokens: str) -> None:
    if tokens not in TOKEN_KINDS:
        raise ValueError(f"Argument `tokens` must be one of {list(TOKEN_KINDS)}; received: tokens={tokens!r}")


def tokenize_text(text: str, tokens: str = "words") -> list[str]:
    """Split ``text`` into tokens, with :data:`EOS` after every line.

    ``words``: equivalent to ``[w for line in text.splitlines() for w in line.split() + [EOS]]``
    for ``\\n`` line breaks (the only ones left after Python's universal-newline
    decoding), but without per-line Python overhead. ``chars``:
    ``char_tokens(line) + [EOS]`` for every line.

    Args:
        text: the contents of a corpus file.
        tokens: ``"words"`` or ``"chars"`` (`TOKEN_KINDS`).

    Returns:
        The list of tokens. An empty text gives an empty list; a final line
        without a trailing newline still gets its :data:`EOS`.
    """
    _check_kind(tokens)
    if not text:
        return []
    if not text.endswith("\n"):
        text += "\n"
    if tokens == "chars":
        out: list[str] = []
        for line in text[:-1].split("\n"):
            out += char_tokens(line)
            out.append(EOS)
        return out
    return text.replace("\n", f" {EOS} ").split()


def join_tokens(tokens: Sequence[str], kind: str = "words") -> str:
    """The text of ``tokens`` (the inverse of `tokenize_text` up to whitespace): :data:`EOS` is a line break;
    ``words`` are joined by one space, ``chars`` with nothing, :data:`SPACE` and code point tokens (``<U+0009>``) written as the
    character they stand for."""
    _check_kind(kind)
    lines: list[list[str]] = [[]]
    for token in tokens:
        if token == EOS:
            lines.append([])
        elif kind == "chars":
            named = _WHITESPACE_NAME.fullmatch(token)
            lines[-1].append(" " if token == SPACE else chr(int(named.group(1), 16)) if named else token)
        else:
            lines[-1].append(token)
    glue = "" if kind == "chars" else " "
    return "\n".join(glue.join(line) for line in lines)


def read_text(path: str | os.PathLike[str]) -> str:
    """The text of a UTF-8 corpus file (universal newlines).

    Raises:
        PathNotFoundError: when ``path`` does not exist or is a folder (the message names it).
        PathAccessError: when ``path`` cannot be read.
        CorpusError: when the file is not valid UTF-8.
    """
    path = Path(path)
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


def read_tokens(path: str | os.PathLike[str], tokens: str = "words") -> list[str]:
    """Read a UTF-8 corpus file and return its ``tokens`` (``words`` or ``chars``: see :func:`tokenize_text`).

    Raises:
        PathNotFoundError: when ``path`` does not exist or is a folder (the message names it).
        PathAccessError: when ``path`` cannot be read.
        CorpusError: when the file is not valid UTF-8.
    """
    return tokenize_text(read_text(path), tokens)

